// EVA-02: a plain ViT with 2-D RoPE, SwiGLU MLPs and q/v-only attention biases (the classifier
// and the trunk it shares with the MIM pre-training model in eva02-mim.ts).
// Paper: Fang et al., "EVA-02: A Visual Representation for Neon Genesis", arXiv 2303.11331.
// Reference implementation: timm `Eva` (huggingface/pytorch-image-models timm/models/eva.py,
// timm/layers/pos_embed_sincos.py `RotaryEmbeddingCat`, timm/layers/mlp.py `GluMlp`/`SwiGLU`);
// MIM model and loss: baaivision/EVA EVA-02/asuka modeling_pretrain.py, engine_for_pretraining.py.
//
// Layout (timm's, field paths = timm state_dict keys, so a timm checkpoint loads with
// `loadStateDict`; see `timmKeyMap` (eva02-mim.ts) for original EVA checkpoints and MIM -> fine-tune):
//   patch_embed.proj (Conv2d k = s = patch) -> [cls; patches] + pos_embed -> blocks -> norm
//   -> avg over patch tokens -> fc_norm -> head.
//   Block (pre-LN, no layer scale): x += attn(norm1(x)); x += mlp(norm2(x)); LayerNorm eps 1e-6.
//   Attention: Ti/S one fused `qkv` weight with `q_bias`, `v_bias` (k has none: a zero buffer);
//   B/L separate `q_proj`, `k_proj` (no bias), `v_proj`. RoPE on q and k of the patch tokens only.
//   MLP, hidden H = int(D * 8/3): Ti/S packed GluMlp (fc1: D -> 2H, silu(first half) * second
//   half, fc2); B/L sub-LN SwiGLU (fc1_g, fc1_x: D -> H, norm = LayerNorm(H), fc2).
//
// Deviations from timm: only EVA-02 layouts (SwiGLU + RoPE + class token + absolute pos embed);
// no attention dropout (attnDropRate must be 0), patch dropout, post-norm blocks, layer scale
// (init_values), inner attention norm (scale_attn_inner) or pos-embed resampling; the input size
// must equal imgSize.
import {
  Tensor,
  fmt,
  noGrad,
  add,
  mul,
  div,
  mean,
  matmul,
  reshape,
  transpose,
  expand,
  narrow,
  cat,
  swiglu,
  zeros,
  conv2d,
  packedSelfAttention,
  buildRope2d,
  dropPath,
  defaultGenerator,
  type Generator,
} from '../engine/index.ts';
import {
  Module,
  parameter,
  copy_,
  Linear,
  LayerNorm,
  Dropout,
  Identity,
  ModuleList,
  init,
  checkpoint,
} from '../engine/nn/index.ts';

// ---- config -------------------------------------------------------------------------------------

export interface Eva02Config {
  imgSize: number | readonly [number, number];
  patchSize: number;
  inChans: number;
  /** 0: no head (features only), as timm's `*.mim_in22k` checkpoints. */
  numClasses: number;
  /** 'avg': mean of patch tokens -> fc_norm (norm is Identity); 'token': norm -> cls token. */
  globalPool: 'avg' | 'token';
  embedDim: number;
  depth: number;
  numHeads: number;
  /** Hidden size H = floor(embedDim * mlpRatio); EVA-02 uses 4 * 2 / 3. */
  mlpRatio: number;
  /** true: one `qkv` weight + q_bias/v_bias (Ti/S); false: q_proj/k_proj/v_proj (B/L). */
  qkvFused: boolean;
  /** true: sub-LN SwiGLU (fc1_g, fc1_x, norm, fc2; B/L); false: packed GluMlp (fc1, fc2; Ti/S). */
  scaleMlp: boolean;
  /** RoPE reference grid (the pre-training grid); positions are rescaled to it. null: this grid. */
  refFeatShape: readonly [number, number] | null;
  normEps: number;
  dropRate: number;
  posDropRate: number;
  projDropRate: number;
  attnDropRate: number;
  /** Stochastic depth, linear from 0 to this over the blocks. */
  dropPathRate: number;
  /** The head's initial weights are scaled by this (timm: 0.001). */
  headInitScale: number;
  /** Recompute each block in the backward instead of storing its activations (training only). */
  checkpointBlocks?: boolean;
}

export type Eva02Preset = 'mu' | 'ti' | 's' | 'b' | 'l';

const COMMON: Omit<Eva02Config, 'embedDim' | 'depth' | 'numHeads' | 'qkvFused' | 'scaleMlp'> = {
  imgSize: 224,
  patchSize: 14,
  inChans: 3,
  numClasses: 1000,
  globalPool: 'avg',
  mlpRatio: (4 * 2) / 3,
  refFeatShape: [16, 16],
  normEps: 1e-6,
  dropRate: 0,
  posDropRate: 0,
  projDropRate: 0,
  attnDropRate: 0,
  dropPathRate: 0,
  headInitScale: 0.001,
};

/** timm's eva02_{tiny,small,base,large}_patch14_224, and the 64^2 µ model for CPU-emulated runs. */
export const EVA02_PRESETS: Record<Eva02Preset, Eva02Config> = {
  mu: {
    ...COMMON,
    imgSize: 64,
    patchSize: 8,
    refFeatShape: null,
    numClasses: 10,
    embedDim: 64,
    depth: 4,
    numHeads: 2,
    qkvFused: false,
    scaleMlp: true,
  },
  ti: { ...COMMON, embedDim: 192, depth: 12, numHeads: 3, qkvFused: true, scaleMlp: false },
  s: { ...COMMON, embedDim: 384, depth: 12, numHeads: 6, qkvFused: true, scaleMlp: false },
  b: { ...COMMON, embedDim: 768, depth: 12, numHeads: 12, qkvFused: false, scaleMlp: true },
  l: { ...COMMON, embedDim: 1024, depth: 24, numHeads: 16, qkvFused: false, scaleMlp: true },
};

export function eva02Config(preset: Eva02Preset, overrides: Partial<Eva02Config> = {}): Eva02Config {
  return { ...EVA02_PRESETS[preset], ...overrides };
}

function imgHW(cfg: Eva02Config): [number, number] {
  return typeof cfg.imgSize === 'number' ? [cfg.imgSize, cfg.imgSize] : [cfg.imgSize[0], cfg.imgSize[1]];
}

export function gridSize(cfg: Eva02Config): [number, number] {
  const [h, w] = imgHW(cfg);
  return [Math.floor(h / cfg.patchSize), Math.floor(w / cfg.patchSize)];
}

export function hiddenFeatures(cfg: Eva02Config): number {
  return Math.floor(cfg.embedDim * cfg.mlpRatio);
}

export function validate(cfg: Eva02Config): void {
  const [gh, gw] = gridSize(cfg);
  const hd = cfg.embedDim / cfg.numHeads;
  if (!Number.isInteger(hd) || hd % 4 !== 0)
    throw new Error(
      `Eva02: embedDim ${cfg.embedDim} / numHeads ${cfg.numHeads} must be an integer head dim ` +
        'divisible by 4 (2-D RoPE)',
    );
  if (gh < 1 || gw < 1)
    throw new Error(`Eva02: imgSize ${JSON.stringify(cfg.imgSize)} is smaller than patchSize ${cfg.patchSize}`);
  if (cfg.attnDropRate !== 0)
    throw new Error(
      `Eva02: attnDropRate ${cfg.attnDropRate} is not supported (the fused attention has no dropout); use 0`,
    );
}

// ---- layers -------------------------------------------------------------------------------------

/** Conv2d weights for the patch projection (PyTorch's default Conv2d init: U(+-1/sqrt(fan_in))); ToCo's too. */
export class PatchProj extends Module {
  weight: Tensor;
  bias: Tensor;
  constructor(
    inChans: number,
    dim: number,
    readonly patch: number,
    generator: Generator,
  ) {
    super();
    const bound = 1 / Math.sqrt(inChans * patch * patch);
    this.weight = parameter(init.uniform([dim, inChans, patch, patch], -bound, bound, { generator }));
    this.bias = parameter(init.uniform([dim], -bound, bound, { generator }));
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.patch });
  }
}

export class PatchEmbed extends Module {
  proj: PatchProj;
  constructor(
    readonly cfg: Eva02Config,
    generator: Generator,
  ) {
    super();
    this.proj = new PatchProj(cfg.inChans, cfg.embedDim, cfg.patchSize, generator);
  }

  forward(x: Tensor): Tensor {
    const [h, w] = imgHW(this.cfg);
    if (x.ndim !== 4 || x.shape[1] !== this.cfg.inChans || x.shape[2] !== h || x.shape[3] !== w) {
      throw new Error(`Eva02: input ${fmt(x.shape)} must be [B, ${this.cfg.inChans}, ${h}, ${w}] (imgSize)`);
    }
    const y = this.proj.forward(x); // [B, C, H, W] -> [B, D, gh, gw]
    const [b, d, gh, gw] = y.shape;
    return transpose(reshape(y, [b, d, gh * gw]), 1, 2); // -> [B, N, D]
  }
}

/** timm RotaryEmbeddingCat(in_pixels=False): fixed sin/cos tables [gh * gw, headDim], not state. */
export class RotaryEmbedding extends Module {
  declare sin: Tensor;
  declare cos: Tensor;
  constructor(cfg: Eva02Config) {
    super();
    const [gh, gw] = gridSize(cfg);
    const r = buildRope2d(cfg.embedDim / cfg.numHeads, gh, gw, { refFeatShape: cfg.refFeatShape ?? undefined });
    this.registerBuffer('sin', r.sin, false);
    this.registerBuffer('cos', r.cos, false);
  }
}

export class EvaAttention extends Module {
  declare q_bias: Tensor | null;
  declare v_bias: Tensor | null;
  declare k_bias: Tensor | null;
  declare qkv: Linear | null;
  declare q_proj: Linear | null;
  declare k_proj: Linear | null;
  declare v_proj: Linear | null;
  declare proj: Linear;
  declare proj_drop: Dropout;
  readonly numHeads: number;
  constructor(cfg: Eva02Config, generator: Generator) {
    super();
    const d = cfg.embedDim;
    this.numHeads = cfg.numHeads;
    if (cfg.qkvFused) {
      this.qkv = new Linear(d, 3 * d, { bias: false, generator });
      this.q_bias = parameter(zeros([d]));
      this.registerBuffer('k_bias', zeros([d]), false);
      this.v_bias = parameter(zeros([d]));
    } else {
      this.q_proj = new Linear(d, d, { generator });
      this.k_proj = new Linear(d, d, { bias: false, generator });
      this.v_proj = new Linear(d, d, { generator });
    }
    this.proj = new Linear(d, d, { generator });
    this.proj_drop = new Dropout(cfg.projDropRate, generator);
  }

  /** x [B, N, D] (token 0 is cls), rope tables for the N - 1 patch tokens -> [B, N, D]. */
  forward(x: Tensor, rope: RotaryEmbedding): Tensor {
    let qkv: Tensor; // [B, N, 3D] = [B, N, 3, H, hd]
    if (this.qkv) {
      const bias = cat([this.q_bias!, this.k_bias!, this.v_bias!], 0); // -> [3D]
      qkv = add(matmul(x, this.qkv.weight, { transB: true }), bias); // [B, N, D] -> [B, N, 3D]
    } else {
      qkv = cat([this.q_proj!.forward(x), this.k_proj!.forward(x), this.v_proj!.forward(x)], 2); // -> [B, N, 3D]
    }
    // Heads split, rope on q and k (tokens 1..), attention scale hd^-0.5, heads merged: -> [B, N, D]
    const y = packedSelfAttention(qkv, { heads: this.numHeads, rope: { sin: rope.sin, cos: rope.cos, startToken: 1 } });
    return this.proj_drop.forward(this.proj.forward(y));
  }
}

/** Packed SwiGLU (timm GluMlp, act SiLU, gate_last=False): fc2(silu(a) * g), [a, g] = fc1(x). */
export class GluMlp extends Module {
  declare fc1: Linear;
  declare drop1: Dropout;
  declare fc2: Linear;
  declare drop2: Dropout;
  constructor(dim: number, hidden: number, drop: number, generator: Generator) {
    super();
    this.fc1 = new Linear(dim, 2 * hidden, { generator });
    this.drop1 = new Dropout(drop, generator);
    this.fc2 = new Linear(hidden, dim, { generator });
    this.drop2 = new Dropout(drop, generator);
  }

  forward(x: Tensor): Tensor {
    // One fused kernel reads both halves of fc1's [..., 2H] output in place (no chunk copies).
    const h = swiglu(this.fc1.forward(x)); // [..., D] -> [..., 2H] -> [..., H]
    return this.drop2.forward(this.fc2.forward(this.drop1.forward(h)));
  }
}

/** Sub-LN SwiGLU (timm SwiGLU with norm_layer): fc2(norm(silu(fc1_g x) * fc1_x x)). */
export class SwiGLU extends Module {
  declare fc1_g: Linear;
  declare fc1_x: Linear;
  declare drop1: Dropout;
  declare norm: LayerNorm;
  declare fc2: Linear;
  declare drop2: Dropout;
  constructor(dim: number, hidden: number, drop: number, eps: number, generator: Generator) {
    super();
    this.fc1_g = new Linear(dim, hidden, { generator });
    this.fc1_x = new Linear(dim, hidden, { generator });
    this.drop1 = new Dropout(drop, generator);
    this.norm = new LayerNorm(hidden, { eps });
    this.fc2 = new Linear(hidden, dim, { generator });
    this.drop2 = new Dropout(drop, generator);
  }

  forward(x: Tensor): Tensor {
    const hgated = swiglu(this.fc1_g.forward(x), this.fc1_x.forward(x)); // [..., D] -> [..., H]
    return this.drop2.forward(this.fc2.forward(this.norm.forward(this.drop1.forward(hgated))));
  }
}

export class EvaBlock extends Module {
  declare norm1: LayerNorm;
  declare attn: EvaAttention;
  declare norm2: LayerNorm;
  declare mlp: GluMlp | SwiGLU;
  constructor(
    cfg: Eva02Config,
    readonly dropPathRate: number,
    readonly generator: Generator,
  ) {
    super();
    const h = hiddenFeatures(cfg);
    this.norm1 = new LayerNorm(cfg.embedDim, { eps: cfg.normEps });
    this.attn = new EvaAttention(cfg, generator);
    this.norm2 = new LayerNorm(cfg.embedDim, { eps: cfg.normEps });
    this.mlp = cfg.scaleMlp
      ? new SwiGLU(cfg.embedDim, h, cfg.projDropRate, cfg.normEps, generator)
      : new GluMlp(cfg.embedDim, h, cfg.projDropRate, generator);
  }

  forward(x: Tensor, rope: RotaryEmbedding): Tensor {
    const drop = (t: Tensor) =>
      this.dropPathRate > 0 ? dropPath(t, this.dropPathRate, this.training, this.generator) : t;
    const y = add(x, drop(this.attn.forward(this.norm1.forward(x), rope)));
    return add(y, drop(this.mlp.forward(this.norm2.forward(y))));
  }
}

// ---- shared trunk ---------------------------------------------------------------------------------

export interface Trunk extends Module {
  cls_token: Tensor;
  pos_embed: Tensor;
  pos_drop: Dropout;
  rope: RotaryEmbedding;
  blocks: ModuleList<EvaBlock>;
  readonly cfg: Eva02Config;
}

export function makeBlocks(cfg: Eva02Config, generator: Generator): ModuleList<EvaBlock> {
  // torch.linspace(0, rate, depth)
  const rate = (i: number) => (cfg.depth > 1 ? (cfg.dropPathRate * i) / (cfg.depth - 1) : 0);
  return new ModuleList(Array.from({ length: cfg.depth }, (_, i) => new EvaBlock(cfg, rate(i), generator)));
}

/** Patch tokens [B, L, D] -> [cls; tokens] + pos_embed -> blocks -> [B, 1 + L, D]. */
export function runTrunk(m: Trunk, x: Tensor): Tensor {
  const [b, , d] = x.shape;
  let t = add(cat([expand(m.cls_token, [b, 1, d]), x], 1), m.pos_embed); // -> [B, 1 + L, D]
  t = m.pos_drop.forward(t);
  for (const blk of m.blocks) {
    const run = (z: Tensor) => blk.forward(z, m.rope);
    t = m.cfg.checkpointBlocks && m.training ? checkpoint(run, [t], { generators: [blk.generator] }) : run(t);
  }
  return t;
}

/** timm's init: trunc_normal(.02) Linear weights, zero biases, then fix_init_weight. */
export function initTrunk(m: Trunk, generator: Generator): void {
  noGrad(() => {
    for (const [, mod] of m.namedModules()) {
      if (!(mod instanceof Linear)) continue;
      init.truncNormal_(mod.weight, { std: 0.02, generator });
      if (mod.bias) init.zeros_(mod.bias);
    }
    init.truncNormal_(m.pos_embed, { std: 0.02, generator });
    init.truncNormal_(m.cls_token, { std: 0.02, generator });
    // Residual branch outputs of block l (1-based) are divided by sqrt(2 l).
    let layer = 1;
    for (const blk of m.blocks) {
      for (const w of [blk.attn.proj.weight, blk.mlp.fc2.weight]) {
        const s = div(w, Math.sqrt(2 * layer));
        copy_(w, s, 'fix_init_weight');
        s.dispose();
      }
      layer++;
    }
  });
}

// ---- the classifier -------------------------------------------------------------------------------

export class Eva02 extends Module {
  declare cls_token: Tensor;
  declare pos_embed: Tensor;
  declare patch_embed: PatchEmbed;
  declare pos_drop: Dropout;
  declare rope: RotaryEmbedding;
  declare blocks: ModuleList<EvaBlock>;
  declare norm: LayerNorm | Identity;
  declare fc_norm: LayerNorm | Identity;
  declare head_drop: Dropout;
  declare head: Linear | Identity;
  readonly cfg: Eva02Config;

  constructor(config: Eva02Config, opts: { generator?: Generator } = {}) {
    super();
    const cfg = (this.cfg = { ...config });
    validate(cfg);
    const generator = opts.generator ?? defaultGenerator;
    const [gh, gw] = gridSize(cfg);
    const d = cfg.embedDim;
    this.cls_token = parameter(zeros([1, 1, d]));
    this.pos_embed = parameter(zeros([1, gh * gw + 1, d]));
    this.patch_embed = new PatchEmbed(cfg, generator);
    this.pos_drop = new Dropout(cfg.posDropRate, generator);
    this.rope = new RotaryEmbedding(cfg);
    this.blocks = makeBlocks(cfg, generator);
    const avg = cfg.globalPool === 'avg';
    this.norm = avg ? new Identity() : new LayerNorm(d, { eps: cfg.normEps });
    this.fc_norm = avg ? new LayerNorm(d, { eps: cfg.normEps }) : new Identity();
    this.head_drop = new Dropout(cfg.dropRate, generator);
    this.head = cfg.numClasses > 0 ? new Linear(d, cfg.numClasses, { generator }) : new Identity();
    initTrunk(this, generator);
    if (this.head instanceof Linear) {
      const head = this.head;
      noGrad(() => {
        const w = init.truncNormal([cfg.numClasses, d], { std: 0.02, generator });
        const scaled = mul(w, cfg.headInitScale);
        copy_(head.weight, scaled, 'head init');
        w.dispose();
        scaled.dispose();
        init.zeros_(head.bias!);
      });
    }
  }

  /** Images [B, C, H, W] -> tokens [B, 1 + N, D] (cls first). */
  forwardFeatures(x: Tensor): Tensor {
    return this.norm.forward(runTrunk(this, this.patch_embed.forward(x)));
  }

  /** Tokens [B, 1 + N, D] -> logits [B, numClasses] (or pooled features [B, D] with preLogits). */
  forwardHead(x: Tensor, preLogits = false): Tensor {
    const [b, n, d] = x.shape;
    const pooled =
      this.cfg.globalPool === 'avg'
        ? mean(narrow(x, 1, 1, n - 1), 1) // [B, 1 + N, D] -> [B, D]
        : reshape(narrow(x, 1, 0, 1), [b, d]);
    const y = this.head_drop.forward(this.fc_norm.forward(pooled));
    return preLogits ? y : this.head.forward(y);
  }

  forward(x: Tensor): Tensor {
    return this.forwardHead(this.forwardFeatures(x));
  }
}
