// SAM's mask decoder (Kirillov et al., "Segment Anything", arXiv 2304.02643), spec §2.4, with its
// prompt encoder (sam-prompt-encoder.ts): EndoKED turns CAM boxes into pixel masks with it.
// Output tokens (iou_token + mask_tokens) and the sparse prompt tokens attend to the image
// embedding (+ dense prompt embedding) in a two-way transformer; the image tokens are upscaled x4
// (two stride-2 transposed convs) and each mask token's 3-layer hypernetwork MLP gives the weights
// of a dot product with them -> low-resolution mask logits [B, 4, 4h, 4w]; an MLP on the IoU token
// predicts each mask's IoU. multimask_output picks tokens 1..3, otherwise token 0.
// TwoWayTransformer (depth layers, then a final token->image attention + LN): per layer,
// self-attention of the tokens (the first layer without the query PE and without a residual),
// token->image cross-attention, an MLP (ReLU), image->token cross-attention; each followed by LN.
// The cross-attentions project to embed_dim / attention_downsample_rate channels (SAM: 128, so
// 16 per head): engine/nn/attention.ts's MultiheadAttention in its separate (SAM) layout.
// Reference implementation: facebookresearch/segment-anything `segment_anything/modeling/
// mask_decoder.py` (MaskDecoder, MLP), `transformer.py` (TwoWayTransformer, TwoWayAttentionBlock,
// Attention), `common.py` (MLPBlock, LayerNorm2d), `sam.py` (postprocess_masks), `build_sam.py`
// (the sizes). Field names and their order are its state_dict keys, so a published SAM's
// `prompt_encoder.*` and `mask_decoder.*` load by name (SamPromptDecoder below).
// Deviations: (1) SAM's decoder runs one image at a time and repeats its embedding for every
// prompt; here the image embedding is [1, C, h, w] (the same, repeated) or [B, C, h, w] with one
// prompt per image, so a training batch mixes images. (2) `mu` is this project's CPU preset
// (spec §4, SAM-decoder-µ), not a published size.
import {
  Tensor,
  fmt,
  add,
  relu,
  cat,
  matmul,
  reshape,
  expand,
  transpose,
  narrow,
  stack,
  unsqueeze,
  repeatInterleave,
  interpolate,
} from '../engine/index.ts';
import {
  Module,
  Linear,
  LayerNorm,
  Embedding,
  ModuleList,
  Sequential,
  GELU,
  MultiheadAttention,
  ConvTranspose2d,
  LayerNorm2d,
} from '../engine/nn/index.ts';
import { PromptEncoder, ImageEncoderNeck, type PointPrompts, type PromptEncoderConfig } from './sam-prompt-encoder.ts';

export interface SamDecoderConfig extends PromptEncoderConfig {
  depth: number;
  numHeads: number;
  mlpDim: number;
  attentionDownsampleRate: number;
  /** Masks of the multimask output (SAM: 3); one more token gives the single-mask output. */
  numMultimaskOutputs: number;
  iouHeadDepth: number;
  iouHeadHiddenDim: number;
}

/**
 * build_sam.py's decoder (`sam`), and the CPU preset (spec §4: 32-d, 2 heads, internal 16, MLP 64, 8x8 -> 32² masks).
 */
export const SAM_DECODER: Record<'sam' | 'mu', SamDecoderConfig> = {
  sam: {
    embedDim: 256,
    imageEmbeddingSize: [64, 64],
    inputImageSize: [1024, 1024],
    maskInChans: 16,
    depth: 2,
    numHeads: 8,
    mlpDim: 2048,
    attentionDownsampleRate: 2,
    numMultimaskOutputs: 3,
    iouHeadDepth: 3,
    iouHeadHiddenDim: 256,
  },
  mu: {
    embedDim: 32,
    imageEmbeddingSize: [8, 8],
    inputImageSize: [64, 64],
    maskInChans: 8,
    depth: 2,
    numHeads: 2,
    mlpDim: 64,
    attentionDownsampleRate: 2,
    numMultimaskOutputs: 3,
    iouHeadDepth: 3,
    iouHeadHiddenDim: 32,
  },
};

/**
 * SAM's attention: separate q/k/v projections to embed_dim / downsample_rate, heads, out_proj. Batch-first [B, L, D].
 */
const attention = (d: number, heads: number, downsampleRate = 1) =>
  new MultiheadAttention(d, heads, { separate: true, downsampleRate, batchFirst: true });

/** common.py's MLPBlock: lin1 -> ReLU -> lin2. */
export class MLPBlock extends Module {
  lin1: Linear;
  lin2: Linear;
  constructor(d: number, mlpDim: number) {
    super();
    this.lin1 = new Linear(d, mlpDim);
    this.lin2 = new Linear(mlpDim, d);
  }

  forward(x: Tensor): Tensor {
    return this.lin2.forward(relu(this.lin1.forward(x)));
  }
}

/** mask_decoder.py's MLP: `layers` Linear, ReLU between them (not after the last). */
export class MLP extends Module {
  layers: ModuleList<Linear>;
  constructor(inputDim: number, hiddenDim: number, outputDim: number, numLayers: number) {
    super();
    const dims = [inputDim, ...Array(numLayers - 1).fill(hiddenDim), outputDim];
    this.layers = new ModuleList(dims.slice(1).map((o, i) => new Linear(dims[i], o)));
  }

  forward(x: Tensor): Tensor {
    const n = this.layers.length;
    let y = x;
    for (let i = 0; i < n; i++) {
      y = this.layers.at(i).forward(y);
      if (i < n - 1) y = relu(y);
    }
    return y;
  }
}

export class TwoWayAttentionBlock extends Module {
  // Registration order of the reference (norm4 comes before cross_attn_image_to_token).
  self_attn: MultiheadAttention;
  norm1: LayerNorm;
  cross_attn_token_to_image: MultiheadAttention;
  norm2: LayerNorm;
  mlp: MLPBlock;
  norm3: LayerNorm;
  norm4: LayerNorm;
  cross_attn_image_to_token: MultiheadAttention;
  constructor(
    d: number,
    heads: number,
    mlpDim: number,
    downsampleRate: number,
    readonly skipFirstLayerPe: boolean,
  ) {
    super();
    this.self_attn = attention(d, heads);
    this.norm1 = new LayerNorm(d);
    this.cross_attn_token_to_image = attention(d, heads, downsampleRate);
    this.norm2 = new LayerNorm(d);
    this.mlp = new MLPBlock(d, mlpDim);
    this.norm3 = new LayerNorm(d);
    this.norm4 = new LayerNorm(d);
    this.cross_attn_image_to_token = attention(d, heads, downsampleRate);
  }

  /** queries [B, Nt, D], keys [B, HW, D] and their PEs -> updated [queries, keys]. */
  forward(queries: Tensor, keys: Tensor, queryPe: Tensor, keyPe: Tensor): [Tensor, Tensor] {
    if (this.skipFirstLayerPe) {
      queries = this.self_attn.forward(queries, queries, queries);
    } else {
      const q = add(queries, queryPe);
      queries = add(queries, this.self_attn.forward(q, q, queries));
    }
    queries = this.norm1.forward(queries);
    let q = add(queries, queryPe),
      k = add(keys, keyPe);
    // tokens attend to the image
    queries = this.norm2.forward(add(queries, this.cross_attn_token_to_image.forward(q, k, keys)));
    queries = this.norm3.forward(add(queries, this.mlp.forward(queries)));
    q = add(queries, queryPe);
    k = add(keys, keyPe);
    // the image attends to the tokens
    keys = this.norm4.forward(add(keys, this.cross_attn_image_to_token.forward(k, q, queries)));
    return [queries, keys];
  }
}

export class TwoWayTransformer extends Module {
  layers: ModuleList<TwoWayAttentionBlock>;
  final_attn_token_to_image: MultiheadAttention;
  norm_final_attn: LayerNorm;
  constructor(depth: number, d: number, heads: number, mlpDim: number, downsampleRate: number) {
    super();
    this.layers = new ModuleList(
      Array.from({ length: depth }, (_, i) => new TwoWayAttentionBlock(d, heads, mlpDim, downsampleRate, i === 0)),
    );
    this.final_attn_token_to_image = attention(d, heads, downsampleRate);
    this.norm_final_attn = new LayerNorm(d);
  }

  /** image [B, D, h, w], its PE [B, D, h, w], tokens [B, Nt, D] -> [tokens [B, Nt, D], image tokens [B, hw, D]]. */
  forward(image: Tensor, imagePe: Tensor, pointEmbedding: Tensor): [Tensor, Tensor] {
    // [B, D, h, w] -> [B, hw, D]
    const flat = (t: Tensor) => transpose(reshape(t, [t.shape[0], t.shape[1], t.shape[2] * t.shape[3]]), 1, 2);
    const keyPe = flat(imagePe);
    let queries = pointEmbedding,
      keys = flat(image);
    for (const layer of this.layers) [queries, keys] = layer.forward(queries, keys, pointEmbedding, keyPe);
    const attn = this.final_attn_token_to_image.forward(add(queries, pointEmbedding), add(keys, keyPe), keys);
    return [this.norm_final_attn.forward(add(queries, attn)), keys];
  }
}

export class MaskDecoder extends Module {
  transformer: TwoWayTransformer;
  iou_token: Embedding;
  mask_tokens: Embedding;
  output_upscaling: Sequential;
  output_hypernetworks_mlps: ModuleList<MLP>;
  iou_prediction_head: MLP;
  readonly numMaskTokens: number;
  constructor(readonly config: SamDecoderConfig) {
    super();
    const d = config.embedDim;
    if (d % 8 !== 0)
      throw new Error(
        `MaskDecoder: transformer_dim ${d} must be divisible by 8 (the upscaling halves it to d/4, then d/8)`,
      );
    this.transformer = new TwoWayTransformer(
      config.depth,
      d,
      config.numHeads,
      config.mlpDim,
      config.attentionDownsampleRate,
    );
    this.numMaskTokens = config.numMultimaskOutputs + 1;
    this.iou_token = new Embedding(1, d);
    this.mask_tokens = new Embedding(this.numMaskTokens, d);
    this.output_upscaling = new Sequential(
      new ConvTranspose2d(d, d / 4, 2, { stride: 2 }),
      new LayerNorm2d(d / 4),
      new GELU(),
      new ConvTranspose2d(d / 4, d / 8, 2, { stride: 2 }),
      new GELU(),
    );
    this.output_hypernetworks_mlps = new ModuleList(
      Array.from({ length: this.numMaskTokens }, () => new MLP(d, d, d / 8, 3)),
    );
    this.iou_prediction_head = new MLP(d, config.iouHeadHiddenDim, this.numMaskTokens, config.iouHeadDepth);
  }

  /**
   * Every mask token's output: masks [B, T, 4h, 4w] (logits) and IoU predictions [B, T]
   * (T = numMultimaskOutputs + 1). image [1 or B, D, h, w], imagePe [1, D, h, w],
   * sparse [B, N, D], dense [B, D, h, w].
   */
  predictMasks(image: Tensor, imagePe: Tensor, sparse: Tensor, dense: Tensor): { masks: Tensor; iou: Tensor } {
    const b = sparse.shape[0],
      d = this.config.embedDim;
    if (image.ndim !== 4 || image.shape[1] !== d || (image.shape[0] !== 1 && image.shape[0] !== b)) {
      throw new Error(
        `MaskDecoder: image embedding ${fmt(image.shape)} must be [1 or ${b}, ${d}, h, w] for ${b} prompts`,
      );
    }
    const output = cat([this.iou_token.weight, this.mask_tokens.weight], 0); // [1 + T, D]
    const tokens = cat([expand(unsqueeze(output, 0), [b, output.shape[0], d]), sparse], 1); // [B, 1 + T + N, D]
    const src = add(image.shape[0] === b ? image : repeatInterleave(image, b, 0), dense); // [B, D, h, w]
    const pos = expand(imagePe, [b, ...imagePe.shape.slice(1)]);
    const [, , h, w] = src.shape;
    const [hs, keys] = this.transformer.forward(src, pos, tokens);
    const grid = reshape(transpose(keys, 1, 2), [b, d, h, w]); // [B, hw, D] -> [B, D, h, w]
    const up = this.output_upscaling.forward(grid); // [B, D, h, w] -> [B, D/8, 4h, 4w]
    const [, c, uh, uw] = up.shape;
    const hyper = stack(
      Array.from({ length: this.numMaskTokens }, (_, i) =>
        this.output_hypernetworks_mlps.at(i).forward(token(hs, 1 + i)),
      ),
      1,
    ); // [B, T, D/8]
    // [B, T, D/8] x [B, D/8, HW] -> [B, T, 4h, 4w]
    const masks = reshape(matmul(hyper, reshape(up, [b, c, uh * uw])), [b, this.numMaskTokens, uh, uw]);
    return { masks, iou: this.iou_prediction_head.forward(token(hs, 0)) };
  }

  /** SAM's forward: masks [B, 3 or 1, 4h, 4w] and IoU predictions [B, 3 or 1]. */
  forward(
    image: Tensor,
    imagePe: Tensor,
    sparse: Tensor,
    dense: Tensor,
    multimaskOutput: boolean,
  ): { masks: Tensor; iou: Tensor } {
    const { masks, iou } = this.predictMasks(image, imagePe, sparse, dense);
    return selectMasks(masks, iou, multimaskOutput);
  }
}

/** Token i of [B, N, D] -> [B, D]. */
function token(x: Tensor, i: number): Tensor {
  return reshape(narrow(x, 1, i, 1), [x.shape[0], x.shape[2]]);
}

/** The multimask slice: tokens 1.. (multimask) or token 0. */
export function selectMasks(masks: Tensor, iou: Tensor, multimaskOutput: boolean): { masks: Tensor; iou: Tensor } {
  const t = masks.shape[1];
  const [start, len] = multimaskOutput ? [1, t - 1] : [0, 1];
  return { masks: narrow(masks, 1, start, len), iou: narrow(iou, 1, start, len) };
}

/** Prompts for one decoder call; every tensor has the batch B of prompts. */
export interface SamPrompts {
  points?: PointPrompts | null;
  boxes?: Tensor | null;
  masks?: Tensor | null;
}

/**
 * SAM without its ViT: `image_encoder.neck` (optional: present when the image side is this
 * project's backbone + SAM's neck), `prompt_encoder`, `mask_decoder`, in Sam's registration order.
 */
export class SamPromptDecoder extends Module {
  image_encoder: ImageEncoderNeck | null;
  prompt_encoder: PromptEncoder;
  mask_decoder: MaskDecoder;
  constructor(
    readonly config: SamDecoderConfig,
    opts: { neckInChans?: number } = {},
  ) {
    super();
    this.image_encoder = opts.neckInChans ? new ImageEncoderNeck(opts.neckInChans, config.embedDim) : null;
    this.prompt_encoder = new PromptEncoder(config);
    this.mask_decoder = new MaskDecoder(config);
  }

  /** Backbone features [B, Cin, h, w] -> image embeddings [B, D, h, w] through the neck. */
  embedImage(features: Tensor): Tensor {
    if (!this.image_encoder) throw new Error('SamPromptDecoder: built without a neck (pass neckInChans)');
    return this.image_encoder.forward(features);
  }

  /** All T masks (logits [B, T, 4h, 4w]) and IoU predictions [B, T] for the prompts on `image` [1 or B, D, h, w]. */
  predictAll(image: Tensor, prompts: SamPrompts): { masks: Tensor; iou: Tensor } {
    const { sparse, dense } = this.prompt_encoder.forward(
      prompts.points ?? null,
      prompts.boxes ?? null,
      prompts.masks ?? null,
    );
    return this.mask_decoder.predictMasks(image, this.prompt_encoder.getDensePe(), sparse, dense);
  }

  /** SAM's predict: low-resolution logits [B, 3 or 1, 4h, 4w] and IoU predictions. */
  forward(image: Tensor, prompts: SamPrompts, multimaskOutput: boolean): { masks: Tensor; iou: Tensor } {
    const { masks, iou } = this.predictAll(image, prompts);
    return selectMasks(masks, iou, multimaskOutput);
  }
}

export function samPromptDecoder(
  variant: keyof typeof SAM_DECODER | SamDecoderConfig,
  opts: { neckInChans?: number } = {},
): SamPromptDecoder {
  return new SamPromptDecoder(typeof variant === 'string' ? SAM_DECODER[variant] : variant, opts);
}

/**
 * Sam.postprocess_masks: low-resolution logits [B, T, 4h, 4w] -> bilinear to the padded input size,
 * crop to `inputSize` (the resized image before padding), bilinear to `originalSize`. Threshold
 * the result at 0 (SAM's mask_threshold) for binary masks.
 */
export function postprocessMasks(
  masks: Tensor,
  inputImageSize: readonly [number, number],
  inputSize: readonly [number, number],
  originalSize: readonly [number, number],
): Tensor {
  const full = interpolate(masks, {
    size: [inputImageSize[0], inputImageSize[1]],
    mode: 'bilinear',
    alignCorners: false,
  });
  const cropped = narrow(narrow(full, 2, 0, inputSize[0]), 3, 0, inputSize[1]);
  return interpolate(cropped, { size: [originalSize[0], originalSize[1]], mode: 'bilinear', alignCorners: false });
}
