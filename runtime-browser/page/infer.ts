// Checkpoint loading and inference for the in-browser page, shared with Node (the tests run the
// same functions on Dawn to check that the browser's numbers are Node's). Engine and models only:
// no DOM, no Node modules.
//
// A checkpoint is a safetensors weights file (engine/train/checkpoint.ts weightsBytes). Its
// metadata says what it is, as the recipes write it:
// - EVA-02 classifier (recipes/endoextend/04-finetune-ce24.ts): `config` = Eva02Config JSON,
//   `classes` = JSON list of class names;
// - Polyp-PVT segmenter (recipes/endoked/05-segmenter.ts): `model` = 'polyp_pvt', `preset`,
//   `config` = PolypPvtConfig JSON; optionally `size` (the training resolution);
// - ToCo CAM classifier (recipes/endoked/03-cam.ts): `model` = 'toco_cam', `config` = TocoConfig;
// - SAM box-prompt decoder with its frozen backbone: `model` = 'sam_box_prompt' (endoked.ts).
// The weights are loaded strictly (every key and shape must match), so a checkpoint that does
// not fit the chosen model fails with loadStateDict's own message.
import {
  tensor,
  tidy,
  noGrad,
  softmax,
  sigmoid,
  add,
  narrow,
  reshape,
  device,
  warmup,
  zeros,
  loadWeights,
  WeightsMismatchError,
  parseSafetensors,
  type Tensor,
  type Module,
} from '../../engine/index.ts';
import { Eva02, EVA02_PRESETS, gridSize, type Eva02Config } from '../../models/eva02.ts';
import { PolypPVT, POLYP_PVT, type PolypPvtConfig } from '../../models/polyp-pvt.ts';
import { TocoCam, TOCO_PRESETS, type TocoConfig } from '../../models/toco.ts';
import type { SamDecoderConfig } from '../../models/sam-decoder.ts';
import { SamBoxModel, samConfigForSize, camOutputs } from './endoked.ts';
import { backboneFeaturesOf } from '../../models/polyp-pvt.ts';
import type { Normalization } from './preprocess.ts';

export type ModelKind = 'eva02' | 'polyp-pvt' | 'toco-cam' | 'sam-box';
export const MODEL_NAMES: Record<ModelKind, string> = {
  eva02: 'EVA-02 classifier',
  'polyp-pvt': 'Polyp-PVT segmenter',
  'toco-cam': 'ToCo CAM classifier',
  'sam-box': 'SAM-style box-prompt decoder',
};

interface Common {
  notes: string[];
  metadata: Record<string, string>;
  numParameters: number;
  inputSize: [number, number];
  norm: Normalization;
}
export type LoadedModel =
  | (Common & { kind: 'eva02'; model: Eva02; config: Eva02Config; classes: string[] })
  | (Common & { kind: 'polyp-pvt'; model: PolypPVT; config: PolypPvtConfig })
  | (Common & { kind: 'toco-cam'; model: TocoCam; config: TocoConfig })
  | (Common & { kind: 'sam-box'; model: SamBoxModel; config: SamDecoderConfig });

/** Metadata, tensor names and shapes from the safetensors header alone (no tensor is decoded). */
export function readHeader(
  bytes: Uint8Array,
): { metadata: Record<string, string>; keys: string[]; shapes: Record<string, number[]> } | null {
  if (bytes.length < 8) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 4294967296;
  if (8 + n > bytes.length) return null;
  try {
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { shape?: number[] }>;
    const { __metadata__: metadata, ...tensors } = h;
    const shapes = Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.shape ?? []]));
    return { metadata: (metadata ?? {}) as unknown as Record<string, string>, keys: Object.keys(tensors), shapes };
  } catch {
    return null;
  }
}

/** Which model a checkpoint is for, from its metadata (else its key names); null if unknown. */
export function detectKind(
  header: Pick<NonNullable<ReturnType<typeof readHeader>>, 'metadata' | 'keys'>,
): ModelKind | null {
  const m = header.metadata,
    cfg = parseJson(m.config);
  if (
    m.model === 'toco_cam' ||
    (header.keys.includes('classifier.weight') && header.keys.includes('aux_classifier.weight'))
  )
    return 'toco-cam';
  if (m.model === 'sam_box_prompt' || header.keys.some((k) => k.startsWith('sam.mask_decoder.'))) return 'sam-box';
  if (m.model === 'polyp_pvt' || (cfg && 'backbone' in cfg)) return 'polyp-pvt';
  if (cfg && 'patchSize' in cfg && 'embedDim' in cfg) return 'eva02';
  if (header.keys.some((k) => k.startsWith('backbone.patch_embed1.'))) return 'polyp-pvt';
  if (header.keys.includes('patch_embed.proj.weight') && header.keys.some((k) => k.startsWith('blocks.')))
    return 'eva02';
  return null;
}

function parseJson(s: string | undefined): Record<string, unknown> | null {
  if (!s) return null;
  try {
    const v = JSON.parse(s) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const parseObject = (v: unknown): Record<string, unknown> | null =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

/** Keeps the keys of `base` that `over` has, so unrelated metadata cannot add fields. */
function overlay<T extends object>(base: T, over: Record<string, unknown> | null): T {
  const out = { ...base } as Record<string, unknown>;
  if (over) for (const k of Object.keys(base)) if (k in over) out[k] = over[k];
  return out as T;
}

export interface LoadOptions {
  /** 'auto' (default): from the checkpoint; otherwise the model to load it into. */
  kind?: ModelKind | 'auto';
  /** Names the checkpoint in error messages. */
  source?: string;
  /** Polyp-PVT input side (a multiple of 32); default: metadata `size`, else 352. */
  segSize?: number;
}

/** Builds the model a checkpoint describes and loads its weights (strict). */
export function loadCheckpoint(data: Uint8Array, opts: LoadOptions = {}): LoadedModel {
  const source = opts.source ?? 'checkpoint';
  // A plain view: parseSafetensors copies with slice(), which on a Node Buffer is a view instead.
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const header = readHeader(bytes);
  if (!header) {
    try {
      parseSafetensors(bytes);
    } catch (e) {
      throw new Error(`${source}: ${e instanceof Error ? e.message : String(e)}`);
    }
    throw new Error(`${source}: the safetensors header cannot be read`);
  }
  if (header.keys.some((k) => k.startsWith('mask_decoder.')) && (opts.kind ?? 'auto') === 'auto') {
    throw new Error(
      `${source}: this is a SAM decoder without its image backbone (04-sam-pseudo-masks.ts writes ` +
        `the two apart); join it with the segmenter it ran over:\n` +
        'npx tsx runtime-browser/make-demo-assets.ts --sam-bundle <stage 4 weights.safetensors> <its ' +
        '--backbone weights> <out.safetensors>',
    );
  }
  const metadata = header.metadata,
    notes: string[] = [],
    cfgJson = parseJson(metadata.config);
  const detected = detectKind(header);
  let kind: ModelKind;
  if (opts.kind && opts.kind !== 'auto') kind = opts.kind;
  else if (detected) kind = detected;
  else
    throw new Error(
      `${source}: cannot tell which model this checkpoint is for (no 'config' metadata and no ` +
        `EVA-02, Polyp-PVT, ToCo or SAM-decoder keys); choose the model by hand`,
    );

  if (kind === 'toco-cam') {
    const fromMeta = !!cfgJson && detected === 'toco-cam';
    if (!fromMeta) notes.push('no ToCo config in the metadata: built the ToCo µ preset');
    const base = TOCO_PRESETS.mu;
    const config: TocoConfig = fromMeta
      ? { ...overlay(base, cfgJson), backbone: overlay(base.backbone, parseObject(cfgJson!.backbone)) }
      : base;
    const model = build(() => new TocoCam(config), bytes, source, kind, detected, notes);
    const im = config.backbone.imgSize,
      [h, w] = typeof im === 'number' ? [im, im] : im;
    return {
      kind,
      model,
      config,
      notes,
      metadata,
      numParameters: model.numParameters(),
      inputSize: [h, w],
      norm: 'imagenet',
    };
  }
  if (kind === 'sam-box') {
    const fromMeta = !!cfgJson && detected === 'sam-box';
    if (!fromMeta) notes.push("no decoder config in the metadata: built stage 4's decoder for 128² frames");
    const base = samConfigForSize(128);
    const config = fromMeta ? overlay(base, cfgJson) : base;
    const model = build(() => new SamBoxModel(config), bytes, source, kind, detected, notes);
    return {
      kind,
      model,
      config,
      notes,
      metadata,
      numParameters: model.numParameters(),
      inputSize: [config.inputImageSize[0], config.inputImageSize[1]],
      norm: 'none',
    };
  }

  if (kind === 'eva02') {
    const fromMeta = !!cfgJson && detected === 'eva02';
    if (!fromMeta) notes.push('no EVA-02 config in the metadata: built the EVA-02 µ preset');
    const config = overlay(EVA02_PRESETS.mu, fromMeta ? cfgJson : null);
    if (config.numClasses < 1)
      throw new Error(
        `${source}: this EVA-02 checkpoint has no classification head (numClasses ` +
          `${config.numClasses}; a pre-training checkpoint?)`,
      );
    let classes = Array.from({ length: config.numClasses }, (_, i) => `class ${i}`);
    if (metadata.classes) {
      let names: unknown = null;
      try {
        names = JSON.parse(metadata.classes);
      } catch {
        /* reported below */
      }
      if (!Array.isArray(names) || names.length !== config.numClasses) {
        throw new Error(
          `${source}: the metadata lists ${Array.isArray(names) ? names.length : 'no'} class names, ` +
            `the model config has numClasses ${config.numClasses}`,
        );
      }
      classes = names.map(String);
    } else if (fromMeta) notes.push('no class names in the metadata');
    const model = build(() => new Eva02(config), bytes, source, kind, detected, notes);
    const [h, w] = typeof config.imgSize === 'number' ? [config.imgSize, config.imgSize] : config.imgSize;
    return {
      kind,
      model,
      config,
      classes,
      notes,
      metadata,
      numParameters: model.numParameters(),
      inputSize: [h, w],
      norm: 'imagenet',
    };
  }
  const fromMeta = !!cfgJson && detected === 'polyp-pvt';
  const preset = metadata.preset in POLYP_PVT ? (metadata.preset as keyof typeof POLYP_PVT) : 'mu';
  if (!fromMeta) notes.push(`no Polyp-PVT config in the metadata: built the ${preset} preset`);
  const config = overlay(POLYP_PVT[preset], fromMeta ? cfgJson : null);
  const size = opts.segSize ?? (Number(metadata.size) || 352);
  if (!(size >= 32 && size % 32 === 0))
    throw new Error(`${source}: Polyp-PVT input size ${size} must be a positive multiple of 32`);
  if (!opts.segSize && !metadata.size) notes.push("no input size in the metadata: using 352 (the reference's)");
  const model = build(() => new PolypPVT(config), bytes, source, kind, detected, notes);
  return {
    kind,
    model,
    config,
    notes,
    metadata,
    numParameters: model.numParameters(),
    inputSize: [size, size],
    norm: 'none',
  };
}

/**
 * Builds the model and loads the weights strictly. When they do not fit, the error starts with a
 * one-line summary (counts, and the model the checkpoint looks like), then loadStateDict's text.
 */
function build<M extends Module>(
  make: () => M,
  bytes: Uint8Array,
  source: string,
  kind: ModelKind,
  detected: ModelKind | null,
  notes: string[],
): M {
  let model: M;
  try {
    model = make();
  } catch (e) {
    throw new Error(`${source}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    loadWeights(model, bytes, { source, strict: true });
  } catch (e) {
    model.dispose();
    if (!(e instanceof WeightsMismatchError)) throw e;
    const { missingKeys, unexpectedKeys, mismatched } = e.report;
    const [missing, unexpected] = [missingKeys.length, unexpectedKeys.length];
    const parts = [
      missing && `${missing} weight${missing > 1 ? 's' : ''} missing`,
      unexpected && `${unexpected} unexpected`,
      mismatched.length &&
        `${mismatched.length} of another shape (${mismatched
          .slice(0, 2)
          .map((m) => `${m.key}: [${m.file.join(', ')}] in the checkpoint, [${m.model.join(', ')}] in the model`)
          .join('; ')})`,
    ].filter(Boolean);
    const assumed = notes.map((n) => ` ${n[0].toUpperCase()}${n.slice(1)}.`).join('');
    const hint = detected && detected !== kind ? ` It looks like a ${MODEL_NAMES[detected]} checkpoint.` : '';
    throw new Error(
      `This checkpoint does not fit the ${MODEL_NAMES[kind]}: ${parts.join(', ')}.${assumed}${hint}\n${e.message}`,
    );
  }
  model.eval();
  return model;
}

// NaN/Infinity weights are refused when a checkpoint loads (engine loadWeights: "the checkpoint is
// broken"); finite weights can still overflow: then the result is not shown as a 0% mask either.
const BROKEN_OUTPUT =
  "The model's output is NaN/Infinity: this checkpoint is broken (it was probably written by a " +
  'training run that diverged); load another one';

export interface StageTimes {
  upload: number;
  forward: number;
  readback: number;
}

export interface Classification {
  /** Softmax probabilities [C]. */
  probs: Float32Array;
  /** Per-patch class scores [gh * gw, C] (row-major patch grid), see `classify`. */
  cam: Float32Array;
  grid: [number, number];
  times: StageTimes;
}

const now = () => performance.now();

/**
 * EVA-02 on one image [3, H, W] (already normalised). Besides the probabilities it returns the
 * class-activation map of the mean-pool head: each patch token goes through the head alone,
 * head(fc_norm(token)). With avg pooling, logits = head(fc_norm(mean of the tokens)); were fc_norm
 * affine, the mean of the per-patch scores would be exactly the logits (CAM, Zhou et al. 2016,
 * for a linear head after global average pooling). fc_norm is a LayerNorm, which normalises each
 * token by its own mean and spread, so the map is that CAM up to this per-token normalisation.
 */
export async function classify(
  m: Extract<LoadedModel, { kind: 'eva02' }>,
  input: Float32Array,
): Promise<Classification> {
  const [h, w] = m.inputSize,
    c = m.config.numClasses,
    [gh, gw] = gridSize(m.config);
  const t0 = now();
  const x = tensor(input, [1, 3, h, w]);
  await device().sync();
  const t1 = now();
  const [probs, cam] = noGrad(() => tidy(() => eva02Outputs(m, x)));
  await device().sync();
  const t2 = now();
  const out = { probs: new Float32Array(await probs.data()), cam: new Float32Array(await cam.data()) };
  const t3 = now();
  for (const t of [x, probs, cam]) t.dispose();
  if (!out.probs.every(Number.isFinite)) throw new Error(BROKEN_OUTPUT);
  if (out.cam.length !== gh * gw * c)
    throw new Error(`classify: CAM has ${out.cam.length} values, expected ${gh}x${gw}x${c}`);
  return { ...out, grid: [gh, gw], times: { upload: t1 - t0, forward: t2 - t1, readback: t3 - t2 } };
}

/** Probabilities [1, C] and per-patch scores [1, N, C] of EVA-02 on x [1, 3, H, W]. */
function eva02Outputs(m: Extract<LoadedModel, { kind: 'eva02' }>, x: Tensor): [Tensor, Tensor] {
  const [gh, gw] = gridSize(m.config);
  const feats = m.model.forwardFeatures(x); // [1, 1 + N, D]
  const p = softmax(m.model.forwardHead(feats), -1); // -> [1, C]
  const patches = narrow(feats, 1, 1, gh * gw); // -> [1, N, D]
  return [p, m.model.head.forward(m.model.fc_norm.forward(patches))]; // -> [1, N, C]
}

export interface Segmentation {
  /** sigmoid(P1 + P2) at the input resolution [H * W]. */
  prob: Float32Array;
  size: [number, number];
  times: StageTimes;
}

/** Polyp-PVT on one image [3, H, W] in [0, 1]: the mask probability sigmoid(P1 + P2). */
export async function segment(
  m: Extract<LoadedModel, { kind: 'polyp-pvt' }>,
  input: Float32Array,
): Promise<Segmentation> {
  const [h, w] = m.inputSize;
  const t0 = now();
  const x = tensor(input, [1, 3, h, w]);
  await device().sync();
  const t1 = now();
  const prob: Tensor = noGrad(() => tidy(() => pvtProb(m, x)));
  await device().sync();
  const t2 = now();
  const out = new Float32Array(await prob.data());
  const t3 = now();
  x.dispose();
  prob.dispose();
  if (!out.every(Number.isFinite)) throw new Error(BROKEN_OUTPUT);
  return { prob: out, size: [h, w], times: { upload: t1 - t0, forward: t2 - t1, readback: t3 - t2 } };
}

/** sigmoid(P1 + P2) [H * W] of Polyp-PVT on x [1, 3, H, W]. */
function pvtProb(m: Extract<LoadedModel, { kind: 'polyp-pvt' }>, x: Tensor): Tensor {
  const [p1, p2] = m.model.forward(x); // 2 x [1, 1, H, W]
  return reshape(sigmoid(add(p1, p2)), [x.shape[2] * x.shape[3]]);
}

/**
 * Compiles the pipelines of a model's inference ahead of its first image (engine `warmup`: a dry
 * forward on a blank input names the kernels, they compile asynchronously), so the first result
 * does not wait on shader compiles. Resolves to the number of pipelines compiled.
 */
export function warmupModel(m: LoadedModel): Promise<number> {
  const [h, w] = m.inputSize;
  const x = () => zeros([1, 3, h, w]);
  switch (m.kind) {
    case 'eva02':
      return warmup(() => eva02Outputs(m, x()));
    case 'polyp-pvt':
      return warmup(() => pvtProb(m, x()));
    case 'toco-cam':
      return warmup(() => camOutputs(m.model, x()));
    case 'sam-box':
      return warmup(() => {
        const embedding = m.model.sam.embedImage(backboneFeaturesOf(m.model.segmenter, x()));
        m.model.sam.forward(embedding, { boxes: tensor([0, 0, w, h], [1, 4]) }, false);
      });
  }
}
