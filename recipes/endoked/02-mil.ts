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
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  tidy,
  noGrad,
  backward,
  tensor,
  add,
  mul,
  softmax,
  narrow,
  reshape,
  manualSeed,
  defaultGenerator,
  SGD,
  Adam,
  Module,
  trainStateBytes,
  restoreTrainState,
  weightsBytes,
  metrics,
  shuffle,
  type Tensor,
} from '../../engine/index.ts';
import { parseCsvTable, serialiseCsv, rng, prepareFrame } from '../../engine/data/index.ts';
import {
  endoKedMil,
  abmilLoss,
  dsmilLoss,
  studentLoss,
  pseudoLabels,
  MIL,
  type MilEncoder,
  type ScoreRange,
} from '../../models/mil.ts';
import { initNode, shutdown } from '../../runtime-node/index.ts';
import { readReportSet, type PatientBag } from '../../runtime-node/report-sets.ts';
import { decodeImage, resizeImage } from '../../runtime-node/image.ts';
import { main as buildPatientSet } from './00-patient-set.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import { writePng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';

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

const MEAN = [0.315, 0.205, 0.136],
  STD = [0.307, 0.216, 0.152]; // the reference's frame normalisation

interface Bag {
  id: string;
  label: number | 'uncertain';
  truth: number;
  split: 'train' | 'test';
  centre: string;
  frames: number[];
}
interface Frame {
  path: string;
  bag: number;
  truth: number;
}
interface EpochLog {
  epoch: number;
  teacherLoss: number;
  studentLoss: number;
  skipped: number;
  test: Record<string, number>;
}
interface Extra {
  epoch: number;
  ranges: ScoreRange[];
  history: EpochLog[];
  seconds: number;
  signature: string;
}

export async function main(argv: string[]): Promise<void> {
  const f = FLAGS.parse(argv);
  if (!f) return;
  const started = performance.now();
  const fail = (m: string): never => {
    throw new Error(`02-mil: ${m}`);
  };
  if (f.teacherLossWeight.length !== 2 || f.plMergeWeight.length !== 2)
    fail('--teacher-loss-weight and --pl-merge-weight take two numbers each (ABMIL,DSMIL), e.g. 1,1 and 0.5,0.5');
  const config = {
    ...MIL[f.model as 'mu' | 'small'],
    gated: f.gated,
    ...(f.imageSize ? { imageSize: f.imageSize } : {}),
    ...(f.dropout !== undefined ? { dropout: f.dropout } : {}),
    ...(f.headInit ? { headInit: f.headInit } : {}),
    ...(f.encoderNorm ? { encoderNorm: f.encoderNorm } : {}),
  };
  const S = config.imageSize;
  const outDir = resolve(f.out ?? join(ROOT, 'runs', 'endoked', '02-mil'));

  // ---- data: bags, labels, split ----------------------------------------------------------------
  const named = f.set === 'synthetic' || f.set === 'real';
  const setDir = named ? join(ROOT, 'out', 'endoked', `${f.set}-set`) : resolve(f.set);
  if (named && !existsSync(join(setDir, 'reports.csv'))) await buildPatientSet(['--data', f.set]);
  if (!existsSync(join(setDir, 'reports.csv')))
    fail(
      `--set "${setDir}" has no reports.csv; build one with recipes/endoked/00-patient-set.ts or pass --set synthetic`,
    );
  const patients: (PatientBag & { split?: string; centre?: string })[] = readReportSet(setDir).patients;
  const used = new Map<string, number | 'uncertain'>();
  if (f.labels) {
    const file = resolve(f.labels);
    if (!existsSync(file))
      fail(
        `--labels "${file}" does not exist (stage 1 writes it: recipes/endoked/01-report-labels.ts ` +
          `--out DIR -> DIR/labels.csv)`,
      );
    for (const r of parseCsvTable(readFileSync(file, 'utf8'), file, ['patient_id', 'label']).rows) {
      const v = r.label.trim();
      if (v !== '0' && v !== '1' && v !== 'uncertain')
        fail(`${file}: patient ${r.patient_id}: label "${v}" is not 1, 0 or uncertain`);
      used.set(r.patient_id.trim(), v === 'uncertain' ? 'uncertain' : Number(v));
    }
    const missing = patients.filter((p) => !used.has(p.patientId));
    if (missing.length)
      fail(`${file} has no label for ${missing.length} patient(s) of the set, e.g. ${missing[0].patientId}`);
    console.log(`labels: ${file}`);
  } else {
    for (const p of patients) used.set(p.patientId, p.label);
    console.log("labels: truth labels (no stage-1 file given) — the set's reports.csv label column");
  }
  const splitRng = rng(f.seed, 'mil-split');
  const hasSplit = patients.every((p) => p.split === 'train' || p.split === 'test');
  if (!hasSplit)
    console.log(
      `split: the set has no split column; seeded patient-wise split, ${Math.round(f.testFraction * 100)}% test`,
    );
  const frames: Frame[] = [];
  const bags: Bag[] = patients.map((p, b) => {
    const idx = p.frames.map((r) => frames.push({ path: r.imagePath, bag: b, truth: r.label ?? NaN }) - 1);
    const split = hasSplit ? (p.split as 'train' | 'test') : splitRng.random() < f.testFraction ? 'test' : 'train';
    return {
      id: p.patientId,
      label: used.get(p.patientId)!,
      truth: p.label,
      split,
      centre: p.centre ?? 'all',
      frames: idx,
    };
  });
  const trainBags = bags
    .map((_, i) => i)
    .filter((i) => bags[i].split === 'train' && bags[i].label !== 'uncertain' && bags[i].frames.length >= 2);
  const testBags = bags.map((_, i) => i).filter((i) => bags[i].split === 'test');
  const trainFrames = trainBags.flatMap((i) => bags[i].frames);
  if (!trainBags.some((i) => bags[i].label === 1) || !trainBags.some((i) => bags[i].label === 0))
    fail('the training bags need both labels (1 and 0)');
  console.log(
    `set: ${setDir}: ${bags.length} patients, ${frames.length} frames; train ${trainBags.length} ` +
      `bags / ${trainFrames.length} frames` +
      ` (${bags.filter((b) => b.split === 'train' && b.label === 'uncertain').length} uncertain left ` +
      `out), test ${testBags.length} bags`,
  );

  // ---- frames: decode + resize once, cached on disk as bytes ------------------------------------
  const pixels = await loadFrames(
    frames.map((x) => x.path),
    S,
    f.fov,
    join(outDir, 'cache'),
  );
  const upload = (idx: readonly number[]): Tensor => {
    const n = idx.length,
      plane = S * S,
      out = new Float32Array(n * 3 * plane);
    idx.forEach((fi, k) => {
      const src = pixels.subarray(fi * 3 * plane, (fi + 1) * 3 * plane);
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < plane; p++) out[(k * 3 + c) * plane + p] = (src[p * 3 + c] / 255 - MEAN[c]) / STD[c];
    });
    return tensor(out, [n, 3, S, S]); // HWC bytes -> [n, 3, S, S] normalised
  };

  // ---- model, optimizer, resume -----------------------------------------------------------------
  const gpu = await initNode();
  console.log(`device: ${gpu.adapterName}`);
  manualSeed(f.seed);
  const model = endoKedMil(config);
  model.flattenParameters();
  const optimizer =
    f.optimizer === 'adam' ? new Adam(model.parameters(), { lr: f.lr }) : new SGD(model.parameters(), { lr: f.lr });
  const signature = JSON.stringify({
    config,
    optimizer: f.optimizer,
    lr: f.lr,
    set: setDir,
    labels: f.labels ?? null,
    seed: f.seed,
  });
  const statePath = join(outDir, 'state.safetensors');
  let epoch = 0,
    ranges: ScoreRange[] = [
      { min: 0, max: 1 },
      { min: 0, max: 1 },
    ],
    history: EpochLog[] = [],
    seconds = 0;
  const saved = f.resume ? readIfExists(statePath) : null;
  if (saved) {
    const r = restoreTrainState<Extra>(saved, { model, optimizer, generator: defaultGenerator }, statePath);
    if (r.extra.signature !== signature)
      fail(
        `${statePath} was written by another configuration (${r.extra.signature}); use another --out or --no-resume`,
      );
    ({ epoch, ranges, history, seconds } = r.extra);
    console.log(`resumed from ${statePath} after epoch ${epoch}`);
  }
  console.log(
    `model: EndoKED-MIL ${f.model} (${S}², encoder ` +
      `${config.channels.join('-')}${f.gated ? ', gated ABMIL' : ''}), ` +
      `${(model.numParameters() / 1e3).toFixed(1)}k parameters; ${f.optimizer} lr ${f.lr}`,
  );
  const [w1, w2] = f.teacherLossWeight;
  const teachers = [model.teacher1, model.teacher2];
  const setTeacherMode = (train: boolean) => {
    for (const t of teachers) {
      if (train) t.train();
      else t.eval();
    }
  };

  // ---- evaluation: every frame's scores, bag probabilities ---------------------------------------
  type Scores = { t1: Float32Array; t2: Float32Array; st: Float32Array; bag1: Float32Array; bag2: Float32Array };
  async function score(which: number[]): Promise<Scores> {
    model.eval();
    const s: Scores = {
      t1: new Float32Array(frames.length),
      t2: new Float32Array(frames.length),
      st: new Float32Array(frames.length),
      bag1: new Float32Array(bags.length),
      bag2: new Float32Array(bags.length),
    };
    for (const b of which) {
      const idx = bags[b].frames;
      const outs = noGrad(() =>
        tidy(() => {
          const feat = model.encoder.forward(upload(idx));
          const o1 = model.teacher1.forward(feat),
            o2 = model.teacher2.forward(feat);
          const p1 = (t: Tensor) => narrow(softmax(t, 1), 1, 1, 1);
          return [
            o1.scores,
            o2.scores,
            reshape(p1(model.student.forward(feat)), [idx.length]),
            p1(o1.logits),
            p1(o2.logits),
          ];
        }),
      );
      const [a, c, st, b1, b2] = await Promise.all(outs.map((t) => t.data()));
      idx.forEach((fi, k) => {
        s.t1[fi] = a[k];
        s.t2[fi] = c[k];
        s.st[fi] = st[k];
      });
      s.bag1[b] = b1[0];
      s.bag2[b] = b2[0];
      for (const t of outs) t.dispose();
    }
    return s;
  }
  const maxOf = (s: Float32Array, b: number) => bags[b].frames.reduce((m, fi) => Math.max(m, s[fi]), -Infinity);
  function evaluate(s: Scores, which: number[]): Record<string, number> {
    const fr = which.flatMap((b) => bags[b].frames).filter((fi) => !Number.isNaN(frames[fi].truth));
    const inPos = fr.filter((fi) => bags[frames[fi].bag].truth === 1);
    const truth = which.map((b) => bags[b].truth),
      auc = metrics.rocAuc;
    return {
      bags: which.length,
      frames: fr.length,
      bagAucTeacher1: auc(
        truth,
        which.map((b) => s.bag1[b]),
      ),
      bagAucTeacher2: auc(
        truth,
        which.map((b) => s.bag2[b]),
      ),
      bagAucStudent: auc(
        truth,
        which.map((b) => maxOf(s.st, b)),
      ),
      instanceAucTeacher1: auc(
        fr.map((fi) => frames[fi].truth),
        fr.map((fi) => s.t1[fi]),
      ),
      instanceAucTeacher2: auc(
        fr.map((fi) => frames[fi].truth),
        fr.map((fi) => s.t2[fi]),
      ),
      instanceAucStudent: auc(
        fr.map((fi) => frames[fi].truth),
        fr.map((fi) => s.st[fi]),
      ),
      instanceAucStudentInPositiveBags: auc(
        inPos.map((fi) => frames[fi].truth),
        inPos.map((fi) => s.st[fi]),
      ),
    };
  }

  // ---- training -----------------------------------------------------------------------------------
  mkdirSync(outDir, { recursive: true });
  const deadline = f.maxMinutes ? performance.now() + f.maxMinutes * 60_000 : Infinity;
  const studentSteps = Math.ceil(trainFrames.length / f.batchSize);
  const bar = new Progress({ total: f.epochs * (trainBags.length + studentSteps), label: 'mil', unit: 'step' });
  bar.set(epoch * (trainBags.length + studentSteps));
  const finite = (v: number, what: string) => {
    if (!Number.isFinite(v))
      fail(`${what} became ${v} at epoch ${epoch + 1}; no checkpoint written for this epoch (try a lower --lr)`);
  };
  while (epoch < f.epochs && performance.now() < deadline) {
    const t0 = performance.now(),
      r = rng(f.seed, 'mil-epoch', epoch);
    // 1. teacher pass over bags
    model.train();
    model.student.eval();
    const kept: number[][] = [[], []];
    let tLoss = 0,
      tSteps = 0,
      skipped = 0;
    for (const b of shuffle([...trainBags], r)) {
      const bag = bags[b];
      if (epoch > f.smoothE && bag.label === 1) {
        skipped++;
        bar.tick(1);
        continue;
      } // StuFilter
      const idx = bag.frames.length > f.maxBag ? shuffle([...bag.frames], r).slice(0, f.maxBag) : bag.frames;
      const outs = tidy(() => {
        const feat = model.encoder.forward(upload(idx));
        const o1 = model.teacher1.forward(feat),
          o2 = model.teacher2.forward(feat);
        const y = bag.label as number;
        const loss = add(mul(abmilLoss(o1, y), w1), mul(dsmilLoss(o2, y, { doubleSoftmax: f.doubleSoftmax }), w2));
        backward(loss);
        optimizer.step();
        optimizer.zeroGrad();
        return [loss, o1.scores, o2.scores];
      });
      const [l, s1, s2] = await Promise.all(outs.map((t) => t.data()));
      for (const t of outs) t.dispose();
      finite(l[0], 'the teacher loss');
      kept[0].push(...s1);
      kept[1].push(...s2);
      tLoss += l[0];
      tSteps++;
      bar.tick(1, `epoch ${epoch + 1} teacher ${(tLoss / tSteps).toFixed(4)}`);
    }
    if (kept[0].length) ranges = kept.map((v) => ({ min: Math.min(...v), max: Math.max(...v) }));
    // 2. student pass over instances
    model.train();
    setTeacherMode(f.plTeacherMode === 'train');
    const order = shuffle([...trainFrames], r);
    let sLoss = 0;
    for (let i = 0; i < order.length; i += f.batchSize) {
      const idx = order.slice(i, i + f.batchSize);
      if (idx.length < 2) {
        bar.tick(1);
        continue;
      } // BatchNorm needs 2 values per channel in train mode
      const pos = tensor(
        idx.map((fi) => (bags[frames[fi].bag].label === 1 ? 1 : 0)),
        [idx.length],
      );
      const loss = tidy(() => {
        const feat = model.encoder.forward(upload(idx));
        const pl = f.plOracle
          ? tensor(
              idx.map((fi) => frames[fi].truth || 0),
              [idx.length],
            )
          : noGrad(() =>
              pseudoLabels(
                [model.teacher1.forward(feat).scores, model.teacher2.forward(feat).scores],
                ranges,
                f.plMergeWeight,
                pos,
              ),
            );
        const l = studentLoss(model.student.forward(feat), pl, f.lambda);
        backward(l);
        optimizer.step();
        optimizer.zeroGrad();
        return l;
      });
      pos.dispose();
      const v = await loss.item();
      loss.dispose();
      finite(v, 'the student loss');
      sLoss += v * idx.length;
      bar.tick(1, `epoch ${epoch + 1} student ${(sLoss / Math.min(order.length, i + f.batchSize)).toFixed(4)}`);
    }
    const test = evaluate(await score(testBags), testBags);
    epoch++;
    seconds += (performance.now() - t0) / 1000;
    history.push({
      epoch,
      teacherLoss: tSteps ? tLoss / tSteps : NaN,
      studentLoss: sLoss / trainFrames.length,
      skipped,
      test,
    });
    console.log(
      `epoch ${epoch}: teacher ${history.at(-1)!.teacherLoss.toFixed(4)} (${skipped} positive bags ` +
        `skipped), student ${history.at(-1)!.studentLoss.toFixed(4)};` +
        ` test bag AUC ` +
        `${fmt3(test.bagAucTeacher1)}/${fmt3(test.bagAucTeacher2)}/${fmt3(test.bagAucStudent)}, ` +
        `instance AUC ` +
        `${fmt3(test.instanceAucTeacher1)}/${fmt3(test.instanceAucTeacher2)}/${fmt3(test.instanceAucStudent)} ` +
        `(T1/T2/student)`,
    );
    writeAtomic(
      statePath,
      await trainStateBytes<Extra>({
        model,
        optimizer,
        generator: defaultGenerator,
        extra: { epoch, ranges, history, seconds, signature },
      }),
    );
  }
  if (epoch < f.epochs)
    console.log(`stopped after epoch ${epoch} of ${f.epochs} (--max-minutes ${f.maxMinutes}); run again to continue`);

  // ---- outputs ------------------------------------------------------------------------------------
  const all = await score(bags.map((_, i) => i));
  const norm = (v: number, t: number) =>
    Math.min(1, Math.max(0, (v - ranges[t].min) / (ranges[t].max - ranges[t].min)));
  const r6 = (v: number) => Number(v.toFixed(6));
  writeFileSync(
    join(outDir, 'frame_scores.csv'),
    serialiseCsv([
      ['frame_path', 'patient_id', 'bag_label', 'teacher1', 'teacher2', 'student'],
      ...frames.map((x, fi) => [
        x.path,
        bags[x.bag].id,
        bags[x.bag].label,
        r6(norm(all.t1[fi], 0)),
        r6(norm(all.t2[fi], 1)),
        r6(all.st[fi]),
      ]),
    ]),
  );
  writeAtomic(
    join(outDir, 'encoder.safetensors'),
    await weightsBytes(new EncoderOnly(model.encoder), {
      model: 'endoked_mil_encoder',
      config: JSON.stringify(config),
    }),
  );
  const selection = (which: number[]) => {
    const sel = which
      .filter((b) => bags[b].label === 1)
      .flatMap((b) => bags[b].frames)
      .filter((fi) => all.st[fi] >= f.select);
    const tp = sel.filter((fi) => frames[fi].truth === 1).length;
    return { selected: sel.length, truePositives: tp, precision: sel.length ? tp / sel.length : NaN };
  };
  const centres = [...new Set(testBags.map((b) => bags[b].centre))].sort();
  const result = {
    set: setDir,
    labels: f.labels ? resolve(f.labels) : 'truth labels (no stage-1 file given)',
    model: f.model,
    config,
    device: gpu.adapterName,
    flags: f,
    epochs: epoch,
    trainSeconds: Math.round(seconds),
    ranges,
    test: evaluate(all, testBags),
    train: evaluate(all, trainBags),
    perCentre: Object.fromEntries(
      centres.map((c) => [
        c,
        evaluate(
          all,
          testBags.filter((b) => bags[b].centre === c),
        ),
      ]),
    ),
    selection: { threshold: f.select, all: selection(bags.map((_, i) => i)), test: selection(testBags) },
    history,
    wallSeconds: Math.round((performance.now() - started) / 1000),
  };
  writeFileSync(
    join(outDir, 'metrics.json'),
    JSON.stringify(result, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n',
  );
  const x = history.map((h) => h.epoch);
  await writePng(
    join(outDir, 'loss.png'),
    plot.lineChart(
      [
        { name: 'teacher (bag) loss', x, y: history.map((h) => h.teacherLoss) },
        { name: 'student loss', x, y: history.map((h) => h.studentLoss) },
      ],
      { title: 'EndoKED-MIL losses', xLabel: 'epoch', yLabel: 'loss' },
    ),
  );
  await writePng(
    join(outDir, 'auc.png'),
    plot.lineChart(
      (['Teacher1', 'Teacher2', 'Student'] as const).map((k) => ({
        name: `instance AUC ${k}`,
        x,
        y: history.map((h) => h.test[`instanceAuc${k}`] ?? NaN),
      })),
      { title: 'test instance AUC (true frame labels)', xLabel: 'epoch', yLabel: 'AUC' },
    ),
  );
  const t = result.test;
  console.log(
    `train: bag AUC T1 ${fmt3(result.train.bagAucTeacher1)}, T2 ` +
      `${fmt3(result.train.bagAucTeacher2)}, student ${fmt3(result.train.bagAucStudent)}; instance AUC ` +
      `T1 ${fmt3(result.train.instanceAucTeacher1)}, T2 ${fmt3(result.train.instanceAucTeacher2)}, ` +
      `student ${fmt3(result.train.instanceAucStudent)}`,
  );
  console.log(
    `test: bag AUC T1 ${fmt3(t.bagAucTeacher1)}, T2 ${fmt3(t.bagAucTeacher2)}, student ` +
      `${fmt3(t.bagAucStudent)}; instance AUC T1 ${fmt3(t.instanceAucTeacher1)}, T2 ` +
      `${fmt3(t.instanceAucTeacher2)}, student ${fmt3(t.instanceAucStudent)}`,
  );
  console.log(
    `selection (student ≥ ${f.select} in positive patients): ${result.selection.all.selected} ` +
      `frames, precision ${fmt3(result.selection.all.precision)}; wall ${result.wallSeconds} s`,
  );
  console.log(
    `wrote ${outDir}/frame_scores.csv, encoder.safetensors, metrics.json, state.safetensors, loss.png, auc.png`,
  );
  optimizer.dispose();
  model.dispose();
  await shutdown();
}

const fmt3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

/** The encoder alone, under the key prefix `encoder.` (stage 7 initialises from it). */
class EncoderOnly extends Module {
  constructor(readonly encoder: MilEncoder) {
    super();
  }
}

/** Frames decoded, FOV-cropped (fov), resized to S² (RGB bytes, HWC), cached in `dir` keyed by the path list. */
async function loadFrames(paths: string[], S: number, fov: boolean, dir: string): Promise<Uint8Array> {
  const key = hash(`${S}\n${fov}\n${paths.join('\n')}`),
    file = join(dir, `frames-${S}-${key}.u8`);
  const size = paths.length * S * S * 3;
  if (existsSync(file)) {
    const b = new Uint8Array(readFileSync(file));
    if (b.length === size) return b;
  }
  const out = new Uint8Array(size),
    bar = new Progress({ total: paths.length, label: 'decode', unit: 'frame' });
  for (let i = 0; i < paths.length; i += 8) {
    await Promise.all(
      paths.slice(i, i + 8).map(async (p, k) => {
        const img = await decodeImage(p);
        out.set((await resizeImage(fov ? prepareFrame(img).image : img, S, S)).data, (i + k) * S * S * 3);
      }),
    );
    bar.tick(Math.min(8, paths.length - i));
  }
  writeAtomic(file, out);
  return out;
}

function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

if (isMain(import.meta.url)) runMain(main);
