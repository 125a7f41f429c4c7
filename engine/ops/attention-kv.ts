// Multi-head attention on token-major projections: queries q [B, Lq, H * D] from one Linear, keys
// and values packed as kv [B, Lk, 2 * H * D] from another (k in the first half, v in the second,
// head h in channels h * D .. h * D + D of each: PVTv2's spatial-reduction attention, Wang et al.
// 2022 "PVT v2", arXiv 2106.13797; reference whai362/PVT `kv(x_).reshape(B, -1, 2, heads, hd)
// .permute(2, 0, 3, 1, 4)`). The output is token-major [B, Lq, H * D], ready for the output
// projection. Equals the composition
//   split kv -> reshape [B, L, H, D] -> permute [B, H, L, D] (q, k, v) -> scaledDotProductAttention
//   -> permute [B, Lq, H, D] -> reshape [B, Lq, H * D]
// (`kvAttentionReference`, the tests' oracle) without any of its copies: each head is read in
// place through strides, and results are written in place through strides.
// - fused path (inference; training on GPUs): the attention kernels read q, k and v through
//   layouts and write the output token-major. Backward, dQ lands token-major; dK and dV come from
//   one kernel as two writable bindings, which must be two buffers, so dV goes to a scratch tensor
//   and one strided write moves it into the packed gradient's second half.
// - unfused path (training on CPU drivers, attention.ts): six matmuls that read heads through
//   strides and write through strides (matmul-kernels.ts): scores (scaled in the store), P v
//   token-major; backward dP = dO v^T, dV = P^T dO and dK = scale dS^T q straight into the halves
//   of one [B, Lk, 2 * H * D] gradient, dQ = scale dS k token-major. Only the softmax's
//   [B, H, Lq, Lk] probabilities are materialised.
// Under autocast it takes the composition (f16 matmuls, an f32 softmax; autocast.ts).
import { Tensor, fmt, isGradEnabled, noGrad } from '../tensor.ts';
import { record } from '../graph.ts';
import { matmulKernel, type MatmulArgs } from './matmul-kernels.ts';
import { softmax, softmaxBackward } from './softmax.ts';
import { reshape, permute, stridedCopy, stridedWrite } from './movement.ts';
import { split } from './join.ts';
import { autocastActive } from './autocast.ts';
import { attentionTrainingPath, scaledDotProductAttention } from './attention.ts';
import { attentionForward, attentionBackward, MAX_FUSED_HEAD_DIM, type AttnDims } from './attention-kernels.ts';

const OP = 'kv_attention';

export interface KvAttentionOptions {
  heads: number;
  /** Multiplies q k^T; default 1 / sqrt(D). */
  scale?: number;
}

interface Dims {
  b: number;
  lq: number;
  lk: number;
  h: number;
  d: number;
  /** Channels of q (= H * D); kv has 2c. */
  c: number;
  scale: number;
}

function check(q: Tensor, kv: Tensor, opts: KvAttentionOptions): Dims {
  const h = opts.heads;
  if (q.ndim !== 3 || kv.ndim !== 3 || q.dtype !== 'f32' || kv.dtype !== 'f32')
    throw new Error(
      `${OP}: expected f32 q [B, Lq, H * D] and kv [B, Lk, 2 * H * D], got q ${fmt(q.shape)} ${q.dtype} ` +
        `and kv ${fmt(kv.shape)} ${kv.dtype}`,
    );
  const [b, lq, c] = q.shape;
  const [bk, lk, c2] = kv.shape;
  const d = c / h;
  if (!Number.isInteger(h) || h < 1 || !Number.isInteger(d) || d < 1)
    throw new Error(`${OP}: ${c} channels of q ${fmt(q.shape)} are not heads (${h}) * head dim`);
  if (bk !== b || c2 !== 2 * c)
    throw new Error(
      `${OP}: kv ${fmt(kv.shape)} does not match q ${fmt(q.shape)}: expected [${b}, Lk, ${2 * c}] (k then v)`,
    );
  if (b === 0 || lq === 0 || lk === 0) throw new Error(`${OP}: empty q ${fmt(q.shape)} or kv ${fmt(kv.shape)}`);
  return { b, lq, lk, h, d, c, scale: opts.scale ?? 1 / Math.sqrt(d) };
}

/** The composition this op replaces (see the header): the tests' oracle, and autocast's path. */
export function kvAttentionReference(q: Tensor, kv: Tensor, opts: KvAttentionOptions): Tensor {
  const { b, lq, h, d, c, scale } = check(q, kv, opts);
  const heads = (t: Tensor) => permute(reshape(t, [b, t.shape[1], h, d]), [0, 2, 1, 3]); // [B, L, C] -> [B, H, L, D]
  const [k, v] = split(kv, c, -1);
  const o = scaledDotProductAttention(heads(q), heads(k), heads(v), { scale }); // [B, H, Lq, D]
  return reshape(permute(o, [0, 2, 1, 3]), [b, lq, c]);
}

/** softmax(scale q k^T) v per head, q [B, Lq, H * D] and kv [B, Lk, 2 * H * D] -> [B, Lq, H * D]. */
export function kvAttention(q: Tensor, kv: Tensor, opts: KvAttentionOptions): Tensor {
  const x = check(q, kv, opts);
  if (autocastActive()) return kvAttentionReference(q, kv, opts);
  const differentiated = isGradEnabled() && (q.requiresGrad || kv.requiresGrad);
  const fusable = x.d % 4 === 0 && x.d <= MAX_FUSED_HEAD_DIM && x.b * x.h <= 65535;
  if (fusable && !(differentiated && attentionTrainingPath(x.b, x.h, x.lq, x.lk) === 'unfused'))
    return fused(q, kv, x, differentiated);
  return unfused(q, kv, x, differentiated);
}

function fused(q: Tensor, kv: Tensor, x: Dims, differentiated: boolean): Tensor {
  const { b, lq, lk, h, d, c } = x;
  const dims: AttnDims = {
    batch: b,
    heads: h,
    lq,
    lk,
    d,
    dv: d,
    scale: x.scale,
    mask: null,
    maskStrides: [0, 0, 0, 0],
    ql: [0, lq * c, d, c],
    kl: [0, lk * 2 * c, d, 2 * c],
    vl: [c, lk * 2 * c, d, 2 * c],
    ol: [0, lq * c, d, c],
  };
  const { out, lse } = attentionForward(q, kv, kv, dims, [b, lq, c]);
  if (!differentiated) {
    lse.dispose();
    return out;
  }
  return record(out, OP, [q, kv], (dout) => {
    const dq = q.requiresGrad ? Tensor.empty(q.shape, 'f32', `${OP}-backward`) : undefined;
    const dkv = kv.requiresGrad ? Tensor.empty(kv.shape, 'f32', `${OP}-backward`) : undefined;
    // dK with k's layout lands in dkv's first half; dV with v's layout in a scratch tensor's second.
    const dv = dkv && Tensor.empty(kv.shape, 'f32', `${OP}-backward`);
    attentionBackward(q, kv, kv, out, lse, dout, dims, { dq: !!dq, dkv: !!dkv }, { dq, dk: dkv, dv });
    if (dkv && dv) {
      const half = [lk * 2 * c, 2 * c, 1];
      const part = stridedCopy(`${OP}-backward`, dv, [b, lk, c], half, c);
      stridedWrite(`${OP}-backward`, part, dkv, half, c);
      [part, dv].forEach((t) => t.dispose());
    }
    return [dq ?? null, dkv ?? null];
  });
}

/** C = alpha A B over batch [B, H], operands and output through offsets and strides (matmul-kernels.ts). */
function bmm(x: Dims, a: Tensor, b: Tensor, out: Tensor, shape: [m: number, n: number, k: number], s: Strides): void {
  const [m, n, k] = shape;
  const args: MatmulArgs = { a, b, out, batch: [x.b, x.h], m, n, k, ...s };
  matmulKernel(args);
}

type Strides = Pick<
  MatmulArgs,
  'bsa' | 'bsb' | 'sam' | 'sak' | 'sbk' | 'sbn' | 'offa' | 'offb' | 'offc' | 'bsc' | 'scm' | 'scn' | 'alpha'
>;

function unfused(q: Tensor, kv: Tensor, x: Dims, differentiated: boolean): Tensor {
  const { b, lq, lk, h, d, c, scale } = x;
  // Batch (b, h) strides of each layout, in elements.
  const tq = [lq * c, d],
    tkv = [lk * 2 * c, d],
    tp = [h * lq * lk, lq * lk];
  const p = noGrad(() => {
    const s = Tensor.empty([b, h, lq, lk], 'f32', 'matmul');
    // S = scale q k^T: q rows of c, k read transposed (rows of 2c).
    bmm(x, q, kv, s, [lq, lk, d], { bsa: tq, sam: c, sak: 1, bsb: tkv, sbk: 1, sbn: 2 * c, alpha: scale });
    const p = softmax(s, -1);
    s.dispose();
    return p;
  });
  // O = P v, written token-major [B, Lq, H, D].
  const out = Tensor.empty([b, lq, c], 'f32', OP);
  const pv: Strides = { bsa: tp, sam: lk, sak: 1, bsb: tkv, sbk: 2 * c, sbn: 1, offb: c, bsc: tq, scm: c, scn: 1 };
  bmm(x, p, kv, out, [lq, d, lk], pv);
  if (!differentiated) {
    p.dispose();
    return out;
  }
  return record(out, OP, [q, kv], (dy) => {
    // dP = dO v^T: dO token-major, v read transposed.
    const dP = Tensor.empty([b, h, lq, lk], 'f32', 'matmul');
    bmm(x, dy, kv, dP, [lq, lk, d], { bsa: tq, sam: c, sak: 1, bsb: tkv, sbk: 1, sbn: 2 * c, offb: c });
    const dS = softmaxBackward(p, dP);
    dP.dispose();
    let dq: Tensor | null = null,
      dkv: Tensor | null = null;
    if (q.requiresGrad) {
      // dQ = scale dS k, token-major.
      dq = Tensor.empty(q.shape, 'f32', `${OP}-backward`);
      const sk: Strides = { bsa: tp, sam: lk, sak: 1, bsb: tkv, sbk: 2 * c, sbn: 1, bsc: tq, scm: c, scn: 1 };
      bmm(x, dS, kv, dq, [lq, d, lk], { ...sk, alpha: scale });
    }
    if (kv.requiresGrad) {
      dkv = Tensor.empty(kv.shape, 'f32', `${OP}-backward`);
      const into = { bsc: tkv, scm: 2 * c, scn: 1 };
      // dK = scale dS^T q into the first half; dV = P^T dO into the second.
      bmm(x, dS, q, dkv, [lk, d, lq], { bsa: tp, sam: 1, sak: lk, bsb: tq, sbk: c, sbn: 1, ...into, alpha: scale });
      bmm(x, p, dy, dkv, [lk, d, lq], { bsa: tp, sam: 1, sak: lk, bsb: tq, sbk: c, sbn: 1, ...into, offc: c });
    }
    dS.dispose();
    return [dq, dkv];
  });
}
