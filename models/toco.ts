// ToCo-style CAM classifier (EndoKED-WSSS's image-level branch): a ViT backbone, GMP, and two
// bias-free 1x1-conv classifiers, one on the final-LN patch tokens and one (aux) on the patch
// tokens of an earlier block; their class activation maps; the patch-token contrast (PTC) loss;
// multi-scale + flip CAM inference with ToCo's normalisation; Grad-CAM.
// Paper: Ru et al., "Token Contrast for Weakly-Supervised Semantic Segmentation", CVPR 2023
// (arXiv 2303.01267); CAM: Zhou et al. arXiv 1512.04150; Grad-CAM: Selvaraju et al. arXiv 1610.02391.
// Reference: rulixiang/ToCo model/model_seg_neg.py (`network.forward`), model/losses.py
// (`get_masked_ptc_loss`), utils/camutils.py (`multi_scale_cam2`, `label_to_aff_mask`); EndoKED's
// copy at zwyang6/ENDOKED EndoKED_WSSS/. Spec: recipes/SPEC.md §2.3, §2.8, §4 (ToCo-µ).
//
// Layout: `encoder` = this repo's EVA-02 trunk (models/eva02.ts blocks: RoPE, SwiGLU) under the
// same keys as Eva02Mim (cls_token, pos_embed, patch_embed.proj, blocks.i, norm), so MIM weights
// load into `encoder.*`; `classifier.weight` and `aux_classifier.weight` [numClasses, D, 1, 1] as
// ToCo's nn.Conv2d(D, num_classes - 1, 1, bias=False) (the background class is not a channel).
//   tokens -> blocks -> final norm -> x4 [B, N, D] ; block `auxLayer` output (no norm) -> aux
//   logits = classifier(GMP(x4)), aux logits = aux_classifier(GMP(aux)); CAM = classifier(x4).
//
// Deviations: the backbone is EVA-02 (ToCo: DeiT/ViT-B/16 with ImageNet weights); other input
// sizes (multi-scale CAM) resample pos_embed bilinearly (DINO's interpolate_pos_encoding is
// bicubic) and compute RoPE on the new grid with the training grid as reference (timm's dynamic
// size rule); no ASPP segmentation decoder, PAR refinement or CTC projection heads (CTC has weight
// 0 in EndoKED; the decoder branch is not used to make boxes).
import {
  Tensor,
  noGrad,
  fmt,
  requiresGrad,
  detach,
  backward,
  add,
  mul,
  div,
  sub,
  abs,
  sum,
  max,
  min,
  matmul,
  reshape,
  transpose,
  narrow,
  cat,
  expand,
  relu,
  flip,
  clamp,
  sqrt,
  maximum,
  interpolate,
  tensor,
  zeros,
  conv2d,
  buildRope2d,
  defaultGenerator,
  type Generator,
} from '../engine/index.ts';
import { Module, parameter, LayerNorm, ModuleList, init, copy_ } from '../engine/nn/index.ts';
import { EvaBlock, PatchProj, eva02Config, gridSize, type Eva02Config } from './eva02.ts';

// ---- config -------------------------------------------------------------------------------------

export interface TocoConfig {
  /** The ViT backbone (imgSize = the training size; numClasses is ignored). */
  backbone: Eva02Config;
  /** Foreground classes (ToCo num_classes - 1): 1 for polyp. */
  numClasses: number;
  /** Which block's output feeds the aux classifier, Python-style index (EndoKED/spec: -2). */
  auxLayer: number;
}

export type TocoPreset = 'mu' | 'b';

export const TOCO_PRESETS: Record<TocoPreset, TocoConfig> = {
  // Spec §4 ToCo-µ: D 64, depth 4, patch 8 on 64^2 (8 x 8 tokens), aux layer -2.
  mu: { backbone: eva02Config('mu', { numClasses: 0 }), numClasses: 1, auxLayer: -2 },
  // The paper's size on EVA-02-B/14 at 448^2 (32 x 32 tokens; ToCo: ViT-B/16 at 448^2).
  b: { backbone: eva02Config('b', { numClasses: 0, imgSize: 448 }), numClasses: 1, auxLayer: -2 },
};

export function tocoConfig(
  preset: TocoPreset,
  backbone: Partial<Eva02Config> = {},
  rest: Partial<Omit<TocoConfig, 'backbone'>> = {},
): TocoConfig {
  const p = TOCO_PRESETS[preset];
  return { ...p, ...rest, backbone: { ...p.backbone, ...backbone } };
}

// ---- backbone -------------------------------------------------------------------------------------

class PatchEmbed extends Module {
  proj: PatchProj;
  constructor(cfg: Eva02Config, generator: Generator) {
    super();
    this.proj = new PatchProj(cfg.inChans, cfg.embedDim, cfg.patchSize, generator);
  }
}

/** RoPE tables for one grid (the shape EvaBlock reads). */
class Rope extends Module {
  constructor(
    readonly sin: Tensor,
    readonly cos: Tensor,
  ) {
    super();
  }
}

/** Tokens of one forward pass: final-LN patch tokens, the aux block's patch tokens, the grid. */
export interface TocoFeatures {
  x4: Tensor;
  aux: Tensor;
  grid: [number, number];
}

/** EVA-02 trunk that returns the final-LN and the aux block's patch tokens, at any input size. */
export class TocoEncoder extends Module {
  declare cls_token: Tensor;
  declare pos_embed: Tensor;
  declare patch_embed: PatchEmbed;
  declare blocks: ModuleList<EvaBlock>;
  declare norm: LayerNorm;
  private readonly ropes = new Map<string, Rope>();

  constructor(
    readonly cfg: Eva02Config,
    generator: Generator,
  ) {
    super();
    const [gh, gw] = gridSize(cfg);
    const d = cfg.embedDim;
    this.cls_token = parameter(zeros([1, 1, d]));
    this.pos_embed = parameter(zeros([1, gh * gw + 1, d]));
    this.patch_embed = new PatchEmbed(cfg, generator);
    const rate = (i: number) => (cfg.depth > 1 ? (cfg.dropPathRate * i) / (cfg.depth - 1) : 0);
    this.blocks = new ModuleList(Array.from({ length: cfg.depth }, (_, i) => new EvaBlock(cfg, rate(i), generator)));
    this.norm = new LayerNorm(d, { eps: cfg.normEps });
    // timm's EVA init (models/eva02.ts initTrunk): trunc_normal(.02) Linear weights, zero biases,
    // block l's residual output projections divided by sqrt(2 l).
    noGrad(() => {
      init.truncNormal_(this.pos_embed, { std: 0.02, generator });
      init.truncNormal_(this.cls_token, { std: 0.02, generator });
      let layer = 1;
      for (const blk of this.blocks) {
        for (const [name, p] of blk.namedParameters()) {
          if (name.includes('norm')) continue;
          if (p.ndim === 2) init.truncNormal_(p, { std: 0.02, generator });
          else init.zeros_(p);
        }
        for (const w of [blk.attn.proj.weight, blk.mlp.fc2.weight]) {
          const s = div(w, Math.sqrt(2 * layer));
          copy_(w, s, 'fix_init_weight');
          s.dispose();
        }
        layer++;
      }
    });
  }

  private rope(gh: number, gw: number): Rope {
    const key = `${gh}x${gw}`;
    let r = this.ropes.get(key);
    if (!r) {
      const ref = this.cfg.refFeatShape ?? gridSize(this.cfg);
      const t = buildRope2d(this.cfg.embedDim / this.cfg.numHeads, gh, gw, { refFeatShape: ref });
      r = new Rope(t.sin.keep(), t.cos.keep());
      this.ropes.set(key, r);
    }
    return r;
  }

  /** Frees the cached RoPE tables (TocoCam.dispose calls it). */
  disposeRopes(): void {
    for (const r of this.ropes.values()) {
      r.sin.dispose();
      r.cos.dispose();
    }
    this.ropes.clear();
  }

  /** pos_embed [1, 1 + N0, D] for a gh x gw grid (bilinear resampling of the patch part when it differs). */
  private posEmbed(gh: number, gw: number): Tensor {
    const [h0, w0] = gridSize(this.cfg);
    if (gh === h0 && gw === w0) return this.pos_embed;
    const d = this.cfg.embedDim;
    const patch = reshape(transpose(narrow(this.pos_embed, 1, 1, h0 * w0), 1, 2), [1, d, h0, w0]); // -> [1, D, h0, w0]
    const resized = interpolate(patch, { size: [gh, gw], mode: 'bilinear', alignCorners: false }); // -> [1, D, gh, gw]
    return cat([narrow(this.pos_embed, 1, 0, 1), transpose(reshape(resized, [1, d, gh * gw]), 1, 2)], 1);
  }

  /** Images [B, C, H, W] (any H, W >= patch) -> tokens [B, 1 + N, D] before block `from`, the grid. */
  embed(x: Tensor): { t: Tensor; grid: [number, number] } {
    if (x.ndim !== 4 || x.shape[1] !== this.cfg.inChans)
      throw new Error(`TocoEncoder: input ${fmt(x.shape)} must be [B, ${this.cfg.inChans}, H, W]`);
    const p = this.patch_embed.proj;
    const y = conv2d(x, p.weight, p.bias, { stride: p.patch }); // [B, C, H, W] -> [B, D, gh, gw]
    const [b, d, gh, gw] = y.shape;
    const tokens = transpose(reshape(y, [b, d, gh * gw]), 1, 2); // -> [B, N, D]
    const t = add(cat([expand(this.cls_token, [b, 1, d]), tokens], 1), this.posEmbed(gh, gw)); // -> [B, 1 + N, D]
    return { t, grid: [gh, gw] };
  }

  /** Runs blocks [from, to) on tokens [B, 1 + N, D]. */
  runBlocks(t: Tensor, grid: [number, number], from: number, to: number): Tensor {
    const rope = this.rope(grid[0], grid[1]);
    for (let i = from; i < to; i++) t = this.blocks.at(i).forward(t, rope as never);
    return t;
  }
}

// ---- the classifier -------------------------------------------------------------------------------

/** Patch tokens [B, 1 + N, D] -> [B, N, D] (ToCo drops the class token: x[:, 1:]). */
const patchTokens = (t: Tensor): Tensor => narrow(t, 1, 1, t.shape[1] - 1);

export class TocoCam extends Module {
  declare encoder: TocoEncoder;
  declare classifier: Classifier;
  declare aux_classifier: Classifier;
  readonly cfg: TocoConfig;
  readonly auxBlock: number;

  constructor(config: TocoConfig, opts: { generator?: Generator } = {}) {
    super();
    const cfg = (this.cfg = { ...config, backbone: { ...config.backbone } });
    const generator = opts.generator ?? defaultGenerator;
    const depth = cfg.backbone.depth;
    this.auxBlock = cfg.auxLayer < 0 ? depth + cfg.auxLayer : cfg.auxLayer;
    if (!(this.auxBlock >= 0 && this.auxBlock < depth - 1))
      throw new Error(`TocoCam: auxLayer ${cfg.auxLayer} must name a block before the last of ${depth}`);
    this.encoder = new TocoEncoder(cfg.backbone, generator);
    this.classifier = new Classifier(cfg.backbone.embedDim, cfg.numClasses, generator);
    this.aux_classifier = new Classifier(cfg.backbone.embedDim, cfg.numClasses, generator);
  }

  override dispose(): void {
    this.encoder.disposeRopes();
    super.dispose();
  }

  /** Images [B, C, H, W] -> final-LN patch tokens x4 [B, N, D] and aux tokens [B, N, D]. */
  features(x: Tensor): TocoFeatures {
    const e = this.encoder;
    const { t, grid } = e.embed(x);
    const a = e.runBlocks(t, grid, 0, this.auxBlock + 1);
    const f = e.runBlocks(a, grid, this.auxBlock + 1, e.cfg.depth);
    return { x4: patchTokens(e.norm.forward(f)), aux: patchTokens(a), grid };
  }

  /** Logits [B, K] = classifier(GMP(tokens)), as conv1x1(adaptive_max_pool2d(x, 1)). */
  logits(tokens: Tensor, which: 'main' | 'aux' = 'main'): Tensor {
    return matmul(max(tokens, 1), this.weight2d(which), { transB: true }); // [B, N, D] -> [B, D] -> [B, K]
  }

  /** CAM [B, K, gh, gw] = conv2d(tokens as a map, classifier weight), before any ReLU. */
  cam(tokens: Tensor, grid: [number, number], which: 'main' | 'aux' = 'main'): Tensor {
    const [b] = tokens.shape;
    const m = matmul(tokens, this.weight2d(which), { transB: true }); // [B, N, D] -> [B, N, K]
    return reshape(transpose(m, 1, 2), [b, this.cfg.numClasses, grid[0], grid[1]]);
  }

  /** Training forward: main and aux logits [B, K] and the tokens. */
  forward(x: Tensor): { cls: Tensor; clsAux: Tensor } & TocoFeatures {
    const f = this.features(x);
    return { cls: this.logits(f.x4, 'main'), clsAux: this.logits(f.aux, 'aux'), ...f };
  }

  private weight2d(which: 'main' | 'aux'): Tensor {
    const w = (which === 'main' ? this.classifier : this.aux_classifier).weight;
    return reshape(w, [this.cfg.numClasses, this.cfg.backbone.embedDim]); // [K, D, 1, 1] -> [K, D]
  }
}

class Classifier extends Module {
  weight: Tensor;
  constructor(dim: number, classes: number, generator: Generator) {
    super();
    // PyTorch's Conv2d default (kaiming_uniform a=sqrt(5)): U(+-1/sqrt(fan_in)).
    const bound = 1 / Math.sqrt(dim);
    this.weight = parameter(init.uniform([classes, dim, 1, 1], -bound, bound, { generator }));
  }
}

// ---- losses --------------------------------------------------------------------------------------

/**
 * ToCo's affinity label from per-token labels [B][N] in {0, 1, 255}: 1 where two tokens share a
 * label, 0 where they differ, 255 where either is ignored, 255 on the diagonal
 * (utils/camutils.py label_to_aff_mask). Returns f32 masks (pos, neg) [B, N, N] and their counts.
 */
export function affinityMasks(labels: readonly ArrayLike<number>[]): {
  pos: Float32Array;
  neg: Float32Array;
  nPos: number;
  nNeg: number;
  n: number;
} {
  const b = labels.length,
    n = labels[0]?.length ?? 0;
  const pos = new Float32Array(b * n * n),
    neg = new Float32Array(b * n * n);
  let nPos = 0,
    nNeg = 0;
  labels.forEach((l, k) => {
    if (l.length !== n) throw new Error(`affinityMasks: sample ${k} has ${l.length} tokens, sample 0 has ${n}`);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j || l[i] === 255 || l[j] === 255) continue;
        const o = (k * n + i) * n + j;
        if (l[i] === l[j]) {
          pos[o] = 1;
          nPos++;
        } else {
          neg[o] = 1;
          nNeg++;
        }
      }
    }
  });
  return { pos, neg, nPos, nNeg, n };
}

/**
 * PTC loss (model/losses.py get_masked_ptc_loss): F = l2-normalised tokens (eps 1e-8, as
 * F.normalize), S = |F F^T| [B, N, N]; 0.5 (1 - sum(pos S) / (nPos + 1)) + 0.5 sum(neg S) / (nNeg + 1).
 * tokens [B, N, D]; labels per token in {0, 1, 255}.
 */
export function ptcLoss(tokens: Tensor, labels: readonly ArrayLike<number>[]): Tensor {
  const [b, n] = tokens.shape;
  if (labels.length !== b || labels[0].length !== n)
    throw new Error(`ptcLoss: labels must be ${b} x ${n} (tokens ${fmt(tokens.shape)})`);
  const m = affinityMasks(labels);
  const norm = clamp(sqrt(sum(mul(tokens, tokens), -1, true)), 1e-8); // [B, N, 1]
  const f = div(tokens, norm);
  const s = abs(matmul(f, f, { transB: true })); // [B, N, D] x [B, D, N] -> [B, N, N]
  const pos = tensor(m.pos, [b, n, n]),
    negM = tensor(m.neg, [b, n, n]);
  const lp = mul(sub(1, div(sum(mul(pos, s)), m.nPos + 1)), 0.5);
  const ln = mul(div(sum(mul(negM, s)), m.nNeg + 1), 0.5);
  return add(lp, ln);
}

/**
 * Per-token PTC labels from a normalised CAM at token resolution [B][N] (values in [0, 1]):
 * 1 above `high`, 0 at or below `low`, 255 between (ToCo's ROI thresholds, spec: 0.75 / 0.25).
 * Negative images (label 0) are background everywhere, as ToCo's cls-label-weighted CAM.
 */
export function ptcLabels(
  cams: readonly ArrayLike<number>[],
  imageLabels: readonly number[],
  low = 0.25,
  high = 0.75,
): Uint8Array[] {
  return cams.map((c, k) => {
    const out = new Uint8Array(c.length);
    for (let i = 0; i < c.length; i++) out[i] = imageLabels[k] === 0 || c[i] <= low ? 0 : c[i] > high ? 1 : 255;
    return out;
  });
}

// ---- CAM inference (no grad) and Grad-CAM --------------------------------------------------------

/**
 * ToCo's normalisation per (image, class) plane: cam - min, then / (max + 1e-5) (cam += maxpool(-cam); cam /=
 * maxpool(cam) + 1e-5).
 */
export function normaliseCam(cam: Tensor): Tensor {
  const shifted = sub(cam, min(cam, [2, 3], true)); // [B, K, H, W]
  return div(shifted, add(max(shifted, [2, 3], true), 1e-5));
}

export interface MultiScaleOptions {
  /** Input scales; 1 always runs (first), the others as given (spec §2.3: {1, 0.5, 0.75, 1.25, 1.5}). */
  scales?: readonly number[];
  /** Horizontal flip averaging by element-wise max (default true). */
  flip?: boolean;
}

/**
 * utils/camutils.py multi_scale_cam2: for each scale, the image and its horizontal flip; CAMs
 * resized (bilinear) to the input size, element-wise max of the image and the un-flipped flip,
 * ReLU, summed over scales, then `normaliseCam`. x [B, C, H, W] -> { cam, camAux } [B, K, H, W] in [0, 1).
 */
export function multiScaleCam(
  model: TocoCam,
  x: Tensor,
  opts: MultiScaleOptions = {},
): { cam: Tensor; camAux: Tensor } {
  const { scales = [1, 0.5, 0.75, 1.25, 1.5], flip: useFlip = true } = opts;
  const [b, , h, w] = x.shape;
  const ordered = [1, ...scales.filter((s) => s !== 1)];
  return noGrad(() => {
    let cam: Tensor | null = null,
      camAux: Tensor | null = null;
    for (const s of ordered) {
      const xs =
        s === 1
          ? x
          : interpolate(x, { size: [Math.floor(s * h), Math.floor(s * w)], mode: 'bilinear', alignCorners: false });
      const input = useFlip ? cat([xs, flip(xs, [3])], 0) : xs; // -> [2B, C, h_s, w_s]
      const f = model.features(input);
      const one = (which: 'main' | 'aux') => {
        const c = interpolate(model.cam(which === 'main' ? f.x4 : f.aux, f.grid, which), {
          size: [h, w],
          mode: 'bilinear',
          alignCorners: false,
        });
        const merged = useFlip ? maximum(narrow(c, 0, 0, b), flip(narrow(c, 0, b, b), [3])) : c;
        return relu(merged);
      };
      const m = one('main'),
        a = one('aux');
      cam = cam ? add(cam, m) : m;
      camAux = camAux ? add(camAux, a) : a;
    }
    return { cam: normaliseCam(cam!), camAux: normaliseCam(camAux!) };
  });
}

/**
 * Grad-CAM (arXiv 1610.02391, spec §2.8) of class `classIndex`'s main logit with respect to the
 * patch tokens A of `layer` ('final': the final-LN tokens x4; 'aux': the aux block's output):
 * alpha_k = mean over tokens of dy/dA_k, L = ReLU(sum_k alpha_k A_k) -> [B, 1, gh, gw], not
 * normalised. The gradient is taken by autograd: the trunk up to the layer runs without a graph,
 * its output becomes a leaf, the rest of the network runs on it and back-propagates. Parameter
 * gradients that this produces are dropped.
 */
export function gradCam(
  model: TocoCam,
  x: Tensor,
  opts: { layer?: 'final' | 'aux'; classIndex?: number } = {},
): Tensor {
  const { layer = 'final', classIndex = 0 } = opts;
  const e = model.encoder;
  const depth = e.cfg.depth;
  const split = layer === 'final' ? depth : model.auxBlock + 1;
  const { a, grid } = noGrad(() => {
    const { t, grid } = e.embed(x);
    const out = e.runBlocks(t, grid, 0, split);
    return { a: layer === 'final' ? e.norm.forward(out) : out, grid };
  });
  const leaf = requiresGrad(detach(a));
  // Parameters are frozen meanwhile so that no parameter gradient is touched.
  const params = model.parameters(),
    was = params.map((p) => p.requiresGrad);
  params.forEach((p) => {
    p.requiresGrad = false;
  });
  try {
    const rest = layer === 'final' ? leaf : e.norm.forward(e.runBlocks(leaf, grid, split, depth));
    const y = narrow(model.logits(patchTokens(rest), 'main'), 1, classIndex, 1); // -> [B, 1]
    backward(sum(y));
  } finally {
    params.forEach((p, i) => {
      p.requiresGrad = was[i];
    });
  }
  const dA = leaf.grad!;
  leaf.grad = null;
  return noGrad(() => {
    const tokens = patchTokens(leaf),
      grads = patchTokens(dA); // [B, N, D]
    const [b, n] = tokens.shape;
    const alpha = div(sum(grads, 1, true), n); // -> [B, 1, D]
    const l = relu(sum(mul(tokens, alpha), -1)); // -> [B, N]
    const out = reshape(l, [b, 1, grid[0], grid[1]]);
    dA.dispose();
    return out;
  });
}
