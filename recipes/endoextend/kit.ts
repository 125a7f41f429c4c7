// What the EndoExtend24 recipes share: the `--data` switch to the real-data flags, the EVA-02 size
// presets they choose from, loading image-classification records into batches, evaluation
// (softmax probabilities for every record), checkpoint paths, and the training step with its
// memory/precision knobs (--amp, --checkpoint-blocks). Each recipe stays a script you read top to
// bottom; this file only keeps them from repeating each other.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  tensor,
  tidy,
  noGrad,
  softmax,
  type Tensor,
  parseSafetensors,
  loadWeights,
  autocast,
  backward,
} from '../../engine/index.ts';
import { GradScaler, clipGradNorm, type Optimizer, type OptimizerOptions } from '../../engine/optim/index.ts';
import { Loader, imagesToChw, DataOrder, type Sampler, type Batch } from '../../engine/data/index.ts';
import { decodeImageResized } from '../../runtime-node/image.ts';
import type { ImageRecord } from '../../runtime-node/datasets.ts';
import { eva02Config, type Eva02, type Eva02Config } from '../../models/eva02.ts';
import { timmKeyMap } from '../../models/eva02-mim.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The value of `--data` in argv ('synthetic' when absent): real-data runs have their own flags. */
export function dataFlag(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--data') return argv[i + 1] ?? '';
    if (argv[i].startsWith('--data=')) return argv[i].slice('--data='.length);
  }
  return 'synthetic';
}

/** The model sizes a recipe can pick: µ runs on a CPU driver in minutes, the rest want a GPU. */
export const SIZES = ['mu', 'ti', 's', 'b', 'l'] as const;

export function modelConfig(size: string, numClasses: number, imgSize?: number): Eva02Config {
  if (!(SIZES as readonly string[]).includes(size))
    throw new Error(`unknown model size '${size}' (${SIZES.join(', ')})`);
  const cfg = eva02Config(size as 'mu', { numClasses });
  return imgSize ? { ...cfg, imgSize } : cfg;
}

export function imageSizeOf(cfg: Eva02Config): number {
  return typeof cfg.imgSize === 'number' ? cfg.imgSize : cfg.imgSize[0];
}

export interface ClassBatch {
  x: Float32Array;
  y: Int32Array;
  n: number;
  size: number;
}

/** A prefetching loader of decoded, resized images in [0, 1] and their labels. */
export function classificationLoader(
  records: readonly ImageRecord[],
  o: { size: number; batchSize: number; sampler: Sampler; seed: number; prefetch?: number },
): Loader<{ img: Awaited<ReturnType<typeof decodeImageResized>>; label: number }, ClassBatch> {
  const order = new DataOrder(o.sampler, {
    batchSize: o.batchSize,
    seed: o.seed,
    dropLast: o.sampler.numSamples > o.batchSize,
  });
  return new Loader({
    order,
    prefetch: o.prefetch ?? 2,
    load: async (i: number) => ({
      img: await decodeImageResized(records[i].imagePath, o.size, o.size),
      label: records[i].label ?? -1,
    }),
    collate: (items, _b: Batch) => ({
      x: imagesToChw(items.map((it) => it.img)).data,
      y: Int32Array.from(items.map((it) => it.label)),
      n: items.length,
      size: o.size,
    }),
  });
}

/** Images of a batch as a tensor [n, 3, size, size]. */
export function batchImages(b: ClassBatch): Tensor {
  return tensor(b.x, [b.n, 3, b.size, b.size]);
}

/** ImageNet normalisation (the EVA-02 recipes' evaluation transform after resize). */
export const IMAGENET = {
  mean: [0.485, 0.456, 0.406] as [number, number, number],
  std: [0.229, 0.224, 0.225] as [number, number, number],
};

export function normalize(x: Float32Array, size: number): Float32Array {
  const hw = size * size,
    out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / hw) % 3;
    out[i] = (x[i] - IMAGENET.mean[c]) / IMAGENET.std[c];
  }
  return out;
}

/** Softmax probabilities [n * C] for every record, in order (eval mode, no grad). */
export async function predict(
  model: { forward(x: Tensor): Tensor; eval(): unknown; train(on?: boolean): unknown },
  records: readonly ImageRecord[],
  numClasses: number,
  size: number,
  batchSize: number,
  onBatch?: (done: number) => void,
): Promise<Float32Array> {
  model.eval();
  const out = new Float32Array(records.length * numClasses);
  for (let start = 0; start < records.length; start += batchSize) {
    const chunk = records.slice(start, start + batchSize);
    const imgs = await Promise.all(chunk.map((r) => decodeImageResized(r.imagePath, size, size)));
    const x = normalize(imagesToChw(imgs).data, size);
    const p = tidy(() => noGrad(() => softmax(model.forward(tensor(x, [chunk.length, 3, size, size])), -1)));
    out.set(await p.data(), start * numClasses);
    p.dispose();
    onBatch?.(start + chunk.length);
  }
  model.train();
  return out;
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

export { join };

export type History = {
  epoch: number;
  loss: number;
  balancedAccuracy: number;
  macroAuc: number;
  macroF1: number;
  lr: number;
}[];

/**
 * Loads a stage's weights into a classifier. 'none': keep the random init. 'mim': stage 2's MIM
 * student, with timm's renaming (final norm -> fc_norm; mask token and LM head dropped), the head
 * stays random. 'ee24': stage 3's EE24 classifier (same 10 classes, so the head is kept, as in
 * the paper). Anything else: a safetensors path, loaded without the head if its shape differs
 * (a MIM student is recognised by its metadata and renamed as for 'mim').
 * Returns a note for the logs.
 */
export function loadInit(model: Eva02, init: string, out: string, opts: { allowNonFinite?: boolean } = {}): string {
  if (init === 'none') return 'random initialisation (from scratch)';
  const path =
    init === 'mim'
      ? join(out, 'mim', 'mim.safetensors')
      : init === 'ee24'
        ? join(out, 'ee24', 'best.safetensors')
        : init;
  const stage =
    init === 'mim'
      ? 'recipes/endoextend/02-mim-pretrain.ts'
      : init === 'ee24'
        ? 'recipes/endoextend/03-supervised-pretrain.ts'
        : 'a stage that writes it';
  if (!existsSync(path)) throw new Error(`${path} does not exist: run ${stage} first (or pass --init none)`);
  const bytes = new Uint8Array(readFileSync(path));
  // A MIM student (stage 2 writes stage: 'mim' in its metadata) needs timm's renaming wherever it lives.
  const isMim = init === 'mim' || parseSafetensors(bytes).metadata?.stage === 'mim';
  const load = () =>
    loadWeights(model, bytes, {
      source: path,
      allowUnexpected: true, // e.g. the MIM student's own head
      mapKey: isMim ? (k) => timmKeyMap(k, { qkvFused: model.cfg.qkvFused, toClassifier: true }) : undefined,
      keep: (k) => k.startsWith('head.'), // another number of classes: keep the new head
      reshape: true,
      allowNonFinite: opts.allowNonFinite,
    });
  let r: ReturnType<typeof load>;
  try {
    r = load();
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    throw new Error(/NaN\/Infinity/.test(text) ? `${text}; rerun ${stage}, or pass --init none` : text);
  }
  const fresh = r.kept.map((k) => k.key);
  return `${path} (${r.loaded} tensors${fresh.length ? `; new: ${fresh.join(', ')}` : ''})`;
}

// ---- the training step: mixed precision and activation checkpointing --------------------------

/**
 * The memory and precision knobs of the training recipes (02 MIM, 04 fine-tune), spread into each
 * one's flags. Both default off, and off they change nothing: the same ops in the same order.
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
  return { on: true, note: `--amp: f16 matmuls under autocast, loss scale from ${lossScale}` };
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

  /** Runs lossFn (inside tidy and, under --amp, autocast), backward, clipping and the step. */
  async run(
    optimizer: Optimizer<OptimizerOptions>,
    params: readonly Tensor[],
    clip: number,
    lossFn: () => Tensor,
  ): Promise<StepResult> {
    const scale = this.scaler.getScale();
    const loss = tidy(() => {
      const l = autocast(lossFn, { enabled: this.amp });
      backward(this.scaler.scale(l));
      return l;
    });
    // Before clipping, so the true gradients are clipped (a no-op when --amp is off).
    await this.scaler.unscale_(optimizer);
    const norm = clipGradNorm(params, clip);
    const stepped = await this.scaler.step(optimizer);
    this.scaler.update();
    optimizer.zeroGrad();
    const [lv, nv] = await Promise.all([loss.item(), norm.item()]);
    loss.dispose();
    norm.dispose();
    return { loss: lv, norm: nv, skipped: !stepped, scale };
  }

  /**
   * What the non-finite guard (checkStep) must see. The loss always: a NaN/inf loss is a diverged
   * run under --amp too. The gradient norm unless the scaler skipped an overflow: inf/NaN gradients
   * at a scale S > 1 are the scaled f16 backward overflowing, which the scaler handles (skip,
   * halve S). At S <= 1 nothing was scaled up, so the gradients are non-finite in themselves and
   * the run stops like an f32 run.
   */
  guarded(r: StepResult): Record<string, number> {
    return r.skipped && r.scale > 1 ? { loss: r.loss } : { loss: r.loss, 'gradient norm': r.norm };
  }

  /** A line for an overflow step (null otherwise), to print. */
  overflowNote(step: number, r: StepResult): string | null {
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
