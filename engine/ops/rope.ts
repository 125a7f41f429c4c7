// 2-D rotary position embedding as EVA-02 uses it: timm's RotaryEmbeddingCat(in_pixels=False)
// tables and apply_rot_embed_cat (timm/layers/pos_embed_sincos.py; BAAI EVA-02
// `VisionRotaryEmbeddingFast`, EVA-02/asuka/rope.py). Spec: recipes/SPEC.md §1.2.
//   bands b_j = theta^(-j / (hd/4)), j < hd/4; grid t = arange(g) * ref / g, meshgrid 'ij' -> (y, x);
//   per position [y*b, x*b] (hd/2 values) repeat_interleave(2) -> hd; sin/cos [gridH*gridW, hd].
//   apply: x' = x*cos + rot(x)*sin, rot([x0, x1, x2, x3, ...]) = [-x1, x0, -x3, x2, ...]
// The tables are constants computed on the host in float64. applyRope is one kernel forward and
// one backward (the transposed rotation); sin/cos get no gradient.
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';

export interface Rope2dOptions {
  /** The grid the model was trained at (timm's ref_feat_shape); positions are rescaled by ref/grid. */
  refH?: number;
  refW?: number;
  /** timm's name for [refH, refW]. */
  refFeatShape?: readonly [number, number];
  /** Base of the frequency bands (timm's temperature). */
  theta?: number;
}

/** sin and cos tables [gridH * gridW, headDim] for `applyRope`. */
export function buildRope2d(
  headDim: number,
  gridH: number,
  gridW: number,
  opts: Rope2dOptions = {},
): { sin: Tensor; cos: Tensor } {
  if (!Number.isInteger(headDim) || headDim < 4 || headDim % 4 !== 0)
    throw new Error(`buildRope2d: headDim must be a positive multiple of 4, got ${headDim}`);
  if (!(gridH >= 1 && gridW >= 1 && Number.isInteger(gridH) && Number.isInteger(gridW)))
    throw new Error(`buildRope2d: invalid grid ${gridH} x ${gridW}`);
  const refH = opts.refH ?? opts.refFeatShape?.[0] ?? gridH;
  const refW = opts.refW ?? opts.refFeatShape?.[1] ?? gridW;
  const theta = opts.theta ?? 10000;
  const nb = headDim / 4;
  const bands = Array.from({ length: nb }, (_, j) => 1 / theta ** (j / nb));
  const sin = new Float64Array(gridH * gridW * headDim);
  const cos = new Float64Array(gridH * gridW * headDim);
  for (let iy = 0; iy < gridH; iy++) {
    for (let ix = 0; ix < gridW; ix++) {
      const y = (iy / gridH) * refH,
        x = (ix / gridW) * refW;
      const row = (iy * gridW + ix) * headDim;
      for (let j = 0; j < 2 * nb; j++) {
        const angle = j < nb ? y * bands[j] : x * bands[j - nb]; // [y*b, x*b]
        for (const k of [2 * j, 2 * j + 1]) {
          // repeat_interleave(2)
          sin[row + k] = Math.sin(angle);
          cos[row + k] = Math.cos(angle);
        }
      }
    }
  }
  const shape = [gridH * gridW, headDim];
  return { sin: Tensor.fromArray(sin, shape, 'f32', 'rope-sin'), cos: Tensor.fromArray(cos, shape, 'f32', 'rope-cos') };
}

function rotate(x: Tensor, sin: Tensor, cos: Tensor, start: number, transpose: boolean): Tensor {
  const [n, d] = x.shape.slice(-2);
  const y = Tensor.empty(x.shape, 'f32', transpose ? 'rope-backward' : 'rope');
  const pairs = x.size / 2;
  if (pairs > 0) {
    launch({
      op: transpose ? 'rope-backward' : 'rope',
      shader: 'rope',
      inputs: [x, sin, cos],
      outputs: [y],
      uniforms: new Params().u32({ pairs, n, d, start, transpose: transpose ? 1 : 0 }),
      workgroups: grid(pairs),
    });
  }
  return y;
}

/**
 * Rotates tokens startToken.. of x [..., N, D] (usually [B, H, N, D]) with tables
 * [N - startToken, D]; tokens before startToken (EVA's cls token with startToken = 1) pass through.
 */
export function applyRope(x: Tensor, sin: Tensor, cos: Tensor, startToken = 0): Tensor {
  const op = 'rope';
  if (x.dtype !== 'f32' || x.ndim < 2)
    throw new Error(`${op}: expected f32 x [..., N, D], got ${fmt(x.shape)} ${x.dtype}`);
  const [n, d] = x.shape.slice(-2);
  if (d % 2 !== 0) throw new Error(`${op}: head dim ${d} of ${fmt(x.shape)} must be even`);
  if (!Number.isInteger(startToken) || startToken < 0 || startToken > n)
    throw new Error(`${op}: startToken ${startToken} is out of range for ${n} tokens`);
  for (const [name, t] of [
    ['sin', sin],
    ['cos', cos],
  ] as const) {
    if (t.ndim !== 2 || t.shape[0] !== n - startToken || t.shape[1] !== d || t.dtype !== 'f32') {
      throw new Error(
        `${op}: ${name} must be f32 [${n - startToken}, ${d}] for x ${fmt(x.shape)} ` +
          `with startToken ${startToken}, got ${fmt(t.shape)} ${t.dtype}`,
      );
    }
  }
  const y = rotate(x, sin, cos, startToken, false);
  return record(y, op, [x], (dy) => [rotate(dy, sin, cos, startToken, true)]);
}
