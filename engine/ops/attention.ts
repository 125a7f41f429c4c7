// Scaled dot-product attention, PyTorch's F.scaled_dot_product_attention semantics (additive
// float mask, default scale 1/sqrt(D)), as one fused kernel forward and a fused backward.
//
// Forward: FlashAttention (Dao et al. 2022, arXiv 2205.14135) with an online softmax (Milakov &
// Gimelshein 2018, arXiv 1805.02867): keys/values are visited in blocks, the Lq x Lk matrix is
// never stored, and the per-row logsumexp is kept for the backward.
// Backward: FlashAttention-2 (Dao 2023, arXiv 2307.08691): P is recomputed blockwise from q, k
// and the logsumexp; delta_i = rowsum(dO_i * O_i); one kernel loops over key blocks for dQ and
// another over query blocks for dK/dV, so every output element has one writer (no atomics).
//
// The kernels read q, k, v and write the output through layouts (offset and batch/head/row
// strides, attention-kernels.ts), so attention-packed.ts runs them on heads that are views of a
// packed qkv projection and writes the output token-major, with no head split or merge copies.
// The kernels are laid out for CPU drivers (register blocking, no workgroup memory or barriers;
// see shaders/attention-forward.wgsl); a shared-memory tiled variant for GPUs would be chosen
// per adapter as matmul does. `attentionReference` builds the same function from matmul and
// softmax ops; tests and the benchmark use it as the oracle.
// Training picks its path per adapter (setAttentionBackward forces one): on CPU drivers the
// unfused graph trains faster (the fused backward recomputes the scores in both of its kernels,
// and its dQ and dK/dV kernels ran at ~1.4 GFLOP/s against the blocked matmul's 2.3-3.4 in a
// profiled EVA-02-Ti step), so there a forward that will be differentiated takes the reference
// path unless its [B, H, Lq, Lk] scores would exceed SCORES_LIMIT; inference always takes the
// fused forward. The fused path covers head dims
// (q/k and v) that are multiples of 4 up to 128; other head dims, and masks that require a
// gradient, take the reference path. Fully masked rows give NaN, as PyTorch's math path.
import { Tensor, device, fmt, isGradEnabled } from '../tensor.ts';
import { record } from '../graph.ts';
import { broadcastStrides } from '../shape.ts';
import { ATTENTION_TRAINING_CHOICES, knobs, setFlag } from '../flags.ts';
import { add, mul } from './math.ts';
import { matmul } from './matmul.ts';
import { softmax } from './softmax.ts';
import {
  attentionForward,
  attentionBackward,
  headsMajor,
  MAX_FUSED_HEAD_DIM,
  type AttnDims,
} from './attention-kernels.ts';
import { autocastActive } from './autocast.ts';

const OP = 'scaled_dot_product_attention';

export type AttentionTraining = (typeof ATTENTION_TRAINING_CHOICES)[number];
/** Bytes of materialised scores above which training keeps the fused path on any adapter. */
const SCORES_LIMIT = 256 * 2 ** 20;

/** Forces the path a differentiated attention takes (the `attentionTraining` knob, engine/flags.ts). */
export function setAttentionTraining(mode: AttentionTraining): void {
  setFlag('attentionTraining', mode);
}

/** The path a differentiated attention with these sizes takes on the current device. */
export function attentionTrainingPath(batch: number, heads: number, lq: number, lk: number): 'fused' | 'unfused' {
  const training = knobs.attentionTraining;
  if (training === 'fused' || training === 'unfused') return training;
  return device().isCpuAdapter && batch * heads * lq * lk * 4 <= SCORES_LIMIT ? 'unfused' : 'fused';
}

export interface AttentionOptions {
  /** Additive mask broadcastable to [B, H, Lq, Lk] (use a large negative value to mask out). */
  mask?: Tensor | null;
  /** Multiplies q k^T; default 1 / sqrt(D). */
  scale?: number;
}

function check(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): void {
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
    if (t.ndim !== 4) throw new Error(`${OP}: ${name} must be [B, H, L, D], got ${fmt(t.shape)}`);
    if (t.dtype !== 'f32') throw new Error(`${OP}: ${name} has dtype ${t.dtype}, expected f32`);
  }
  const [b, h, lq, d] = q.shape;
  const [bk, hk, lk, dk] = k.shape;
  const [bv, hv, lv] = v.shape;
  if (bk !== b || bv !== b || hk !== h || hv !== h || lv !== lk || dk !== d) {
    throw new Error(
      `${OP}: q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)} do not match ` +
        '(expected q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv])',
    );
  }
  if (lq === 0 || lk === 0 || d === 0 || v.shape[3] === 0)
    throw new Error(`${OP}: empty dimension in q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)}`);
  if (mask) {
    if (mask.dtype !== 'f32') throw new Error(`${OP}: mask has dtype ${mask.dtype}; expected an additive f32 mask`);
    const full = [b, h, lq, lk];
    const fits = mask.ndim <= 4 && mask.shape.every((x, i) => x === 1 || x === full[4 - mask.ndim + i]);
    if (!fits) throw new Error(`${OP}: mask ${fmt(mask.shape)} does not broadcast to [B, H, Lq, Lk] = ${fmt(full)}`);
  }
}

/**
 * softmax(scale * q k^T + mask) v. q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv]
 * -> [B, H, Lq, Dv].
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const mask = opts.mask ?? null;
  check(q, k, v, mask);
  const [batch, heads, lq, d] = q.shape;
  const [lk, dv] = [k.shape[2], v.shape[3]];
  const fusable = (n: number) => n <= MAX_FUSED_HEAD_DIM && n % 4 === 0;
  const differentiated = isGradEnabled() && [q, k, v, mask].some((t) => t?.requiresGrad);
  if (
    autocastActive() || // f16 matmuls and an f32 softmax (autocast.ts); the fused kernels are f32
    !fusable(d) ||
    !fusable(dv) ||
    (mask?.requiresGrad && isGradEnabled()) ||
    (differentiated && attentionTrainingPath(batch, heads, lq, lk) === 'unfused')
  ) {
    return attentionReference(q, k, v, opts);
  }
  if (batch * heads > 65535)
    throw new Error(`${OP}: B * H = ${batch * heads} exceeds 65535 (one grid row per batch-head)`);
  const ms = mask ? broadcastStrides(mask.shape, [batch, heads, lq, lk]) : [0, 0, 0, 0];
  const dims: AttnDims = {
    batch,
    heads,
    lq,
    lk,
    d,
    dv,
    scale: opts.scale ?? 1 / Math.sqrt(d),
    mask,
    maskStrides: [ms[0], ms[1], ms[2], ms[3]],
    ql: headsMajor(heads, lq, d),
    kl: headsMajor(heads, lk, d),
    vl: headsMajor(heads, lk, dv),
    ol: headsMajor(heads, lq, dv),
  };
  const { out, lse } = attentionForward(q, k, v, dims);
  record(out, OP, [q, k, v], (dout) => {
    const g = attentionBackward(q, k, v, out, lse, dout, dims, {
      dq: q.requiresGrad,
      dkv: k.requiresGrad || v.requiresGrad,
    });
    if (!k.requiresGrad) g.dk?.dispose();
    if (!v.requiresGrad) g.dv?.dispose();
    return [g.dq, k.requiresGrad ? g.dk : null, v.requiresGrad ? g.dv : null];
  });
  if (!out.gradFn) lse.dispose();
  return out;
}

/** The unfused oracle: matmul, softmax, matmul; materialises the [B, H, Lq, Lk] scores. */
export function attentionReference(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const scale = opts.scale ?? 1 / Math.sqrt(q.shape[q.ndim - 1]);
  let s = mul(matmul(q, k, { transB: true }), scale); // [B, H, Lq, D] x [B, H, Lk, D] -> [B, H, Lq, Lk]
  if (opts.mask) s = add(s, opts.mask);
  return matmul(softmax(s, -1), v); // [B, H, Lq, Lk] x [B, H, Lk, Dv] -> [B, H, Lq, Dv]
}
