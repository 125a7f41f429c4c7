// EndoKED optical biopsy (Wang et al., arXiv 2310.11173; spec §2.7): a frame encoder (the MIL
// stage's shared encoder, or one trained from scratch) followed by a small classification head,
// fine-tuned on per-frame pathology labels.
// Reference: zwyang6/ENDOKED EndoKED_MIL/fine_tuning_Encoder_for_pathology_withGTInstanceLabel.py
// (`Instance_Classifier_Head_simple`: Linear(512, 512) - BatchNorm1d(512) - ReLU - Linear(512, C),
// Linear weights N(0, 0.01) and zero biases; the encoder is ResNet-18 up to global pooling).
// Deviations: the head's widths follow the encoder's feature dimension D (512 for ResNet-18),
// so Lin(D, D) - BN1d(D) - ReLU - Lin(D, C); any encoder that maps [B, 3, H, W] to [B, D] fits
// (`FrameEncoder`); the recipe uses models/mil.ts's MilEncoder, the MIL stage's shared encoder.
// State-dict keys: `encoder.*` (the MIL stage's encoder.safetensors uses the same prefix, so it
// loads directly) and `head.classifier.{0,1,3}.*` (the reference's names inside the head).
import { Tensor, fmt, loadWeights, weightsBytes } from '../engine/index.ts';
import { Module, Linear, Sequential, ReLU, BatchNorm1d, init } from '../engine/nn/index.ts';

/** Any frame encoder: images [B, 3, H, W] -> features [B, D]. */
export interface FrameEncoder extends Module {
  forward(x: Tensor): Tensor;
}

// ---- the head and the classifier ----------------------------------------------------------------

/** The reference's Instance_Classifier_Head_simple, widths scaled to the feature dimension. */
export class BiopsyHead extends Module {
  classifier: Sequential;
  constructor(
    readonly inFeatures: number,
    readonly numClasses = 2,
    hidden = inFeatures,
  ) {
    super();
    const fc1 = new Linear(inFeatures, hidden),
      fc2 = new Linear(hidden, numClasses);
    for (const l of [fc1, fc2]) {
      init.normal_(l.weight, 0, 0.01);
      init.zeros_(l.bias!);
    } // as the reference's _initialize_weights
    this.classifier = new Sequential(fc1, new BatchNorm1d(hidden), new ReLU(), fc2);
  }
  forward(x: Tensor): Tensor {
    return this.classifier.forward(x);
  } // [B, D] -> [B, C]
}

export class OpticalBiopsyNet extends Module {
  encoder: FrameEncoder;
  head: BiopsyHead;
  constructor(encoder: FrameEncoder, featureDim: number, numClasses = 2) {
    super();
    this.encoder = encoder;
    this.head = new BiopsyHead(featureDim, numClasses);
  }
  /** Images [B, 3, H, W] (normalised) -> logits [B, C]. */
  forward(x: Tensor): Tensor {
    const f = this.encoder.forward(x); // [B, D]
    if (f.ndim !== 2 || f.shape[1] !== this.head.inFeatures)
      throw new Error(
        `OpticalBiopsyNet: the encoder gave ${fmt(f.shape)}, the head expects [B, ${this.head.inFeatures}]`,
      );
    return this.head.forward(f);
  }
}

// ---- encoder weights under the `encoder.` prefix (stage 2's encoder.safetensors) ------------------

/** Holds an encoder as field `encoder`, so its state-dict keys read `encoder.*`. */
class EncoderFile extends Module {
  constructor(readonly encoder: FrameEncoder) {
    super();
  }
}

/** The encoder's weights as safetensors bytes, keys `encoder.*`. */
export function encoderBytes(encoder: FrameEncoder, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  return weightsBytes(new EncoderFile(encoder), metadata);
}

/**
 * Loads `encoder.*` weights (e.g. stage 2's encoder.safetensors) into an encoder. Other keys
 * (teacher or student heads stored alongside) are ignored; a missing encoder key or a shape
 * mismatch is an error naming the file. Returns the number of tensors loaded.
 */
export function loadEncoder(encoder: FrameEncoder, bytes: Uint8Array, source: string): number {
  const r = loadWeights(new EncoderFile(encoder), bytes, { strict: false, source });
  if (r.missingKeys.length) {
    const has = r.unexpectedKeys.filter((k) => k.startsWith('encoder.')).length;
    throw new Error(
      `${source}: ${r.missingKeys.length} encoder weight(s) missing, e.g. ${r.missingKeys.slice(0, 3).join(', ')}` +
        (has
          ? ` (the file's encoder.* keys belong to another architecture, e.g. ` +
            `${r.unexpectedKeys.find((k) => k.startsWith('encoder.'))})`
          : ' (the file has no encoder.* keys: pass the encoder.safetensors written by recipes/endoked/02-mil.ts)'),
    );
  }
  const stray = r.unexpectedKeys.filter((k) => k.startsWith('encoder.'));
  if (stray.length)
    throw new Error(
      `${source}: encoder.* keys the encoder does not have (another architecture?), e.g. ` +
        `${stray.slice(0, 3).join(', ')}`,
    );
  return encoder.stateDict().size;
}
