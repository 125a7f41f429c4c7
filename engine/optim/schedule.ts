// Learning-rate schedules as pure functions of the step (or epoch) t = 0, 1, 2, ...; apply one
// per step with `optimizer.setLr(lr)` (absolute lrs) or `optimizer.scaleLr(factor)` (factors of
// each group's initial lr, as torch.optim.lr_scheduler.LambdaLR). Group lrScale still applies.
// References: timm scheduler/cosine_lr.py (warm-up then cosine to lr_min, warmup_prefix=True);
// PyTorch LinearLR, CosineAnnealingLR, PolynomialLR, StepLR, LambdaLR (closed forms);
// ToCo (Ru et al. CVPR 2023, github.com/rulixiang/ToCo utils/optimizer.py PolyWarmupAdamW).

export interface CosineOptions {
  baseLr: number;
  /** Steps of the whole schedule, warm-up included. */
  totalSteps: number;
  warmupSteps?: number;
  /** lr at t = 0 of the warm-up (timm's warmup_lr_init). */
  warmupLr?: number;
  /** lr at the end of the cosine and after it (timm's lr_min). */
  minLr?: number;
}

/**
 * lr at step t: linear from warmupLr to baseLr over warmupSteps, then a half cosine from baseLr
 * to minLr over the remaining totalSteps - warmupSteps, then minLr.
 */
export function cosineLr(t: number, o: CosineOptions): number {
  const { baseLr, totalSteps, warmupSteps = 0, warmupLr = 0, minLr = 0 } = o;
  if (t < warmupSteps) return warmupLr + ((baseLr - warmupLr) * t) / warmupSteps;
  const span = totalSteps - warmupSteps;
  if (span <= 0) return minLr;
  const u = Math.min(t - warmupSteps, span) / span;
  return minLr + 0.5 * (baseLr - minLr) * (1 + Math.cos(Math.PI * u));
}

export interface PolyWarmupOptions {
  warmupSteps: number;
  maxSteps: number;
  /** Factor at t = 0 (ToCo: 1e-6). */
  warmupRatio?: number;
  power?: number;
}

/**
 * ToCo's PolyWarmupAdamW factor of the initial lr at step t: 1 - (1 - t/warmup)(1 - ratio) during
 * warm-up, then (1 - t/maxSteps)^power; from maxSteps on it keeps its last value (ToCo stops
 * updating the lr there).
 */
export function polyWarmupFactor(t: number, o: PolyWarmupOptions): number {
  const { warmupSteps, maxSteps, warmupRatio = 1e-6, power = 0.9 } = o;
  const s = t >= maxSteps ? Math.max(0, maxSteps - 1) : t;
  if (s < warmupSteps) return 1 - (1 - s / warmupSteps) * (1 - warmupRatio);
  return (1 - s / maxSteps) ** power;
}

/** StepLR: gamma^floor(epoch / stepSize). */
export function stepFactor(epoch: number, o: { stepSize: number; gamma?: number }): number {
  return (o.gamma ?? 0.1) ** Math.floor(epoch / o.stepSize);
}

/** LambdaLR: the factor is fn(epoch), e.g. EndoExtend24's epoch => 0.95 ** (epoch / 2). */
export function lambdaFactor(epoch: number, fn: (epoch: number) => number): number {
  return fn(epoch);
}
