// EndoKED stage 3: CAM -> boxes. A ToCo-style CAM classifier (models/toco.ts: EVA-02 trunk, GMP,
// bias-free 1x1 classifier + aux classifier, PTC loss) is trained on image labels: MIL-selected
// positives (student >= posThreshold in positive patients of the train split), the lowest-scored
// frames of negative patients, and Kvasir-SEG train images as extra positives. Its multi-scale +
// flip CAM is thresholded and turned into one box per image by EndoKED's rule (engine/data/boxes.ts).
// Spec recipes/SPEC.md §2.3 (EndoKED-WSSS, CAM -> box), §2.8 (CAM, Grad-CAM), §4 (ToCo-µ).
// Reference: zwyang6/ENDOKED EndoKED_WSSS (scripts/dist_train_seg_neg_ALL.py, datasets/
// data_processing_refining/a3_generate_pseulabel_from_SAM_byCAM.py), rulixiang/ToCo.
//
// Consumes: --scores frame_scores.csv (stage 2: frame_path,patient_id,bag_label,teacher1,teacher2,
//           student) and --set DIR (the patient set: reports.csv with optional split, frames.csv
//           with the true frame labels, read for evaluation only); --kvasir DIR (Kvasir-SEG layout;
//           train.txt ids only, never test.txt; masks read only to measure).
//           --scores-from-truth (a development aid until stage 2 exists): frame scores are the set's
//           TRUE frame labels; logs and metrics.json say so.
// Produces, in --out:
//   boxes.csv            image_path,x0,y0,x1,y1,accepted,reason (original pixels, x1/y1 exclusive)
//                        for the Kvasir-SEG train images and the MIL positives
//   cams/<stem>.png      overlays: CAM heat map, box (green accepted, red rejected), true box (white)
//   cam.safetensors      the model (keys encoder.*, classifier.weight, aux_classifier.weight)
//   state.safetensors    resumable training state; metrics.json; loss.png
// Frames are cropped to the endoscope's field of view with overlays filled (engine/data/fov.ts
// prepareFrame; --no-fov turns it off), resized to `size`² once and cached in --cache; boxes are
// mapped back through the crop to the original pixels.
// Deviations (see also models/toco.ts): the PTC token labels come from the aux CAM of a separate
// no-grad, no-flip pass at `ptcScales` (ToCo: multi-scale aux CAM refined by PAR); no segmentation
// decoder; ImageNet normalisation and random horizontal flips only (ToCo: random resized crops at
// 448); a short poly schedule.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  tidy,
  noGrad,
  backward,
  tensor,
  add,
  mul,
  narrow,
  interpolate,
  manualSeed,
  defaultGenerator,
  AdamW,
  polyWarmupFactor,
  multilabelSoftMarginLoss,
  RandomSampler,
  DataOrder,
  Loader,
  trainStateBytes,
  restoreTrainState,
  weightsBytes,
  loadWeights,
} from '../../engine/index.ts';
import {
  parseCsvTable,
  serialiseCsv,
  endokedBox,
  thresholdMask,
  scaleBox,
  maskBox,
  boxIou,
  type Box,
  type BoxDecision,
  type MaskImage,
  type RgbImage,
  prepareFrame,
} from '../../engine/data/index.ts';
import { TocoCam, tocoConfig, ptcLoss, ptcLabels, multiScaleCam, gradCam } from '../../models/toco.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { readKvasirSeg } from '../../runtime-node/datasets.ts';
import {
  decodeImageResized,
  imageSize,
  readMask,
  resizeImage,
  resizeMask,
  writePng,
} from '../../runtime-node/image.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { defineFlags, isMain, runMain, FlagError } from '../../runtime-node/flags.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---- config: every knob is a flag ------------------------------------------------------------------
const FLAGS = defineFlags('recipes/endoked/03-cam.ts', 'EndoKED stage 3: ToCo CAM classifier -> CAMs -> boxes.', {
  scores: { type: 'string', help: 'frame_scores.csv from stage 2 (required unless --scores-from-truth)' },
  set: { type: 'string', default: 'out/endoked/synthetic-set', help: 'patient set folder (reports.csv, frames.csv)' },
  scoresFromTruth: {
    type: 'boolean',
    default: false,
    help: "DEVELOPMENT AID: frame scores = the set's true frame labels (train split)",
  },
  kvasir: {
    type: 'string',
    default: '',
    help: 'Kvasir-SEG folder: train.txt images get boxes (and are extra positives unless --no-kvasir-train)',
  },
  kvasirTrain: {
    type: 'boolean',
    default: true,
    help: 'Kvasir-SEG train images are training positives too (--no-kvasir-train: boxes and measurement only)',
  },
  publicPositives: {
    type: 'boolean',
    default: true,
    help:
      "the set's public-positives.csv (train-split polyp frames in no bag) as extra positives, when " +
      'the set has one',
  },
  out: { type: 'string', default: 'runs/endoked/03-cam', help: 'output folder' },
  cache: { type: 'string', default: 'out/endoked/frame-cache', help: 'decoded, resized frames are cached here' },
  fov: {
    type: 'boolean',
    default: true,
    help: 'crop frames to the field of view and fill overlays (engine/data/fov.ts) before resizing',
  },
  size: {
    type: 'int',
    default: 64,
    min: 16,
    max: 1024,
    help: 'training/CAM input size (square), a multiple of --patch',
  },
  patch: { type: 'int', default: 8, min: 2, max: 32, help: 'ViT patch size' },
  depth: { type: 'int', default: 4, min: 2, max: 24, help: 'ViT blocks (EVA-02-µ: 4)' },
  dim: { type: 'int', default: 64, min: 8, max: 1024, help: 'ViT width (EVA-02-µ: 64)' },
  heads: { type: 'int', default: 2, min: 1, max: 16, help: 'attention heads' },
  init: {
    type: 'string',
    help: 'MIM weights (Eva02Mim keys, e.g. recipes/endoextend 02-mim-pretrain output) for the encoder',
  },
  steps: { type: 'int', default: 600, min: 1, help: 'training steps (batches)' },
  batchSize: { type: 'int', default: 16, min: 1, max: 256, help: 'images per step' },
  lr: {
    type: 'number',
    default: 5e-4,
    min: 0,
    exclusiveMin: true,
    help: 'AdamW lr of the backbone (classifiers: x10, as ToCo)',
  },
  weightDecay: { type: 'number', default: 0.01, min: 0, help: 'AdamW weight decay (ToCo 0.01)' },
  warmup: { type: 'int', default: 50, min: 0, help: 'warm-up steps of the poly schedule (ToCo: 1500 of 80k)' },
  ptcWeight: { type: 'number', default: 0.2, min: 0, help: 'weight of the PTC loss (ToCo 0.2)' },
  ptcScales: {
    type: 'numbers',
    default: [1],
    min: 0.25,
    max: 2,
    help: 'scales of the no-grad aux-CAM pass that labels tokens for PTC',
  },
  ptcLow: { type: 'number', default: 0.25, min: 0, max: 1, help: 'aux CAM <= this: background token (ToCo 0.25)' },
  ptcHigh: { type: 'number', default: 0.75, min: 0, max: 1, help: 'aux CAM > this: foreground token (ToCo 0.75)' },
  posThreshold: {
    type: 'number',
    default: 0.8,
    min: 0,
    max: 1,
    help: 'MIL positives: student >= this in positive patients',
  },
  negRatio: {
    type: 'number',
    default: 1,
    min: 0,
    help: 'negatives per positive, the lowest student scores of negative patients',
  },
  camScales: {
    type: 'numbers',
    default: [1, 0.5, 0.75, 1.25, 1.5, 1.75],
    min: 0.25,
    max: 4,
    help: 'CAM scales for boxes (EndoKED a3)',
  },
  camThreshold: {
    type: 'number',
    default: 0.65,
    min: 0,
    max: 1,
    help: 'CAM > this is foreground (EndoKED bkg_thre 0.65)',
  },
  evalBatch: { type: 'int', default: 32, min: 1, help: 'images per CAM forward' },
  boxesFor: {
    type: 'string',
    default: 'both',
    choices: ['both', 'kvasir', 'mil'] as const,
    help: 'which images get boxes: Kvasir-SEG train, MIL positives, or both',
  },
  boxLimit: {
    type: 'int',
    default: 0,
    min: 0,
    help: 'box at most this many images per source, evenly spaced (0: all)',
  },
  gradCam: {
    type: 'boolean',
    default: true,
    help: 'also measure Grad-CAM boxes (one extra forward and backward per batch)',
  },
  overlays: { type: 'int', default: 64, min: 0, help: 'CAM overlays written (evenly spaced over the box images)' },
  ckptEvery: { type: 'int', default: 100, min: 1, help: 'steps between checkpoints' },
  maxMinutes: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    help: 'stop training after this many minutes (checkpointed; run again to continue)',
  },
  resume: { type: 'boolean', default: true, help: 'continue from <out>/state.safetensors' },
  seed: { type: 'int', default: 0, min: 0, help: 'model init and data order' },
});

const MEAN = [0.485, 0.456, 0.406],
  STD = [0.229, 0.224, 0.225]; // ImageNet normalisation (ToCo)

interface Frame {
  path: string;
  label: number;
  source: 'mil' | 'mil-negative' | 'kvasir' | 'public';
  stem: string;
  maskPath?: string;
  truth?: number;
  centre?: string;
}
/** A frame as cached: RGB bytes at size², the original size and the FOV crop (original pixels) they show. */
interface Cached {
  data: Uint8Array;
  width: number;
  height: number;
  crop: Box;
}

export async function main(argv: string[]): Promise<void> {
  const f = FLAGS.parse(argv);
  if (!f) return;
  const fail = (flag: string, msg: string): never => {
    throw new FlagError(`recipes/endoked/03-cam.ts: --${flag}: ${msg}`);
  };
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(ROOT, p));
  if (f.size % f.patch !== 0) fail('size', `${f.size} is not a multiple of --patch ${f.patch}`);
  if ((f.dim / f.heads) % 4 !== 0)
    fail('heads', `--dim ${f.dim} / --heads ${f.heads} must be a multiple of 4 (2-D RoPE)`);
  if (!(f.ptcLow < f.ptcHigh)) fail('ptc-low', `${f.ptcLow} must be below --ptc-high ${f.ptcHigh}`);
  const outDir = abs(f.out),
    setDir = abs(f.set);
  if (!f.scoresFromTruth && !f.scores)
    fail('scores', 'give the stage-2 frame_scores.csv, or --scores-from-truth (development aid)');
  if (!existsSync(join(setDir, 'frames.csv')))
    fail(
      'set',
      `"${setDir}" has no frames.csv; build the patient set first ` +
        `(recipes/endoked/00-patient-set.ts) or point --set at one`,
    );

  // ---- data: the patient set (truth, split), the frame scores, Kvasir-SEG train ----------------------
  const truth = readSetTruth(setDir);
  const scores = f.scoresFromTruth ? truthScores(truth) : readScores(abs(f.scores!));
  if (f.scoresFromTruth)
    console.log(
      "DEVELOPMENT AID: --scores-from-truth: frame scores are the patient set's TRUE frame labels, not a MIL model's",
    );
  const train = (p: string) => truth.split.get(p) !== 'test';
  const posPatients = scores.filter((r) => r.bagLabel === 1 && train(r.patientId));
  const milPos = posPatients.filter((r) => r.student >= f.posThreshold);
  const negPool = scores.filter((r) => r.bagLabel === 0 && train(r.patientId)).sort((a, b) => a.student - b.student);
  const frames: Frame[] = milPos.map((r) => ({
    path: r.path,
    label: 1,
    source: 'mil',
    stem: stemOf(r.patientId, r.path),
    truth: truth.frame.get(r.path)?.polyp,
    centre: truth.frame.get(r.path)?.centre,
    maskPath: truth.frame.get(r.path)?.maskPath,
  }));
  let kvasir: Frame[] = [];
  if (f.kvasir) {
    const root = abs(f.kvasir);
    if (!existsSync(join(root, 'train.txt')))
      fail('kvasir', `"${root}" has no train.txt (Kvasir-SEG layout: images/, masks/, train.txt, test.txt)`);
    const testIds = new Set(
      readFileSync(join(root, 'test.txt'), 'utf8')
        .split(/\r?\n/)
        .map((s) => s.trim())
        .filter(Boolean),
    );
    kvasir = readKvasirSeg(root, { split: 'train', log: null }).records.map((r) => ({
      path: r.imagePath,
      label: 1,
      source: 'kvasir' as const,
      stem: `kvasir_${r.id}`,
      maskPath: r.maskPath,
    }));
    const leaked = kvasir.filter((k) => testIds.has(k.stem.slice(7)));
    if (leaked.length)
      throw new Error(
        `Kvasir-SEG test ids in the training list: ${leaked
          .slice(0, 3)
          .map((k) => k.stem)
          .join(', ')}`,
      );
  }
  // Public positive frames (EndoKED adds public polyp datasets to its CAM pool): the set's train-split
  // polyp frames that are in no bag, from the same centres as the negatives.
  const publicCsv = join(setDir, 'public-positives.csv');
  const publicPos: Frame[] =
    f.publicPositives && existsSync(publicCsv)
      ? parseCsvTable(readFileSync(publicCsv, 'utf8'), publicCsv, ['frame_path']).rows.map((r) => {
          const path = resolveIn(setDir, r.frame_path);
          if (truth.frame.has(path))
            throw new Error(
              `${publicCsv}: ${r.frame_path} is also in a bag (frames.csv); rebuild the set with ` +
                `00-patient-set.ts --force`,
            );
          return {
            path,
            label: 1,
            source: 'public' as const,
            stem: `public_${basename(path, extname(path))}_${r.centre ?? ''}`.replace(/[^A-Za-z0-9_.-]/g, '_'),
            centre: r.centre || undefined,
          };
        })
      : [];
  const kvasirPos = f.kvasirTrain ? kvasir : [];
  const nPos = frames.length + kvasirPos.length + publicPos.length;
  const negatives = negPool.slice(0, Math.round(f.negRatio * nPos)).map((r): Frame => ({
    path: r.path,
    label: 0,
    source: 'mil-negative',
    stem: stemOf(r.patientId, r.path),
    truth: truth.frame.get(r.path)?.polyp,
  }));
  const trainSet = [...frames, ...kvasirPos, ...publicPos, ...negatives];
  if (nPos === 0)
    fail(
      f.scoresFromTruth ? 'set' : 'scores',
      `no positives: no frame with student >= ${f.posThreshold} in a positive train patient, no ` +
        `public positives and no --kvasir`,
    );
  if (negatives.length === 0)
    fail(f.scoresFromTruth ? 'set' : 'scores', 'no negatives: no frame of a negative train patient');
  const milPrecision = frames.filter((x) => x.truth !== undefined).length
    ? frames.filter((x) => x.truth === 1).length / frames.filter((x) => x.truth !== undefined).length
    : null;
  console.log(
    `train: ${frames.length} MIL positives (precision vs true frame labels ` +
      `${milPrecision === null ? 'n/a' : milPrecision.toFixed(3)}), ${kvasirPos.length} Kvasir-SEG ` +
      `train positives, ${publicPos.length} public positives, ${negatives.length} negatives`,
  );

  const gpu = await initNode();
  console.log(`device: ${gpu.adapterName}`);
  const S = f.size;
  const cache = await cacheFrames(f.kvasirTrain ? trainSet : [...trainSet, ...kvasir], S, abs(f.cache), f.fov);

  // ---- model, optimizer, resume -----------------------------------------------------------------------
  manualSeed(f.seed);
  const cfg = tocoConfig('mu', { imgSize: S, patchSize: f.patch, embedDim: f.dim, depth: f.depth, numHeads: f.heads });
  const model = new TocoCam(cfg);
  if (f.init) {
    const path = abs(f.init);
    if (!existsSync(path)) fail('init', `"${path}" does not exist`);
    const r = loadWeights(model.encoder, new Uint8Array(readFileSync(path)), { strict: false, source: path });
    if (r.missingKeys.length)
      fail(
        'init',
        `${path} lacks encoder keys, e.g. ${r.missingKeys.slice(0, 3).join(', ')} (expected Eva02Mim ` +
          `keys at the same size)`,
      );
    console.log(`init: encoder from ${path} (${r.unexpectedKeys.length} keys unused)`);
  }
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

  // ---- training ---------------------------------------------------------------------------------------
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
  model.eval();
  writeAtomic(
    join(outDir, 'cam.safetensors'),
    await weightsBytes(model, { model: 'toco_cam', config: JSON.stringify(cfg) }),
  );
  const smooth = (v: number[]) =>
    v.map((_, i) => {
      const w = v.slice(Math.max(0, i - 19), i + 1);
      return w.reduce((a, c) => a + c, 0) / w.length;
    });
  await writeChartPng(
    join(outDir, 'loss.png'),
    plot.lineChart(
      [
        { name: 'total loss', y: losses, color: [170, 190, 215] },
        { name: 'total, mean of 20', y: smooth(losses), color: [31, 119, 180] },
        { name: 'PTC, mean of 20', y: smooth(ptcs), color: [255, 127, 14] },
      ],
      { title: `ToCo CAM classifier ${S}x${S}: MLSM + MLSM(aux) + ${f.ptcWeight} PTC`, xLabel: 'step', yLabel: 'loss' },
    ),
  );

  // ---- CAMs -> boxes -------------------------------------------------------------------------------------
  const spaced = <T>(xs: T[]) =>
    f.boxLimit && xs.length > f.boxLimit
      ? Array.from({ length: f.boxLimit }, (_, k) => xs[Math.floor((k * xs.length) / f.boxLimit)])
      : xs;
  const boxImages = [
    ...(f.boxesFor === 'mil' ? [] : spaced(kvasir)),
    ...(f.boxesFor === 'kvasir' ? [] : spaced(frames)),
  ];
  const overlayAt = new Set(
    Array.from({ length: Math.min(f.overlays, boxImages.length) }, (_, k) =>
      Math.floor((k * boxImages.length) / Math.min(f.overlays, boxImages.length)),
    ),
  );
  const rows: (string | number)[][] = [['image_path', 'x0', 'y0', 'x1', 'y1', 'accepted', 'reason']];
  const per: {
    stem: string;
    source: string;
    accepted: boolean;
    reason: string;
    iou: number | null;
    dice: number | null;
    gradCamIou: number | null;
    gradCamDice: number | null;
    gradCamAccepted: boolean;
  }[] = [];
  const bar = new Progress({ total: boxImages.length, label: 'boxes', unit: 'img' });
  mkdirSync(join(outDir, 'cams'), { recursive: true });
  for (let i = 0; i < boxImages.length; i += f.evalBatch) {
    const batch = boxImages.slice(i, i + f.evalBatch);
    const x = tensor(
      toChw(
        batch.map((fr) => cache.get(fr.path)!.data),
        S,
      ),
      [batch.length, 3, S, S],
    );
    const cam = multiScaleCam(model, x, { scales: f.camScales }).cam;
    // Grad-CAM (single scale, final-LN tokens), upsampled and normalised like the CAM, for comparison.
    const gc = f.gradCam
      ? tidy(() => {
          const g = gradCam(model, x, { layer: 'final' });
          return noGrad(() => interpolate(g, { size: [S, S], mode: 'bilinear', alignCorners: false }));
        })
      : null;
    const [camV, gcV] = [(await cam.data()) as Float32Array, gc ? ((await gc.data()) as Float32Array) : null];
    cam.dispose();
    gc?.dispose();
    x.dispose();
    for (let k = 0; k < batch.length; k++) {
      const fr = batch[k],
        img = cache.get(fr.path)!;
      const c = camV.subarray(k * S * S, (k + 1) * S * S),
        g = gcV ? minMax(gcV.subarray(k * S * S, (k + 1) * S * S)) : null;
      const d = endokedBox(thresholdMask(c, f.camThreshold), S, S);
      const box = d.box ? toOriginal(d.box, S, img.crop) : null;
      rows.push([fr.path, ...(box ?? ['', '', '', '']), d.accepted ? 1 : 0, d.reason]);
      const m = fr.maskPath ? await readMask(fr.maskPath) : null;
      const truthBox = m ? maskBox(m.data, m.width, m.height) : null;
      const small = m ? resizeMask(cropMask(m, img.crop), S, S).data : null;
      const gd = g ? endokedBox(thresholdMask(g, f.camThreshold), S, S) : null;
      per.push({
        stem: fr.stem,
        source: fr.source,
        accepted: d.accepted,
        reason: d.reason,
        gradCamAccepted: gd?.accepted ?? false,
        iou: truthBox && box ? boxIou(box, truthBox) : truthBox ? 0 : null,
        dice: small ? dice(thresholdMask(c, f.camThreshold), small) : null,
        gradCamIou: gd && truthBox ? (gd.box ? boxIou(toOriginal(gd.box, S, img.crop), truthBox) : 0) : null,
        gradCamDice: g && small ? dice(thresholdMask(g, f.camThreshold), small) : null,
      });
      if (overlayAt.has(i + k))
        writeOverlay(
          join(outDir, 'cams', `${fr.stem}.png`),
          img.data,
          S,
          c,
          d,
          truthBox ? toCam(truthBox, S, img.crop) : null,
        );
    }
    bar.tick(batch.length);
  }
  writeFileSync(join(outDir, 'boxes.csv'), serialiseCsv(rows));

  // ---- metrics --------------------------------------------------------------------------------------------
  const summarise = (list: typeof per) => {
    const acc = list.filter((r) => r.accepted),
      meas = list.filter((r) => r.iou !== null);
    const avg = (v: (number | null)[]) => {
      const xs = v.filter((t): t is number => t !== null);
      return xs.length ? xs.reduce((a, c) => a + c, 0) / xs.length : null;
    };
    const reasons: Record<string, number> = {};
    for (const r of list) if (!r.accepted) reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
    return {
      images: list.length,
      accepted: acc.length,
      acceptanceRate: list.length ? acc.length / list.length : null,
      rejections: reasons,
      meanBoxIouAccepted: avg(acc.map((r) => r.iou)),
      meanBoxIouAll: avg(meas.map((r) => r.iou)),
      meanCamDice: avg(list.map((r) => r.dice)),
      gradCam: !f.gradCam
        ? null
        : {
            acceptanceRate: list.length ? list.filter((r) => r.gradCamAccepted).length / list.length : null,
            meanBoxIouAccepted: avg(list.filter((r) => r.gradCamAccepted).map((r) => r.gradCamIou)),
            meanBoxIouAll: avg(meas.map((r) => r.gradCamIou)),
            meanDice: avg(list.map((r) => r.gradCamDice)),
          },
    };
  };
  const metrics = {
    developmentAid: f.scoresFromTruth
      ? "frame scores are the patient set's TRUE frame labels (--scores-from-truth), not stage 2's"
      : null,
    device: gpu.adapterName,
    flags: f,
    parameters: model.numParameters(),
    steps: step,
    trainSeconds: Math.round(seconds),
    finalLoss: losses.at(-1) ?? null,
    train: {
      milPositives: frames.length,
      milPositivePrecision: milPrecision,
      kvasirPositives: kvasirPos.length,
      publicPositives: publicPos.length,
      negatives: negatives.length,
    },
    kvasirTrain: summarise(per.filter((r) => r.source === 'kvasir')),
    milPositives: summarise(per.filter((r) => r.source === 'mil')),
    note:
      'box IoU against the union box of each true mask at the original size; CAM Dice at the CAM size ' +
      'against the nearest-resized true mask; masks are used only to measure',
    perImage: per,
  };
  writeFileSync(join(outDir, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  const k = metrics.kvasirTrain;
  if (k.images)
    console.log(
      `Kvasir-SEG train (${k.images}): accepted ${(100 * k.acceptanceRate!).toFixed(1)}%, mean box ` +
        `IoU on accepted ${k.meanBoxIouAccepted?.toFixed(3) ?? 'n/a'} (all ${k.meanBoxIouAll?.toFixed(3)}), ` +
        `CAM Dice ${k.meanCamDice?.toFixed(3)}` +
        (k.gradCam
          ? `; Grad-CAM: accepted ${(100 * k.gradCam.acceptanceRate!).toFixed(1)}%, ` +
            `IoU ${k.gradCam.meanBoxIouAccepted?.toFixed(3) ?? 'n/a'}, Dice ${k.gradCam.meanDice?.toFixed(3)}`
          : '') +
        `; rejections ${JSON.stringify(k.rejections)}`,
    );
  console.log(
    `MIL positives (${metrics.milPositives.images}): accepted ` +
      `${metrics.milPositives.images ? (100 * metrics.milPositives.acceptanceRate!).toFixed(1) : 'n/a'}%`,
  );
  console.log(`wrote ${outDir}: boxes.csv, cams/, cam.safetensors, metrics.json, loss.png`);
  optimizer.dispose();
  model.dispose();
  await shutdown();
}

// ---- helpers ------------------------------------------------------------------------------------------------

interface ScoreRow {
  path: string;
  patientId: string;
  bagLabel: number;
  student: number;
}
interface SetTruth {
  split: Map<string, string>;
  frame: Map<string, { polyp: number; patientId: string; centre?: string; maskPath?: string }>;
}

const resolveIn = (dir: string, p: string) => (isAbsolute(p) ? p : resolve(dir, p));
const stemOf = (patientId: string, path: string) =>
  `${patientId}_${basename(path, extname(path))}`.replace(/[^A-Za-z0-9_.-]/g, '_');

/** reports.csv (optional split column) and frames.csv (true frame labels), for the split and evaluation. */
function readSetTruth(dir: string): SetTruth {
  const split = new Map<string, string>(),
    frame: SetTruth['frame'] = new Map();
  const rep = join(dir, 'reports.csv');
  if (existsSync(rep))
    for (const r of parseCsvTable(readFileSync(rep, 'utf8'), rep, ['patient_id']).rows)
      if (r.split) split.set(r.patient_id, r.split);
  const fcsv = join(dir, 'frames.csv');
  for (const r of parseCsvTable(readFileSync(fcsv, 'utf8'), fcsv, ['patient_id', 'frame_path', 'polyp']).rows) {
    frame.set(resolveIn(dir, r.frame_path), {
      polyp: Number(r.polyp),
      patientId: r.patient_id,
      centre: r.centre || undefined,
      maskPath: r.mask_path ? resolveIn(dir, r.mask_path) : undefined,
    });
  }
  return { split, frame };
}

/** Development aid: bag label = any true polyp frame in the patient; student = the true frame label. */
function truthScores(t: SetTruth): ScoreRow[] {
  const bag = new Map<string, number>();
  for (const v of t.frame.values()) bag.set(v.patientId, Math.max(bag.get(v.patientId) ?? 0, v.polyp));
  return [...t.frame.entries()].map(([path, v]) => ({
    path,
    patientId: v.patientId,
    bagLabel: bag.get(v.patientId)!,
    student: v.polyp,
  }));
}

function readScores(path: string): ScoreRow[] {
  if (!existsSync(path))
    throw new FlagError(
      `recipes/endoked/03-cam.ts: --scores: "${path}" does not exist (stage 2 writes frame_scores.csv)`,
    );
  const { rows } = parseCsvTable(readFileSync(path, 'utf8'), path, [
    'frame_path',
    'patient_id',
    'bag_label',
    'student',
  ]);
  return rows
    .filter((r) => r.bag_label === '0' || r.bag_label === '1')
    .map((r, i) => {
      const student = Number(r.student);
      if (!(student >= 0 && student <= 1))
        throw new Error(`${path}: row ${i + 1}: student "${r.student}" is not in [0, 1]`);
      return {
        path: resolveIn(dirname(path), r.frame_path),
        patientId: r.patient_id,
        bagLabel: Number(r.bag_label),
        student,
      };
    });
}

/**
 * Decodes each frame once, optionally crops it to the field of view (prepareFrame), resizes it to
 * size² (linear) and caches it as `dir/<size>[-fov]/<sha1 of path>.rgb`: original width, height and
 * crop box x0, y0, x1, y1 (u32) + RGB bytes.
 */
async function cacheFrames(
  frames: readonly Frame[],
  size: number,
  dir: string,
  fov: boolean,
): Promise<Map<string, Cached>> {
  const out = new Map<string, Cached>();
  const FOV_SIDE = 320;
  const folder = join(dir, `${size}${fov ? `-fov${FOV_SIDE}` : ''}`),
    HEAD = 24;
  mkdirSync(folder, { recursive: true });
  const todo = [...new Set(frames.map((x) => x.path))];
  const bar = new Progress({ total: todo.length, label: 'frames', unit: 'img' });
  for (let i = 0; i < todo.length; i += 8) {
    await Promise.all(
      todo.slice(i, i + 8).map(async (p) => {
        const file = join(folder, createHash('sha1').update(p).digest('hex') + '.rgb');
        let bytes = readIfExists(file);
        if (!bytes || bytes.length !== HEAD + size * size * 3) {
          let img: RgbImage, head: number[];
          if (fov) {
            // The FOV is found on a copy at most FOV_SIDE px on its long side (full-size frames are
            // up to 1920 px), its box scaled back to the original, outwards.
            const { width, height } = await imageSize(p);
            const k = Math.min(1, FOV_SIDE / Math.max(width, height)),
              w = Math.max(1, Math.round(width * k)),
              h = Math.max(1, Math.round(height * k));
            const prep = prepareFrame(await decodeImageResized(p, w, h));
            img = await resizeImage(prep.image, size, size);
            head = [
              width,
              height,
              ...scaleBox([prep.box.x0, prep.box.y0, prep.box.x1, prep.box.y1], w, h, width, height),
            ];
          } else {
            const { width, height } = await imageSize(p);
            img = await decodeImageResized(p, size, size);
            head = [width, height, 0, 0, width, height];
          }
          bytes = new Uint8Array(HEAD + img.data.length);
          head.forEach((v, i) => new DataView(bytes!.buffer).setUint32(4 * i, v, true));
          bytes.set(img.data, HEAD);
          writeAtomic(file, bytes);
        }
        const v = new DataView(bytes.buffer, bytes.byteOffset),
          u = (i: number) => v.getUint32(4 * i, true);
        out.set(p, { width: u(0), height: u(1), crop: [u(2), u(3), u(4), u(5)], data: bytes.subarray(HEAD) });
      }),
    );
    bar.tick(Math.min(8, todo.length - i));
  }
  return out;
}

/** A box on the size² CAM -> original pixels (through the FOV crop). */
function toOriginal(b: Box, s: number, crop: Box): Box {
  const [x0, y0, x1, y1] = scaleBox(b, s, s, crop[2] - crop[0], crop[3] - crop[1]);
  return [x0 + crop[0], y0 + crop[1], x1 + crop[0], y1 + crop[1]];
}

/** A box in original pixels -> the size² CAM grid (clamped), for drawing. */
function toCam(b: Box, s: number, crop: Box): Box {
  const sx = s / (crop[2] - crop[0]),
    sy = s / (crop[3] - crop[1]);
  const c = (v: number) => Math.min(s, Math.max(0, v));
  return [
    c(Math.floor((b[0] - crop[0]) * sx)),
    c(Math.floor((b[1] - crop[1]) * sy)),
    c(Math.ceil((b[2] - crop[0]) * sx)),
    c(Math.ceil((b[3] - crop[1]) * sy)),
  ];
}

function cropMask(m: MaskImage, crop: Box): MaskImage {
  const [x0, y0, x1, y1] = crop,
    w = x1 - x0,
    h = y1 - y0,
    data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) data.set(m.data.subarray((y + y0) * m.width + x0, (y + y0) * m.width + x1), y * w);
  return { width: w, height: h, data };
}

/** HWC RGB bytes -> normalised CHW floats [B, 3, S, S]. */
function toChw(images: readonly Uint8Array[], s: number): Float32Array {
  const out = new Float32Array(images.length * 3 * s * s);
  images.forEach((img, b) => {
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < s * s; p++) out[(b * 3 + c) * s * s + p] = (img[3 * p + c] / 255 - MEAN[c]) / STD[c];
  });
  return out;
}

function flipBatch(x: Float32Array, b: number, s: number, flips: ArrayLike<number>): Float32Array {
  const out = new Float32Array(x);
  for (let k = 0; k < b; k++) {
    if (flips[k] >= 0.5) continue;
    for (let c = 0; c < 3; c++)
      for (let r = 0; r < s; r++) {
        const o = ((k * 3 + c) * s + r) * s;
        for (let col = 0; col < s; col++) out[o + col] = x[o + s - 1 - col];
      }
  }
  return out;
}

function minMax(v: Float32Array): Float32Array {
  let lo = Infinity,
    hi = -Infinity;
  for (const t of v) {
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return v.map((t) => (t - lo) / (hi - lo + 1e-5));
}

function dice(a: Uint8Array, b: ArrayLike<number>): number {
  let inter = 0,
    sa = 0,
    sb = 0;
  for (let i = 0; i < a.length; i++) {
    const t = b[i] ? 1 : 0;
    inter += a[i] & t;
    sa += a[i];
    sb += t;
  }
  return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}

/**
 * The image (upscaled to >= 128 px) with the CAM as a heat map, the box (green accepted, red rejected) and the true box
 * (white).
 */
function writeOverlay(
  path: string,
  rgb: Uint8Array,
  s: number,
  cam: Float32Array,
  d: BoxDecision,
  truthBox: Box | null,
): void {
  const z = Math.max(1, Math.ceil(128 / s)),
    w = s * z;
  const out = new Uint8Array(w * w * 3);
  const heat = (v: number) =>
    [1.5 - Math.abs(4 * v - 3), 1.5 - Math.abs(4 * v - 2), 1.5 - Math.abs(4 * v - 1)].map(
      (t) => 255 * Math.min(1, Math.max(0, t)),
    );
  for (let y = 0; y < w; y++)
    for (let x = 0; x < w; x++) {
      const p = ((y / z) | 0) * s + ((x / z) | 0),
        h = heat(cam[p]);
      for (let c = 0; c < 3; c++) out[3 * (y * w + x) + c] = Math.round(0.55 * rgb[3 * p + c] + 0.45 * h[c]);
    }
  const rect = (b: Box, col: number[]) => {
    const [x0, y0, x1, y1] = b.map((t) => t * z);
    for (let x = x0; x < x1; x++) for (const y of [y0, y1 - 1]) out.set(col, 3 * (y * w + x));
    for (let y = y0; y < y1; y++) for (const x of [x0, x1 - 1]) out.set(col, 3 * (y * w + x));
  };
  if (truthBox) rect(truthBox, [255, 255, 255]);
  if (d.box) rect(d.box, d.accepted ? [40, 230, 60] : [230, 40, 40]);
  writePng(path, { width: w, height: w, data: out });
}

if (isMain(import.meta.url)) runMain(main);
