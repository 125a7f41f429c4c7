// Pooling (PyTorch semantics, NCHW, ceil_mode false): max_pool2d, avg_pool2d,
// adaptive_avg_pool2d, adaptive_max_pool2d, forward and backward. Every backward is a gather
// (one invocation per input element visits the windows that contain it), so it is deterministic
// without atomics; the max pools' kernels also write PyTorch's argmax indices for it. avg_pool2d
// runs as two separable 1-D passes (k31 s1 p15 in Polyp-PVT's structure loss: 62 loads per
// output instead of 961).
// References: PyTorch aten/src/ATen/native/{MaxPooling,AveragePool2d,AdaptiveAveragePooling,
// AdaptiveMaxPooling2d}.cpp (window bounds, the count_include_pad divisor, the adaptive
// start = floor(o*I/O), end = ceil((o+1)*I/O) formula).
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';
import type { IntPair } from './conv.ts';

function pair(op: string, name: string, v: IntPair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (p.some((d) => !Number.isInteger(d) || d < min))
    throw new Error(`${op}: ${name} must be integers >= ${min}, got ${JSON.stringify(v)}`);
  return p;
}

function check4d(op: string, x: Tensor): void {
  if (x.ndim !== 4 || x.dtype !== 'f32')
    throw new Error(`${op}: expected an f32 input [N, C, H, W], got ${fmt(x.shape)} ${x.dtype}`);
}

interface Window {
  nc: number;
  h: number;
  w: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

function windowOf(op: string, x: Tensor, kernel: IntPair, stride: IntPair | undefined, padding: IntPair): Window {
  check4d(op, x);
  const [kh, kw] = pair(op, 'kernel', kernel, 1);
  const [sh, sw] = pair(op, 'stride', stride ?? kernel, 1);
  const [ph, pw] = pair(op, 'padding', padding, 0);
  if (2 * ph > kh || 2 * pw > kw)
    throw new Error(`${op}: padding (${ph}, ${pw}) must be at most half the kernel (${kh}, ${kw})`);
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (oh < 1 || ow < 1)
    throw new Error(
      `${op}: input ${fmt(x.shape)} is smaller than the kernel (${kh}, ${kw}) with padding (${ph}, ${pw})`,
    );
  return { nc: n * c, h, w, oh, ow, kh, kw, sh, sw, ph, pw };
}

function windowParams(q: Window): Params {
  return new Params()
    .u32({ nc: q.nc, h: q.h, w: q.w, oh: q.oh, ow: q.ow, kh: q.kh, kw: q.kw, sh: q.sh, sw: q.sw })
    .i32({ ph: q.ph, pw: q.pw });
}

/**
 * Runs a pooling kernel pair: forward over outputs, backward (a gather) over inputs. The max
 * pools' backward reruns the forward for the argmax indices rather than keeping them alive
 * between forward and backward (the forward is cheap next to the gather; nothing to dispose).
 */
function pool(
  op: string,
  x: Tensor,
  oh: number,
  ow: number,
  u: Params,
  shaders: [string, string],
  withIndices: boolean,
): Tensor {
  const outShape = [x.shape[0], x.shape[1], oh, ow];
  const forward = (): [Tensor, Tensor | null] => {
    const y = Tensor.empty(outShape, 'f32', op);
    const idx = withIndices ? Tensor.empty(outShape, 'i32', op) : null;
    if (y.size > 0 && x.size > 0) {
      launch({
        op,
        shader: shaders[0],
        inputs: [x],
        outputs: idx ? [y, idx] : [y],
        uniforms: u,
        workgroups: grid(y.size),
      });
    }
    return [y, idx];
  };
  const [y, idx] = forward();
  idx?.dispose();
  return record(y, op, [x], (dy) => {
    const [y2, idx2] = withIndices ? forward() : [null, null];
    y2?.dispose();
    const dx = Tensor.empty(x.shape, 'f32', `${op}-backward`);
    if (dx.size > 0) {
      launch({
        op: `${op}-backward`,
        shader: shaders[1],
        inputs: idx2 ? [dy, idx2] : [dy],
        outputs: [dx],
        uniforms: u,
        workgroups: grid(dx.size),
      });
    }
    idx2?.dispose();
    return [dx];
  });
}

/** max_pool2d(x, kernel, stride = kernel, padding = 0); padding counts as -inf. */
export function maxPool2d(x: Tensor, kernel: IntPair, stride?: IntPair, padding: IntPair = 0): Tensor {
  const q = windowOf('max_pool2d', x, kernel, stride, padding);
  return pool('max_pool2d', x, q.oh, q.ow, windowParams(q), ['max-pool2d', 'max-pool2d-backward'], true);
}

/**
 * avg_pool2d(x, kernel, stride = kernel, padding = 0, count_include_pad = true), as two separable
 * 1-D passes (W, then H; see avg-pool2d.wgsl); the backward runs their transposes in reverse.
 */
export function avgPool2d(
  x: Tensor,
  kernel: IntPair,
  stride?: IntPair,
  padding: IntPair = 0,
  countIncludePad = true,
): Tensor {
  const op = 'avg_pool2d';
  const q = windowOf(op, x, kernel, stride, padding);
  const [n, c, h] = x.shape;
  const flag = countIncludePad ? 1 : 0;
  const passW = new Params()
    .u32({ outer: n * c * h, len: q.w, inner: 1, olen: q.ow, k: q.kw, s: q.sw })
    .i32({ p: q.pw })
    .u32({ flag }); // [N, C, H, W] -> [N, C, H, OW]
  const passH = new Params()
    .u32({ outer: n * c, len: q.h, inner: q.ow, olen: q.oh, k: q.kh, s: q.sh })
    .i32({ p: q.ph })
    .u32({ flag }); // [N, C, H, OW] -> [N, C, OH, OW]
  const run = (name: string, shader: string, src: Tensor, shape: number[], u: Params): Tensor => {
    const out = Tensor.empty(shape, 'f32', name);
    if (out.size > 0 && src.size > 0)
      launch({ op: name, shader, inputs: [src], outputs: [out], uniforms: u, workgroups: grid(out.size) });
    return out;
  };
  const t = run(op, 'avg-pool2d', x, [n, c, h, q.ow], passW);
  const y = run(op, 'avg-pool2d', t, [n, c, q.oh, q.ow], passH);
  t.dispose();
  return record(y, op, [x], (dy) => {
    const bop = `${op}-backward`;
    const dt = run(bop, 'avg-pool2d-backward', dy, [n, c, h, q.ow], passH);
    const dx = run(bop, 'avg-pool2d-backward', dt, x.shape as number[], passW);
    dt.dispose();
    return [dx];
  });
}

function adaptive(op: string, x: Tensor, outputSize: IntPair, shaders: [string, string], withIndices: boolean): Tensor {
  check4d(op, x);
  const [oh, ow] = pair(op, 'outputSize', outputSize, 1);
  const [n, c, h, w] = x.shape;
  if (h < 1 || w < 1) throw new Error(`${op}: input ${fmt(x.shape)} has an empty plane`);
  return pool(op, x, oh, ow, new Params().u32({ nc: n * c, h, w, oh, ow }), shaders, withIndices);
}

/** adaptive_avg_pool2d(x, outputSize): [N, C, H, W] -> [N, C, oh, ow]. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: IntPair): Tensor {
  return adaptive('adaptive_avg_pool2d', x, outputSize, ['adaptive-avg-pool2d', 'adaptive-avg-pool2d-backward'], false);
}

/** adaptive_max_pool2d(x, outputSize): [N, C, H, W] -> [N, C, oh, ow]. */
export function adaptiveMaxPool2d(x: Tensor, outputSize: IntPair): Tensor {
  return adaptive('adaptive_max_pool2d', x, outputSize, ['adaptive-max-pool2d', 'adaptive-max-pool2d-backward'], true);
}
