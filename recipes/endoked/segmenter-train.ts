// The training side of the segmenter recipe (05-segmenter.ts, spec §2.5; [K] zwyang6/ENDOKED
// EndoKED_SEG/Train.py = DengPingFan/Polyp-PVT): Polyp-PVT with optional PVTv2 backbone weights,
// AdamW on every parameter, the multi-rate loop (each batch at rates 0.75 / 1 / 1.25 of the
// training size, one zero_grad / forward / backward / clamp / step per rate, each through
// runtime-node/amp.ts's TrainStep: f32, or --amp's autocast and loss scaler), resumable atomic
// checkpoints (with the scaler's state under --amp), and the guards: every rate's loss and
// gradient norm is checked before a checkpoint is written, Ctrl-C / SIGTERM saves after the
// current step, and a state of another model, size, batch or data is not resumed. Then the
// weights under the reference's keys and the loss curve.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  tidy,
  tensor,
  manualSeed,
  defaultGenerator,
  AdamW,
  clipGradValue,
  gradNorm,
  trainStateBytes,
  restoreTrainState,
  weightsBytes,
  loadWeights,
  interpolate,
  type DataOrder,
} from '../../engine/index.ts';
import { POLYP_PVT, polypPvt, polypPvtLoss, type PolypPVT } from '../../models/polyp-pvt.ts';
import type { DeferredStep, ScalerState, TrainStep } from '../../runtime-node/amp.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import {
  checkStep,
  checkDataIdentity,
  checkStateFields,
  RunGuardError,
  type DataIdentity,
  type RunGuard,
} from '../../runtime-node/run-guard.ts';
import type { SegSettings, TrainLoader } from './segmenter-data.ts';

/** Where training stands: saved in every checkpoint, continued on resume. */
export interface TrainProgress {
  step: number;
  /** The rate-1 loss of every step so far. */
  losses: number[];
  seconds: number;
}

interface Extra extends TrainProgress {
  config: string;
  modelPreset: string;
  trainSize: number;
  batchSize: number;
  dataIdentity?: DataIdentity;
  /** The loss scaler under --amp (absent from an f32 run's state). */
  scaler?: ScalerState;
}

/** Polyp-PVT (seeded), its backbone from --init when given, and AdamW. */
export function buildModel(s: SegSettings): { model: PolypPVT; optimizer: AdamW } {
  manualSeed(s.seed);
  // --checkpoint-blocks: the PVTv2 blocks recompute in the backward (pvtv2.ts forwardFeatures,
  // training only); a copy of the preset's backbone config, which the other models share.
  const backbone = { ...POLYP_PVT[s.modelPreset].backbone, checkpointBlocks: true };
  const model = polypPvt(s.modelPreset, s.checkpointBlocks ? { backbone } : {});
  model.flattenParameters();
  if (s.initPath) {
    const r = loadWeights(model.backbone, new Uint8Array(readFileSync(s.initPath)), {
      strict: false,
      source: s.initPath,
    });
    console.log(
      `init: backbone from ${s.initPath} (${r.missingKeys.length} missing, ${r.unexpectedKeys.length} unexpected keys)`,
    );
    if (r.missingKeys.length)
      throw new RunGuardError(`${s.initPath}: backbone keys missing, e.g. ${r.missingKeys.slice(0, 3).join(', ')}`);
  }
  const optimizer = new AdamW(model.parameters(), { lr: s.lr, weightDecay: s.weightDecay });
  console.log(
    `model: Polyp-PVT ${s.modelPreset}, ${(model.numParameters() / 1e6).toFixed(2)}M parameters; sizes ` +
      `${s.scaledSizes.join('/')}, batch ${s.batchSize}`,
  );
  return { model, optimizer };
}

export const statePathOf = (s: SegSettings) => join(s.outDir, 'state.safetensors');

/**
 * Restores model, optimizer, RNG and data order from <out>/state.safetensors (with --resume,
 * when present) after checking it was trained on the same model, size, batch and data.
 */
export function resumeState(
  s: SegSettings,
  { model, optimizer, trainStep }: { model: PolypPVT; optimizer: AdamW; trainStep: TrainStep },
  order: DataOrder,
  identity: DataIdentity,
): TrainProgress {
  const statePath = statePathOf(s);
  const saved = s.resume ? readIfExists(statePath) : null;
  if (!saved) return { step: 0, losses: [], seconds: 0 };
  const r = restoreTrainState<Extra>(saved, { model, optimizer, generator: defaultGenerator }, statePath);
  checkStateFields(
    r,
    {
      'extra.step': 'number',
      'extra.losses': 'number[]',
      'extra.seconds': 'number',
      'extra.trainSize': 'number',
      'extra.batchSize': 'number',
      'extra.modelPreset': 'string',
      data: 'object',
    },
    statePath,
  );
  const e = r.extra;
  if (e.modelPreset !== s.modelPreset || e.trainSize !== s.trainSize || e.batchSize !== s.batchSize) {
    throw new RunGuardError(
      `${statePath} was written by a run with model ${e.modelPreset}, size ${e.trainSize}, batch ` +
        `${e.batchSize}; this run has ${s.modelPreset}, ${s.trainSize}, ${s.batchSize}. Use another --out ` +
        `or --no-resume.`,
    );
  }
  checkDataIdentity(e.dataIdentity, identity, statePath);
  order.loadStateDict(r.data!);
  // Under --amp the scale goes on from the state (one written without --amp starts a fresh scaler).
  trainStep.loadStateDict(e.scaler, statePath);
  // The flags rule the hyper-parameters (no schedule here): a changed --lr / --weight-decay
  // applies from this step on, and says so, instead of being silently replaced by the state's.
  for (const g of optimizer.paramGroups) {
    if (g.lr !== s.lr || g.weightDecay !== s.weightDecay)
      console.log(
        `note: ${statePath} trained with lr ${g.lr}, weight decay ${g.weightDecay}; continuing ` +
          `with --lr ${s.lr} --weight-decay ${s.weightDecay}`,
      );
    g.lr = s.lr;
    g.initialLr = s.lr;
    g.weightDecay = s.weightDecay;
  }
  console.log(`resumed from ${statePath} at step ${e.step}${trainStep.status()}`);
  return { step: e.step, losses: e.losses, seconds: e.seconds };
}

export interface TrainRun {
  model: PolypPVT;
  optimizer: AdamW;
  /** f32, or --amp's autocast and loss scaler (runtime-node/amp.ts). */
  trainStep: TrainStep;
  loader: TrainLoader;
  identity: DataIdentity;
  progress: TrainProgress;
  totalSteps: number;
  batchesPerEpoch: number;
}

/** One rate's step: loss and norm on the device, and the line to print if the scaler skipped it. */
type RateStep = DeferredStep & { rate: number; overflow: string | null };

/**
 * One batch at every rate, one optimizer step each, in PyTorch's AMP order under --amp (each
 * rate's backward of loss * S, unscale, gradient norm and clamp on the true gradients, the step
 * unless a gradient overflowed, the scale's update); returns each rate's loss and gradient norm
 * (before clamping: a NaN/Inf gradient shows there), still on the device. In f32 nothing is read
 * back here (the loop reads every rate's values at once); under --amp the scaler's overflow check
 * reads one scalar back per rate, which the next rate's scale depends on.
 */
async function multiRateStep(
  s: SegSettings,
  run: TrainRun,
  data: Awaited<ReturnType<TrainLoader['next']>>['data'],
): Promise<RateStep[]> {
  const { model, optimizer, trainStep } = run;
  const out: RateStep[] = [];
  for (const [k, size] of s.scaledSizes.entries()) {
    const step = await trainStep.runDeferred(
      optimizer,
      () => {
        let x = tensor(data.images.data, data.images.shape),
          y = tensor(data.masks.data, data.masks.shape);
        if (size !== s.trainSize) {
          // [B, C, S, S] -> [B, C, size, size]
          x = interpolate(x, { size: [size, size], mode: 'bilinear', alignCorners: true });
          y = interpolate(y, { size: [size, size], mode: 'bilinear', alignCorners: true });
        }
        return polypPvtLoss(model.forward(x), y, { faithfulBce: s.faithfulBce });
      },
      () =>
        tidy(() => {
          const n = gradNorm(model.parameters());
          clipGradValue(model.parameters(), s.clipValue);
          return n;
        }),
    );
    // Now, before the next rate moves the scaler on: the count and the scale this step left.
    const overflow = trainStep.overflowNote(`${run.progress.step} (rate ${s.rates[k]})`, step);
    out.push({ rate: s.rates[k], ...step, overflow });
  }
  return out;
}

/** Trains to run.totalSteps or --max-minutes, checkpointing every ckptEvery steps and at the end. */
export async function train(s: SegSettings, run: TrainRun, guard: RunGuard): Promise<void> {
  const p = run.progress;
  const { trainStep } = run;
  if (p.step >= run.totalSteps) {
    console.log(`already trained to step ${p.step} (>= ${run.totalSteps}); evaluating only`);
    return;
  }
  const checkpoint = async (): Promise<void> => {
    const extra: Extra = {
      step: p.step,
      losses: p.losses,
      seconds: p.seconds,
      config: s.configName,
      modelPreset: s.modelPreset,
      trainSize: s.trainSize,
      batchSize: s.batchSize,
      dataIdentity: run.identity,
      scaler: run.trainStep.stateDict(),
    };
    const { model, optimizer, loader } = run;
    writeAtomic(
      statePathOf(s),
      await trainStateBytes({ model, optimizer, generator: defaultGenerator, data: loader.stateDict(), extra }),
    );
  };
  const started = performance.now();
  const deadline = s.maxMinutes ? started + s.maxMinutes * 60_000 : Infinity;
  console.log(
    `training steps ${p.step}..${run.totalSteps} (${run.batchesPerEpoch} per epoch, ${s.rates.length} ` +
      `optimizer steps each) -> ${s.outDir}`,
  );
  const bar = new Progress({ total: run.totalSteps, label: 'train', unit: 'step' });
  bar.set(p.step);
  run.model.train();
  guard.onStop(checkpoint); // SIGINT/SIGTERM: the state after the last whole step
  while (p.step < run.totalSteps && performance.now() < deadline) {
    await guard.step(async () => {
      const t0 = performance.now();
      const { batch, data } = await run.loader.next();
      const checks = await multiRateStep(s, run, data);
      // Every rate's loss and gradient norm, before anything reaches a checkpoint: a diverging
      // 1.25 step must not be saved (the reference logs only the rate-1 loss).
      const values = await Promise.all(checks.flatMap((c) => [c.loss.item(), c.norm.item()]));
      for (const c of checks) {
        c.loss.dispose();
        c.norm.dispose();
      }
      const results = checks.map((c, k) => ({ ...c, loss: values[2 * k], norm: values[2 * k + 1] }));
      // Under --amp a gradient overflow the scaler skipped is not a divergence (TrainStep.guarded).
      checkStep(
        p.step,
        Object.assign({}, ...results.map((r) => trainStep.guarded(r, ` at rate ${r.rate}`))),
        `lower --lr (now ${s.lr}) or check the data`,
      );
      for (const r of results) if (r.overflow) console.log(r.overflow);
      const value = values[2 * s.rates.indexOf(1)]; // the reference logs the rate-1 loss
      p.losses.push(value);
      p.step++;
      p.seconds += (performance.now() - t0) / 1000;
      bar.tick(1, `epoch ${batch.epoch} loss ${value.toFixed(4)}${trainStep.status()}`);
      if (p.step % s.logEvery === 0 && !process.stderr.isTTY)
        console.log(`step ${p.step} epoch ${batch.epoch} loss ${value.toFixed(4)}`);
      if (p.step % s.ckptEvery === 0 || p.step === run.totalSteps) await checkpoint();
    });
  }
  if (p.step < run.totalSteps) {
    await checkpoint();
    console.log(`stopped at step ${p.step} after --max-minutes ${s.maxMinutes}; run again to continue`);
  }
  guard.onStop(null); // the final state is on disk; a signal from here on just exits
}

/** weights.safetensors (the model alone, the reference's keys) and loss.png (rate-1 loss, 20-step mean). */
export async function saveWeightsAndLoss(s: SegSettings, model: PolypPVT, losses: number[]): Promise<void> {
  writeAtomic(
    join(s.outDir, 'weights.safetensors'),
    await weightsBytes(model, {
      model: 'polyp_pvt',
      preset: s.modelPreset,
      // --checkpoint-blocks is how this run trained, not the model: the saved config leaves it out.
      config: JSON.stringify({ ...model.config, backbone: { ...model.config.backbone, checkpointBlocks: undefined } }),
      size: String(s.trainSize),
    }),
  );
  await writeChartPng(
    join(s.outDir, 'loss.png'),
    plot.lineChart(
      [
        { name: 'loss (rate 1)', y: losses, color: [170, 190, 215] },
        { name: 'mean of 20 steps', y: plot.movingAverage(losses, 20), color: [31, 119, 180] },
      ],
      {
        title: `Polyp-PVT ${s.modelPreset} ${s.trainSize}x${s.trainSize}: structure loss P1+P2`,
        xLabel: 'step (batch)',
        yLabel: 'loss',
      },
    ),
  );
}
