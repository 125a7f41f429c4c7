// What the optical-biopsy recipe (07-optical-biopsy.ts, spec §2.7) writes: per arm, after its
// training, metrics.json (frame AUC as the reference's instance AUC, polyp and patient AUC,
// sensitivity/specificity at the operating point of biopsy-metrics.ts), predictions.csv,
// weights.safetensors, encoder.safetensors (keys encoder.*) and loss.png; over the arms, the top
// metrics.json, report.md (the comparison table) and roc.png (test ROC, frame and patient level).
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { weightsBytes, metrics } from '../../engine/index.ts';
import { serialiseCsv } from '../../engine/data/index.ts';
import { encoderBytes } from '../../models/optical-biopsy.ts';
import { writeAtomic } from '../../runtime-node/checkpoint.ts';
import { writePng } from '../../runtime-node/plots.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { groupScores, splitReports, type BinaryReport } from './biopsy-metrics.ts';
import { predict, type Arm, type ArmContext, type ArmState } from './biopsy-train.ts';

export interface ArmResult {
  arm: Arm;
  init: string | null;
  steps: number;
  seconds: number;
  finalLoss: number;
  train: { frame: BinaryReport };
  test: { frame: BinaryReport; polyp: BinaryReport; patient: BinaryReport };
}
type Roc = Record<'frame' | 'patient', metrics.RocCurve>;

/** Scores both splits with the trained arm, writes its files, and returns its result and test ROC curves. */
export async function evaluateArm(ctx: ArmContext, st: ArmState): Promise<{ result: ArmResult; roc: Roc }> {
  const { f } = ctx,
    { train, test } = ctx.data,
    { arm, dir, init, net } = st;
  const [ptrain, ptest] = [await predict(ctx, net, train), await predict(ctx, net, test)];
  const result: ArmResult = {
    arm,
    init,
    steps: st.step,
    seconds: Math.round(st.seconds),
    finalLoss: st.losses[st.losses.length - 1],
    ...splitReports(train, test, ptrain, ptest, f.operatingPoint, f.threshold),
  };
  writeFileSync(join(dir, 'metrics.json'), JSON.stringify(result, null, 2) + '\n');
  const rows: (string | number)[][] = [
    ['frame_path', 'patient_id', 'polyp_id', 'pathology', 'label', 'split', 'score'],
  ];
  for (const [rs, p] of [
    [train, ptrain],
    [test, ptest],
  ] as const)
    rs.forEach((r, k) =>
      rows.push([relative(dir, r.imagePath), r.patientId, r.polypId, r.pathology, r.label, r.split!, p[k].toFixed(6)]),
    );
  writeFileSync(join(dir, 'predictions.csv'), serialiseCsv(rows));
  writeAtomic(join(dir, 'weights.safetensors'), await weightsBytes(net, { arm, init: init ?? '' }));
  writeAtomic(
    join(dir, 'encoder.safetensors'),
    await encoderBytes(st.encoder, { model: 'endoked_mil_encoder', config: JSON.stringify(ctx.config), arm }),
  );
  await writePng(
    join(dir, 'loss.png'),
    plot.lineChart([{ name: 'train loss', y: st.losses }], { title: `optical biopsy (${arm})`, xLabel: 'step' }),
  );
  const t = result.test;
  console.log(
    `[${arm}] test AUC frame ${t.frame.auc.toFixed(4)}, polyp ${t.polyp.auc.toFixed(4)}, patient ` +
      `${t.patient.auc.toFixed(4)}; frame sensitivity ${t.frame.sensitivity.toFixed(3)}, specificity ` +
      `${t.frame.specificity.toFixed(3)} at ${t.frame.threshold.toFixed(3)}`,
  );
  const patients = groupScores(test, ptest, (r) => r.patientId);
  const roc = {
    frame: metrics.rocCurve(
      test.map((r) => r.label),
      ptest,
    ),
    patient: metrics.rocCurve(patients.labels, patients.scores),
  };
  return { result, roc };
}

/** The comparison over the arms: roc.png, metrics.json (settings and every arm), report.md; the table in the log. */
export async function writeComparison(
  ctx: ArmContext,
  done: { result: ArmResult; roc: Roc }[],
  device: string,
): Promise<void> {
  const { f, outDir } = ctx;
  const curves = (lvl: 'frame' | 'patient') =>
    done.map(({ result: r, roc }) => ({
      name: `${r.arm} ${lvl}`,
      fpr: roc[lvl].fpr,
      tpr: roc[lvl].tpr,
      auc: r.test[lvl].auc,
    }));
  await writePng(
    join(outDir, 'roc.png'),
    plot.rocChart([...curves('frame'), ...curves('patient')], { title: 'optical biopsy: test ROC' }),
  );
  const summary = {
    config: { ...f, data: ctx.data.csv },
    numTrainFrames: ctx.data.train.length,
    numTestFrames: ctx.data.test.length,
    device,
    arms: Object.fromEntries(done.map((d) => [d.result.arm, d.result])),
  };
  writeFileSync(join(outDir, 'metrics.json'), JSON.stringify(summary, null, 2) + '\n');
  const results = done.map((d) => d.result);
  writeFileSync(
    join(outDir, 'report.md'),
    reportTable(results, f.operatingPoint === 'youden' ? "Youden's J on the train split" : `fixed ${f.threshold}`),
  );
  console.log(`\n${reportTable(results, '')}\nwrote ${join(outDir, 'metrics.json')}, report.md, roc.png`);
}

function reportTable(rs: ArmResult[], op: string): string {
  const n = (v: number) => (Number.isNaN(v) ? 'n/a' : v.toFixed(3));
  const lines = [
    `| init | steps | frame AUC | polyp AUC | patient AUC | frame sens. | frame spec. | patient ` +
      `sens. | patient spec. |`,
    `|---|---|---|---|---|---|---|---|---|`,
    ...rs.map(
      (r) =>
        `| ${r.arm}${r.init ? ` (${r.init.split('/').slice(-2).join('/')})` : ''} | ${r.steps} | ` +
        `${n(r.test.frame.auc)} | ${n(r.test.polyp.auc)} | ${n(r.test.patient.auc)} | ` +
        `${n(r.test.frame.sensitivity)} | ${n(r.test.frame.specificity)} | ` +
        `${n(r.test.patient.sensitivity)} | ${n(r.test.patient.specificity)} |`,
    ),
  ];
  return (
    (op ? `Optical biopsy, test split (non-neoplastic vs neoplastic); operating point: ${op}.\n\n` : '') +
    lines.join('\n') +
    '\n'
  );
}
