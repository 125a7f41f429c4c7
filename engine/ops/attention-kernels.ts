// Launches of the fused attention kernels (shaders/attention-*.wgsl): forward with logsumexp,
// and the three-kernel backward (delta, dQ over key blocks, dK/dV over query blocks).
// Shapes are validated by the callers (attention.ts, attention-packed.ts). q, k, v and the output
// are read and written through layouts, so heads may be views of a packed projection.
import { Tensor } from '../tensor.ts';
import { Params, grid, launch } from './kernel.ts';

/** Largest head dim (q/k and v) of the fused path (which also needs multiples of 4). */
export const MAX_FUSED_HEAD_DIM = 128;
const ROWS = 128; // rows (queries or keys) per workgroup: WG = 32 invocations x R = 4 rows in the shaders

/**
 * Where the rows of a [B, H, L, D] operand live in its buffer: element offset and strides of
 * batch, head and row (each a multiple of 4; the row itself is contiguous).
 */
export type Layout = readonly [offset: number, batch: number, head: number, row: number];

/** The layout of a contiguous [B, H, L, D] tensor. */
export function headsMajor(heads: number, len: number, d: number): Layout {
  return [0, heads * len * d, len * d, d];
}

export interface AttnDims {
  batch: number;
  heads: number;
  lq: number;
  lk: number;
  d: number;
  dv: number;
  scale: number;
  /** Additive mask and its element strides over (b, h, i, j); null for none. */
  mask: Tensor | null;
  maskStrides: [number, number, number, number];
  /** Layouts of q (and dQ), k (and dK), v (and dV), and the output (and dO). */
  ql: Layout;
  kl: Layout;
  vl: Layout;
  ol: Layout;
}

const vec4s = (l: Layout) => l.map((x) => x / 4);

function uniforms(a: AttnDims): Params {
  const { heads, lq, lk, d, dv, scale } = a;
  return new Params()
    .vec4('mstride', a.maskStrides)
    .vec4('ql', vec4s(a.ql))
    .vec4('kl', vec4s(a.kl))
    .vec4('vl', vec4s(a.vl))
    .vec4('ol', vec4s(a.ol))
    .u32({ heads, lq, lk, d, dv, hasMask: a.mask ? 1 : 0 })
    .f32({ scale });
}

/** A 1-element stand-in bound where the shader declares a mask but the call has none. */
function maskOrDummy(a: AttnDims): Tensor {
  return a.mask ?? Tensor.fromArray([0], [1], 'f32', 'attention-no-mask');
}

/** out (`outShape`, laid out as a.ol says) and lse [B, H, Lq]. */
export function attentionForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  a: AttnDims,
  outShape: readonly number[] = [a.batch, a.heads, a.lq, a.dv],
): { out: Tensor; lse: Tensor } {
  const bh = a.batch * a.heads;
  const out = Tensor.empty(outShape, 'f32', 'scaled_dot_product_attention');
  const lse = Tensor.empty([a.batch, a.heads, a.lq], 'f32', 'attention-lse');
  const m = maskOrDummy(a);
  launch({
    op: 'scaled_dot_product_attention',
    shader: 'attention-forward',
    inputs: [q, k, v, m],
    outputs: [out, lse],
    uniforms: uniforms(a),
    workgroups: [Math.ceil(a.lq / ROWS), bh],
  });
  if (!a.mask) m.dispose();
  return { out, lse };
}

/**
 * dq, dk, dv (each null when not wanted) from dO, the forward's output and logsumexp. Each is
 * written with its operand's layout into `into` (one buffer for all three, e.g. the gradient of
 * a packed projection) or, without `into`, into a new tensor of its operand's shape.
 */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dout: Tensor,
  a: AttnDims,
  want: { dq: boolean; dkv: boolean },
  into: { dq?: Tensor; dk?: Tensor; dv?: Tensor } = {},
): { dq: Tensor | null; dk: Tensor | null; dv: Tensor | null } {
  const bh = a.batch * a.heads;
  const rows = bh * a.lq;
  const ld = Tensor.empty([rows, 2], 'f32', 'attention-backward-delta');
  launch({
    op: 'attention-backward-delta',
    shader: 'attention-backward-delta',
    inputs: [out, dout, lse],
    outputs: [ld],
    uniforms: new Params().vec4('ol', a.ol).u32({ rows, dv: a.dv, heads: a.heads, lq: a.lq }),
    workgroups: grid(rows),
  });
  const m = maskOrDummy(a);
  let dq: Tensor | null = null,
    dk: Tensor | null = null,
    dv: Tensor | null = null;
  if (want.dq) {
    dq = into.dq ?? Tensor.empty(q.shape, 'f32', 'attention-backward-dq');
    launch({
      op: 'attention-backward-dq',
      shader: 'attention-backward-dq',
      inputs: [q, k, v, m, dout, ld],
      outputs: [dq],
      uniforms: uniforms(a),
      workgroups: [Math.ceil(a.lq / ROWS), bh],
    });
  }
  if (want.dkv) {
    dk = into.dk ?? Tensor.empty(k.shape, 'f32', 'attention-backward-dk');
    dv = into.dv ?? Tensor.empty(v.shape, 'f32', 'attention-backward-dv');
    launch({
      op: 'attention-backward-dkdv',
      shader: 'attention-backward-dkdv',
      inputs: [q, k, v, m, dout, ld],
      outputs: [dk, dv],
      uniforms: uniforms(a),
      workgroups: [Math.ceil(a.lk / ROWS), bh],
    });
  }
  if (!a.mask) m.dispose();
  ld.dispose();
  return { dq, dk, dv };
}
