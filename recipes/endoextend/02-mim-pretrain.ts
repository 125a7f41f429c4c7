// Stage 2 of EndoExtend24: domain-adaptive masked-image-modelling pre-training of EVA-02
// (EVA-02, arXiv 2303.11331; spec §1.2): block-wise masks over ~40% of the patches, a learned
// mask token, and an LM head that regresses a frozen teacher's patch features at the masked
// positions with loss = -cosine. Optimiser as EVA-02's: AdamW (0.9, 0.98), eps 1e-6, wd 0.05,
// clipping 3.0, cosine schedule with warm-up.
//
// Consumes: unlabelled GI frames: every frame of the merged set from stage 1 (ee24.csv), plus
//   the Kvasir-SEG images when ../shared/data/kvasir-seg (or --kvasir) exists. A teacher: an
//   EVA-02 feature model from safetensors (--teacher, --teacherSize), or by default the frozen
//   random convolutional patch encoder of models/patch-teacher.ts (see its header for why).
// Produces (in --out/<tag>, default mim): mim.safetensors (the student, EVA-02 MIM keys), state.safetensors
//   (resumable), loss.png, log.json.
//
//   npx tsx recipes/endoextend/02-mim-pretrain.ts --out runs/endoextend
import { existsSync, writeFileSync } from 'node:fs';
import {
  manualSeed,
  defaultGenerator,
  narrow,
  noGrad,
  type Tensor,
  trainStateBytes,
  restoreTrainState,
  weightsBytes,
  loadWeights,
} from '../../engine/index.ts';
import { AdamW, cosineLr, paramGroupsWeightDecay } from '../../engine/optim/index.ts';
import {
  RandomSampler,
  Rng,
  MaskingGenerator,
  blockwiseMasks,
  augmentBatch,
  type AugmentConfig,
} from '../../engine/data/index.ts';
import { lineChart } from '../../runtime-node/plots.ts';
import { movingAverage } from '../../runtime-node/plot/index.ts';
import { Eva02, gridSize } from '../../models/eva02.ts';
import { Eva02Mim, mimMask } from '../../models/eva02-mim.ts';
import { PatchTeacher } from '../../models/patch-teacher.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { readEe24Csv, readKvasirSeg, type ImageRecord } from '../../runtime-node/datasets.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writePng } from '../../runtime-node/plots.ts';
import {
  startRun,
  checkStep,
  checkStateFields,
  dataIdentity,
  checkDataIdentity,
  type DataIdentity,
} from '../../runtime-node/run-guard.ts';
import {
  SIZES,
  modelConfig,
  imageSizeOf,
  classificationLoader,
  batchImages,
  ensureDir,
  join,
  REPO,
  IMAGENET,
  TRAIN_STEP_FLAGS,
  TrainStep,
  type ScalerState,
} from './kit.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';

export const FLAGS = defineFlags(
  'recipes/endoextend/02-mim-pretrain.ts',
  'Masked-image-modelling pre-training of EVA-02 on every frame of the merged set.',
  {
    out: {
      type: 'string',
      default: 'runs/endoextend',
      help: 'output folder shared by every stage (reads ee24.csv from it)',
    },
    size: {
      type: 'string',
      default: 'mu',
      choices: SIZES,
      help: 'EVA-02 size: mu (CPU driver, minutes), ti, s, b, l (GPU)',
    },
    steps: { type: 'int', default: 150, min: 1, help: 'optimiser steps' },
    batch: { type: 'int', default: 32, min: 1, max: 4096, help: 'images per step' },
    lr: {
      type: 'number',
      default: 1.5e-3,
      min: 0,
      exclusiveMin: true,
      max: 1e6,
      help: 'peak learning rate (EVA-02: 3e-3 Ti/S, 1.5e-3 B/L at batch 2048-4000)',
    },
    warmup: { type: 'int', default: 15, min: 0, help: 'linear warm-up steps' },
    minLr: { type: 'number', default: 1e-5, min: 0, help: 'cosine floor' },
    weightDecay: { type: 'number', default: 0.05, min: 0, max: 1, help: 'AdamW decoupled weight decay' },
    clip: { type: 'number', default: 3.0, min: 0, exclusiveMin: true, help: 'gradient clipping by global norm' },
    maskRatio: {
      type: 'number',
      default: 0.4,
      min: 0,
      exclusiveMin: true,
      max: 0.95,
      help: 'fraction of patches masked (block-wise)',
    },
    minBlock: {
      type: 'int',
      default: 4,
      min: 1,
      help: 'smallest mask block in patches (16 at 14x14/16x16 grids; 4 fits 8x8)',
    },
    teacher: {
      type: 'string',
      default: '',
      help: 'safetensors of an EVA-02 feature model (empty: random conv teacher)',
    },
    teacherSize: { type: 'string', default: 'mu', choices: SIZES, help: 'size preset of that teacher' },
    teacherDim: { type: 'int', default: 32, min: 1, help: 'feature size of the default teacher' },
    kvasir: {
      type: 'string',
      default: join(REPO, '..', 'shared', 'data', 'kvasir-seg'),
      help: "extra unlabelled frames when present ('' for none)",
    },
    tag: { type: 'string', default: 'mim', help: 'subfolder of this run (another teacher: another tag)' },
    checkpointEvery: { type: 'int', default: 25, min: 1, help: 'steps between resumable checkpoints' },
    seed: { type: 'int', default: 0, min: 0, help: 'seed of the model, masks, augmentation and data order' },
    ...TRAIN_STEP_FLAGS,
  },
);

export async function main(argv: string[]): Promise<{ finalLoss: number; weights: string } | null> {
  const cfg = FLAGS.parse(argv);
  if (!cfg) return null;
  const dir = ensureDir(join(cfg.out, cfg.tag));
  // writable, locked, no stale partial files
  const guard = startRun(dir, { script: 'recipes/endoextend/02-mim-pretrain.ts' });
  const dev = await initNode();

  // ---- data: unlabelled frames --------------------------------------------------------------
  const csv = join(cfg.out, 'ee24.csv');
  if (!existsSync(csv)) throw new Error(`${csv} does not exist: run recipes/endoextend/01-build-dataset.ts first`);
  const frames: ImageRecord[] = readEe24Csv(csv, {
    classMapping: join(cfg.out, 'class_mapping.json'),
    log: null,
  }).records;
  if (frames.some((f) => f.dataset === 'kvasir-seg')) {
    console.log(`MIM frames: ${frames.length} (the merged table already holds Kvasir-SEG)`);
  } else if (cfg.kvasir && existsSync(cfg.kvasir)) {
    const kv = readKvasirSeg(cfg.kvasir, { log: null }).records;
    frames.push(...kv);
    console.log(`MIM frames: ${frames.length} (${kv.length} from Kvasir-SEG at ${cfg.kvasir})`);
  } else console.log(`MIM frames: ${frames.length} (Kvasir-SEG not found at ${cfg.kvasir}; synthetic only)`);

  // ---- model, teacher, optimiser --------------------------------------------------------------
  manualSeed(cfg.seed);
  const mcfg = modelConfig(cfg.size, 0);
  const size = imageSizeOf(mcfg);
  const [gh, gw] = gridSize(mcfg);
  let teacherDim = cfg.teacherDim;
  let teacher: { forward(x: Tensor): Tensor };
  if (cfg.teacher) {
    const t = new Eva02(modelConfig(cfg.teacherSize, 0));
    // refuses NaN/Inf weights
    loadWeights(t, readIfExists(cfg.teacher) ?? new Uint8Array(), { source: cfg.teacher, strict: false });
    t.eval();
    teacherDim = t.cfg.embedDim;
    // Frozen: no graph through the teacher (backward would otherwise run through it every step).
    teacher = {
      forward: (x) =>
        noGrad(() => {
          const f = t.forwardFeatures(x);
          return narrow(f, 1, 1, f.shape[1] - 1);
        }),
    }; // drop cls: [B, 1 + L, D] -> [B, L, D]
  } else {
    teacher = new PatchTeacher(mcfg.patchSize, teacherDim);
  }
  // mcfg (saved with the weights) leaves checkpointBlocks out: it is how this run trains, not the model.
  const model = new Eva02Mim({ ...mcfg, checkpointBlocks: cfg.checkpointBlocks }, teacherDim);
  model.flattenParameters();
  const opt = new AdamW(
    paramGroupsWeightDecay(model.namedParameters(), cfg.weightDecay, ['cls_token', 'pos_embed', 'mask_token']),
    { lr: cfg.lr, betas: [0.9, 0.98], eps: 1e-6 },
  );
  const trainStep = new TrainStep(cfg, dev.hasF16);
  const masker = new MaskingGenerator({ height: gh, width: gw, maskRatio: cfg.maskRatio, minNumPatches: cfg.minBlock });
  const rngs = { mask: new Rng(cfg.seed + 1), augment: new Rng(cfg.seed + 2) };
  const augment: AugmentConfig = {
    size: [size, size],
    hflip: 0.5,
    randomResizedCrop: { scale: [0.5, 1], ratio: [3 / 4, 4 / 3] },
    normalize: IMAGENET,
  };
  const loader = classificationLoader(
    frames.map((f) => ({ ...f, label: 0 })),
    { size: Math.round(size * 1.15), batchSize: cfg.batch, sampler: new RandomSampler(frames.length), seed: cfg.seed },
  );

  // ---- resume --------------------------------------------------------------------------------
  const statePath = join(dir, 'state.safetensors');
  let step = 0;
  let losses: number[] = [];
  const identity = dataIdentity(
    { csv, kvasir: cfg.kvasir },
    { frames: frames.map((f) => ({ id: f.id, files: [f.imagePath] })) },
  );
  const saved = readIfExists(statePath);
  if (saved) {
    const r = restoreTrainState<{ step: number; losses: number[]; dataIdentity?: DataIdentity; scaler?: ScalerState }>(
      saved,
      { model, optimizer: opt, generator: defaultGenerator },
      statePath,
    );
    checkStateFields(
      r,
      {
        'extra.step': 'number',
        'extra.losses': 'number[]',
        data: 'object',
        'rngs.mask': 'object',
        'rngs.augment': 'object',
      },
      statePath,
    );
    checkDataIdentity(r.extra.dataIdentity, identity, statePath);
    ({ step, losses } = r.extra);
    loader.loadStateDict(r.data!);
    rngs.mask.setState(r.rngs!.mask);
    rngs.augment.setState(r.rngs!.augment);
    trainStep.loadStateDict(r.extra.scaler, statePath);
    console.log(`resuming MIM pre-training at step ${step}/${cfg.steps}${trainStep.status()}`);
  }

  // ---- the loop ------------------------------------------------------------------------------
  const save = async (done: number) =>
    writeAtomic(
      statePath,
      await trainStateBytes({
        model,
        optimizer: opt,
        generator: defaultGenerator,
        data: loader.stateDict(),
        rngs: { mask: rngs.mask.getState(), augment: rngs.augment.getState() },
        extra: { step: done, losses, dataIdentity: identity, scaler: trainStep.stateDict() },
      }),
    );
  let done = step; // steps completed (what Ctrl-C saves)
  guard.onStop(() => save(done));
  const bar = new Progress({ total: cfg.steps, label: 'MIM', unit: 'step' });
  bar.set(step);
  for (; step < cfg.steps; step++)
    await guard.step(async () => {
      const { data } = await loader.next();
      const masks = blockwiseMasks(masker, data.n, rngs.mask);
      opt.setLr(cosineLr(step, { baseLr: cfg.lr, totalSteps: cfg.steps, warmupSteps: cfg.warmup, minLr: cfg.minLr }));
      const r = await trainStep.run(opt, model.parameters(), cfg.clip, () => {
        const { images } = augmentBatch(batchImages(data), null, augment, rngs.augment);
        const mask = mimMask(Array.from({ length: data.n }, (_, b) => masks.subarray(b * gh * gw, (b + 1) * gh * gw)));
        const target = teacher.forward(images); // [B, L, T], frozen
        return model.loss(model.forward(images, mask), target, mask);
      });
      // before any checkpoint (an overflow the loss scaler skipped is not a divergence: see guarded())
      checkStep(step, trainStep.guarded(r), `lower --lr (now ${cfg.lr}) or check the frames`);
      const overflow = trainStep.overflowNote(step, r);
      if (overflow) console.log(overflow);
      losses.push(r.loss);
      done = step + 1;
      bar.tick(1, `loss ${r.loss.toFixed(4)}${trainStep.status()}`);
      if ((step + 1) % cfg.checkpointEvery === 0 || step + 1 === cfg.steps) await save(step + 1);
    });
  guard.onStop(null);

  // ---- outputs -------------------------------------------------------------------------------
  const weights = join(dir, 'mim.safetensors');
  writeAtomic(
    weights,
    await weightsBytes(model, { config: JSON.stringify(mcfg), teacher_dim: String(teacherDim), stage: 'mim' }),
  );
  await writePng(
    join(dir, 'loss.png'),
    lineChart(
      [
        { name: 'MIM loss (-cos)', y: losses },
        { name: 'moving average (20)', y: movingAverage(losses, 20), dash: true },
      ],
      { title: 'MIM pre-training', xLabel: 'step', yLabel: 'loss' },
    ),
  );
  const finalLoss = mean(losses.slice(-10));
  writeFileSync(
    join(dir, 'log.json'),
    JSON.stringify(
      {
        config: cfg,
        teacher: cfg.teacher || 'random conv patch teacher',
        teacherDim,
        frames: frames.length,
        losses,
        finalLoss,
        scaler: trainStep.stateDict(),
      },
      null,
      2,
    ),
  );
  guard.close();
  console.log(
    `MIM done: loss ${mean(losses.slice(0, 10)).toFixed(4)} (first 10 steps) -> ` +
      `${finalLoss.toFixed(4)} (last 10); weights ${weights}` +
      (trainStep.amp ? `; amp: ${trainStep.scaler.skippedSteps} overflow step(s) skipped` : ''),
  );
  return { finalLoss, weights };
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

if (isMain(import.meta.url)) runMain((argv) => main(argv).finally(shutdown));
