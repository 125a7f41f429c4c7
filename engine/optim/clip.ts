// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_, without a readback:
// the gradients are gathered into flat buffers (encoder copies), the total norm and the scale
// min(1, maxNorm / (norm + 1e-6)) are computed on the device, and each parameter's .grad becomes
// a window of the scaled flat buffer. A few dispatches per call, whatever the parameter count.
// Gradients are replaced, never written in place: one gradient tensor may back several leaves'
// .grad (autograd passes dy through add), and scaling it in place would scale it twice.
import { Tensor, noGrad, tidy } from '../tensor.ts';
import { abs, add, clamp, div, max, maximum, mul, pow, sqrt, sum } from '../ops/index.ts';
import { packFlat } from '../flat.ts';

/** Gathers the grads into flat slabs (padding zero), applies `fn` to each slab, re-points .grad. */
function rewriteGrads(
  params: readonly Tensor[],
  op: string,
  fn: (slab: Tensor) => Tensor,
  before?: (slabs: Tensor[]) => void,
): void {
  const withGrad = params.filter((p) => p.grad);
  if (withGrad.length === 0) return;
  const grads = withGrad.map((p) => p.grad!);
  const pack = packFlat(grads, op, true);
  before?.(pack.slabs);
  const out = pack.slabs.map(fn);
  withGrad.forEach((p, i) => {
    const s = pack.plan.slots[i];
    const g = Tensor.window(out[s.slab], s.offset * 4, p.grad!.shape, 'f32', op).keep();
    p.grad!.dispose();
    p.grad = g;
  });
  for (const w of pack.windows) w.dispose();
  for (const t of [...pack.slabs, ...out]) t.dispose();
}

/**
 * Scales the gradients so their joint `normType`-norm is at most maxNorm; returns that total norm
 * (before clipping) as a scalar tensor (no readback). normType: a positive number or Infinity.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number, normType = 2): Tensor {
  if (!(normType > 0)) throw new Error(`clipGradNorm: normType must be positive or Infinity, got ${normType}`);
  return noGrad(() =>
    tidy(() => {
      let total: Tensor | null = null;
      let coef: Tensor | null = null;
      rewriteGrads(
        params,
        'clipGradNorm',
        (slab) => mul(slab, coef!),
        (slabs) => {
          // Padding between windows is zero, so it adds nothing to any norm.
          const parts = slabs.map((s) =>
            normType === Infinity ? max(abs(s)) : normType === 2 ? sum(mul(s, s)) : sum(pow(abs(s), normType)),
          );
          let acc = parts[0];
          for (const p of parts.slice(1)) acc = normType === Infinity ? maximum(acc, p) : add(acc, p);
          total = normType === Infinity || normType === 1 ? acc : normType === 2 ? sqrt(acc) : pow(acc, 1 / normType);
          coef = clamp(div(maxNorm, add(total, 1e-6)), -Infinity, 1);
        },
      );
      return total ?? Tensor.fromArray([0], [], 'f32', 'clipGradNorm');
    }),
  );
}

/**
 * The joint 2-norm of the gradients as a scalar tensor (no readback, gradients untouched): what a
 * recipe reads with its loss to stop on a NaN/Inf gradient before it reaches a checkpoint.
 */
export function gradNorm(params: readonly Tensor[]): Tensor {
  return noGrad(() =>
    tidy(() => {
      const grads = params.filter((p) => p.grad).map((p) => p.grad!);
      if (grads.length === 0) return Tensor.fromArray([0], [], 'f32', 'gradNorm');
      const pack = packFlat(grads, 'gradNorm', true);
      let acc: Tensor | null = null;
      for (const s of pack.slabs) {
        const part = sum(mul(s, s));
        acc = acc ? add(acc, part) : part;
      }
      const total = sqrt(acc!);
      for (const t of [...pack.windows, ...pack.slabs]) t.dispose();
      return total;
    }),
  );
}

/** Clamps every gradient element to [-clipValue, clipValue]. */
export function clipGradValue(params: readonly Tensor[], clipValue: number): void {
  if (!(clipValue >= 0)) throw new Error(`clipGradValue: clipValue must be non-negative, got ${clipValue}`);
  noGrad(() => rewriteGrads(params, 'clipGradValue', (slab) => clamp(slab, -clipValue, clipValue)));
}
