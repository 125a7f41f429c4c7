// SAM's prompt encoder (Kirillov et al., "Segment Anything", arXiv 2304.02643), spec §2.4:
// random-Fourier positional encoding, point / box / mask prompts -> sparse tokens [B, N, D] and a
// dense embedding [B, D, h, w]. Also SAM's image-encoder neck (1x1 conv, LayerNorm2d, 3x3 conv,
// LayerNorm2d), which projects this project's own backbone features to the decoder's width.
// Reference implementation: facebookresearch/segment-anything
// `segment_anything/modeling/prompt_encoder.py` (PromptEncoder, PositionEmbeddingRandom) and
// `image_encoder.py` (ImageEncoderViT.neck). Field names and order are its state_dict keys:
// pe_layer.positional_encoding_gaussian_matrix (a buffer), point_embeddings.{0..3}.weight,
// not_a_point_embed.weight, mask_downscaling.{0,1,3,4,6}.*, no_mask_embed.weight.
// Facts worth knowing (all from the reference): coordinates are shifted by +0.5 (pixel centres)
// and divided by (W, H) of the padded input image, then pe(c) = [sin(2π(2c-1)G), cos(2π(2c-1)G)];
// point_embeddings[0/1] mark negative/positive points, [2/3] the box's top-left/bottom-right
// corners; a padding point (label -1, zero PE) carrying not_a_point_embed is appended only when
// there is no box; without a mask input, no_mask_embed is broadcast over the grid.
// Deviations: none in the computation. Point labels are an f32 tensor of -1 / 0 / 1 (the
// reference's masked assignment `pe[labels == v] += w` is written as sums of 0/1 masks).
import {
  Tensor,
  fmt,
  add,
  sub,
  mul,
  sin,
  cos,
  cat,
  matmul,
  reshape,
  expand,
  permute,
  eq,
  tensor,
  unsqueeze,
} from '../engine/index.ts';
import { Module, Embedding, ModuleList, Sequential, GELU, init, Conv2d, LayerNorm2d } from '../engine/nn/index.ts';

const { normal } = init;

/** Fixed random Gaussian frequencies G [2, F]: pe(c in [0,1]²) = [sin(2π(2c-1)G), cos(2π(2c-1)G)] (2F channels). */
export class PositionEmbeddingRandom extends Module {
  declare positional_encoding_gaussian_matrix: Tensor;
  constructor(
    readonly numPosFeats = 64,
    scale = 1,
  ) {
    super();
    this.registerBuffer('positional_encoding_gaussian_matrix', normal([2, numPosFeats], 0, scale > 0 ? scale : 1));
  }

  /** coords [..., 2] in [0, 1] (x, y) -> [..., 2F]. */
  private encode(coords: Tensor): Tensor {
    const c = matmul(sub(mul(coords, 2), 1), this.positional_encoding_gaussian_matrix); // [..., 2] x [2, F] -> [..., F]
    const a = mul(c, 2 * Math.PI);
    return cat([sin(a), cos(a)], -1);
  }

  /** The dense encoding of an h x w grid of cell centres: [2F, h, w]. */
  forward([h, w]: readonly [number, number]): Tensor {
    const xy = new Float32Array(h * w * 2);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        xy[2 * (i * w + j)] = (j + 0.5) / w;
        xy[2 * (i * w + j) + 1] = (i + 0.5) / h;
      }
    return permute(this.encode(tensor(xy, [h, w, 2])), [2, 0, 1]); // [h, w, 2F] -> [2F, h, w]
  }

  /** Pixel coordinates [B, N, 2] (x, y) of an image of `imageSize` [H, W] -> [B, N, 2F]. */
  forwardWithCoords(coords: Tensor, [h, w]: readonly [number, number]): Tensor {
    return this.encode(mul(coords, tensor([1 / w, 1 / h], [2])));
  }
}

/**
 * Point prompts: coordinates [B, N, 2] in input-image pixels (x, y), labels [B, N] (1 positive, 0 negative, -1
 * padding).
 */
export interface PointPrompts {
  coords: Tensor;
  labels: Tensor;
}

export interface PromptEncoderConfig {
  embedDim: number;
  /** The image embedding's grid [h, w] (SAM: 64 x 64). */
  imageEmbeddingSize: [number, number];
  /** The padded input image [H, W] the prompts' pixel coordinates refer to (SAM: 1024 x 1024). */
  inputImageSize: [number, number];
  /** Hidden channels of the mask-input encoder (SAM: 16). */
  maskInChans: number;
}

export class PromptEncoder extends Module {
  pe_layer: PositionEmbeddingRandom;
  point_embeddings: ModuleList<Embedding>;
  not_a_point_embed: Embedding;
  mask_downscaling: Sequential;
  no_mask_embed: Embedding;
  readonly embedDim: number;
  readonly imageEmbeddingSize: [number, number];
  readonly inputImageSize: [number, number];
  constructor(c: PromptEncoderConfig) {
    super();
    [this.embedDim, this.imageEmbeddingSize, this.inputImageSize] = [
      c.embedDim,
      c.imageEmbeddingSize,
      c.inputImageSize,
    ];
    const d = c.embedDim,
      m = c.maskInChans;
    if (m % 4 !== 0) throw new Error(`PromptEncoder: mask_in_chans ${m} must be divisible by 4`);
    this.pe_layer = new PositionEmbeddingRandom(d / 2);
    this.point_embeddings = new ModuleList([0, 1, 2, 3].map(() => new Embedding(1, d))); // neg / pos point, box corners
    this.not_a_point_embed = new Embedding(1, d);
    this.mask_downscaling = new Sequential(
      new Conv2d(1, m / 4, 2, { stride: 2 }),
      new LayerNorm2d(m / 4),
      new GELU(),
      new Conv2d(m / 4, m, 2, { stride: 2 }),
      new LayerNorm2d(m),
      new GELU(),
      new Conv2d(m, d, 1),
    );
    this.no_mask_embed = new Embedding(1, d);
  }

  /** The mask input's size [4h, 4w]. */
  get maskInputSize(): [number, number] {
    return [4 * this.imageEmbeddingSize[0], 4 * this.imageEmbeddingSize[1]];
  }

  /** The dense positional encoding of the image embedding's grid: [1, D, h, w]. */
  getDensePe(): Tensor {
    return unsqueeze(this.pe_layer.forward(this.imageEmbeddingSize), 0);
  }

  private embedPoints({ coords, labels }: PointPrompts, pad: boolean): Tensor {
    const [b, n] = [coords.shape[0], coords.shape[1]];
    if (
      coords.ndim !== 3 ||
      coords.shape[2] !== 2 ||
      labels.ndim !== 2 ||
      labels.shape[0] !== b ||
      labels.shape[1] !== n
    ) {
      throw new Error(
        `PromptEncoder: point coords ${fmt(coords.shape)} must be [B, N, 2] and labels ${fmt(labels.shape)} [B, N]`,
      );
    }
    let pts = add(coords, 0.5); // pixel centres
    let lab = labels;
    if (pad) {
      // a padding point (label -1) so the decoder sees a "no box" token
      pts = cat([pts, tensor(new Float32Array(b * 2), [b, 1, 2])], 1);
      lab = cat([labels, tensor(new Float32Array(b).fill(-1), [b, 1])], 1);
    }
    const pe = this.pe_layer.forwardWithCoords(pts, this.inputImageSize); // [B, N', D]
    const is = (v: number) => unsqueeze(eq(lab, v), 2); // [B, N', 1] of 0/1
    const padding = is(-1);
    let out = mul(pe, sub(1, padding)); // the padding point's PE is zeroed
    out = add(out, mul(padding, this.not_a_point_embed.weight));
    out = add(out, mul(is(0), this.point_embeddings.at(0).weight));
    return add(out, mul(is(1), this.point_embeddings.at(1).weight));
  }

  private embedBoxes(boxes: Tensor): Tensor {
    if (boxes.ndim !== 2 || boxes.shape[1] !== 4)
      throw new Error(`PromptEncoder: boxes ${fmt(boxes.shape)} must be [B, 4] (x0, y0, x1, y1)`);
    const corners = reshape(add(boxes, 0.5), [boxes.shape[0], 2, 2]); // [B, 4] -> [B, 2 corners, (x, y)]
    const pe = this.pe_layer.forwardWithCoords(corners, this.inputImageSize); // [B, 2, D]
    return add(pe, cat([this.point_embeddings.at(2).weight, this.point_embeddings.at(3).weight], 0)); // + [2, D]
  }

  /**
   * Sparse tokens [B, N, D] (points, then the box's two corners) and the dense embedding
   * [B, D, h, w] (the mask input encoded, or no_mask_embed broadcast). masks: [B, 1, 4h, 4w] logits.
   */
  forward(points: PointPrompts | null, boxes: Tensor | null, masks: Tensor | null): { sparse: Tensor; dense: Tensor } {
    const b = points?.coords.shape[0] ?? boxes?.shape[0] ?? masks?.shape[0] ?? 1;
    const parts: Tensor[] = [];
    if (points) parts.push(this.embedPoints(points, boxes === null));
    if (boxes) parts.push(this.embedBoxes(boxes));
    const sparse =
      parts.length === 0 ? tensor([], [b, 0, this.embedDim]) : parts.length === 1 ? parts[0] : cat(parts, 1);
    const [h, w] = this.imageEmbeddingSize;
    let dense: Tensor;
    if (masks) {
      const [mh, mw] = this.maskInputSize;
      if (masks.ndim !== 4 || masks.shape[1] !== 1 || masks.shape[2] !== mh || masks.shape[3] !== mw) {
        throw new Error(
          `PromptEncoder: mask input ${fmt(masks.shape)} must be [B, 1, ${mh}, ${mw}] (4x the embedding grid)`,
        );
      }
      dense = this.mask_downscaling.forward(masks); // [B, 1, 4h, 4w] -> [B, D, h, w]
    } else {
      dense = expand(reshape(this.no_mask_embed.weight, [1, this.embedDim, 1, 1]), [b, this.embedDim, h, w]);
    }
    return { sparse, dense };
  }
}

/**
 * SAM's image-encoder neck: Conv1x1 (no bias) -> LayerNorm2d -> Conv3x3 (no bias) -> LayerNorm2d; keys 0.weight, 1.*,
 * 2.weight, 3.*.
 */
export class SamNeck extends Sequential {
  constructor(
    readonly inChans: number,
    readonly outChans: number,
  ) {
    super(
      new Conv2d(inChans, outChans, 1, { bias: false }),
      new LayerNorm2d(outChans),
      new Conv2d(outChans, outChans, 3, { padding: 1, bias: false }),
      new LayerNorm2d(outChans),
    );
  }
}

/** Holds the neck under SAM's key prefix `image_encoder.neck.*` (the ViT itself is replaced by a cached backbone). */
export class ImageEncoderNeck extends Module {
  neck: SamNeck;
  constructor(inChans: number, outChans: number) {
    super();
    this.neck = new SamNeck(inChans, outChans);
  }

  /** Backbone features [B, Cin, h, w] -> image embedding [B, D, h, w]. */
  forward(x: Tensor): Tensor {
    return this.neck.forward(x);
  }
}
