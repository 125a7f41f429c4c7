// interpolate (PyTorch's F.interpolate, NCHW) in 'bilinear' (align_corners true or false) and
// 'nearest' modes, forward and backward. The backward is a gather (each input element finds
// the outputs that read it), so it is deterministic without atomics.
// Scale rules, as PyTorch 1.13 (aten/src/ATen/native/UpSample.h, checked against torch):
// - output size = size, or floor(in * scale_factor);
// - bilinear source index: align_corners ? o*(in-1)/(out-1) : (o + 0.5)*scale - 0.5 clamped at
//   0, where scale = 1/scale_factor when scale_factor is given (recompute_scale_factor unset),
//   else in/out; same-size axes are copied;
// - nearest: floor(o * scale) with the same scale, in f32; same-size and double-size axes take
//   PyTorch's shortcuts (o, o >> 1).
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';

export interface InterpolateOptions {
  size?: [number, number];
  scaleFactor?: number | [number, number];
  mode: 'bilinear' | 'nearest';
  alignCorners?: boolean;
}

/** The f32 scale the kernels apply along one axis (in -> out; sf = scale_factor if given). */
function axisScale(mode: InterpolateOptions['mode'], align: boolean, n: number, on: number, sf: number | null): number {
  if (on === n) return 1;
  if (mode === 'nearest' && on === 2 * n) return 0.5;
  if (mode === 'bilinear' && align) return on > 1 ? (n - 1) / (on - 1) : 0;
  return sf !== null && sf > 0 ? 1 / sf : n / on;
}

export function interpolate(x: Tensor, opts: InterpolateOptions): Tensor {
  const op = `interpolate_${opts.mode}`;
  if (x.ndim !== 4 || x.dtype !== 'f32')
    throw new Error(`${op}: expected an f32 input [N, C, H, W], got ${fmt(x.shape)} ${x.dtype}`);
  if (opts.mode !== 'bilinear' && opts.mode !== 'nearest')
    throw new Error(`interpolate: mode must be 'bilinear' or 'nearest', got '${opts.mode as string}'`);
  if (opts.mode === 'nearest' && opts.alignCorners !== undefined)
    throw new Error(`${op}: alignCorners only applies to 'bilinear'`);
  if ((opts.size === undefined) === (opts.scaleFactor === undefined))
    throw new Error(`${op}: give exactly one of size and scaleFactor`);
  const [n, c, h, w] = x.shape;
  const sf =
    opts.scaleFactor === undefined
      ? null
      : typeof opts.scaleFactor === 'number'
        ? [opts.scaleFactor, opts.scaleFactor]
        : opts.scaleFactor;
  if (sf && sf.some((s) => !(s > 0)))
    throw new Error(`${op}: scaleFactor must be positive, got ${JSON.stringify(opts.scaleFactor)}`);
  const [oh, ow] = opts.size ?? [Math.floor(h * sf![0]), Math.floor(w * sf![1])];
  if (![oh, ow].every((d) => Number.isInteger(d) && d >= 1))
    throw new Error(`${op}: output size [${oh}, ${ow}] from input ${fmt(x.shape)} must be positive integers`);
  if (h < 1 || w < 1) throw new Error(`${op}: input ${fmt(x.shape)} has an empty plane`);
  const align = opts.mode === 'bilinear' && (opts.alignCorners ?? false);
  const u = new Params().u32({ nc: n * c, h, w, oh, ow, align: align ? 1 : 0 }).f32({
    sh: axisScale(opts.mode, align, h, oh, sf?.[0] ?? null),
    sw: axisScale(opts.mode, align, w, ow, sf?.[1] ?? null),
  });
  const [fwd, bwd] =
    opts.mode === 'bilinear'
      ? ['interpolate-bilinear', 'interpolate-bilinear-backward']
      : ['interpolate-nearest', 'interpolate-nearest-backward'];
  const y = Tensor.empty([n, c, oh, ow], 'f32', op); // [N, C, H, W] -> [N, C, oh, ow]
  if (y.size > 0) launch({ op, shader: fwd, inputs: [x], outputs: [y], uniforms: u, workgroups: grid(y.size) });
  return record(y, op, [x], (dy) => {
    const dx = Tensor.empty(x.shape, 'f32', `${op}-backward`);
    if (dx.size > 0)
      launch({
        op: `${op}-backward`,
        shader: bwd,
        inputs: [dy],
        outputs: [dx],
        uniforms: u,
        workgroups: grid(dx.size),
      });
    return [dx];
  });
}
