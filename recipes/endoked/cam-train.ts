// EndoKED stage 3 (03-cam.ts): the ToCo CAM classifier and its training loop. The model
// (models/toco.ts: EVA-02 trunk, GMP, bias-free 1x1 classifier + aux classifier) learns image labels
// with MLSM(cls) + MLSM(cls_aux) + ptcWeight * PTC(x4); PTC's token labels come from the aux CAM of a
// separate no-grad, no-flip pass at ptcScales (ToCo: multi-scale aux CAM refined by PAR). AdamW with
// the classifiers at 10x the backbone's lr and ToCo's poly schedule with warm-up; random horizontal
// flips. Resumable (state.safetensors); a non-finite loss stops before any checkpoint.
// Spec: recipes/endoked/README.md §3 "Model", recipes/SPEC.md §4 (ToCo-µ).
// Reference: rulixiang/ToCo (train loop, lr groups), zwyang6/ENDOKED scripts/dist_train_seg_neg_ALL.py.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdamW,
  DataOrder,
  Loader,
  RandomSampler,
  add,
  backward,
  defaultGenerator,
  interpolate,
  loadWeights,
  manualSeed,
  mul,
  multilabelSoftMarginLoss,
  noGrad,
  polyWarmupFactor,
  restoreTrainState,
  tensor,
  tidy,
  trainStateBytes,
  weightsBytes,
} from '../../engine/index.ts';
import { TocoCam, tocoConfig, ptcLoss, ptcLabels, multiScaleCam, type TocoConfig } from '../../models/toco.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { fail, type Frame } from './cam-pool.ts';
import { flipBatch, toChw, type Cached } from './cam-frames.ts';

export interface ModelOptions {
  size: number;
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  seed: number;
}

/** The seeded ToCo-µ model at `size`², its encoder from MIM weights when `initPath` is given. */
export function createModel(f: ModelOptions, initPath: string | null): { model: TocoCam; cfg: TocoConfig } {
  manualSeed(f.seed);
  const cfg = tocoConfig('mu', {
    imgSize: f.size,
    patchSize: f.patch,
    embedDim: f.dim,
    depth: f.depth,
    numHeads: f.heads,
  });
  const model = new TocoCam(cfg);
  if (initPath) {
    if (!existsSync(initPath)) fail('init', `"${initPath}" does not exist`);
    const r = loadWeights(model.encoder, new Uint8Array(readFileSync(initPath)), { strict: false, source: initPath });
    if (r.missingKeys.length)
      fail(
        'init',
        `${initPath} lacks encoder keys, e.g. ${r.missingKeys.slice(0, 3).join(', ')} (expected Eva02Mim ` +
          `keys at the same size)`,
      );
    console.log(`init: encoder from ${initPath} (${r.unexpectedKeys.length} keys unused)`);
  }
  return { model, cfg };
}

export interface TrainOptions extends ModelOptions {
  steps: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  warmup: number;
  ptcWeight: number;
  ptcScales: number[];
  ptcLow: number;
  ptcHigh: number;
  ckptEvery: number;
  maxMinutes?: number;
  resume: boolean;
}

/** Where training stands: steps done, the loss of each step and the seconds spent. */
export interface TrainRecord {
  step: number;
  losses: number[];
  ptcs: number[];
  seconds: number;
}

interface Extra {
  step: number;
  losses: number[];
  ptc: number[];
  seconds: number;
  size: number;
  dim: number;
  depth: number;
  patch: number;
}

/**
 * Trains `model` on `trainSet` up to `f.steps` (resuming from `outDir`/state.safetensors), then puts
 * it in eval mode. Returns the record of every step so far, this run's and the resumed ones'.
 */
export async function trainCam(
  f: TrainOptions,
  model: TocoCam,
  trainSet: readonly Frame[],
  cache: Map<string, Cached>,
  outDir: string,
): Promise<TrainRecord> {
  const S = f.size;
  const heads = [model.classifier.weight, model.aux_classifier.weight];
  const optimizer = new AdamW(
    [
      { params: model.encoder.parameters(), name: 'backbone' },
      { params: heads, lr: 10 * f.lr, name: 'classifiers' },
    ],
    { lr: f.lr, weightDecay: f.weightDecay },
  );
  const order = new DataOrder(new RandomSampler(trainSet.length), {
    batchSize: Math.min(f.batchSize, trainSet.length),
    seed: f.seed,
  });
  console.log(
    `model: ToCo on EVA-02 (D ${f.dim}, depth ${f.depth}, patch ${f.patch}, ${S}²), ` +
      `${(model.numParameters() / 1e6).toFixed(3)}M parameters`,
  );

  const statePath = join(outDir, 'state.safetensors');
  let step = 0,
    losses: number[] = [],
    ptcs: number[] = [],
    seconds = 0;
  const saved = f.resume ? readIfExists(statePath) : null;
  if (saved) {
    const r = restoreTrainState<Extra>(saved, { model, optimizer, generator: defaultGenerator }, statePath);
    const e = r.extra;
    if (e.size !== S || e.dim !== f.dim || e.depth !== f.depth || e.patch !== f.patch)
      fail(
        'out',
        `${statePath} is from a run with size ${e.size}, dim ${e.dim}, depth ${e.depth}, patch ` +
          `${e.patch}; use another --out or --no-resume`,
      );
    ({ step, losses, seconds } = e);
    ptcs = e.ptc;
    order.loadStateDict(r.data!);
    console.log(`resumed from ${statePath} at step ${step}`);
  }
  const flipRng = defaultGenerator;
  const loader = new Loader({
    order,
    prefetch: 2,
    load: async (i: number) => ({ img: cache.get(trainSet[i].path)!, label: trainSet[i].label }),
    collate: (items: { img: Cached; label: number }[]) => ({
      x: toChw(
        items.map((t) => t.img.data),
        S,
      ),
      y: items.map((t) => t.label),
    }),
  });
  mkdirSync(outDir, { recursive: true });
  const checkpoint = async () => {
    const extra: Extra = { step, losses, ptc: ptcs, seconds, size: S, dim: f.dim, depth: f.depth, patch: f.patch };
    writeAtomic(
      statePath,
      await trainStateBytes({ model, optimizer, generator: defaultGenerator, data: loader.stateDict(), extra }),
    );
  };

  const deadline = f.maxMinutes ? performance.now() + f.maxMinutes * 60_000 : Infinity;
  if (step < f.steps) {
    const bar = new Progress({ total: f.steps, label: 'train', unit: 'step' });
    bar.set(step);
    const grid = [S / f.patch, S / f.patch] as [number, number];
    while (step < f.steps && performance.now() < deadline) {
      const t0 = performance.now();
      const { data } = await loader.next();
      const b = data.y.length;
      const u = flipRng.uniform([b], 0, 1);
      const flips = await u.data(); // horizontal flip per image, p = 0.5
      u.dispose();
      const xs = flipBatch(data.x, b, S, flips);
      const x = tensor(xs, [b, 3, S, S]),
        y = tensor(data.y, [b, 1]);
      model.train();
      // Token labels for PTC from a no-grad aux-CAM pass (ToCo: multi_scale_cam2 then PAR).
      const camTok = noGrad(() =>
        tidy(() =>
          interpolate(multiScaleCam(model, x, { scales: f.ptcScales, flip: false }).camAux, {
            size: grid,
            mode: 'bilinear',
            alignCorners: false,
          }),
        ),
      );
      const camVals = (await camTok.data()) as Float32Array;
      camTok.dispose();
      const n = grid[0] * grid[1];
      const labels = ptcLabels(
        Array.from({ length: b }, (_, k) => camVals.subarray(k * n, (k + 1) * n)),
        data.y,
        f.ptcLow,
        f.ptcHigh,
      );
      optimizer.scaleLr(polyWarmupFactor(step, { warmupSteps: f.warmup, maxSteps: f.steps }));
      const [loss, ptc] = tidy(() => {
        const o = model.forward(x);
        const p = ptcLoss(o.x4, labels);
        const l = add(
          add(multilabelSoftMarginLoss(o.cls, y), multilabelSoftMarginLoss(o.clsAux, y)),
          mul(p, f.ptcWeight),
        );
        backward(l);
        return [l, p];
      });
      const value = await loss.item(),
        ptcValue = await ptc.item();
      loss.dispose();
      ptc.dispose();
      x.dispose();
      y.dispose();
      if (!Number.isFinite(value))
        throw new Error(
          `03-cam: the loss became ${value} at step ${step}; stopping before any checkpoint (try a lower --lr)`,
        );
      optimizer.step();
      optimizer.zeroGrad();
      losses.push(value);
      ptcs.push(ptcValue);
      step++;
      seconds += (performance.now() - t0) / 1000;
      bar.tick(1, `loss ${value.toFixed(4)} ptc ${ptcValue.toFixed(3)}`);
      if (step % f.ckptEvery === 0 || step === f.steps) await checkpoint();
    }
    if (step < f.steps) {
      await checkpoint();
      console.log(`stopped at step ${step} after --max-minutes ${f.maxMinutes}; run again to continue`);
    }
  } else console.log(`already trained to step ${step}; making boxes only`);
  optimizer.dispose();
  model.eval();
  return { step, losses, ptcs, seconds };
}

/** cam.safetensors (the model and its config) and loss.png (total and PTC loss, with means of 20). */
export async function writeModelAndLossPlot(
  outDir: string,
  model: TocoCam,
  cfg: TocoConfig,
  rec: TrainRecord,
  ptcWeight: number,
  S: number,
): Promise<void> {
  writeAtomic(
    join(outDir, 'cam.safetensors'),
    await weightsBytes(model, { model: 'toco_cam', config: JSON.stringify(cfg) }),
  );
  const smooth = (v: number[]) => plot.movingAverage(v, 20);
  await writeChartPng(
    join(outDir, 'loss.png'),
    plot.lineChart(
      [
        { name: 'total loss', y: rec.losses, color: [170, 190, 215] },
        { name: 'total, mean of 20', y: smooth(rec.losses), color: [31, 119, 180] },
        { name: 'PTC, mean of 20', y: smooth(rec.ptcs), color: [255, 127, 14] },
      ],
      { title: `ToCo CAM classifier ${S}x${S}: MLSM + MLSM(aux) + ${ptcWeight} PTC`, xLabel: 'step', yLabel: 'loss' },
    ),
  );
}
