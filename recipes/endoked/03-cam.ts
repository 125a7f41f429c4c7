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
// The stages live beside this file: cam-pool.ts (the training pool from the scored set),
// cam-frames.ts (frame cache and crop geometry), cam-train.ts (model and training loop),
// cam-boxes.ts (CAMs -> boxes), cam-report.ts (measures against the true masks, overlays, metrics).
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';
import { fail, readPool } from './cam-pool.ts';
import { cacheFrames } from './cam-frames.ts';
import { createModel, trainCam, writeModelAndLossPlot } from './cam-train.ts';
import { boxAndMeasure, imagesToBox } from './cam-boxes.ts';
import { writeReport } from './cam-report.ts';

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

export async function main(argv: string[]): Promise<void> {
  const f = FLAGS.parse(argv);
  if (!f) return;
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

  // Data: the training pool from the set, the frame scores and Kvasir-SEG train; frames decoded once.
  const pool = readPool({
    setDir,
    scoresPath: f.scores ? abs(f.scores) : undefined,
    scoresFromTruth: f.scoresFromTruth,
    kvasirDir: f.kvasir ? abs(f.kvasir) : '',
    kvasirTrain: f.kvasirTrain,
    publicPositives: f.publicPositives,
    posThreshold: f.posThreshold,
    negRatio: f.negRatio,
  });
  const gpu = await initNode();
  console.log(`device: ${gpu.adapterName}`);
  const cached = f.kvasirTrain ? pool.trainSet : [...pool.trainSet, ...pool.kvasir];
  const cache = await cacheFrames(
    cached.map((x) => x.path),
    f.size,
    abs(f.cache),
    f.fov,
  );

  // Model and training (resumable), then the weights and the loss plot.
  const { model, cfg } = createModel(f, f.init ? abs(f.init) : null);
  const rec = await trainCam(f, model, pool.trainSet, cache, outDir);
  await writeModelAndLossPlot(outDir, model, cfg, rec, f.ptcWeight, f.size);

  // CAMs -> boxes, measured against the true masks; metrics.json and the summary.
  const per = await boxAndMeasure(f, model, imagesToBox(f, pool), cache, outDir);
  writeReport({ outDir, flags: f, device: gpu.adapterName, parameters: model.numParameters(), rec, pool, per });
  model.dispose();
  await shutdown();
}

if (isMain(import.meta.url)) runMain(main);
