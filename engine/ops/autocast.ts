// Automatic mixed precision, as PyTorch's torch.autocast (Micikevicius et al. 2018, "Mixed
// Precision Training", arXiv 1710.03740): inside `autocast(fn)`, matmul (and so Linear and the
// attention, which is built from matmuls and an f32 softmax under autocast) and the convolutions
// (conv2d, conv1d, conv_transpose2d: PyTorch's autocast lists them as f16 ops too) cast their
// operands to f16 and run f16 kernels with f32 accumulation; their backward products (matmul's dA
// and dB, the convolutions' dx and dW) run in f16 the same way. Biases stay f32: a conv adds its
// bias to the f32 sum before the output's rounding, Linear adds its bias after the f16 product.
// Everything else (reductions, norms, softmax, losses, element-wise ops) stays f32. Parameters
// stay f32 ("master weights"): the cast happens in the forward, each use casting again, and the
// cast's backward hands the gradient back in f32.
//
// What differs from PyTorch: an f16 op's output is rounded to f16 by the kernel and stored widened
// to f32, i.e. already "cast back" for the f32 op that reads it. Every consumer op here is f32,
// and tensors live until their tidy() scope ends whatever the graph holds, so f16 storage of
// outputs would save no memory and cost a cast per consumer. Gradients of f16 tensors likewise
// travel in f32 (an op's backward casts dy to f16 itself where its kernels read f16).
// On an adapter without `shader-f16` the scope runs everything in f32 (DEBUG level 1 says so).
import { Tensor, device, fmt, type DType } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch, WGSL_TYPE } from './kernel.ts';

let depth = 0;
let warned = false;

/** Runs `fn` with autocast on; enabled: false turns it off inside, as torch.autocast(enabled=False). */
export function autocast<T>(fn: () => T, opts: { enabled?: boolean } = {}): T {
  const prev = depth;
  depth = opts.enabled === false ? 0 : depth + 1;
  try {
    return fn();
  } finally {
    depth = prev;
  }
}

/** Whether ops should compute in f16 now: inside autocast and on an adapter with shader-f16. */
export function autocastActive(): boolean {
  if (depth === 0) return false;
  const d = device();
  if (d.hasF16) return true;
  if (!warned && d.debug >= 1) console.log('[autocast] this adapter lacks shader-f16: computing in f32');
  warned = true;
  return false;
}

/** x converted between f32 and f16 (ops' `cast` comes here for f16); the gradient flows back in f32. */
export function castFloat(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const y = convertFloat(x, dtype, 'cast');
  // Gradients are carried in f32 (see the header): an f16 gradient would have to be cast back.
  return record(y, 'cast', [x], (dy) => [dy.dtype === 'f32' ? dy : castFloat(dy, 'f32')]);
}

/** castFloat's kernel with no graph: a fresh converted copy (ops convert scratch layouts with it). */
export function convertFloat(x: Tensor, dtype: DType, op: string): Tensor {
  const float = (t: DType) => t === 'f32' || t === 'f16';
  if (!float(x.dtype) || !float(dtype) || (dtype === 'f16' && !device().hasF16)) {
    throw new Error(
      `${op}: cannot convert ${fmt(x.shape)} from ${x.dtype} to ${dtype}` +
        (dtype === 'f16' ? ' (needs f32 input and shader-f16)' : ''),
    );
  }
  const y = Tensor.empty(x.shape, dtype, op);
  if (y.size > 0) {
    launch({
      op,
      shader: 'cast-f16',
      params: { TI: WGSL_TYPE[x.dtype], TO: WGSL_TYPE[dtype] },
      inputs: [x],
      outputs: [y],
      uniforms: new Params().u32({ n: y.size }),
      workgroups: grid(y.size),
    });
  }
  return y;
}

/** The operands an op should use: cast to f16 when autocast is on or either already is f16. */
export function halfOperands(a: Tensor, b: Tensor): [Tensor, Tensor] | null {
  const half = a.dtype === 'f16' || b.dtype === 'f16' || autocastActive();
  if (!half || (a.dtype === 'f16' && b.dtype === 'f16')) return null;
  return [castFloat(a, 'f16'), castFloat(b, 'f16')];
}

/**
 * Template values of the kernels that read f32 or f16 operands (matmul and conv kernels): T is
 * the operand type, ENABLE turns on f16 where needed, ROUND rounds each f32-accumulated result to
 * f16 (round_f16, kept in f32) so that an f16 op's output is what an f16 store would hold, and
 * ROUND_F16 pastes in that function (shaders/round-f16.wgsl: WGSL has no include).
 */
export function elementParams(dtype: DType): Record<string, string> {
  return dtype === 'f16'
    ? { T: 'f16', ENABLE: 'enable f16;', ROUND: 'round_f16', ROUND_F16: device().source('round-f16') }
    : { T: 'f32', ENABLE: '', ROUND: '', ROUND_F16: '' };
}
