// In-place fused updates over flat parameter buffers: the optimizer step (one dispatch per flat
// buffer for every parameter and group; per-parameter hyperparameters come in a small table
// indexed through `owner`, see engine/optim/optimizer.ts) and the weight EMA. No gradient flows
// through them.
import type { Tensor } from '../tensor.ts';
import { Params, grid, launch } from './kernel.ts';

/** params/states updated in place from grads; `owner` maps each 64-element chunk to its row of `hyper`. */
export function optimizerUpdate(
  op: string,
  shader: string,
  template: Record<string, string> | undefined,
  owner: Tensor,
  hyper: Tensor,
  grads: Tensor,
  params: Tensor,
  states: readonly Tensor[],
  size: number,
): void {
  if (size % 4 !== 0) throw new Error(`${op}: a flat slab of ${size} elements is not whole 64-element chunks`);
  launch({
    op,
    shader,
    params: template,
    inputs: [owner, hyper, grads],
    outputs: [params, ...states],
    // Four elements per invocation (the shaders read vec4): slabs are whole 64-element chunks.
    uniforms: new Params().u32({ n4: size / 4 }),
    workgroups: grid(size / 4),
  });
}

/** ema = decay * ema + (1 - decay) * value, in place over a flat buffer. */
export function emaUpdate(value: Tensor, ema: Tensor, decay: number): void {
  launch({
    op: 'ModelEma',
    shader: 'optim-ema',
    inputs: [value],
    outputs: [ema],
    uniforms: new Params().u32({ n: ema.size }).f32({ decay }),
    workgroups: grid(ema.size),
  });
}
