// Dynamic loss scaling for f16 training, as PyTorch's torch.cuda.amp.GradScaler (Micikevicius et
// al. 2018, "Mixed Precision Training", arXiv 1710.03740, section 3.2): the loss is multiplied by
// a scale S before backward, so small gradients survive the f16 matmuls of the backward instead of
// flushing to zero; before the optimizer step the gradients are divided by S. If any gradient is
// inf or NaN (S was too large: an f16 product overflowed), the step is skipped and S is multiplied
// by backoffFactor; after growthInterval clean steps in a row S is multiplied by growthFactor.
//
//   const scaler = new GradScaler();
//   backward(scaler.scale(loss));
//   await scaler.step(opt);   // unscales, steps unless a gradient overflowed
//   scaler.update();          // adjusts the scale
//
// The overflow test reads one scalar back per step (PyTorch's step() synchronises the same way):
// the joint 2-norm of the gradients (clip.ts gradNorm: a few dispatches for all of them) is finite
// exactly when every gradient is, short of squares overflowing f32 (gradients beyond ~1.8e19).
import { Tensor, noGrad } from '../tensor.ts';
import { mul } from '../ops/index.ts';
import { gradNorm } from './clip.ts';
import type { Optimizer, OptimizerOptions } from './optimizer.ts';

export interface GradScalerOptions {
  initScale: number;
  growthFactor: number;
  backoffFactor: number;
  /** Clean steps in a row before the scale grows. */
  growthInterval: number;
  /** false: scale() is the identity and step() always steps (one code path for f32 and f16 runs). */
  enabled: boolean;
}

export interface GradScalerState {
  scale: number;
  growthTracker: number;
}

const DEFAULTS: GradScalerOptions = {
  initScale: 2 ** 16,
  growthFactor: 2,
  backoffFactor: 0.5,
  growthInterval: 2000,
  enabled: true,
};

type AnyOptimizer = Optimizer<OptimizerOptions>;

export class GradScaler {
  readonly opts: GradScalerOptions;
  private scaleValue: number;
  private growthTracker = 0;
  /** Per optimizer in this iteration: whether its grads were unscaled, and whether one overflowed. */
  private readonly unscaled = new Map<AnyOptimizer, boolean>();
  /** Steps skipped so far (a recipe logs it). */
  skippedSteps = 0;

  constructor(opts: Partial<GradScalerOptions> = {}) {
    this.opts = { ...DEFAULTS, ...opts };
    const o = this.opts;
    if (!(o.initScale > 0 && Number.isFinite(o.initScale)))
      throw new Error(`GradScaler: initScale must be positive, got ${o.initScale}`);
    if (!(o.growthFactor > 1)) throw new Error(`GradScaler: growthFactor must exceed 1, got ${o.growthFactor}`);
    if (!(o.backoffFactor > 0 && o.backoffFactor < 1))
      throw new Error(`GradScaler: backoffFactor must lie in (0, 1), got ${o.backoffFactor}`);
    if (!(Number.isInteger(o.growthInterval) && o.growthInterval >= 1))
      throw new Error(`GradScaler: growthInterval must be a positive integer, got ${o.growthInterval}`);
    this.scaleValue = o.initScale;
  }

  getScale(): number {
    return this.opts.enabled ? this.scaleValue : 1;
  }

  /** loss * S (differentiable), to back-propagate instead of the loss. */
  scale(loss: Tensor): Tensor {
    return this.opts.enabled ? mul(loss, this.scaleValue) : loss;
  }

  /**
   * Divides the optimizer's gradients by S and returns whether one is inf/NaN. Call it before
   * clipping gradients; step() calls it if you did not. Reads one scalar back.
   */
  async unscale_(optimizer: AnyOptimizer): Promise<boolean> {
    if (this.unscaled.has(optimizer))
      throw new Error('GradScaler.unscale_: already called for this optimizer since the last update()');
    const params = optimizer.paramGroups.flatMap((g) => g.params).filter((p) => p.grad);
    if (!this.opts.enabled) {
      this.unscaled.set(optimizer, false);
      return false;
    }
    const norm = gradNorm(params);
    const found = !Number.isFinite(await norm.item());
    norm.dispose();
    const inv = 1 / this.scaleValue;
    noGrad(() => {
      for (const p of params) {
        // Replaced, not scaled in place: one gradient tensor may back several leaves' .grad.
        const g = mul(p.grad!, inv).keep();
        p.grad!.dispose();
        p.grad = g;
      }
    });
    this.unscaled.set(optimizer, found);
    return found;
  }

  /** Unscales (unless done) and steps the optimizer unless a gradient overflowed; true if it stepped. */
  async step(optimizer: AnyOptimizer): Promise<boolean> {
    const found = this.unscaled.has(optimizer) ? this.unscaled.get(optimizer)! : await this.unscale_(optimizer);
    if (found) {
      this.skippedSteps++;
      return false;
    }
    optimizer.step();
    return true;
  }

  /** Backs off after an overflow, grows after growthInterval clean steps; call once per iteration. */
  update(): void {
    if (this.unscaled.size === 0) throw new Error('GradScaler.update: call step(optimizer) first');
    const found = [...this.unscaled.values()].some((f) => f);
    this.unscaled.clear();
    if (!this.opts.enabled) return;
    if (found) {
      this.scaleValue *= this.opts.backoffFactor;
      this.growthTracker = 0;
    } else if (++this.growthTracker === this.opts.growthInterval) {
      this.scaleValue *= this.opts.growthFactor;
      this.growthTracker = 0;
    }
  }

  stateDict(): GradScalerState {
    return { scale: this.scaleValue, growthTracker: this.growthTracker };
  }

  loadStateDict(s: GradScalerState): void {
    if (!(s.scale > 0)) throw new Error(`GradScaler.loadStateDict: scale must be positive, got ${s.scale}`);
    this.scaleValue = s.scale;
    this.growthTracker = s.growthTracker;
  }
}
