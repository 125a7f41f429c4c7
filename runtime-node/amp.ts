// The training step's memory and precision knobs, shared by every training recipe that has them
// (EndoExtend24 stages 2-4 and run-all, EndoKED's segmenter and its drivers): the flags --amp,
// --loss-scale, --checkpoint-blocks (declared once here, spread into each recipe's flags), passing
// them on to a stage script, and the step itself in PyTorch's AMP order (torch.cuda.amp: autocast
// forward, GradScaler around the backward; Micikevicius et al. 2018, arXiv 1710.03740) with the
// rule the non-finite guard follows under it.
import { tidy, autocast, backward, type Tensor } from '../engine/index.ts';
import { GradScaler, clipGradNorm, type Optimizer, type OptimizerOptions } from '../engine/optim/index.ts';

/**
 * The memory and precision knobs of the training recipes, spread into each one's flags. Both
 * default off, and off they change nothing: the same ops in the same order.
 */
export const TRAIN_STEP_FLAGS = {
  amp: {
    type: 'boolean',
    default: false,
    help:
      'mixed precision: forward and loss under autocast (f16 matmuls, f32 master weights) with dynamic ' +
      'loss scaling; needs shader-f16 (without it the run says so and continues in f32)',
  },
  lossScale: {
    type: 'number',
    default: 2 ** 16,
    min: 1,
    max: 2 ** 64,
    help: 'initial loss scale under --amp (halved on each overflow, doubled after 2000 clean steps)',
  },
  checkpointBlocks: {
    type: 'boolean',
    default: false,
    help: 'recompute each transformer block in the backward instead of keeping its activations (memory for time)',
  },
} as const;

/** The TRAIN_STEP_FLAGS of a parsed config as arguments for a stage script (drivers pass them on). */
export function trainStepArgs(f: { amp: boolean; lossScale: number; checkpointBlocks: boolean }): string[] {
  return [
    ...(f.amp ? ['--amp', '--loss-scale', String(f.lossScale)] : []),
    ...(f.checkpointBlocks ? ['--checkpoint-blocks'] : []),
  ];
}

/** Whether --amp can run here, and the one line that says what it does (null without --amp). */
export function ampMode(amp: boolean, hasF16: boolean, lossScale: number): { on: boolean; note: string | null } {
  if (!amp) return { on: false, note: null };
  if (!hasF16)
    return {
      on: false,
      note: '--amp is off: this adapter lacks shader-f16 (no f16 kernels), so the run trains in f32',
    };
  return { on: true, note: `--amp: f16 matmuls and convolutions under autocast, loss scale from ${lossScale}` };
}

export interface StepResult {
  loss: number;
  /** The gradients' joint 2-norm before clipping (inf/NaN on an overflow). */
  norm: number;
  /** The loss scaler found inf/NaN gradients and skipped the optimizer step. */
  skipped: boolean;
  /** The loss scale this step ran at (before the scaler adjusted it). */
  scale: number;
}

/** A step whose loss and gradient norm are still on the device (the caller reads them back). */
export interface DeferredStep {
  loss: Tensor;
  norm: Tensor;
  skipped: boolean;
  scale: number;
}

/** The loss scaler's part of a resumable training state. */
export interface ScalerState {
  scale: number;
  growthTracker: number;
  skippedSteps: number;
}

/**
 * One optimiser step, in f32 or under --amp (PyTorch's AMP order): the loss under autocast, backward
 * of loss * S, gradients divided by S (and checked for inf/NaN), clipping on the true gradients, the
 * step unless a gradient overflowed, then the scale's update. Without --amp the scaler is disabled:
 * no scaling and no readback, the f32 step as before.
 */
export class TrainStep {
  readonly amp: boolean;
  readonly scaler: GradScaler;

  constructor(flags: { amp: boolean; lossScale: number }, hasF16: boolean, log: (line: string) => void = console.log) {
    const mode = ampMode(flags.amp, hasF16, flags.lossScale);
    if (mode.note) log(mode.note);
    this.amp = mode.on;
    this.scaler = new GradScaler({ enabled: this.amp, initScale: flags.lossScale });
  }

  /** Runs lossFn (inside tidy and, under --amp, autocast), backward, clipping by norm and the step. */
  async run(
    optimizer: Optimizer<OptimizerOptions>,
    params: readonly Tensor[],
    clip: number,
    lossFn: () => Tensor,
  ): Promise<StepResult> {
    const r = await this.runDeferred(optimizer, lossFn, () => clipGradNorm(params, clip));
    const [lv, nv] = await Promise.all([r.loss.item(), r.norm.item()]);
    r.loss.dispose();
    r.norm.dispose();
    return { loss: lv, norm: nv, skipped: r.skipped, scale: r.scale };
  }

  /**
   * The step with the caller's clipping (`clip` clips the gradients and returns their norm before
   * clipping), leaving loss and norm on the device. Without --amp nothing is read back, so a caller
   * can batch the readbacks of several steps; under --amp the scaler's overflow check reads one
   * scalar back (PyTorch's scaler.step synchronises the same way).
   */
  async runDeferred(
    optimizer: Optimizer<OptimizerOptions>,
    lossFn: () => Tensor,
    clip: () => Tensor,
  ): Promise<DeferredStep> {
    const scale = this.scaler.getScale();
    const loss = tidy(() => {
      const l = autocast(lossFn, { enabled: this.amp });
      backward(this.scaler.scale(l));
      return l;
    });
    // Before clipping, so the true gradients are clipped (a no-op when --amp is off).
    await this.scaler.unscale_(optimizer);
    const norm = clip();
    const stepped = await this.scaler.step(optimizer);
    this.scaler.update();
    optimizer.zeroGrad();
    return { loss, norm, skipped: !stepped, scale };
  }

  /**
   * What the non-finite guard (checkStep) must see. The loss always: a NaN/inf loss is a diverged
   * run under --amp too. The gradient norm unless the scaler skipped an overflow: inf/NaN gradients
   * at a scale S > 1 are the scaled f16 backward overflowing, which the scaler handles (skip,
   * halve S). At S <= 1 nothing was scaled up, so the gradients are non-finite in themselves and
   * the run stops like an f32 run. `suffix` tells several steps apart in one check (' at rate 1').
   */
  guarded(r: StepResult, suffix = ''): Record<string, number> {
    const loss = { [`loss${suffix}`]: r.loss };
    return r.skipped && r.scale > 1 ? loss : { ...loss, [`gradient norm${suffix}`]: r.norm };
  }

  /**
   * A line for an overflow step (null otherwise), to print; call it before the next step (it reads
   * the scaler's count and scale now). `step` may say more: '4 (rate 0.75)'.
   */
  overflowNote(step: number | string, r: Pick<StepResult, 'skipped' | 'scale'>): string | null {
    if (!r.skipped) return null;
    return (
      `step ${step}: gradients overflowed at loss scale ${r.scale}: step skipped ` +
      `(${this.scaler.skippedSteps} so far), scale now ${this.scaler.getScale()}`
    );
  }

  /** For the progress bar: the scale and skipped steps under --amp, '' in f32. */
  status(): string {
    return this.amp ? ` scale ${this.scaler.getScale()} skipped ${this.scaler.skippedSteps}` : '';
  }

  /** The scaler's state for the training checkpoint (undefined without --amp: the f32 state is unchanged). */
  stateDict(): ScalerState | undefined {
    if (!this.amp) return undefined;
    return { ...this.scaler.stateDict(), skippedSteps: this.scaler.skippedSteps };
  }

  /** Restores a saved scaler (a state written without --amp has none: the scaler starts afresh). */
  loadStateDict(s: ScalerState | undefined, source: string): void {
    if (!this.amp || s === undefined) return;
    if (!(typeof s === 'object' && s !== null && Number.isFinite(s.scale) && Number.isInteger(s.skippedSteps)))
      throw new Error(
        `${source}: extra.scaler is ${JSON.stringify(s)}, not a loss scaler's state; the file is corrupt`,
      );
    this.scaler.loadStateDict({ scale: s.scale, growthTracker: s.growthTracker });
    this.scaler.skippedSteps = s.skippedSteps;
  }
}
