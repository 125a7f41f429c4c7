// Graph recording: what every op needs from autograd. An op that sees an input requiring grad
// records a GradNode on its output (the inputs and a backward closure mapping dy to one gradient
// per input). The backward walk (autograd.ts) sits above the ops and reads these nodes; keeping
// the recording here lets the ops import it without importing the walk, which uses the ops.
import { isGradEnabled, type Tensor } from './tensor.ts';

export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** One gradient per input (null where the input needs none), shapes broadcast-compatible. */
  backward: (dy: Tensor) => (Tensor | null)[];
}

/** Attaches the graph node to `out` when grad mode is on and an input requires grad. */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: GradNode['backward']): Tensor {
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.gradFn = { op, inputs, backward };
  }
  return out;
}

/** A leaf that accumulates `.grad`. */
export function requiresGrad(t: Tensor, on = true): Tensor {
  if (on && t.dtype !== 'f32' && t.dtype !== 'f16')
    throw new Error(`requiresGrad: only float tensors can require grad, got ${t.dtype}`);
  t.requiresGrad = on;
  return t;
}

/** A tensor sharing `t`'s storage with no graph behind it. */
export function detach(t: Tensor): Tensor {
  return t.view(t.shape, 'detach');
}
