// EndoKED stage 5: the segmenter. EndoKED-SEG is Polyp-PVT (a PVTv2 backbone with CIM/CFM/SAM
// heads, models/polyp-pvt.ts) trained on polyp masks: in EndoKED on the SAM pseudo-masks of the
// earlier stages, here (usable alone) on any folder in the Kvasir-SEG layout, e.g. real Kvasir-SEG.
//
// Consumes: --data DIR with images/, masks/, train.txt, test.txt (Kvasir-SEG layout), or
//           `--data synthetic` (a seeded synthetic polyp set written by runtime-node/synth.ts).
// Produces, in --out (default runs/segmenter-<config>):
//   state.safetensors    resumable training state (model, AdamW moments, RNGs, data order, loss
//                        history), written atomically every `ckptEvery` steps and at the end
//   weights.safetensors  the model alone, under the reference's state_dict keys
//   metrics.json         test mean Dice / IoU (binarised at 0.5, at each mask's own resolution)
//                        and per-image scores
//   loss.png             training loss curve
//   overlays/<id>.png    test images with the ground-truth contour (green) and the predicted
//                        mask tinted (blue)
// Usage (--help lists every flag with its range):
//   npx tsx recipes/endoked/05-segmenter.ts [--data DIR|synthetic] [--config cpu|gpu]
//       [--epochs N] [--steps N] [--out DIR] [--no-resume] [--init PVTV2_WEIGHTS.safetensors]
//       [--max-minutes M] [--synthetic-n N] [--size N] [--batch-size N] [--lr X] ...
//       [--amp [--loss-scale S]] [--checkpoint-blocks]
// Memory and precision (runtime-node/amp.ts, the EndoExtend24 recipes' flags): --amp runs each
// rate's forward and loss under autocast with a GradScaler around its backward (PyTorch's AMP
// order, per rate: the clamp sees the unscaled gradients; an overflow skips that rate's step,
// halves the scale, is counted and printed; the scale is saved in state.safetensors); without
// shader-f16 it says so and trains in f32. --checkpoint-blocks recomputes the backbone's blocks in
// the backward (same losses). Off, both change nothing: the same ops in the same order.
// Guards (runtime-node/run-guard.ts): the whole split is checked at start (every bad file named
// at once); --out is probed, locked, and cleared of partial files of killed runs; every loss and
// gradient norm of every rate is checked before a checkpoint is written (under --amp, a gradient
// overflow the scaler skipped at a scale > 1 is not a divergence; a NaN/inf loss still is);
// Ctrl-C / SIGTERM saves the state after the current step; a state trained on other data is not
// resumed.
//
// Recipe (spec §2.5, [K] zwyang6/ENDOKED EndoKED_SEG/Train.py, Test.py; = DengPingFan/Polyp-PVT):
// - AdamW lr 1e-4, weight decay 1e-4 on every parameter; no schedule (the reference's step decay,
//   x0.1 every 200 epochs, never fires within its 100 epochs).
// - Multi-scale training: every batch is run at rates {0.75, 1, 1.25} of the training size,
//   rounded to a multiple of 32, image and mask resized bilinearly (align_corners=True), with a
//   separate zero_grad / forward / backward / clip / step per rate. Gradients are clamped by
//   value at 0.5. The loss is structure_loss(P1) + structure_loss(P2).
// - Images go in as [0, 1] RGB, no normalisation and no augmentation (as the reference).
// - Test: resize to the training size, sigmoid(P1 + P2) upsampled bilinearly to the mask's own
//   size; Dice and IoU per image, binarised at 0.5, averaged over images (the spec's
//   recommendation). The reference's Test.py also min-max normalises the map first; that variant
//   is reported too ("minMax").
// Deviations and choices (all visible in the config block):
// - Sizes are multiples of 32 in both configs: the backbone's stride is 32 and CFM multiplies
//   x4 upsampled x2 with x3 element-wise, so any other size gives mismatched maps. The cpu config
//   therefore trains at 96 so the rates give 64 / 96 / 128 (at 64 they would round to 64 / 64 /
//   64 with the reference's rounding); spec §4's 48 / 64 / 80 is not a valid Polyp-PVT input.
// - One "step" here is one batch (all three rates, i.e. three optimizer steps). An epoch is one
//   pass over train.txt (the reference's EndoKED script cuts its epochs short; see spec §2.5).
// - The BCE term of the structure loss is an unweighted mean, as the reference actually computes
//   (its reduce='none' is read by PyTorch as the legacy reduce=True; spec §2.5); `faithfulBce`
//   = false switches to the evidently intended weighted BCE.
// - Training masks are resized by nearest neighbour from their files, then bilinearly per rate
//   (the reference resizes them bilinearly from the start); test masks are used at full size.
// - No ImageNet weights are bundled; --init loads PVTv2 backbone weights from a safetensors file
//   (keys as the reference's pvt_v2_b*.pth, i.e. without the "backbone." prefix).
// The parts: segmenter-data.ts (the folder, its split checks, the batches), segmenter-train.ts
// (model, resume, the multi-rate loop and its checkpoints), seg-eval.ts (test Dice/IoU, overlays).
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';
import { TRAIN_STEP_FLAGS, TrainStep } from '../../runtime-node/amp.ts';
import { startRun, RunGuardError } from '../../runtime-node/run-guard.ts';
import {
  openData,
  identityOf,
  checkSplits,
  trainOrder,
  trainLoader,
  type SegData,
  type SegSettings,
} from './segmenter-data.ts';
import { buildModel, resumeState, train, saveWeightsAndLoss, type TrainRun } from './segmenter-train.ts';
import { evaluateTest, maxDevicePixels, type ImageScore } from './seg-eval.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = 'recipes/endoked/05-segmenter.ts';

// ---- config: every knob is a flag (defaults by --config where they differ) ------------------------
export const FLAGS = defineFlags(
  SCRIPT,
  'EndoKED stage 5: Polyp-PVT segmenter on a Kvasir-SEG-layout folder (or synthetic polyps).',
  {
    data: {
      type: 'string',
      help: "dataset folder (Kvasir-SEG layout) or 'synthetic' (default ../shared/data/kvasir-seg, else synthetic)",
    },
    config: {
      type: 'string',
      default: 'cpu',
      choices: ['cpu', 'gpu'] as const,
      help: 'cpu: Polyp-PVT-µ at 96²; gpu: Polyp-PVT-b2 at 352² (the paper)',
    },
    size: { type: 'int', min: 32, max: 2048, help: 'training/test size, a multiple of 32 (default 96 cpu, 352 gpu)' },
    batchSize: { type: 'int', default: 8, min: 1, max: 512, help: 'images per batch (reference 24)' },
    epochs: {
      type: 'int',
      min: 1,
      max: 100000,
      help: 'passes over train.txt, ignored with --steps (default 2 cpu, 100 gpu)',
    },
    steps: { type: 'int', min: 1, max: 10_000_000, help: 'total batches to train for (overrides --epochs)' },
    maxMinutes: {
      type: 'number',
      min: 0,
      exclusiveMin: true,
      help: 'wall-clock budget of this invocation; run again to continue',
    },
    lr: {
      type: 'number',
      default: 1e-4,
      min: 0,
      exclusiveMin: true,
      max: 1e6,
      help: 'AdamW learning rate (reference 1e-4)',
    },
    weightDecay: {
      type: 'number',
      default: 1e-4,
      min: 0,
      max: 1,
      help: 'AdamW weight decay, every parameter (reference 1e-4)',
    },
    clip: {
      type: 'number',
      default: 0.5,
      min: 0,
      exclusiveMin: true,
      max: 1e6,
      help: 'gradient clamp by value (reference 0.5)',
    },
    threshold: {
      type: 'number',
      default: 0.5,
      min: 0,
      exclusiveMin: true,
      max: 1,
      help: 'binarisation of sigmoid(P1 + P2) for Dice / IoU',
    },
    ckptEvery: {
      type: 'int',
      min: 1,
      max: 1_000_000,
      help: 'steps between training-state checkpoints (default 25 cpu, 200 gpu)',
    },
    syntheticN: {
      type: 'int',
      default: 300,
      min: 10,
      max: 100000,
      help: 'images in the synthetic set (--data synthetic)',
    },
    checkData: {
      type: 'string',
      default: 'headers',
      choices: ['headers', 'full'] as const,
      help:
        'start-of-run check of every file: headers, sizes and end markers (fast), or a full decode ' +
        '(also counts empty masks)',
    },
    init: { type: 'string', help: 'PVTv2 backbone weights (safetensors, keys without "backbone.")' },
    out: { type: 'string', help: 'output folder (default runs/segmenter-<config>)' },
    resume: { type: 'boolean', default: true, help: 'continue from <out>/state.safetensors when present' },
    // --amp, --loss-scale, --checkpoint-blocks: the same flags as the EndoExtend24 recipes.
    ...TRAIN_STEP_FLAGS,
  },
);

/** The run's settings: the flags, and the constants this recipe fixes (each with its reason). */
function settings(f: NonNullable<ReturnType<typeof FLAGS.parse>>): SegSettings {
  const cpu = f.config === 'cpu';
  const trainSize = f.size ?? (cpu ? 96 : 352); // base training/test resolution (square), a multiple of 32
  const rates = [0.75, 1, 1.25]; // multi-scale rates, one optimizer step each (reference: 0.75, 1, 1.25)
  const sizeMultiple = 32; // scaled sizes are rounded to this; 32 = the backbone's stride (see header)
  // Python's round()
  const roundHalfEven = (v: number) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
  if (trainSize % sizeMultiple !== 0) {
    const lo = Math.max(sizeMultiple, Math.floor(trainSize / sizeMultiple) * sizeMultiple);
    throw new RunGuardError(
      `${SCRIPT}: --size ${trainSize} is not a multiple of ${sizeMultiple} (Polyp-PVT's stride): use ` +
        `--size ${lo} or ${lo + sizeMultiple}`,
    );
  }
  const scaledSizes = rates.map((r) => roundHalfEven((trainSize * r) / sizeMultiple) * sizeMultiple);
  if (scaledSizes.some((s) => s < sizeMultiple))
    throw new RunGuardError(
      `${SCRIPT}: --size ${trainSize} gives rate sizes ${scaledSizes.join('/')}; the smallest must ` +
        `be at least ${sizeMultiple}: use --size 64 or more`,
    );
  const initPath = f.init ? resolve(f.init) : undefined; // PVTv2 backbone weights to start from
  if (initPath && !existsSync(initPath)) throw new RunGuardError(`${SCRIPT}: --init "${initPath}" does not exist`);
  return {
    script: SCRIPT,
    root: ROOT,
    data: f.data,
    configName: f.config,
    modelPreset: cpu ? 'mu' : 'b2', // Polyp-PVT preset: 'mu' (spec §4, tiny) or 'b2' (the paper's)
    trainSize,
    rates,
    scaledSizes,
    batchSize: f.batchSize, // reference 24; 8 keeps lavapipe and GPU memory small at 448²
    epochs: f.epochs ?? (cpu ? 2 : 100), // passes over train.txt (ignored when --steps is given)
    maxSteps: f.steps, // total batches to train for (overrides --epochs)
    maxMinutes: f.maxMinutes, // wall-clock budget for this invocation's training
    lr: f.lr, // AdamW (reference 1e-4)
    weightDecay: f.weightDecay, // AdamW (reference 1e-4)
    threshold: f.threshold, // Dice/IoU binarisation
    clipValue: f.clip, // gradient clamp by value (reference clip_gradient)
    faithfulBce: true, // true: the reference's effective unweighted BCE mean; false: weighted BCE (spec §2.5 ⚠)
    amp: f.amp, // f16 matmuls and convolutions under autocast, GradScaler around each rate's backward
    lossScale: f.lossScale, // the scaler's initial scale
    checkpointBlocks: f.checkpointBlocks, // the backbone recomputes its blocks in the backward
    evalBatch: 8, // test images per forward
    ckptEvery: f.ckptEvery ?? (cpu ? 25 : 200), // steps between training-state checkpoints
    logEvery: 10, // steps between loss lines in the log
    numOverlays: 8, // test images drawn as overlays (evenly spaced over test.txt)
    prefetch: 2, // batches decoded ahead of the one training
    cacheDecoded: cpu, // keep decoded, resized training images in memory (small at 96²)
    seed: 0, // model init, data order and drop path
    syntheticN: f.syntheticN, // images in the synthetic set (--data synthetic)
    syntheticSize: 256, // synthetic frame size (pixels, square)
    checkData: f.checkData,
    resume: f.resume, // continue from <out>/state.safetensors when present
    outDir: resolve(f.out ?? join(ROOT, 'runs', `segmenter-${f.config}`)),
    initPath,
  };
}

export async function main(argv: string[]): Promise<void> {
  const f = FLAGS.parse(argv);
  if (!f) return;
  const s = settings(f);
  const data = await openData(s);
  // --out: writable, ours alone, no partial files of killed runs; Ctrl-C saves (segmenter-train.ts).
  const guard = startRun(s.outDir, { script: SCRIPT });
  const identity = identityOf(data);
  await checkSplits(s, data);
  const gpu = await initNode();
  console.log(`device: ${gpu.adapterName}`);
  console.log(`data: ${data.dataRoot} (${data.train.length} train / ${data.test.length} test)`);

  const order = trainOrder(s, data);
  const { model, optimizer } = buildModel(s);
  const trainStep = new TrainStep(s, gpu.hasF16); // says why when --amp cannot run here
  const progress = resumeState(s, { model, optimizer, trainStep }, order, identity);
  const run: TrainRun = {
    model,
    optimizer,
    trainStep,
    loader: trainLoader(s, data, order),
    identity,
    progress,
    totalSteps: s.maxSteps ?? s.epochs * order.batchesPerEpoch,
    batchesPerEpoch: order.batchesPerEpoch,
  };
  await train(s, run, guard);
  await saveWeightsAndLoss(s, model, progress.losses);

  const perImage = await evaluateTest(model, data.test, {
    size: s.trainSize,
    batch: s.evalBatch,
    threshold: s.threshold,
    numOverlays: s.numOverlays,
    overlayDir: join(s.outDir, 'overlays'),
    maxPixels: maxDevicePixels(gpu.limits),
  });
  report(s, run, data, perImage, gpu.adapterName);
  optimizer.dispose();
  model.dispose();
  guard.close();
  await shutdown();
}

/** metrics.json (the run's settings, training totals, test means and per-image scores) and the summary line. */
function report(s: SegSettings, run: TrainRun, data: SegData, perImage: ImageScore[], device: string): void {
  const { step, losses, seconds } = run.progress;
  const mean = (g: (r: ImageScore) => number) => perImage.reduce((a, r) => a + g(r), 0) / perImage.length;
  const metrics = {
    config: s.configName,
    model: `polyp_pvt_${s.modelPreset}`,
    parameters: run.model.numParameters(),
    data: data.dataRoot,
    numTrain: data.train.length,
    numTest: data.test.length,
    trainSize: s.trainSize,
    scaledSizes: s.scaledSizes,
    batchSize: s.batchSize,
    lr: s.lr,
    weightDecay: s.weightDecay,
    clipValue: s.clipValue,
    faithfulBce: s.faithfulBce,
    scaler: run.trainStep.stateDict(), // under --amp: the loss scale and the skipped steps
    steps: step,
    optimizerSteps: step * s.rates.length,
    epochs: step / run.batchesPerEpoch,
    trainSeconds: Math.round(seconds),
    finalLoss: losses.length ? losses[losses.length - 1] : null,
    device,
    test: {
      threshold: s.threshold,
      meanDice: mean((r) => r.dice),
      meanIou: mean((r) => r.iou),
      minMax: { meanDice: mean((r) => r.diceMinMax), meanIou: mean((r) => r.iouMinMax) },
    },
    perImage,
  };
  writeFileSync(join(s.outDir, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  console.log(
    `test (${data.test.length} images, >${s.threshold}): mean Dice ${metrics.test.meanDice.toFixed(4)}, ` +
      `mean IoU ${metrics.test.meanIou.toFixed(4)}` +
      ` (min-max normalised: Dice ${metrics.test.minMax.meanDice.toFixed(4)}, IoU ` +
      `${metrics.test.minMax.meanIou.toFixed(4)})`,
  );
  console.log(`wrote ${join(s.outDir, 'metrics.json')}, loss.png, weights.safetensors, overlays/`);
  if (run.trainStep.amp) console.log(`amp: ${run.trainStep.scaler.skippedSteps} overflow step(s) skipped`);
}

if (isMain(import.meta.url)) runMain(main);
