// The augmentation kernels (no gradient): a per-sample separable Gaussian blur pass, one
// geometric warp (affine map after a grid distortion; bilinear or nearest), and colour jitter
// with normalisation. Parameters per sample come in small tables; engine/data/augment.ts draws
// them and composes the transforms.
import { Tensor } from '../tensor.ts';
import { Params, grid, launch } from './kernel.ts';

/** One blur pass along x (dir 0) or y (dir 1); `params` rows are [sigma, radius]. */
export function augmentBlur(x: Tensor, params: Tensor, dir: 0 | 1): Tensor {
  const [b, c, h, w] = x.shape;
  const out = Tensor.empty(x.shape, 'f32', 'augment-blur');
  launch({
    op: 'augment-blur',
    shader: 'augment-blur',
    inputs: [x, params],
    outputs: [out],
    uniforms: new Params().u32({ b, c, h, w, dir }),
    workgroups: grid(out.size),
  });
  return out;
}

/** [B, C, Hin, Win] -> [B, C, size]; `params` rows: affine (6) + distorted cell edges (2 (steps + 1)). */
export function augmentWarp(
  x: Tensor,
  params: Tensor,
  steps: number,
  size: readonly [number, number],
  mode: 0 | 1,
): Tensor {
  const [b, c, hin, win] = x.shape;
  const out = Tensor.empty([b, c, size[0], size[1]], 'f32', 'augment-warp');
  launch({
    op: 'augment-warp',
    shader: 'augment-warp',
    inputs: [x, params],
    outputs: [out],
    uniforms: new Params().u32({ b, c, hin, win, hout: size[0], wout: size[1], steps, stride: 8 + 2 * steps, mode }),
    workgroups: grid(out.size),
  });
  return out;
}

/** Colour jitter rows [brightness, contrast, saturation, hue], grey means [B], then (x - mean) / std. */
export function augmentColor(
  x: Tensor,
  params: Tensor,
  greyMean: Tensor,
  mean: readonly number[],
  std: readonly number[],
): Tensor {
  const [b, , h, w] = x.shape;
  const out = Tensor.empty(x.shape, 'f32', 'augment-color');
  launch({
    op: 'augment-color',
    shader: 'augment-color',
    inputs: [x, params, greyMean],
    outputs: [out],
    uniforms: new Params()
      .u32({ b, hw: h * w })
      .f32({ m0: mean[0], m1: mean[1], m2: mean[2], s0: std[0], s1: std[1], s2: std[2] }),
    workgroups: grid(b * h * w),
  });
  return out;
}
