// EndoKED stage 2: multiple-instance learning from report labels to frame scores (spec §2.2;
// zwyang6/ENDOKED EndoKED_MIL/train_Endo_BagDistillation_SharedEnc_Similarity_StuFilter.py).
// A bag is one patient's frames; its label is the report label of stage 1. Each epoch:
//   1. teacher pass over bags (one bag per step, frames capped at --max-bag, sampled when more):
//      loss = Σ_t TeacherLossWeight_t · L_t for teacher 1 (ABMIL, or gated with --gated) and
//      teacher 2 (DSMIL); the shared encoder and both heads are updated. StuFilter: after epoch
//      --smooth-e, positive bags are skipped here. Each teacher's instance scores over the bags it
//      trained on give the min/max used to normalise it (norm_AttnScore2Prob).
//   2. student pass over the frames of the training bags (batches of --batch-size): pseudo-label
//      p̂ = Σ_t PLMergeWeight_t · clamp(norm(score_t), 1e-5, 1 - 1e-5), p̂ = 0 in negative bags;
//      student loss with λ = --lambda; encoder and student updated.
// Consumes: --set DIR (patient set: reports.csv, patients/ or frames.csv; default: the synthetic
//           set out/endoked/synthetic-set/, written once), --labels FILE (stage 1's labels.csv;
//           `uncertain` bags are not trained on; absent: the set's truth labels, logged as such).
// Produces in --out (default runs/endoked/02-mil):
//   frame_scores.csv     frame_path,patient_id,bag_label,teacher1,teacher2,student for every frame
//                        (teacher scores min-max normalised with the last teacher pass and clamped
//                        to [0, 1]; student = softmax probability of class 1)
//   encoder.safetensors  the shared encoder (keys encoder.*; metadata: the model config)
//   metrics.json         test patients: bag AUC per teacher and the student, instance AUC against
//                        the true frame labels, both per centre; precision of the frames selected
//                        for stage 3 (student ≥ --select in positive patients); per-epoch history
//   state.safetensors    resumable state (model, optimizer, device RNG, epoch, ranges, history),
//                        written atomically after every epoch; run again to continue
//   loss.png, auc.png    losses per epoch; test instance AUC per epoch
// Deviations (all flags): the encoder is a small CNN trained from scratch (no ImageNet ResNet-18);
// --optimizer adam / a higher --lr are offered for CPU-sized runs (reference: SGD lr 1e-3, no
// momentum); --double-softmax (default, faithful) or CE on the DSMIL bag logits; --pl-teacher-mode
// train (faithful: the reference computes pseudo-labels with the teachers in train mode, dropout
// on) or eval; --encoder-norm group (GroupNorm instead of BatchNorm in the encoder); --pl-oracle
// (debug upper bound: the student learns the true frame labels, the reference's commented-out
// line). Frames are FOV-cropped (engine/data/fov.ts, --fov), resized to the model's size
// (reference 512²) and normalised with the reference's mean/std.
// The stages live beside this entry: mil-bags.ts (bags, labels, split, frame cache), mil-train.ts
// (model, resume, teacher and student passes), mil-scores.ts (scores, metrics, output files).
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MIL } from '../../models/mil.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';
import { readBags, loadFrames, frameUploader } from './mil-bags.ts';
import { startRun, trainEpochs } from './mil-train.ts';
import { writeOutputs } from './mil-scores.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FLAGS = defineFlags(
  'recipes/endoked/02-mil.ts',
  'EndoKED-MIL: report-labelled patient bags -> frame scores (spec §2.2).',
  {
    set: {
      type: 'string',
      default: 'synthetic',
      help:
        "patient set folder, or 'synthetic' / 'real' (out/endoked/{synthetic,real}-set, built once by " +
        '00-patient-set.ts)',
    },
    labels: {
      type: 'string',
      help: "stage 1's labels.csv (patient_id,label[,evidence]); absent: the set's truth labels",
    },
    out: { type: 'string', help: 'output folder (default runs/endoked/02-mil)' },
    model: {
      type: 'string',
      default: 'mu',
      choices: ['mu', 'small'],
      help: 'models/mil.ts preset (mu: 32², spec §4; small: 64², wider)',
    },
    imageSize: { type: 'int', min: 8, max: 512, help: "frame size override (default: the preset's)" },
    gated: { type: 'boolean', default: false, help: 'teacher 1 with gated attention' },
    dropout: { type: 'number', min: 0, max: 0.9, help: 'head dropout override (reference and presets 0.5)' },
    encoderNorm: {
      type: 'string',
      choices: ['batch', 'group'],
      help: 'encoder norm override (presets: batch, as ResNet-18)',
    },
    headInit: {
      type: 'string',
      choices: ['reference', 'pytorch'],
      help: 'head Linear init override (reference: N(0, 0.01), zero bias)',
    },
    epochs: { type: 'int', default: 30, min: 1, help: 'epochs (teacher pass + student pass each; reference 1000)' },
    optimizer: {
      type: 'string',
      default: 'sgd',
      choices: ['sgd', 'adam'],
      help: 'reference: sgd (no momentum); adam is a CPU-size deviation',
    },
    lr: { type: 'number', default: 1e-3, min: 0, exclusiveMin: true, help: 'learning rate (reference 1e-3)' },
    batchSize: { type: 'int', default: 128, min: 2, help: 'student pass: frames per step (reference 128)' },
    maxBag: {
      type: 'int',
      default: 100,
      min: 2,
      help: 'teacher pass: frames per bag at most (sampled each epoch when more)',
    },
    smoothE: {
      type: 'int',
      default: 0,
      min: -1,
      help: 'StuFilter: skip positive bags in the teacher pass when epoch > this (reference argparse default 0)',
    },
    lambda: {
      type: 'number',
      default: 0.1,
      min: 0,
      max: 1,
      help: 'stu_loss_weight_neg λ (class default 0.1; the argparse 1.0 drops the positive term)',
    },
    teacherLossWeight: { type: 'numbers', default: [1, 1], min: 0, help: 'TeacherLossWeight: ABMIL, DSMIL' },
    plMergeWeight: { type: 'numbers', default: [0.5, 0.5], min: 0, help: 'PLMergeWeight: ABMIL, DSMIL' },
    doubleSoftmax: {
      type: 'boolean',
      default: true,
      help: "DSMIL's CE on softmaxed bag output, as the reference's loop (--no-double-softmax: on logits)",
    },
    plTeacherMode: {
      type: 'string',
      default: 'train',
      choices: ['train', 'eval'],
      help: 'teacher mode when making pseudo-labels (reference: train, dropout on)',
    },
    plOracle: {
      type: 'boolean',
      default: false,
      help: "debug upper bound: the student learns the TRUE frame labels (the reference's commented-out DEBUG line)",
    },
    select: {
      type: 'number',
      default: 0.8,
      min: 0,
      max: 1,
      help: 'stage-3 selection: student ≥ this in positive patients',
    },
    testFraction: {
      type: 'number',
      default: 0.3,
      min: 0,
      max: 0.9,
      help: 'patient-wise test share when the set has no split column',
    },
    fov: {
      type: 'boolean',
      default: true,
      help: 'crop frames to the field of view and fill on-screen panels (engine/data/fov.ts) before resizing',
    },
    seed: { type: 'int', default: 0, min: 0, help: 'init, data order, split' },
    maxMinutes: {
      type: 'number',
      min: 0,
      exclusiveMin: true,
      help: "wall-clock budget for this invocation's training (checkpointed)",
    },
    resume: { type: 'boolean', default: true, help: 'continue from <out>/state.safetensors' },
  },
);

export type MilFlags = NonNullable<ReturnType<typeof FLAGS.parse>>;

export async function main(argv: string[]): Promise<void> {
  const f = FLAGS.parse(argv);
  if (!f) return;
  const started = performance.now();
  if (f.teacherLossWeight.length !== 2 || f.plMergeWeight.length !== 2)
    throw new Error(
      '02-mil: --teacher-loss-weight and --pl-merge-weight take two numbers each (ABMIL,DSMIL), e.g. 1,1 and 0.5,0.5',
    );
  const config = {
    ...MIL[f.model as 'mu' | 'small'],
    gated: f.gated,
    ...(f.imageSize ? { imageSize: f.imageSize } : {}),
    ...(f.dropout !== undefined ? { dropout: f.dropout } : {}),
    ...(f.headInit ? { headInit: f.headInit } : {}),
    ...(f.encoderNorm ? { encoderNorm: f.encoderNorm } : {}),
  };
  const outDir = resolve(f.out ?? join(ROOT, 'runs', 'endoked', '02-mil'));

  // Bags from the report set with their labels and split; frames decoded + resized once, cached as bytes.
  const set = await readBags(f, ROOT);
  const pixels = await loadFrames(
    set.frames.map((x) => x.path),
    config.imageSize,
    f.fov,
    join(outDir, 'cache'),
  );
  const upload = frameUploader(pixels, config.imageSize);

  // Model and optimizer (resumed from <out>/state.safetensors), then the teacher/student epochs.
  const gpu = await initNode();
  console.log(`device: ${gpu.adapterName}`);
  const run = startRun(f, config, set.setDir, outDir);
  await trainEpochs(run, f, set, upload, outDir);

  // Every frame scored; frame_scores.csv, encoder.safetensors, metrics.json and the plots.
  await writeOutputs({ f, config, set, upload, run, outDir, device: gpu.adapterName, started });
  run.optimizer.dispose();
  run.model.dispose();
  await shutdown();
}

if (isMain(import.meta.url)) runMain(main);
