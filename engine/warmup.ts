// Warm-up: compile a model's pipelines ahead of its first real forward, asynchronously (see
// pipelines.ts for why dispatch itself compiles synchronously and how the two paths meet).
// A page calls it once after loading weights, so the first inference does not stall on
// shader compiles.
import { device, noGrad, tidy } from './tensor.ts';
import type { KernelSpec } from './pipelines.ts';

/**
 * Runs `forward` once without recording any GPU work (every tensor it makes is freed; it must
 * not read tensors back), then compiles every kernel it would have dispatched with
 * createComputePipelineAsync. Or compiles a given list of kernels. Resolves to the number of
 * pipelines compiled (0 when all were cached already).
 */
export function warmup(forward: (() => unknown) | readonly KernelSpec[]): Promise<number> {
  if (typeof forward !== 'function') return device().precompile(forward);
  return device().precompile(() =>
    noGrad(() =>
      tidy(() => {
        forward();
      }),
    ),
  );
}
