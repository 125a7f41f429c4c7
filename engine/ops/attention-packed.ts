// Self-attention straight from a packed qkv projection [B, N, 3 * H * D] (timm's Attention and
// EVA-02's `qkv` Linear, PyTorch's in_proj), with an optional 2-D rotary embedding on q and k
// (EVA-02; tables from rope.ts buildRope2d), to an output [B, N, H * D] ready for the output
// projection. Equals the composition
//   reshape [B, N, 3, H, D] -> permute [3, B, H, N, D] -> q, k, v -> rope(q), rope(k)
//   -> scaledDotProductAttention -> permute [B, N, H, D] -> reshape [B, N, H * D]
// (`packedAttentionReference`, the oracle of the tests) without its copies:
// - fused path: the attention kernels read v (and q, k when there is no rope) as strided views
//   of the projection and write the output token-major; the gradients of q, k and v land in one
//   [B, N, 3 * H * D] buffer (dV straight from the dK/dV kernel).
// - unfused path (training on CPU drivers, see attention.ts): the scores and output come from
//   matmuls that read v and dO through strides and write the output token-major through strides
//   (matmul-kernels.ts takes both).
// Rotated q and k must exist as tensors: one kernel (rope-heads.wgsl) reads the packed layout
// and writes them heads-major, folding in the attention scale; its backward
// (rope-heads-backward.wgsl) writes the packed gradient in one pass. The path follows
// attentionTrainingPath; odd head dims take the reference composition.
import { Tensor, device, fmt, isGradEnabled, noGrad } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';
import { matmulKernel } from './matmul-kernels.ts';
import { softmax, softmaxBackward } from './softmax.ts';
import { reshape, permute, narrow } from './movement.ts';
import { applyRope } from './rope.ts';
import { attentionTrainingPath, scaledDotProductAttention } from './attention.ts';
import {
  attentionForward,
  attentionBackward,
  headsMajor,
  MAX_FUSED_HEAD_DIM,
  type AttnDims,
} from './attention-kernels.ts';

const OP = 'packed_attention';

export interface PackedRope {
  /** Tables [N - startToken, D] from buildRope2d. */
  sin: Tensor;
  cos: Tensor;
  /** Tokens before this one (a class token) are not rotated. */
  startToken?: number;
}

export interface PackedAttentionOptions {
  heads: number;
  rope?: PackedRope | null;
  /** Multiplies q k^T; default 1 / sqrt(D). */
  scale?: number;
}

interface Dims {
  b: number;
  n: number;
  h: number;
  d: number;
  scale: number;
  start: number;
  rope: PackedRope | null;
}

function check(qkv: Tensor, opts: PackedAttentionOptions): Dims {
  const h = opts.heads;
  if (qkv.ndim !== 3 || qkv.dtype !== 'f32')
    throw new Error(`${OP}: qkv must be f32 [B, N, 3 * H * D], got ${fmt(qkv.shape)} ${qkv.dtype}`);
  const [b, n, c] = qkv.shape;
  const d = c / (3 * h);
  if (!Number.isInteger(h) || h < 1 || !Number.isInteger(d) || d < 1)
    throw new Error(`${OP}: ${c} channels of qkv ${fmt(qkv.shape)} are not 3 * heads (${h}) * head dim`);
  if (n === 0 || b === 0) throw new Error(`${OP}: empty qkv ${fmt(qkv.shape)}`);
  const rope = opts.rope ?? null;
  const start = rope?.startToken ?? 0;
  if (rope) {
    if (d % 2 !== 0) throw new Error(`${OP}: rope needs an even head dim, got ${d}`);
    if (!Number.isInteger(start) || start < 0 || start > n)
      throw new Error(`${OP}: rope startToken ${start} is out of range for ${n} tokens`);
    for (const [name, t] of [
      ['sin', rope.sin],
      ['cos', rope.cos],
    ] as const) {
      if (t.ndim !== 2 || t.shape[0] !== n - start || t.shape[1] !== d || t.dtype !== 'f32')
        throw new Error(
          `${OP}: rope ${name} must be f32 [${n - start}, ${d}] for qkv ${fmt(qkv.shape)} ` +
            `with startToken ${start}, got ${fmt(t.shape)} ${t.dtype}`,
        );
    }
  }
  return { b, n, h, d, scale: opts.scale ?? 1 / Math.sqrt(d), start, rope };
}

/** The composition this op replaces (see the header): the tests' oracle, and odd head dims. */
export function packedAttentionReference(qkv: Tensor, opts: PackedAttentionOptions): Tensor {
  const { b, n, h, d, scale, start, rope } = check(qkv, opts);
  const heads = permute(reshape(qkv, [b, n, 3, h, d]), [2, 0, 3, 1, 4]); // -> [3, B, H, N, D]
  let [q, k, v] = [0, 1, 2].map((i) => reshape(narrow(heads, 0, i, 1), [b, h, n, d]));
  if (rope) [q, k] = [q, k].map((t) => applyRope(t, rope.sin, rope.cos, start));
  const o = scaledDotProductAttention(q, k, v, { scale }); // [B, H, N, D]
  return reshape(permute(o, [0, 2, 1, 3]), [b, n, h * d]);
}

/** softmax(scale * q k^T) v per head of a packed qkv [B, N, 3 * H * D] -> [B, N, H * D]. */
export function packedSelfAttention(qkv: Tensor, opts: PackedAttentionOptions): Tensor {
  const x = check(qkv, opts);
  const differentiated = isGradEnabled() && qkv.requiresGrad;
  const fusable = x.d % 4 === 0 && x.d <= MAX_FUSED_HEAD_DIM && x.b * x.h <= 65535;
  if (fusable && !(differentiated && attentionTrainingPath(x.b, x.h, x.n, x.n) === 'unfused'))
    return fused(qkv, x, differentiated);
  if (x.d % 2 !== 0) return packedAttentionReference(qkv, opts);
  return unfused(qkv, x, differentiated);
}

/** A 1-element stand-in bound where a shader declares a buffer the call does not use. */
const dummy = () => Tensor.fromArray([0], [1], 'f32', 'packed-attention-unused');

/** Rotated (if rope) and scaled q, k heads-major [B, H, N, D], and v when withV. */
function splitHeads(qkv: Tensor, x: Dims, withV: boolean, qscale: number): Tensor[] {
  const shape = [x.b, x.h, x.n, x.d];
  const out = [Tensor.empty(shape, 'f32', 'rope-heads'), Tensor.empty(shape, 'f32', 'rope-heads')];
  out.push(withV ? Tensor.empty(shape, 'f32', 'rope-heads') : dummy());
  const [sin, cos] = x.rope ? [x.rope.sin, x.rope.cos] : [dummy(), dummy()];
  const perPart = (x.b * x.h * x.n * x.d) / 2;
  const pairs = perPart * (withV ? 3 : 2);
  launch({
    op: 'rope-heads',
    shader: 'rope-heads',
    inputs: [qkv, sin, cos],
    outputs: out,
    uniforms: new Params()
      .u32({ pairs, perPart, n: x.n, heads: x.h, d: x.d, start: x.start, hasRope: x.rope ? 1 : 0 })
      .f32({ qscale }),
    workgroups: grid(pairs),
  });
  if (!x.rope) [sin, cos].forEach((t) => t.dispose());
  if (!withV) out.pop()!.dispose();
  return out;
}

/** The packed gradient from heads-major dq, dk (and dv, else that third is left to `into`). */
function mergeHeads(dq: Tensor, dk: Tensor, dv: Tensor | null, x: Dims, qscale: number, into?: Tensor): Tensor {
  const dx = into ?? Tensor.empty([x.b, x.n, 3 * x.h * x.d], 'f32', 'rope-heads-backward');
  const parts = dv ? 3 : 2;
  const pairs = (x.b * x.n * parts * x.h * x.d) / 2;
  const unused = dv ? [] : [dummy()];
  const [sin, cos] = x.rope ? [x.rope.sin, x.rope.cos] : [dummy(), dummy()];
  launch({
    op: 'rope-heads-backward',
    shader: 'rope-heads-backward',
    inputs: [dq, dk, dv ?? unused[0], sin, cos],
    outputs: [dx],
    uniforms: new Params()
      .u32({ pairs, parts, n: x.n, heads: x.h, d: x.d, start: x.start, hasRope: x.rope ? 1 : 0 })
      .f32({ qscale }),
    workgroups: grid(pairs),
  });
  if (!x.rope) [sin, cos].forEach((t) => t.dispose());
  unused.forEach((t) => t.dispose());
  return dx;
}

function fused(qkv: Tensor, x: Dims, differentiated: boolean): Tensor {
  const { b, n, h, d } = x;
  const c = h * d; // channels of each of q, k, v
  // q and k are materialised (rotated, the scale folded into q); v is read in place. Without
  // rope q and k could be read in place too, but their gradients could not: dK and dV would be
  // two writable bindings of one buffer, which WebGPU forbids.
  const [q, k] = splitHeads(qkv, x, false, x.scale);
  const dims: AttnDims = {
    batch: b,
    heads: h,
    lq: n,
    lk: n,
    d,
    dv: d,
    scale: 1,
    mask: null,
    maskStrides: [0, 0, 0, 0],
    ql: headsMajor(h, n, d),
    kl: headsMajor(h, n, d),
    vl: [2 * c, n * 3 * c, d, 3 * c], // the last third of [B, N, 3, H, D]
    ol: [0, n * c, d, c],
  };
  const { out, lse } = attentionForward(q, k, qkv, dims, [b, n, c]);
  if (!differentiated) {
    [q, k, lse].forEach((t) => t.dispose());
    return out;
  }
  return record(out, OP, [qkv], (dout) => {
    const dqkv = Tensor.empty(qkv.shape, 'f32', `${OP}-backward`);
    const g = attentionBackward(q, k, qkv, out, lse, dout, dims, { dq: true, dkv: true }, { dv: dqkv });
    mergeHeads(g.dq!, g.dk!, null, x, x.scale, dqkv);
    g.dq!.dispose();
    g.dk!.dispose();
    return [dqkv];
  });
}

/**
 * C[bh] = A[bh] B[bh] over batch [B, H]; strides in elements (see matmul-kernels.ts). C is a new
 * contiguous tensor, or `into.out` written through its batch strides and row stride.
 */
function bmm(
  x: Dims,
  a: Tensor,
  sa: readonly [batch: number, head: number, m: number, k: number],
  bt: Tensor,
  sb: readonly [batch: number, head: number, k: number, n: number],
  m: number,
  n: number,
  k: number,
  op: string,
  into?: { out: Tensor; bsc: number[]; scm: number },
): Tensor {
  const out = into?.out ?? Tensor.empty([x.b, x.h, m, n], 'f32', op);
  matmulKernel({
    ...(into && { bsc: into.bsc, scm: into.scm }),
    a,
    b: bt,
    out,
    batch: [x.b, x.h],
    m,
    n,
    k,
    bsa: [sa[0], sa[1]],
    bsb: [sb[0], sb[1]],
    sam: sa[2],
    sak: sa[3],
    sbk: sb[2],
    sbn: sb[3],
  });
  return out;
}

function unfused(qkv: Tensor, x: Dims, differentiated: boolean): Tensor {
  const { b, n, h, d } = x;
  const c = h * d;
  // v is read in place when its third of qkv can be bound (storage offsets must be aligned).
  const vOffset = 2 * c * 4;
  const inPlace = (qkv.byteOffset + vOffset) % device().limits.minStorageBufferOffsetAlignment === 0;
  const [q, k, vh] = splitHeads(qkv, x, !inPlace, x.scale);
  const v = vh ?? Tensor.window(qkv, vOffset, [qkv.size - 2 * c], 'f32', OP);
  // v as [B, H, N, D]: strides (batch, head, row, col).
  const sv = inPlace ? ([n * 3 * c, d, 3 * c, 1] as const) : ([h * n * d, n * d, d, 1] as const);
  const heads = [h * n * d, n * d] as const;
  const sp = [h * n * n, n * n] as const; // batch and head strides of the scores
  const [p, out] = noGrad(() => {
    const s = bmm(x, q, [...heads, d, 1], k, [...heads, 1, d], n, n, d, 'matmul'); // q k^T
    const p = softmax(s, -1);
    s.dispose();
    // P v, written token-major [B, N, H, D] (batch and head strides n c and d, rows c apart).
    const out = Tensor.empty([b, n, c], 'f32', OP);
    return [p, bmm(x, p, [...sp, n, 1], v, sv, n, d, n, 'matmul', { out, bsc: [n * c, d], scm: c })];
  });
  if (!differentiated) {
    [p, q, k, v].forEach((t) => t.dispose());
    return out;
  }
  const sdo = [n * c, d] as const; // dO [B, N, H, D] read as [B, H, N, D]
  return record(out, OP, [qkv], (dy) => {
    const dP = bmm(x, dy, [...sdo, c, 1], v, [sv[0], sv[1], sv[3], sv[2]], n, n, d, 'matmul'); // dO v^T
    const dv = bmm(x, p, [...sp, 1, n], dy, [...sdo, c, 1], n, d, n, 'matmul'); // P^T dO
    const dS = softmaxBackward(p, dP);
    dP.dispose();
    const dq = bmm(x, dS, [...sp, n, 1], k, [...heads, d, 1], n, d, n, 'matmul'); // dS k
    const dk = bmm(x, dS, [...sp, 1, n], q, [...heads, d, 1], n, d, n, 'matmul'); // dS^T q
    dS.dispose();
    const dqkv = mergeHeads(dq, dk, dv, x, x.scale);
    [dq, dk, dv].forEach((t) => t.dispose());
    return [dqkv];
  });
}
