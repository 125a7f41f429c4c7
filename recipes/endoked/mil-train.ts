// EndoKED stage 2 (02-mil.ts), its training (spec §2.2): the model and optimizer, resumed from
// <out>/state.safetensors when it was written by the same configuration, then epochs of
//   1. a teacher pass over bags (one bag per step, frames capped at --max-bag, sampled when more):
//      loss = Σ_t TeacherLossWeight_t · L_t for ABMIL (teacher 1) and DSMIL (teacher 2), StuFilter
//      skipping positive bags after epoch --smooth-e; the instance scores of the bags trained on
//      give each teacher's min/max for norm_AttnScore2Prob;
//   2. a student pass over the training frames (batches of --batch-size) on the teachers' merged
//      pseudo-labels (0 in negative bags);
// then the test bags scored, the epoch logged, and the state written atomically. A non-finite loss
// stops the run before that epoch's checkpoint.
// Reference: zwyang6/ENDOKED EndoKED_MIL/train_Endo_BagDistillation_SharedEnc_Similarity_StuFilter.py.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  tidy,
  noGrad,
  backward,
  tensor,
  add,
  mul,
  manualSeed,
  defaultGenerator,
  SGD,
  Adam,
  trainStateBytes,
  restoreTrainState,
  shuffle,
} from '../../engine/index.ts';
import { rng, type Rng } from '../../engine/data/index.ts';
import {
  endoKedMil,
  abmilLoss,
  dsmilLoss,
  studentLoss,
  pseudoLabels,
  type EndoKedMil,
  type MilConfig,
  type ScoreRange,
} from '../../models/mil.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic, readIfExists } from '../../runtime-node/checkpoint.ts';
import type { MilFlags } from './02-mil.ts';
import type { MilBags, Upload } from './mil-bags.ts';
import { scoreBags, evaluate, fmt3 } from './mil-scores.ts';

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

/** The model, its optimizer and where training stands (advanced in place by trainEpochs). */
export interface MilRun {
  model: EndoKedMil;
  optimizer: SGD | Adam;
  statePath: string;
  signature: string;
  epoch: number;
  ranges: ScoreRange[];
  history: EpochLog[];
  seconds: number;
}

const fail = (m: string): never => {
  throw new Error(`02-mil: ${m}`);
};

/** Seeded model and optimizer; resumed from <outDir>/state.safetensors (--resume) when its signature matches. */
export function startRun(f: MilFlags, config: MilConfig, setDir: string, outDir: string): MilRun {
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
  const run: MilRun = {
    model,
    optimizer,
    statePath,
    signature,
    epoch: 0,
    ranges: [
      { min: 0, max: 1 },
      { min: 0, max: 1 },
    ],
    history: [],
    seconds: 0,
  };
  const saved = f.resume ? readIfExists(statePath) : null;
  if (saved) {
    const r = restoreTrainState<Extra>(saved, { model, optimizer, generator: defaultGenerator }, statePath);
    if (r.extra.signature !== signature)
      fail(
        `${statePath} was written by another configuration (${r.extra.signature}); use another --out or --no-resume`,
      );
    ({ epoch: run.epoch, ranges: run.ranges, history: run.history, seconds: run.seconds } = r.extra);
    console.log(`resumed from ${statePath} after epoch ${run.epoch}`);
  }
  console.log(
    `model: EndoKED-MIL ${f.model} (${config.imageSize}², encoder ` +
      `${config.channels.join('-')}${f.gated ? ', gated ABMIL' : ''}), ` +
      `${(model.numParameters() / 1e3).toFixed(1)}k parameters; ${f.optimizer} lr ${f.lr}`,
  );
  return run;
}

/** What one pass needs: the run, flags, data, the progress bar and the non-finite-loss check. */
interface Pass {
  run: MilRun;
  f: MilFlags;
  set: MilBags;
  upload: Upload;
  bar: Progress;
  finite: (v: number, what: string) => void;
}

/** Epochs from run.epoch to --epochs (or until --max-minutes), each checkpointed; stops on a non-finite loss. */
export async function trainEpochs(run: MilRun, f: MilFlags, set: MilBags, upload: Upload, outDir: string) {
  const { trainBags, testBags, trainFrames } = set;
  mkdirSync(outDir, { recursive: true });
  const deadline = f.maxMinutes ? performance.now() + f.maxMinutes * 60_000 : Infinity;
  const studentSteps = Math.ceil(trainFrames.length / f.batchSize);
  const bar = new Progress({ total: f.epochs * (trainBags.length + studentSteps), label: 'mil', unit: 'step' });
  bar.set(run.epoch * (trainBags.length + studentSteps));
  const finite = (v: number, what: string) => {
    if (!Number.isFinite(v))
      fail(`${what} became ${v} at epoch ${run.epoch + 1}; no checkpoint written for this epoch (try a lower --lr)`);
  };
  const pass: Pass = { run, f, set, upload, bar, finite };
  while (run.epoch < f.epochs && performance.now() < deadline) {
    const t0 = performance.now(),
      r = rng(f.seed, 'mil-epoch', run.epoch);
    const teacher = await teacherPass(pass, r);
    const sLoss = await studentPass(pass, r);
    const test = evaluate(set, await scoreBags(run.model, set, upload, testBags), testBags);
    run.epoch++;
    run.seconds += (performance.now() - t0) / 1000;
    const h: EpochLog = {
      epoch: run.epoch,
      teacherLoss: teacher.steps ? teacher.loss / teacher.steps : NaN,
      studentLoss: sLoss / trainFrames.length,
      skipped: teacher.skipped,
      test,
    };
    run.history.push(h);
    console.log(
      `epoch ${run.epoch}: teacher ${h.teacherLoss.toFixed(4)} (${h.skipped} positive bags ` +
        `skipped), student ${h.studentLoss.toFixed(4)};` +
        ` test bag AUC ` +
        `${fmt3(test.bagAucTeacher1)}/${fmt3(test.bagAucTeacher2)}/${fmt3(test.bagAucStudent)}, ` +
        `instance AUC ` +
        `${fmt3(test.instanceAucTeacher1)}/${fmt3(test.instanceAucTeacher2)}/${fmt3(test.instanceAucStudent)} ` +
        `(T1/T2/student)`,
    );
    const { model, optimizer, epoch, ranges, history, seconds, signature } = run;
    writeAtomic(
      run.statePath,
      await trainStateBytes<Extra>({
        model,
        optimizer,
        generator: defaultGenerator,
        extra: { epoch, ranges, history, seconds, signature },
      }),
    );
  }
  if (run.epoch < f.epochs)
    console.log(
      `stopped after epoch ${run.epoch} of ${f.epochs} (--max-minutes ${f.maxMinutes}); run again to continue`,
    );
}

/**
 * 1. Teacher pass over the training bags in the epoch's order (StuFilter: positive bags skipped after
 * --smooth-e); sets run.ranges from the instance scores of the bags trained on.
 */
async function teacherPass({ run, f, set, upload, bar, finite }: Pass, r: Rng) {
  const { bags, trainBags } = set;
  const { model, optimizer } = run;
  const [w1, w2] = f.teacherLossWeight;
  model.train();
  model.student.eval();
  const kept: number[][] = [[], []];
  let loss = 0,
    steps = 0,
    skipped = 0;
  for (const b of shuffle([...trainBags], r)) {
    const bag = bags[b];
    if (run.epoch > f.smoothE && bag.label === 1) {
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
      const l = add(mul(abmilLoss(o1, y), w1), mul(dsmilLoss(o2, y, { doubleSoftmax: f.doubleSoftmax }), w2));
      backward(l);
      optimizer.step();
      optimizer.zeroGrad();
      return [l, o1.scores, o2.scores];
    });
    const [l, s1, s2] = await Promise.all(outs.map((t) => t.data()));
    for (const t of outs) t.dispose();
    finite(l[0], 'the teacher loss');
    kept[0].push(...s1);
    kept[1].push(...s2);
    loss += l[0];
    steps++;
    bar.tick(1, `epoch ${run.epoch + 1} teacher ${(loss / steps).toFixed(4)}`);
  }
  if (kept[0].length) run.ranges = kept.map((v) => ({ min: Math.min(...v), max: Math.max(...v) }));
  return { loss, steps, skipped };
}

/**
 * 2. Student pass over the training frames in batches: pseudo-labels from both teachers (in train mode
 * with --pl-teacher-mode train, as the reference), 0 in negative bags; returns the summed loss.
 */
async function studentPass({ run, f, set, upload, bar, finite }: Pass, r: Rng): Promise<number> {
  const { bags, frames, trainFrames } = set;
  const { model, optimizer } = run;
  model.train();
  for (const t of [model.teacher1, model.teacher2]) {
    if (f.plTeacherMode === 'train') t.train();
    else t.eval();
  }
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
              run.ranges,
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
    bar.tick(1, `epoch ${run.epoch + 1} student ${(sLoss / Math.min(order.length, i + f.batchSize)).toFixed(4)}`);
  }
  return sLoss;
}
