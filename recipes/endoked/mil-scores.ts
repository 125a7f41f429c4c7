// EndoKED stage 2 (02-mil.ts), its scores and outputs (spec §2.2): every frame scored by both
// teachers and the student, bag probabilities of both teachers, the test metrics (bag AUC, instance
// AUC against the true frame labels, per centre; the precision of the frames selected for stage 3),
// and the stage's files: frame_scores.csv, encoder.safetensors, metrics.json, loss.png, auc.png.
// Reference: zwyang6/ENDOKED EndoKED_MIL (norm_AttnScore2Prob: teacher scores min-max normalised
// with the ranges of the last teacher pass).
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  tidy,
  noGrad,
  softmax,
  narrow,
  reshape,
  Module,
  weightsBytes,
  metrics,
  type Tensor,
} from '../../engine/index.ts';
import { serialiseCsv } from '../../engine/data/index.ts';
import type { EndoKedMil, MilConfig, MilEncoder } from '../../models/mil.ts';
import { writeAtomic } from '../../runtime-node/checkpoint.ts';
import { writePng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import type { MilFlags } from './02-mil.ts';
import type { MilBags, Upload } from './mil-bags.ts';
import type { MilRun } from './mil-train.ts';

/** Per frame: teacher scores (raw) and the student's probability; per bag: each teacher's bag probability. */
export interface Scores {
  t1: Float32Array;
  t2: Float32Array;
  st: Float32Array;
  bag1: Float32Array;
  bag2: Float32Array;
}

export const fmt3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

/** The bags `which` scored in eval mode, one bag per forward pass (entries of other bags stay 0). */
export async function scoreBags(model: EndoKedMil, set: MilBags, upload: Upload, which: number[]): Promise<Scores> {
  const { bags, frames } = set;
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

/** Bag AUC (student: max over the bag's frames) and instance AUC over frames with a true label. */
export function evaluate(set: MilBags, s: Scores, which: number[]): Record<string, number> {
  const { bags, frames } = set;
  const maxOf = (v: Float32Array, b: number) => bags[b].frames.reduce((m, fi) => Math.max(m, v[fi]), -Infinity);
  const fr = which.flatMap((b) => bags[b].frames).filter((fi) => !Number.isNaN(frames[fi].truth));
  const inPos = fr.filter((fi) => bags[frames[fi].bag].truth === 1);
  const auc = metrics.rocAuc,
    truth = which.map((b) => bags[b].truth);
  const bagAuc = (score: (b: number) => number) => auc(truth, which.map(score));
  const frameAuc = (v: Float32Array, ids: number[]) =>
    auc(
      ids.map((fi) => frames[fi].truth),
      ids.map((fi) => v[fi]),
    );
  return {
    bags: which.length,
    frames: fr.length,
    bagAucTeacher1: bagAuc((b) => s.bag1[b]),
    bagAucTeacher2: bagAuc((b) => s.bag2[b]),
    bagAucStudent: bagAuc((b) => maxOf(s.st, b)),
    instanceAucTeacher1: frameAuc(s.t1, fr),
    instanceAucTeacher2: frameAuc(s.t2, fr),
    instanceAucStudent: frameAuc(s.st, fr),
    instanceAucStudentInPositiveBags: frameAuc(s.st, inPos),
  };
}

/** The encoder alone, under the key prefix `encoder.` (stage 7 initialises from it). */
class EncoderOnly extends Module {
  constructor(readonly encoder: MilEncoder) {
    super();
  }
}

export interface OutputContext {
  f: MilFlags;
  config: MilConfig;
  set: MilBags;
  upload: Upload;
  run: MilRun;
  outDir: string;
  device: string;
  /** performance.now() when the invocation started (for wallSeconds). */
  started: number;
}

/** Scores every frame with the final model and writes the stage's files; logs train/test AUC and the selection. */
export async function writeOutputs(o: OutputContext): Promise<void> {
  const { f, set, run, outDir } = o;
  const { bags, frames, trainBags, testBags } = set;
  const { ranges, history } = run;
  const all = await scoreBags(
    run.model,
    set,
    o.upload,
    bags.map((_, i) => i),
  );
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
    await weightsBytes(new EncoderOnly(run.model.encoder), {
      model: 'endoked_mil_encoder',
      config: JSON.stringify(o.config),
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
    set: set.setDir,
    labels: f.labels ? resolve(f.labels) : 'truth labels (no stage-1 file given)',
    model: f.model,
    config: o.config,
    device: o.device,
    flags: f,
    epochs: run.epoch,
    trainSeconds: Math.round(run.seconds),
    ranges,
    test: evaluate(set, all, testBags),
    train: evaluate(set, all, trainBags),
    perCentre: Object.fromEntries(
      centres.map((c) => [
        c,
        evaluate(
          set,
          all,
          testBags.filter((b) => bags[b].centre === c),
        ),
      ]),
    ),
    selection: { threshold: f.select, all: selection(bags.map((_, i) => i)), test: selection(testBags) },
    history,
    wallSeconds: Math.round((performance.now() - o.started) / 1000),
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
}
