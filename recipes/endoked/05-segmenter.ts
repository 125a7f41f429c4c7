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
// Guards (runtime-node/run-guard.ts): the whole split is checked at start (every bad file named
// at once); --out is probed, locked, and cleared of partial files of killed runs; every loss and
// gradient norm of every rate is checked before a checkpoint is written; Ctrl-C / SIGTERM saves
// the state after the current step; a state trained on other data is not resumed.
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
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  tidy,
  noGrad,
  backward,
  tensor,
  add,
  sigmoid,
  narrow,
  manualSeed,
  defaultGenerator,
  AdamW,
  clipGradValue,
  gradNorm,
  RandomSampler,
  DataOrder,
  Loader,
  imagesToChw,
  masksToChw,
  trainStateBytes,
  restoreTrainState,
  weightsBytes,
  loadWeights,
  type Tensor,
  interpolate,
} from '../../engine/index.ts';
import { diceIou } from '../../engine/metrics/index.ts';
import type { MaskImage, RgbImage } from '../../engine/data/index.ts';
import { polypPvt, polypPvtLoss } from '../../models/polyp-pvt.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { readKvasirSeg, type ImageRecord } from '../../runtime-node/datasets.ts';
import { loadSegSample, checkSegSplit, type SegSample } from '../../runtime-node/seg-samples.ts';
import { maskContour, resizeImage, writePng } from '../../runtime-node/image.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';
import {
  startRun,
  checkStep,
  dataIdentity,
  checkDataIdentity,
  checkStateFields,
  RunGuardError,
  type DataIdentity,
} from '../../runtime-node/run-guard.ts';
import { upsampleBilinear, maxDevicePixels } from './seg-eval.ts';

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
  },
);

export async function main(argv: string[]): Promise<void> {
  const f = FLAGS.parse(argv);
  if (!f) return;
  const configName = f.config;
  const cpu = configName === 'cpu';
  const modelPreset = cpu ? 'mu' : 'b2'; // Polyp-PVT preset: 'mu' (spec §4, tiny) or 'b2' (the paper's)
  const trainSize = f.size ?? (cpu ? 96 : 352); // base training/test resolution (square), a multiple of 32
  const rates = [0.75, 1, 1.25]; // multi-scale rates, one optimizer step each (reference: 0.75, 1, 1.25)
  const sizeMultiple = 32; // scaled sizes are rounded to this; 32 = the backbone's stride (see header)
  const batchSize = f.batchSize; // reference 24; 8 keeps lavapipe and GPU memory small at 448²
  const epochs = f.epochs ?? (cpu ? 2 : 100); // passes over train.txt (ignored when --steps is given)
  const maxSteps = f.steps; // total batches to train for (overrides --epochs)
  const maxMinutes = f.maxMinutes; // wall-clock budget for this invocation's training
  const { lr, weightDecay, threshold } = f; // AdamW (reference 1e-4 / 1e-4); Dice/IoU binarisation
  const clipValue = f.clip; // gradient clamp by value (reference clip_gradient)
  const faithfulBce = true; // true: the reference's effective unweighted BCE mean; false: weighted BCE (spec §2.5 ⚠)
  const evalBatch = 8; // test images per forward
  const ckptEvery = f.ckptEvery ?? (cpu ? 25 : 200); // steps between training-state checkpoints
  const logEvery = 10; // steps between loss lines in the log
  const numOverlays = 8; // test images drawn as overlays (evenly spaced over test.txt)
  const prefetch = 2; // batches decoded ahead of the one training
  const cacheDecoded = cpu; // keep decoded, resized training images in memory (small at 96²)
  const seed = 0; // model init, data order and drop path
  const syntheticN = f.syntheticN; // images in the synthetic set (--data synthetic)
  const syntheticSize = 256; // synthetic frame size (pixels, square)
  const resume = f.resume; // continue from <out>/state.safetensors when present
  const outDir = resolve(f.out ?? join(ROOT, 'runs', `segmenter-${configName}`));
  const initPath = f.init ? resolve(f.init) : undefined; // PVTv2 backbone weights to start from
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
  if (initPath && !existsSync(initPath)) throw new RunGuardError(`${SCRIPT}: --init "${initPath}" does not exist`);

  // ---- data --------------------------------------------------------------------------------------
  const sharedKvasir = resolve(ROOT, '..', 'shared', 'data', 'kvasir-seg');
  let dataRoot: string;
  if (f.data === 'synthetic' || (f.data === undefined && !existsSync(sharedKvasir))) {
    dataRoot = join(ROOT, 'out', 'synthetic', `polyp-n${syntheticN}-s${syntheticSize}-seed${seed}`);
    if (!existsSync(join(dataRoot, 'test.txt'))) {
      console.log(`writing the synthetic polyp set (${syntheticN} frames, ${syntheticSize}²) to ${dataRoot}`);
      await writePolypSet(dataRoot, syntheticN, { seed, width: syntheticSize, height: syntheticSize, force: true });
    }
  } else {
    dataRoot = resolve(f.data ?? sharedKvasir);
    if (!existsSync(dataRoot)) {
      throw new RunGuardError(
        [
          `${SCRIPT}: dataset folder "${dataRoot}" does not exist. Put Kvasir-SEG there ` +
            '(images/, masks/, train.txt, test.txt;',
          '  https://datasets.simula.no/kvasir-seg/ with the PraNet/Polyp-PVT test split of 100 ids), ' +
            'pass --data <folder>,',
          '  or train on generated data with --data synthetic.',
        ].join('\n'),
      );
    }
  }
  let train: ImageRecord[], test: ImageRecord[];
  try {
    train = readKvasirSeg(dataRoot, { split: 'train' }).records;
    test = readKvasirSeg(dataRoot, { split: 'test', log: null }).records;
  } catch (e) {
    throw new RunGuardError(
      `${SCRIPT}: ${e instanceof Error ? e.message : e}\n  (expected the Kvasir-SEG layout: images/, ` +
        `masks/, train.txt, test.txt; or use --data synthetic)`,
    );
  }
  // --out: writable, ours alone, no partial files of killed runs; Ctrl-C saves (see onStop below).
  const guard = startRun(outDir, { script: SCRIPT });
  const identity = dataIdentity(
    { data: dataRoot },
    {
      train: train.map((r) => ({ id: r.id, files: [r.imagePath, r.maskPath] })),
      test: test.map((r) => ({ id: r.id, files: [r.imagePath, r.maskPath] })),
    },
  );
  // Every file of both splits, before any training: a bad one fails now, all named at once.
  for (const [name, recs] of [
    ['train', train],
    ['test', test],
  ] as const) {
    const c = await checkSegSplit(recs, f.checkData);
    if (c.problems.length) {
      throw new RunGuardError(
        `${SCRIPT}: ${c.problems.length} bad file(s) in the ${name} split of ${dataRoot}:\n  ` +
          `${c.problems.join('\n  ')}\n` +
          `Fix or remove them (and their ids in ${name}.txt), or pass another --data.`,
      );
    }
    if (c.masksRead > 0 && c.emptyMasks === c.masksRead) {
      console.warn(
        `warning: every ${name} mask read ` +
          `(${c.masksRead}${c.masksRead < recs.length ? ` spread over ${recs.length}` : ''}) in ` +
          `${dataRoot} is empty (no foreground pixel): check the masks' format; training and Dice ` +
          `would be meaningless`,
      );
    }
  }
  const gpu = await initNode();
  console.log(`device: ${gpu.adapterName}`);
  console.log(`data: ${dataRoot} (${train.length} train / ${test.length} test)`);

  const cache = new Map<number, SegSample>();
  async function loadTrain(i: number): Promise<SegSample> {
    const hit = cache.get(i);
    if (hit) return hit;
    const s = await loadSegSample(train[i], [trainSize, trainSize]);
    if (cacheDecoded) cache.set(i, s);
    return s;
  }
  const order = new DataOrder(new RandomSampler(train.length), { batchSize, seed });
  const batchesPerEpoch = order.batchesPerEpoch;
  const totalSteps = maxSteps ?? epochs * batchesPerEpoch;

  // ---- model, optimizer, resume ------------------------------------------------------------------
  manualSeed(seed);
  const model = polypPvt(modelPreset);
  model.flattenParameters();
  if (initPath) {
    const r = loadWeights(model.backbone, new Uint8Array(readFileSync(initPath)), { strict: false, source: initPath });
    console.log(
      `init: backbone from ${initPath} (${r.missingKeys.length} missing, ${r.unexpectedKeys.length} unexpected keys)`,
    );
    if (r.missingKeys.length)
      throw new RunGuardError(`${initPath}: backbone keys missing, e.g. ${r.missingKeys.slice(0, 3).join(', ')}`);
  }
  const optimizer = new AdamW(model.parameters(), { lr, weightDecay });
  console.log(
    `model: Polyp-PVT ${modelPreset}, ${(model.numParameters() / 1e6).toFixed(2)}M parameters; sizes ` +
      `${scaledSizes.join('/')}, batch ${batchSize}`,
  );

  interface Extra {
    step: number;
    losses: number[];
    seconds: number;
    config: string;
    modelPreset: string;
    trainSize: number;
    batchSize: number;
    dataIdentity?: DataIdentity;
  }
  const statePath = join(outDir, 'state.safetensors');
  let step = 0,
    losses: number[] = [],
    seconds = 0;
  const saved = resume ? readIfExists(statePath) : null;
  if (saved) {
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
    if (e.modelPreset !== modelPreset || e.trainSize !== trainSize || e.batchSize !== batchSize) {
      throw new RunGuardError(
        `${statePath} was written by a run with model ${e.modelPreset}, size ${e.trainSize}, batch ` +
          `${e.batchSize}; this run has ${modelPreset}, ${trainSize}, ${batchSize}. Use another --out ` +
          `or --no-resume.`,
      );
    }
    checkDataIdentity(e.dataIdentity, identity, statePath);
    ({ step, losses, seconds } = e);
    order.loadStateDict(r.data!);
    // The flags rule the hyper-parameters (no schedule here): a changed --lr / --weight-decay
    // applies from this step on, and says so, instead of being silently replaced by the state's.
    for (const g of optimizer.paramGroups) {
      if (g.lr !== lr || g.weightDecay !== weightDecay)
        console.log(
          `note: ${statePath} trained with lr ${g.lr}, weight decay ${g.weightDecay}; continuing ` +
            `with --lr ${lr} --weight-decay ${weightDecay}`,
        );
      g.lr = lr;
      g.initialLr = lr;
      g.weightDecay = weightDecay;
    }
    console.log(`resumed from ${statePath} at step ${step}`);
  }
  const loader = new Loader({
    order,
    prefetch,
    load: loadTrain,
    collate: (items: SegSample[]) => ({
      images: imagesToChw(items.map((s) => s.image)),
      masks: masksToChw(items.map((s) => s.mask)),
    }),
  });
  async function checkpoint(): Promise<void> {
    const extra: Extra = {
      step,
      losses,
      seconds,
      config: configName,
      modelPreset,
      trainSize,
      batchSize,
      dataIdentity: identity,
    };
    writeAtomic(
      statePath,
      await trainStateBytes({ model, optimizer, generator: defaultGenerator, data: loader.stateDict(), extra }),
    );
  }

  // ---- training loop -----------------------------------------------------------------------------
  const started = performance.now();
  const deadline = maxMinutes ? started + maxMinutes * 60_000 : Infinity;
  if (step < totalSteps) {
    console.log(
      `training steps ${step}..${totalSteps} (${batchesPerEpoch} per epoch, ${rates.length} ` +
        `optimizer steps each) -> ${outDir}`,
    );
    const bar = new Progress({ total: totalSteps, label: 'train', unit: 'step' });
    bar.set(step);
    model.train();
    guard.onStop(checkpoint); // SIGINT/SIGTERM: the state after the last whole step
    while (step < totalSteps && performance.now() < deadline) {
      await guard.step(async () => {
        const t0 = performance.now();
        const { batch, data } = await loader.next();
        const checks: { rate: number; loss: Tensor; norm: Tensor }[] = [];
        for (const [k, size] of scaledSizes.entries()) {
          const [loss, norm] = tidy(() => {
            let x = tensor(data.images.data, data.images.shape),
              y = tensor(data.masks.data, data.masks.shape);
            if (size !== trainSize) {
              // [B, C, S, S] -> [B, C, size, size]
              x = interpolate(x, { size: [size, size], mode: 'bilinear', alignCorners: true });
              y = interpolate(y, { size: [size, size], mode: 'bilinear', alignCorners: true });
            }
            const l = polypPvtLoss(model.forward(x), y, { faithfulBce });
            backward(l);
            const n = gradNorm(model.parameters()); // before clamping: a NaN/Inf gradient shows here
            clipGradValue(model.parameters(), clipValue);
            optimizer.step();
            optimizer.zeroGrad();
            return [l, n];
          });
          checks.push({ rate: rates[k], loss, norm });
        }
        // Every rate's loss and gradient norm, before anything reaches a checkpoint: a diverging
        // 1.25 step must not be saved (the reference logs only the rate-1 loss).
        const values = await Promise.all(checks.flatMap((c) => [c.loss.item(), c.norm.item()]));
        for (const c of checks) {
          c.loss.dispose();
          c.norm.dispose();
        }
        checkStep(
          step,
          Object.fromEntries(
            checks.flatMap((c, k) => [
              [`loss at rate ${c.rate}`, values[2 * k]],
              [`gradient norm at rate ${c.rate}`, values[2 * k + 1]],
            ]),
          ),
          `lower --lr (now ${lr}) or check the data`,
        );
        const value = values[2 * rates.indexOf(1)]; // the reference logs the rate-1 loss
        losses.push(value);
        step++;
        seconds += (performance.now() - t0) / 1000;
        bar.tick(1, `epoch ${batch.epoch} loss ${value.toFixed(4)}`);
        if (step % logEvery === 0 && !process.stderr.isTTY)
          console.log(`step ${step} epoch ${batch.epoch} loss ${value.toFixed(4)}`);
        if (step % ckptEvery === 0 || step === totalSteps) await checkpoint();
      });
    }
    if (step < totalSteps) {
      await checkpoint();
      console.log(`stopped at step ${step} after --max-minutes ${maxMinutes}; run again to continue`);
    }
    guard.onStop(null); // the final state is on disk; a signal from here on just exits
  } else {
    console.log(`already trained to step ${step} (>= ${totalSteps}); evaluating only`);
  }
  writeAtomic(
    join(outDir, 'weights.safetensors'),
    await weightsBytes(model, {
      model: 'polyp_pvt',
      preset: modelPreset,
      config: JSON.stringify(model.config),
      size: String(trainSize),
    }),
  );
  const smooth = losses.map((_, i) => {
    const w = losses.slice(Math.max(0, i - 19), i + 1);
    return w.reduce((a, b) => a + b, 0) / w.length;
  });
  await writeChartPng(
    join(outDir, 'loss.png'),
    plot.lineChart(
      [
        { name: 'loss (rate 1)', y: losses, color: [170, 190, 215] },
        { name: 'mean of 20 steps', y: smooth, color: [31, 119, 180] },
      ],
      {
        title: `Polyp-PVT ${modelPreset} ${trainSize}x${trainSize}: structure loss P1+P2`,
        xLabel: 'step (batch)',
        yLabel: 'loss',
      },
    ),
  );

  // ---- test: Dice / IoU at each mask's own resolution ----------------------------------------------
  /**
   * sigmoid(P1 + P2) of a batch, each upsampled to its mask's size and read back. A mask over the
   * device's buffer limit (about 33.5 Mpx of f32) is upsampled on the CPU from the map at the
   * training size instead (the same bilinear, align_corners=False).
   */
  const MAX_DEVICE_PIXELS = maxDevicePixels(gpu.limits);
  async function predict(images: RgbImage[], sizes: [number, number][]): Promise<Float32Array[]> {
    const maps = noGrad(() =>
      tidy(() => {
        const [p1, p2] = model.forward(tensor(imagesToChw(images).data, [images.length, 3, trainSize, trainSize]));
        const logits = add(p1, p2); // [B, 1, S, S]
        return sizes.map(([h, w], i) =>
          h * w > MAX_DEVICE_PIXELS
            ? narrow(logits, 0, i, 1)
            : sigmoid(interpolate(narrow(logits, 0, i, 1), { size: [h, w], mode: 'bilinear', alignCorners: false })),
        );
      }),
    );
    const out: Float32Array[] = [];
    for (const [i, m] of maps.entries()) {
      const [h, w] = sizes[i];
      let p: Float32Array = Float32Array.from(await m.data());
      m.dispose();
      if (h * w > MAX_DEVICE_PIXELS) {
        // logits at trainSize: upsample, then sigmoid
        p = upsampleBilinear(p, trainSize, trainSize, h, w);
        for (let k = 0; k < p.length; k++) p[k] = 1 / (1 + Math.exp(-p[k]));
      }
      out.push(p);
    }
    return out;
  }

  model.eval();
  const overlayAt = new Set(
    Array.from({ length: Math.min(numOverlays, test.length) }, (_, k) =>
      Math.floor((k * test.length) / Math.min(numOverlays, test.length)),
    ),
  );
  const perImage: { id: string; dice: number; iou: number; diceMinMax: number; iouMinMax: number }[] = [];
  const evalBar = new Progress({ total: test.length, label: 'test ', unit: 'img' });
  for (let i = 0; i < test.length; i += evalBatch) {
    const recs = test.slice(i, i + evalBatch);
    let probs: Float32Array[], samples: SegSample[];
    try {
      samples = await Promise.all(recs.map((r) => loadSegSample(r))); // full size: the masks are scored there
      const inputs = await Promise.all(samples.map((s) => resizeImage(s.image, trainSize, trainSize)));
      probs = await predict(
        inputs,
        samples.map((s) => [s.mask.height, s.mask.width]),
      );
    } catch (e) {
      throw new Error(
        `evaluating ${recs.map((r) => `${r.imagePath} (${r.id})`).join(', ')}: ` +
          `${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const masks = samples.map((s) => s.mask);
    for (let k = 0; k < recs.length; k++) {
      const p = probs[k];
      let lo = Infinity,
        hi = -Infinity;
      for (const v of p) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const mm = p.map((v) => (v - lo) / (hi - lo + 1e-8)); // the reference Test.py's normalisation
      const a = diceIou(p, masks[k].data, threshold),
        b = diceIou(mm, masks[k].data, threshold);
      perImage.push({ id: recs[k].id, dice: a.dice, iou: a.iou, diceMinMax: b.dice, iouMinMax: b.iou });
      if (overlayAt.has(i + k))
        await writeOverlay(join(outDir, 'overlays', `${recs[k].id}.png`), samples[k].image, masks[k], p, threshold);
    }
    evalBar.tick(recs.length);
  }
  const mean = (g: (r: (typeof perImage)[number]) => number) =>
    perImage.reduce((s, r) => s + g(r), 0) / perImage.length;
  const metrics = {
    config: configName,
    model: `polyp_pvt_${modelPreset}`,
    parameters: model.numParameters(),
    data: dataRoot,
    numTrain: train.length,
    numTest: test.length,
    trainSize,
    scaledSizes,
    batchSize,
    lr,
    weightDecay,
    clipValue,
    faithfulBce,
    steps: step,
    optimizerSteps: step * rates.length,
    epochs: step / batchesPerEpoch,
    trainSeconds: Math.round(seconds),
    finalLoss: losses.length ? losses[losses.length - 1] : null,
    device: gpu.adapterName,
    test: {
      threshold,
      meanDice: mean((r) => r.dice),
      meanIou: mean((r) => r.iou),
      minMax: { meanDice: mean((r) => r.diceMinMax), meanIou: mean((r) => r.iouMinMax) },
    },
    perImage,
  };
  writeFileSync(join(outDir, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  console.log(
    `test (${test.length} images, >${threshold}): mean Dice ${metrics.test.meanDice.toFixed(4)}, ` +
      `mean IoU ${metrics.test.meanIou.toFixed(4)}` +
      ` (min-max normalised: Dice ${metrics.test.minMax.meanDice.toFixed(4)}, IoU ` +
      `${metrics.test.minMax.meanIou.toFixed(4)})`,
  );
  console.log(`wrote ${join(outDir, 'metrics.json')}, loss.png, weights.safetensors, overlays/`);
  optimizer.dispose();
  model.dispose();
  guard.close();
  await shutdown();
}

if (isMain(import.meta.url)) runMain(main);

// ---- overlays --------------------------------------------------------------------------------------
/** The image with the predicted mask tinted blue and the ground truth's contour in green, at most 512 px wide/high. */
async function writeOverlay(
  path: string,
  image: RgbImage,
  gt: MaskImage,
  prob: Float32Array,
  threshold: number,
): Promise<void> {
  const { width: w, height: h } = gt;
  if (image.width !== w || image.height !== h) image = await resizeImage(image, w, h);
  const TINT = [30, 110, 255]; // predicted-mask tint (blue shows on the red of colonoscopy frames)
  const t = Math.max(1, Math.round(Math.max(w, h) / 256)); // contour thickness
  const contour = await maskContour(gt, t);
  const out = new Uint8Array(image.data);
  for (let p = 0; p < w * h; p++) {
    const o = 3 * p;
    if (prob[p] > threshold) for (let c = 0; c < 3; c++) out[o + c] = Math.round(0.45 * out[o + c] + 0.55 * TINT[c]);
    if (contour[p]) {
      out[o] = 40;
      out[o + 1] = 230;
      out[o + 2] = 60;
    }
  }
  let img: RgbImage = { width: w, height: h, data: out };
  const scale = Math.min(1, 512 / Math.max(w, h));
  if (scale < 1) img = await resizeImage(img, Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale)));
  writePng(path, img);
}
