// Multi-head attention with PyTorch's nn.MultiheadAttention parameters and semantics
// (torch/nn/modules/activation.py, torch/nn/functional.py::multi_head_attention_forward), and
// SAM's attention with separate projections and an internal downsample
// (segment_anything/modeling/transformer.py::Attention).
//
// Fused layout (default), PyTorch's keys:
//   in_proj_weight [3E, E] (xavier_uniform over the whole [3E, E] matrix), in_proj_bias [3E]
//   (zeros), out_proj.weight [E, E] (Linear's kaiming_uniform(a = sqrt(5))), out_proj.bias [E]
//   (zeros). When kdim or vdim differ from E: q_proj_weight [E, E], k_proj_weight [E, kdim],
//   v_proj_weight [E, vdim] (each xavier_uniform) take in_proj_weight's place.
// Separate layout (`separate: true`, SAM): q_proj, k_proj, v_proj Linear(E|kdim|vdim -> E / r)
//   and out_proj Linear(E / r -> E), all with Linear's default init; r = downsampleRate.
// Either way: q, k, v are projected, split into heads of E' / H channels, attended with
// softmax(q k^T / sqrt(E' / H) + mask) (engine/ops/attention.ts, fused), recombined and
// projected by out_proj.
//
// Layout of inputs: [L, N, E] (PyTorch's default) or [N, L, E] with batchFirst (SAM passes
// batch-first tensors), or unbatched [L, E]. Masks: attnMask [Lq, Lk] or [N * H, Lq, Lk] and
// keyPaddingMask [N, Lk]; an f32 mask is added to the scores, an integer mask marks positions
// to ignore with non-zero values (PyTorch's boolean True). Attention dropout (on the softmax
// weights) applies in training when dropout > 0.
// Deviations: forward returns only the attention output (no need_weights / averaged weights);
// no add_bias_kv, add_zero_attn or is_causal. Integer masks add -1e30 rather than -inf, so a
// query whose keys are all masked attends uniformly instead of giving NaN.
import { Tensor, fmt } from '../tensor.ts';
import {
  add,
  mul,
  ne,
  matmul,
  reshape,
  permute,
  transpose,
  unsqueeze,
  narrow,
  split,
  softmax,
  dropout,
} from '../ops/index.ts';
import { scaledDotProductAttention } from '../ops/attention.ts';
import { defaultGenerator, type Generator } from '../ops/creation.ts';
import { Module, parameter } from './module.ts';
import { Linear } from './layers.ts';
import { xavierUniform, zeros, zeros_ } from './init.ts';

/** What an integer mask adds at a masked position (finite: see the header). */
export const MASKED_SCORE = -1e30;

export interface MultiheadAttentionOptions {
  /** Dropout on the attention weights in training (PyTorch's `dropout`). */
  dropout?: number;
  /** Biases of the projections (in_proj_bias and out_proj.bias, or each Linear's). */
  bias?: boolean;
  /** Channels of the key and value inputs (default E). */
  kdim?: number;
  vdim?: number;
  /** Inputs and output are [N, L, E] instead of [L, N, E]. */
  batchFirst?: boolean;
  /** SAM's layout: q_proj / k_proj / v_proj Linear submodules instead of in_proj_weight. */
  separate?: boolean;
  /** Separate layout only: the projections map to E / downsampleRate channels. */
  downsampleRate?: number;
  generator?: Generator;
}

export interface AttentionMasks {
  /** [Lq, Lk] or [N * H, Lq, Lk]: f32 added to the scores, or integer with non-zero = masked. */
  attnMask?: Tensor | null;
  /** [N, Lk] ([Lk] unbatched): f32 added to the scores, or integer with non-zero = ignore that key. */
  keyPaddingMask?: Tensor | null;
}

export class MultiheadAttention extends Module {
  // Field order is PyTorch's registration order (state_dict order).
  q_proj_weight: Tensor | null = null;
  k_proj_weight: Tensor | null = null;
  v_proj_weight: Tensor | null = null;
  in_proj_weight: Tensor | null = null;
  in_proj_bias: Tensor | null = null;
  q_proj: Linear | null = null;
  k_proj: Linear | null = null;
  v_proj: Linear | null = null;
  out_proj: Linear;
  readonly kdim: number;
  readonly vdim: number;
  /** Channels of the projected q, k, v (E, or E / downsampleRate in the separate layout). */
  readonly internalDim: number;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;
  readonly generator: Generator;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    opts: MultiheadAttentionOptions = {},
  ) {
    super();
    const {
      dropout = 0,
      bias = true,
      kdim = embedDim,
      vdim = embedDim,
      batchFirst = false,
      separate = false,
      downsampleRate = 1,
      generator = defaultGenerator,
    } = opts;
    if (!separate && downsampleRate !== 1)
      throw new Error(
        `MultiheadAttention: downsampleRate ${downsampleRate} needs the separate layout (separate: true)`,
      );
    const internal = embedDim / downsampleRate;
    if (!Number.isInteger(internal) || !Number.isInteger(internal / numHeads) || internal / numHeads < 1) {
      throw new Error(
        `MultiheadAttention: embed_dim ${embedDim} / downsample_rate ${downsampleRate} = ${internal} ` +
          `must be divisible by num_heads ${numHeads}`,
      );
    }
    if (!(dropout >= 0 && dropout <= 1))
      throw new Error(`MultiheadAttention: dropout must be in [0, 1], got ${dropout}`);
    [this.kdim, this.vdim, this.internalDim, this.headDim] = [kdim, vdim, internal, internal / numHeads];
    [this.dropout, this.batchFirst, this.generator] = [dropout, batchFirst, generator];
    if (separate) {
      this.q_proj = new Linear(embedDim, internal, { bias, generator });
      this.k_proj = new Linear(kdim, internal, { bias, generator });
      this.v_proj = new Linear(vdim, internal, { bias, generator });
      this.out_proj = new Linear(internal, embedDim, { bias, generator });
      return;
    }
    if (kdim === embedDim && vdim === embedDim) {
      this.in_proj_weight = parameter(xavierUniform([3 * embedDim, embedDim], { generator }));
    } else {
      this.q_proj_weight = parameter(xavierUniform([embedDim, embedDim], { generator }));
      this.k_proj_weight = parameter(xavierUniform([embedDim, kdim], { generator }));
      this.v_proj_weight = parameter(xavierUniform([embedDim, vdim], { generator }));
    }
    this.in_proj_bias = bias ? parameter(zeros([3 * embedDim])) : null;
    this.out_proj = new Linear(embedDim, embedDim, { bias, generator });
    if (this.out_proj.bias) zeros_(this.out_proj.bias); // PyTorch's _reset_parameters
  }

  /**
   * Attention of `query` over `key` / `value` (self-attention when they are omitted).
   * [Lq, N, E] (or [N, Lq, E] batch-first, or [Lq, E]) -> the same layout with Lq rows.
   */
  forward(query: Tensor, key: Tensor = query, value: Tensor = key, masks: AttentionMasks = {}): Tensor {
    const unbatched = query.ndim === 2;
    this.checkInputs(query, key, value, unbatched);
    // [L, N, C] -> [N, L, C]
    const toBatchFirst = (t: Tensor) => (unbatched ? unsqueeze(t, 0) : this.batchFirst ? t : transpose(t, 0, 1));
    const qb = toBatchFirst(query);
    const kb = key === query ? qb : toBatchFirst(key);
    const vb = value === key ? kb : toBatchFirst(value);
    const [n, lq, lk] = [qb.shape[0], qb.shape[1], kb.shape[1]];
    const [q, k, v] = this.project(qb, kb, vb, query === key && key === value);
    // [N, L, E'] -> [N, H, L, E'/H]
    const heads = (t: Tensor, l: number) => permute(reshape(t, [n, l, this.numHeads, this.headDim]), [0, 2, 1, 3]);
    const mask = this.combinedMask(masks, n, lq, lk, unbatched);
    const o = this.attend(heads(q, lq), heads(k, lk), heads(v, lk), mask); // -> [N, H, Lq, E'/H]
    const merged = reshape(transpose(o, 1, 2), [n, lq, this.internalDim]); // [N, H, Lq, E'/H] -> [N, Lq, E']
    const y = this.out_proj.forward(merged); // [N, Lq, E'] -> [N, Lq, E]
    return unbatched ? reshape(y, [lq, this.embedDim]) : this.batchFirst ? y : transpose(y, 0, 1);
  }

  /** q [N, Lq, E'], k and v [N, Lk, E'] from the batch-first inputs. */
  private project(q: Tensor, k: Tensor, v: Tensor, self: boolean): Tensor[] {
    if (this.q_proj && this.k_proj && this.v_proj)
      return [this.q_proj.forward(q), this.k_proj.forward(k), this.v_proj.forward(v)];
    const e = this.embedDim;
    const lin = (x: Tensor, w: Tensor, bias: Tensor | null) => {
      const y = matmul(x, w, { transB: true }); // [N, L, C] -> [N, L, E]
      return bias ? add(y, bias) : y;
    };
    // one [N, L, 3E] projection
    if (this.in_proj_weight && self) return split(lin(q, this.in_proj_weight, this.in_proj_bias), e, 2);
    const b = this.in_proj_bias ? split(this.in_proj_bias, e) : [null, null, null];
    if (this.in_proj_weight) {
      const w = this.in_proj_weight;
      return [q, k, v].map((x, i) => lin(x, narrow(w, 0, i * e, e), b[i]));
    }
    return [lin(q, this.q_proj_weight!, b[0]), lin(k, this.k_proj_weight!, b[1]), lin(v, this.v_proj_weight!, b[2])];
  }

  private attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
    if (!(this.training && this.dropout > 0)) return scaledDotProductAttention(q, k, v, { mask });
    // Dropout acts on the weights, which the fused kernel never forms: the explicit route.
    // [N, H, Lq, D] x [N, H, Lk, D] -> [N, H, Lq, Lk]
    let s = mul(matmul(q, k, { transB: true }), 1 / Math.sqrt(this.headDim));
    if (mask) s = add(s, mask);
    return matmul(dropout(softmax(s, -1), this.dropout, true, this.generator), v); // -> [N, H, Lq, Dv]
  }

  /** attnMask and keyPaddingMask as one additive mask broadcastable to [N, H, Lq, Lk], or null. */
  private combinedMask(masks: AttentionMasks, n: number, lq: number, lk: number, unbatched: boolean): Tensor | null {
    const h = this.numHeads;
    let mask: Tensor | null = null;
    const am = masks.attnMask;
    if (am) {
      if (am.ndim === 2 && am.shape[0] === lq && am.shape[1] === lk) {
        mask = reshape(additive(am), [1, 1, lq, lk]);
      } else if (am.ndim === 3 && am.shape[0] === n * h && am.shape[1] === lq && am.shape[2] === lk) {
        mask = reshape(additive(am), [n, h, lq, lk]);
      } else {
        throw new Error(
          `MultiheadAttention: attn_mask ${fmt(am.shape)} must be [${lq}, ${lk}] ` +
            `or [${n * h}, ${lq}, ${lk}] (N * num_heads, Lq, Lk)`,
        );
      }
    }
    const kpm = masks.keyPaddingMask;
    if (kpm) {
      const want = unbatched ? [lk] : [n, lk];
      if (kpm.ndim !== want.length || kpm.shape.some((d, i) => d !== want[i])) {
        throw new Error(`MultiheadAttention: key_padding_mask ${fmt(kpm.shape)} must be ${fmt(want)} (N, Lk)`);
      }
      const padding = reshape(additive(kpm), [n, 1, 1, lk]);
      mask = mask ? add(mask, padding) : padding;
    }
    return mask;
  }

  private checkInputs(query: Tensor, key: Tensor, value: Tensor, unbatched: boolean): void {
    const rank = unbatched ? 2 : 3;
    const layout = unbatched ? '[L, C]' : this.batchFirst ? '[N, L, C]' : '[L, N, C]';
    const named = [
      ['query', query, this.embedDim],
      ['key', key, this.kdim],
      ['value', value, this.vdim],
    ] as const;
    for (const [name, t, c] of named) {
      if (t.ndim !== rank || t.shape[rank - 1] !== c) {
        throw new Error(
          `MultiheadAttention: ${name} ${fmt(t.shape)} must be ${layout.replace('C', String(c))} ` +
            `(query is ${fmt(query.shape)})`,
        );
      }
    }
    const batchDim = this.batchFirst ? 0 : 1;
    const seqDim = this.batchFirst ? 1 : 0;
    if (
      !unbatched &&
      (key.shape[batchDim] !== query.shape[batchDim] || value.shape[batchDim] !== query.shape[batchDim])
    ) {
      throw new Error(
        `MultiheadAttention: query ${fmt(query.shape)}, key ${fmt(key.shape)} and value ${fmt(value.shape)} ` +
          `have different batch sizes (layout ${layout})`,
      );
    }
    const ls = unbatched ? 0 : seqDim;
    if (key.shape[ls] !== value.shape[ls])
      throw new Error(
        `MultiheadAttention: key ${fmt(key.shape)} and value ${fmt(value.shape)} ` +
          `must have the same length (layout ${layout})`,
      );
  }
}

/** An f32 mask as is; an integer mask as MASKED_SCORE where non-zero, 0 elsewhere. */
function additive(mask: Tensor): Tensor {
  return mask.dtype === 'f32' ? mask : mul(ne(mask, 0), MASKED_SCORE);
}
