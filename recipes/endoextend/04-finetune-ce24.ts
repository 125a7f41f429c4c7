// Stage 4 of EndoExtend24 (spec §1.3): fine-tuning EVA-02 on the 10-class Capsule Endoscopy 2024
// task. As the paper's code: a WeightedRandomSampler with inverse-class-frequency weights and
// plain cross-entropy (no class-weighted loss, no layer decay), AdaBelief (betas 0.9/0.999,
// eps 1e-16, decoupled weight decay 2e-4, rectify off), LambdaLR lr * 0.95^(epoch / 2), gradient
// clipping by norm 0.5, the paper's augmentations (flips, rot90, blur, random resized crop,
// grid distortion, colour jitter, ImageNet normalisation), and the checkpoint kept by validation
// balanced accuracy (val_recall_macro). Validation is fold 0 of the re-pooled train/val set.
//
// Consumes: --out/ce24-trainval.csv and class_mapping.json (stage 1); initial weights by --init:
//   'ee24' (stage 3's supervised EE24 checkpoint, the paper's path), 'mim' (stage 2's MIM
//   weights), 'none' (from scratch, the baseline), or a safetensors path.
// Produces (in --out/<tag>): best.safetensors (by val balanced accuracy), state.safetensors
//   (resumable), history.json (per-epoch loss and validation metrics), curves.png.
//
//   npx tsx recipes/endoextend/04-finetune-ce24.ts --out runs/endoextend --init ee24
import { existsSync, writeFileSync } from 'node:fs';
import {
  manualSeed,
  defaultGenerator,
  crossEntropy,
  tensor,
  trainStateBytes,
  restoreTrainState,
  weightsBytes,
} from '../../engine/index.ts';
import { AdaBelief, AdamW, lambdaFactor, paramGroupsWeightDecay } from '../../engine/optim/index.ts';
import {
  WeightedRandomSampler,
  inverseFrequencyWeights,
  Rng,
  augmentBatch,
  endoExtendTrainAugment,
} from '../../engine/data/index.ts';
import { classificationReport } from '../../engine/metrics/index.ts';
import { lineChart } from '../../runtime-node/plots.ts';
import { Eva02 } from '../../models/eva02.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { readEe24Csv } from '../../runtime-node/datasets.ts';
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
  predict,
  join,
  loadInit,
  TRAIN_STEP_FLAGS,
  TrainStep,
  type ScalerState,
  type History,
} from './kit.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';

export const FLAGS = defineFlags(
  'recipes/endoextend/04-finetune-ce24.ts',
  'Fine-tune EVA-02 on the CE24 task (or, for stage 3, on the merged set).',
  {
    out: { type: 'string', default: 'runs/endoextend', help: 'output folder shared by every stage' },
    tag: {
      type: 'string',
      default: 'finetune',
      help: 'subfolder of this run (e.g. finetune-scratch for the baseline)',
    },
    init: { type: 'string', default: 'ee24', help: 'ee24 | mim | none | <weights.safetensors>' },
    data: {
      type: 'string',
      default: 'ce24',
      choices: ['ce24', 'ee24'] as const,
      help: 'ce24 (the task) | ee24 (the merged set: stage 3 trains on it)',
    },
    optimizer: {
      type: 'string',
      default: 'adabelief',
      choices: ['adabelief', 'adamw'] as const,
      help: "adabelief (the paper's fine-tuning) | adamw",
    },
    size: { type: 'string', default: 'mu', choices: SIZES, help: 'EVA-02 size: mu (CPU driver), ti, s, b, l (GPU)' },
    epochs: { type: 'int', default: 6, min: 1, help: 'passes over the training folds (paper: 50)' },
    batch: { type: 'int', default: 32, min: 1, max: 4096, help: 'images per step (paper: 128)' },
    lr: {
      type: 'number',
      default: 1e-3,
      min: 0,
      exclusiveMin: true,
      max: 1e6,
      help: 'learning rate (paper: 1e-6 for B from the EE24 checkpoint; µ models need more)',
    },
    weightDecay: { type: 'number', default: 2e-4, min: 0, max: 1, help: 'decoupled weight decay' },
    clip: {
      type: 'number',
      default: 0.5,
      min: 0,
      exclusiveMin: true,
      help: "gradient clipping by global norm (Lightning's default in the paper's runs)",
    },
    decay: {
      type: 'number',
      default: 0.95,
      min: 0,
      exclusiveMin: true,
      max: 1,
      help: 'LambdaLR: lr * decay^(epoch / 2)',
    },
    valFold: { type: 'int', default: 0, min: 0, help: 'the validation fold' },
    seed: { type: 'int', default: 0, min: 0, help: 'seed of the model, augmentation and data order' },
    ...TRAIN_STEP_FLAGS,
  },
);

export async function main(argv: string[]): Promise<{ best: string; bestBalancedAccuracy: number } | null> {
  const cfg = FLAGS.parse(argv);
  if (!cfg) return null;
  const dir = join(cfg.out, cfg.tag);
  // writable, locked, no stale partial files
  const guard = startRun(dir, { script: 'recipes/endoextend/04-finetune-ce24.ts' });
  const dev = await initNode();

  // ---- data: train/val folds of the task (or of the merged set), fold 0 validates --------------
  const csv = join(cfg.out, cfg.data === 'ee24' ? 'ee24.csv' : 'ce24-trainval.csv');
  if (!existsSync(csv)) throw new Error(`${csv} does not exist: run recipes/endoextend/01-build-dataset.ts first`);
  const all = readEe24Csv(csv, { classMapping: join(cfg.out, 'class_mapping.json'), log: null }).records;
  const classes = [...new Set(all.map((r) => r.className!))];
  const numClasses = Math.max(...all.map((r) => r.label!)) + 1;
  const names = Array.from({ length: numClasses }, (_, k) => all.find((r) => r.label === k)?.className ?? `class ${k}`);
  const train = all.filter((r) => r.fold !== cfg.valFold);
  const val = all.filter((r) => r.fold === cfg.valFold);
  if (train.length === 0 || val.length === 0)
    throw new Error(`${csv}: fold ${cfg.valFold} leaves ${train.length} training and ${val.length} validation frames`);
  const labels = Int32Array.from(train.map((r) => r.label!));
  const sampler = new WeightedRandomSampler(inverseFrequencyWeights(labels), train.length);
  console.log(
    `${cfg.data.toUpperCase()}: ${train.length} training frames, ${val.length} validation frames, ` +
      `${classes.length} classes`,
  );

  // ---- model and optimiser ---------------------------------------------------------------------
  manualSeed(cfg.seed);
  const mcfg = modelConfig(cfg.size, numClasses);
  const size = imageSizeOf(mcfg);
  // mcfg (saved with the weights) leaves checkpointBlocks out: it is how this run trains, not the model.
  const model = new Eva02({ ...mcfg, checkpointBlocks: cfg.checkpointBlocks });
  const initNote = loadInit(model, cfg.init, cfg.out);
  console.log(`initial weights: ${initNote}`);
  model.flattenParameters();
  const opt =
    cfg.optimizer === 'adamw'
      ? new AdamW(paramGroupsWeightDecay(model.namedParameters(), cfg.weightDecay, ['cls_token', 'pos_embed']), {
          lr: cfg.lr,
        })
      : new AdaBelief(model.parameters(), {
          lr: cfg.lr,
          betas: [0.9, 0.999],
          eps: 1e-16,
          weightDecay: cfg.weightDecay,
          weightDecouple: true,
          rectify: false,
        });
  const trainStep = new TrainStep(cfg, dev.hasF16);
  const augment = endoExtendTrainAugment(size);
  const augRng = new Rng(cfg.seed + 7);
  const loader = classificationLoader(train, { size, batchSize: cfg.batch, sampler, seed: cfg.seed });
  const stepsPerEpoch = Math.floor(train.length / cfg.batch) || 1;

  // ---- resume --------------------------------------------------------------------------------
  const statePath = join(dir, 'state.safetensors');
  let epoch = 0;
  let history: History = [];
  let best = -1;
  const identity = dataIdentity(
    { csv },
    {
      train: train.map((r) => ({ id: r.id, files: [r.imagePath] })),
      val: val.map((r) => ({ id: r.id, files: [r.imagePath] })),
    },
  );
  const saved = readIfExists(statePath);
  if (saved) {
    const r = restoreTrainState<{
      epoch: number;
      history: History;
      best: number;
      dataIdentity?: DataIdentity;
      scaler?: ScalerState;
    }>(saved, { model, optimizer: opt, generator: defaultGenerator }, statePath);
    checkStateFields(
      r,
      {
        'extra.epoch': 'number',
        'extra.history': 'array',
        'extra.best': 'number',
        data: 'object',
        'rngs.augment': 'object',
      },
      statePath,
    );
    checkDataIdentity(r.extra.dataIdentity, identity, statePath);
    ({ epoch, history, best } = r.extra);
    loader.loadStateDict(r.data!);
    augRng.setState(r.rngs!.augment);
    trainStep.loadStateDict(r.extra.scaler, statePath);
    console.log(`resuming fine-tuning at epoch ${epoch}/${cfg.epochs}${trainStep.status()}`);
  }

  // ---- the loop: epochs of weighted batches, then validation -----------------------------------
  const bestPath = join(dir, 'best.safetensors');
  const bar = new Progress({ total: cfg.epochs * stepsPerEpoch, label: `fine-tune (${cfg.tag})`, unit: 'step' });
  bar.set(epoch * stepsPerEpoch);
  for (; epoch < cfg.epochs; epoch++) {
    opt.scaleLr(lambdaFactor(epoch, (e) => cfg.decay ** (e / 2)));
    let lossSum = 0;
    // The state is saved per epoch: Ctrl-C exits keeping the last epoch's checkpoint (onStop unset).
    for (let s = 0; s < stepsPerEpoch; s++)
      await guard.step(async () => {
        const { data } = await loader.next();
        const r = await trainStep.run(opt, model.parameters(), cfg.clip, () => {
          const { images } = augmentBatch(batchImages(data), null, augment, augRng);
          return crossEntropy(model.forward(images), tensor(data.y, [data.n], 'i32'));
        });
        const step = epoch * stepsPerEpoch + s;
        // before any checkpoint (an overflow the loss scaler skipped is not a divergence: see guarded())
        checkStep(step, trainStep.guarded(r), `lower --lr (now ${cfg.lr}) or check the data`);
        const overflow = trainStep.overflowNote(step, r);
        if (overflow) console.log(overflow);
        lossSum += r.loss;
        bar.tick(1, `epoch ${epoch + 1} loss ${r.loss.toFixed(3)}${trainStep.status()}`);
      });
    const probs = await predict(model, val, numClasses, size, 64);
    const rep = classificationReport(
      probs,
      val.map((r) => r.label!),
      names,
    );
    history.push({
      epoch: epoch + 1,
      loss: lossSum / stepsPerEpoch,
      balancedAccuracy: rep.balancedAccuracy,
      macroAuc: rep.macroAuc,
      macroF1: rep.macroF1,
      lr: opt.paramGroups[0].lr,
    });
    console.log(
      `epoch ${epoch + 1}: train loss ${(lossSum / stepsPerEpoch).toFixed(4)}, val balanced accuracy ` +
        `${rep.balancedAccuracy.toFixed(4)}, macro AUC ${rep.macroAuc.toFixed(4)}`,
    );
    if (rep.balancedAccuracy > best) {
      best = rep.balancedAccuracy;
      writeAtomic(
        bestPath,
        await weightsBytes(model, {
          config: JSON.stringify(mcfg),
          classes: JSON.stringify(names),
          epoch: String(epoch + 1),
          init: initNote,
        }),
      );
    }
    writeAtomic(
      statePath,
      await trainStateBytes({
        model,
        optimizer: opt,
        generator: defaultGenerator,
        data: loader.stateDict(),
        rngs: { augment: augRng.getState() },
        extra: { epoch: epoch + 1, history, best, dataIdentity: identity, scaler: trainStep.stateDict() },
      }),
    );
  }

  // ---- outputs -------------------------------------------------------------------------------
  writeFileSync(
    join(dir, 'history.json'),
    JSON.stringify(
      { config: cfg, init: initNote, history, bestBalancedAccuracy: best, scaler: trainStep.stateDict() },
      null,
      2,
    ),
  );
  await writePng(
    join(dir, 'curves.png'),
    lineChart(
      [
        { name: 'train loss', y: history.map((h) => h.loss), x: history.map((h) => h.epoch) },
        { name: 'val balanced accuracy', y: history.map((h) => h.balancedAccuracy), x: history.map((h) => h.epoch) },
        { name: 'val macro AUC', y: history.map((h) => h.macroAuc), x: history.map((h) => h.epoch) },
      ],
      { title: `${cfg.data.toUpperCase()} training (${cfg.tag}, init ${cfg.init})`, xLabel: 'epoch' },
    ),
  );
  guard.close();
  console.log(
    `fine-tuning done: best val balanced accuracy ${best.toFixed(4)}; weights ${bestPath}` +
      (trainStep.amp ? `; amp: ${trainStep.scaler.skippedSteps} overflow step(s) skipped` : ''),
  );
  return { best: bestPath, bestBalancedAccuracy: best };
}

if (isMain(import.meta.url)) runMain((argv) => main(argv).finally(shutdown));
