// PVTv2: Pyramid Vision Transformer v2 (Wang et al., "PVT v2: Improved Baselines with Pyramid
// Vision Transformer", arXiv 2106.13797), the backbone of Polyp-PVT. A four-stage pyramid: each
// stage is an overlapping patch embedding (strided conv + LN), blocks x += SRA(LN x);
// x += FFN(LN x), and a final LN; the forward returns the four maps [B, C_i, H/2^(i+1), W/2^(i+1)].
// SRA (spatial-reduction attention): q on all tokens, k and v on tokens reduced by a k = s = sr
// conv + LN. FFN: fc1 -> depthwise 3x3 conv on the token grid -> GELU -> fc2.
// Reference implementation: DengPingFan/Polyp-PVT `lib/pvtv2.py` (EndoKED-SEG uses the same
// model, zwyang6/ENDOKED `EndoKED_SEG/lib/pvtv2.py`), `PyramidVisionTransformerImpr` and
// `pvt_v2_b0/b1/b2`: field names below are its state_dict keys (patch_embed1..4, block1..4,
// norm1..4; Attention q, kv, proj, sr, norm; Mlp fc1, dwconv.dwconv, fc2), in its order.
// Facts that are easy to get wrong (all from the reference): block and stage norms use LN eps
// 1e-6, but the patch-embedding norm and the SRA norm are plain nn.LayerNorm (eps 1e-5);
// qkv_bias is True; drop path rises linearly from 0 to 0.1 over all blocks; no classification
// head is built (Polyp-PVT never uses it), so parameter counts exclude it.
// Deviations: none in the computation. Dropout/attention dropout (0 in every preset) are not
// built. `mu` is the tiny configuration of this project (spec §4), not a published variant.
import {
  Tensor,
  gelu,
  add,
  reshape,
  permute,
  transpose,
  linear,
  dropPath,
  kvAttention,
  depthwiseConvTokens,
} from '../engine/index.ts';
import { Module, Linear, LayerNorm, ModuleList, init, Conv2d, checkpoint } from '../engine/nn/index.ts';

export interface PvtV2Config {
  inChans: number;
  embedDims: [number, number, number, number];
  numHeads: [number, number, number, number];
  mlpRatios: [number, number, number, number];
  depths: [number, number, number, number];
  srRatios: [number, number, number, number];
  qkvBias: boolean;
  /** Stochastic depth: the rate rises linearly from 0 (first block) to this (last block). */
  dropPathRate: number;
  /** eps of the block and stage LayerNorms (the reference's norm_layer). */
  normEps: number;
  /** Recompute each block in the backward instead of storing its activations (training only). */
  checkpointBlocks?: boolean;
}

type Shared = Omit<PvtV2Config, 'embedDims' | 'depths' | 'numHeads' | 'mlpRatios'>;
const COMMON: Shared = { inChans: 3, srRatios: [8, 4, 2, 1], qkvBias: true, dropPathRate: 0.1, normEps: 1e-6 };

/** Size presets (reference pvt_v2_b0/b1/b2) and the project's tiny `mu` (spec §4, Polyp-PVT-µ). */
export const PVT_V2: Record<'b0' | 'b1' | 'b2' | 'mu', PvtV2Config> = {
  b0: {
    ...COMMON,
    embedDims: [32, 64, 160, 256],
    depths: [2, 2, 2, 2],
    numHeads: [1, 2, 5, 8],
    mlpRatios: [8, 8, 4, 4],
  },
  b1: {
    ...COMMON,
    embedDims: [64, 128, 320, 512],
    depths: [2, 2, 2, 2],
    numHeads: [1, 2, 5, 8],
    mlpRatios: [8, 8, 4, 4],
  },
  b2: {
    ...COMMON,
    embedDims: [64, 128, 320, 512],
    depths: [3, 4, 6, 3],
    numHeads: [1, 2, 5, 8],
    mlpRatios: [8, 8, 4, 4],
  },
  mu: {
    ...COMMON,
    embedDims: [16, 32, 64, 128],
    depths: [1, 1, 1, 1],
    numHeads: [1, 1, 2, 4],
    mlpRatios: [4, 4, 4, 4],
  },
};

/** Parameter count from the config's shapes alone (no head), e.g. to size b2 without building it. */
export function pvtV2NumParameters(c: PvtV2Config): number {
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const C = c.embedDims[i],
      cin = i === 0 ? c.inChans : c.embedDims[i - 1],
      k = i === 0 ? 7 : 3;
    const hidden = Math.floor(C * c.mlpRatios[i]),
      sr = c.srRatios[i],
      b = c.qkvBias ? 1 : 0;
    const attn = C * C + b * C + (2 * C * C + b * 2 * C) + (C * C + C) + (sr > 1 ? C * C * sr * sr + C + 2 * C : 0);
    const mlp = C * hidden + hidden + (9 * hidden + hidden) + (hidden * C + C);
    n += cin * C * k * k + C + 2 * C; // patch_embed: proj, norm
    n += c.depths[i] * (2 * C + attn + 2 * C + mlp) + 2 * C; // blocks (norm1, attn, norm2, mlp), stage norm
  }
  return n;
}

/** [B, N, C] tokens on an H x W grid -> [B, C, H, W]. */
function tokensToMap(x: Tensor, h: number, w: number): Tensor {
  return reshape(transpose(x, 1, 2), [x.shape[0], x.shape[2], h, w]); // [B, N, C] -> [B, C, H, W]
}

/** [B, C, H, W] -> [B, H*W, C]. */
function mapToTokens(x: Tensor): Tensor {
  return transpose(reshape(x, [x.shape[0], x.shape[1], x.shape[2] * x.shape[3]]), 1, 2); // [B, C, H, W] -> [B, N, C]
}

export class OverlapPatchEmbed extends Module {
  proj: Conv2d;
  norm: LayerNorm;
  constructor(patchSize: number, stride: number, inChans: number, embedDim: number) {
    super();
    this.proj = new Conv2d(inChans, embedDim, patchSize, { stride, padding: Math.floor(patchSize / 2) });
    this.norm = new LayerNorm(embedDim); // plain nn.LayerNorm in the reference: eps 1e-5
  }

  /** [B, Cin, H, W] -> tokens [B, H'*W', C] and the grid H', W'. */
  forward(x: Tensor): { x: Tensor; h: number; w: number } {
    const y = this.proj.forward(x);
    return { x: this.norm.forward(mapToTokens(y)), h: y.shape[2], w: y.shape[3] };
  }
}

/**
 * The spatial reduction: the reference's sr Conv2d (kernel = stride = r) on the token map, as one
 * linear layer on r x r patches where the grid divides by r. The patch copy and a Linear read
 * tokens channels-last, so no transposes are needed around the conv, and the product runs on the
 * matmul kernels (on lavapipe 1.7-2x the conv path forward + backward at Polyp-PVT-b2's sizes).
 * Weight [C, C, r, r] is read as [C, r * r * C] in (ky, kx, c) order, the patches' order.
 */
function reduceTokens(x: Tensor, h: number, w: number, sr: Conv2d, r: number): Tensor {
  if (h % r !== 0 || w % r !== 0) return mapToTokens(sr.forward(tokensToMap(x, h, w)));
  const [b, , c] = x.shape;
  const patches = reshape(permute(reshape(x, [b, h / r, r, w / r, r, c]), [0, 1, 3, 2, 4, 5]), [
    b,
    (h / r) * (w / r),
    r * r * c,
  ]);
  const weight = reshape(permute(sr.weight, [0, 2, 3, 1]), [sr.weight.shape[0], r * r * c]);
  return linear(patches, weight, sr.bias);
}

/** Spatial-reduction attention. */
export class Attention extends Module {
  q: Linear;
  kv: Linear;
  proj: Linear;
  sr: Conv2d | null = null;
  norm: LayerNorm | null = null;
  constructor(
    readonly dim: number,
    readonly numHeads: number,
    qkvBias: boolean,
    readonly srRatio: number,
  ) {
    super();
    if (dim % numHeads !== 0) throw new Error(`Attention: dim ${dim} should be divided by num_heads ${numHeads}`);
    this.q = new Linear(dim, dim, { bias: qkvBias });
    this.kv = new Linear(dim, 2 * dim, { bias: qkvBias });
    this.proj = new Linear(dim, dim);
    if (srRatio > 1) {
      this.sr = new Conv2d(dim, dim, srRatio, { stride: srRatio });
      this.norm = new LayerNorm(dim); // eps 1e-5, as the reference
    }
  }

  forward(x: Tensor, h: number, w: number): Tensor {
    let src = x;
    // [B, N, C] -> [B, N/sr², C]
    if (this.sr && this.norm) src = this.norm.forward(reduceTokens(x, h, w, this.sr, this.srRatio));
    // The reference splits kv [B, L, 2C] into k and v and both (and q) into heads [B, h, L, hd];
    // kvAttention reads the heads in place and writes [B, N, C] (scale hd^-1/2).
    return this.proj.forward(kvAttention(this.q.forward(x), this.kv.forward(src), { heads: this.numHeads }));
  }
}

export class DWConv extends Module {
  dwconv: Conv2d;
  constructor(dim: number) {
    super();
    this.dwconv = new Conv2d(dim, dim, 3, { padding: 1, groups: dim });
  }

  /** The reference's transpose -> dwconv -> transpose, as one channels-last op (no copies). */
  forward(x: Tensor, h: number, w: number): Tensor {
    return depthwiseConvTokens(x, this.dwconv.weight, this.dwconv.bias, h, w, 1);
  }
}

export class Mlp extends Module {
  fc1: Linear;
  dwconv: DWConv;
  fc2: Linear;
  constructor(dim: number, hidden: number) {
    super();
    this.fc1 = new Linear(dim, hidden);
    this.dwconv = new DWConv(hidden);
    this.fc2 = new Linear(hidden, dim);
  }

  forward(x: Tensor, h: number, w: number): Tensor {
    return this.fc2.forward(gelu(this.dwconv.forward(this.fc1.forward(x), h, w)));
  }
}

export class Block extends Module {
  norm1: LayerNorm;
  attn: Attention;
  norm2: LayerNorm;
  mlp: Mlp;
  constructor(
    dim: number,
    numHeads: number,
    mlpRatio: number,
    qkvBias: boolean,
    srRatio: number,
    eps: number,
    readonly dropPathRate: number,
  ) {
    super();
    this.norm1 = new LayerNorm(dim, { eps });
    this.attn = new Attention(dim, numHeads, qkvBias, srRatio);
    this.norm2 = new LayerNorm(dim, { eps });
    this.mlp = new Mlp(dim, Math.floor(dim * mlpRatio));
  }

  forward(x: Tensor, h: number, w: number): Tensor {
    const y = add(x, dropPath(this.attn.forward(this.norm1.forward(x), h, w), this.dropPathRate, this.training));
    return add(y, dropPath(this.mlp.forward(this.norm2.forward(y), h, w), this.dropPathRate, this.training));
  }
}

/** The reference's PyramidVisionTransformerImpr without its (unused) classification head. */
export class PyramidVisionTransformerV2 extends Module {
  patch_embed1: OverlapPatchEmbed;
  patch_embed2: OverlapPatchEmbed;
  patch_embed3: OverlapPatchEmbed;
  patch_embed4: OverlapPatchEmbed;
  block1: ModuleList<Block>;
  norm1: LayerNorm;
  block2: ModuleList<Block>;
  norm2: LayerNorm;
  block3: ModuleList<Block>;
  norm3: LayerNorm;
  block4: ModuleList<Block>;
  norm4: LayerNorm;
  constructor(readonly config: PvtV2Config) {
    super();
    const c = config,
      d = c.embedDims;
    const total = c.depths.reduce((a, b) => a + b, 0);
    const dpr = Array.from({ length: total }, (_, i) => (total > 1 ? (c.dropPathRate * i) / (total - 1) : 0));
    const embeds = d.map((dim, i) =>
      i === 0 ? new OverlapPatchEmbed(7, 4, c.inChans, dim) : new OverlapPatchEmbed(3, 2, d[i - 1], dim),
    );
    let cur = 0;
    const stage = (i: number) => {
      const blocks = Array.from(
        { length: c.depths[i] },
        (_, j) => new Block(d[i], c.numHeads[i], c.mlpRatios[i], c.qkvBias, c.srRatios[i], c.normEps, dpr[cur + j]),
      );
      cur += c.depths[i];
      return new ModuleList(blocks);
    };
    const ln = (i: number) => new LayerNorm(d[i], { eps: c.normEps });
    [this.patch_embed1, this.patch_embed2, this.patch_embed3, this.patch_embed4] = embeds;
    this.block1 = stage(0);
    this.norm1 = ln(0);
    this.block2 = stage(1);
    this.norm2 = ln(1);
    this.block3 = stage(2);
    this.norm3 = ln(2);
    this.block4 = stage(3);
    this.norm4 = ln(3);
    this.initWeights();
  }

  /** The reference's _init_weights: Linear trunc_normal(.02) and zero bias; conv N(0, sqrt(2/fan_out)); LN 1/0. */
  initWeights(): void {
    for (const [, m] of this.namedModules()) {
      if (m instanceof Linear) {
        init.truncNormal_(m.weight, { std: 0.02 });
        if (m.bias) init.zeros_(m.bias);
      } else if (m instanceof Conv2d) {
        const fanOut = (m.kernelSize[0] * m.kernelSize[1] * m.outChannels) / m.groups;
        init.normal_(m.weight, 0, Math.sqrt(2 / fanOut));
        if (m.bias) init.zeros_(m.bias);
      }
    }
  }

  /** [B, 3, H, W] -> four maps [B, C_i, H_i, W_i] at strides 4, 8, 16, 32. */
  forwardFeatures(x: Tensor): Tensor[] {
    const stages: [OverlapPatchEmbed, ModuleList<Block>, LayerNorm][] = [
      [this.patch_embed1, this.block1, this.norm1],
      [this.patch_embed2, this.block2, this.norm2],
      [this.patch_embed3, this.block3, this.norm3],
      [this.patch_embed4, this.block4, this.norm4],
    ];
    const outs: Tensor[] = [];
    let y = x;
    for (const [embed, blocks, norm] of stages) {
      const e = embed.forward(y);
      let t = e.x;
      for (const blk of blocks) {
        const run = (z: Tensor) => blk.forward(z, e.h, e.w);
        t = this.config.checkpointBlocks && this.training ? checkpoint(run, [t]) : run(t);
      }
      y = tokensToMap(norm.forward(t), e.h, e.w); // [B, N, C] -> [B, C, H, W]
      outs.push(y);
    }
    return outs;
  }

  forward(x: Tensor): Tensor[] {
    return this.forwardFeatures(x);
  }
}

/**
 * The reference's state_dict key for a checkpoint key: the official PVTv2 checkpoints
 * (whai362/PVT pvt_v2_b*.pth, which Polyp-PVT loads) already use these names; timm's pvt_v2
 * renames them (patch_embed, stages.i.downsample / blocks / norm, mlp.dwconv), which this undoes
 * (the inverse of timm's _checkpoint_filter_fn). The classification head has no place here: null.
 */
export function pvtV2KeyFromCheckpoint(key: string): string | null {
  if (key.startsWith('head.')) return null;
  return key
    .replace(/^patch_embed\./, 'patch_embed1.')
    .replace(/^stages\.(\d+)\.downsample\./, (_, i) => `patch_embed${Number(i) + 1}.`)
    .replace(/^stages\.(\d+)\.blocks\.(\d+)\./, (_, i, j) => `block${Number(i) + 1}.${j}.`)
    .replace(/^stages\.(\d+)\.norm\./, (_, i) => `norm${Number(i) + 1}.`)
    .replace(/\.mlp\.dwconv\.(weight|bias)$/, '.mlp.dwconv.dwconv.$1');
}

export function pvtV2(
  variant: keyof typeof PVT_V2 | PvtV2Config,
  overrides: Partial<PvtV2Config> = {},
): PyramidVisionTransformerV2 {
  const base = typeof variant === 'string' ? PVT_V2[variant] : variant;
  return new PyramidVisionTransformerV2({ ...base, ...overrides });
}
