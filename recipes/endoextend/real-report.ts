// The report of the EndoExtend24 real-frame run (run-real.ts): for each binary task, each
// initialisation's test AUC and balanced accuracy with seeded, class-stratified bootstrap 95%
// intervals (engine/metrics/bootstrap.ts), the paired difference to the from-scratch baseline,
// whether the marginal intervals overlap, per-centre figures for PolypGen, the ROC curves of
// every initialisation on one plot, a confusion matrix, and a gallery of the most confident
// errors (the frames as the model saw them, after field-of-view normalisation).
//
// Consumes: <task>/<tag>/predictions.csv (stage 5) for every task and run.
// Produces: report.md in --out, <task>/roc-all.png, <task>/confusion-<tag>.png,
//   <task>/errors-<tag>.png.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCsvTable } from '../../engine/data/index.ts';
import {
  aucCi,
  balancedAccuracyCi,
  pairedDiffCi,
  intervalsOverlap,
  rocCurve,
  confusionMatrix,
  type Interval,
} from '../../engine/metrics/index.ts';
import { rocChart, confusionMatrixChart, escapeXml, FONT_FAMILY, type Figure } from '../../runtime-node/plots.ts';
import { decodeImageResized, pngBytes } from '../../runtime-node/image.ts';
import { writePng } from '../../runtime-node/plots.ts';

export interface RealRun {
  tag: string;
  label: string;
  minutes: number;
}
export interface RealTaskReport {
  name: string;
  dir: string;
  classes: string[];
  counts: string;
  runs: RealRun[];
}
export interface Pred {
  id: string;
  dataset: string;
  group: string;
  image: string;
  label: number;
  p: number;
}

/** Per-frame predictions of a run: p is the probability of class 1 (the finding). */
export function readPredictions(path: string): Pred[] {
  const { rows, header } = parseCsvTable(readFileSync(path, 'utf8'), path, ['id', 'dataset', 'label', 'image']);
  const pcol = header.filter((h) => h.startsWith('p_'))[1];
  if (!pcol) throw new Error(`${path}: expected two probability columns p_<class>`);
  return rows.map((r) => ({
    id: r.id,
    dataset: r.dataset,
    group: r.patient_id ?? '',
    image: r.image,
    label: Number(r.label),
    p: Number(r[pcol]),
  }));
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const ci = (i: Interval) => `${fmt(i.estimate)} [${fmt(i.lo)}, ${fmt(i.hi)}]`;
const signed = (i: Interval) => `${i.estimate >= 0 ? '+' : ''}${fmt(i.estimate)} [${fmt(i.lo)}, ${fmt(i.hi)}]`;

interface Scored {
  run: RealRun;
  preds: Pred[];
  auc: Interval;
  ba: Interval;
}

function score(preds: readonly Pred[], replicates: number, seed: number): { auc: Interval; ba: Interval } {
  const y = preds.map((p) => p.label),
    s = preds.map((p) => p.p);
  return { auc: aucCi(y, s, { replicates, seed }), ba: balancedAccuracyCi(y, s, 0.5, { replicates, seed }) };
}

/** Up to `k` wrong predictions, most confident first, with their captions (frames embedded as PNG). */
async function errorGallery(preds: readonly Pred[], classes: string[], k: number, title: string): Promise<Figure> {
  const wrong = preds
    .filter((p) => (p.p >= 0.5 ? 1 : 0) !== p.label)
    .sort((a, b) => Math.abs(b.p - 0.5) - Math.abs(a.p - 0.5))
    .slice(0, k);
  const tile = 128,
    cols = 4,
    capH = 36,
    pad = 6;
  const rows = Math.max(1, Math.ceil(wrong.length / cols));
  const width = cols * (tile + pad) + pad,
    height = 24 + rows * (tile + capH + pad) + pad;
  const caption = (s: string, x: number, y: number, fill = '#141414') =>
    `<text x="${x}" y="${y}" font-size="10" fill="${fill}">${escapeXml(s)}</text>`;
  const body = [`<rect width="${width}" height="${height}" fill="white"/>`, caption(title, pad, 16)];
  if (wrong.length === 0) body.push(caption('no errors', pad, 40));
  for (let n = 0; n < wrong.length; n++) {
    const w = wrong[n],
      img = await decodeImageResized(w.image, tile, tile);
    const x0 = pad + (n % cols) * (tile + pad),
      y0 = 24 + Math.floor(n / cols) * (tile + capH + pad);
    const href = `data:image/png;base64,${Buffer.from(pngBytes(img, 'rgb')).toString('base64')}`;
    body.push(
      `<image x="${x0}" y="${y0}" width="${tile}" height="${tile}" href="${href}"/>`,
      caption(`true ${classes[w.label]}`, x0, y0 + tile + 11),
      caption(`p(${classes[1]}) ${w.p.toFixed(2)}`, x0, y0 + tile + 22),
      caption(w.id.slice(0, 21), x0, y0 + tile + 33, '#5a5a5a'),
    );
  }
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT_FAMILY}">` +
    `${body.join('')}</svg>`;
  return { svg, width, height };
}

/** Scores every run of every task, writes the plots, and returns the report's markdown sections. */
export async function taskSections(
  task: RealTaskReport,
  o: { replicates: number; seed: number },
): Promise<{ md: string[]; scored: Scored[] }> {
  const scored: Scored[] = task.runs.map((run) => {
    const preds = readPredictions(join(task.dir, run.tag, 'predictions.csv'));
    return { run, preds, ...score(preds, o.replicates, o.seed) };
  });
  const base = scored[0]; // the from-scratch baseline comes first
  const y = base.preds.map((p) => p.label);
  for (const s of scored) {
    if (s.preds.length !== base.preds.length || s.preds.some((p, i) => p.id !== base.preds[i].id))
      throw new Error(`${task.name}: ${s.run.tag} was evaluated on other frames than ${base.run.tag}`);
  }
  const md: string[] = [
    `### ${task.name}: ${task.classes[1]} vs ${task.classes[0]}`,
    '',
    task.counts,
    '',
    `| fine-tuning init | test AUC [95% CI] | balanced acc. [95% CI] | ΔAUC vs scratch [paired 95% ` +
      `CI] | ΔBA vs scratch [paired 95% CI] | AUC CIs overlap scratch's? | fine-tune min |`,
    '|---|---|---|---|---|---|---|',
  ];
  for (const s of scored) {
    const isBase = s === base;
    const dAuc = isBase
      ? null
      : pairedDiffCi(
          y,
          s.preds.map((p) => p.p),
          base.preds.map((p) => p.p),
          'auc',
          o,
        );
    const dBa = isBase
      ? null
      : pairedDiffCi(
          y,
          s.preds.map((p) => p.p),
          base.preds.map((p) => p.p),
          'balancedAccuracy',
          o,
        );
    md.push(
      `| ${s.run.label} | ${ci(s.auc)} | ${ci(s.ba)} | ${dAuc ? signed(dAuc) : '-'} | ` +
        `${dBa ? signed(dBa) : '-'} | ` +
        `${isBase ? '-' : intervalsOverlap(s.auc, base.auc) ? 'yes' : '**no**'} | ` +
        `${s.run.minutes.toFixed(1)} |`,
    );
  }
  md.push('');

  // Per centre (PolypGen) or per source: the same runs on each source's test frames.
  const sources = [...new Set(base.preds.map((p) => p.dataset))].sort();
  if (sources.length > 1) {
    md.push(
      `Per source (test frames; PolypGen's centres are its upstream 7/7/7 regrouping):`,
      '',
      `| source | frames (${task.classes[1]}/${task.classes[0]}) | ` +
        `${scored.map((s) => `${s.run.label}: AUC / BA`).join(' | ')} |`,
      `|---|---|${scored.map(() => '---|').join('')}`,
    );
    for (const src of sources) {
      const cells = scored.map((s) => {
        const sub = s.preds.filter((p) => p.dataset === src),
          r = score(sub, o.replicates, o.seed);
        return `${ci(r.auc)} / ${ci(r.ba)}`;
      });
      const sub = base.preds.filter((p) => p.dataset === src);
      md.push(
        `| ${src} | ` +
          `${sub.filter((p) => p.label === 1).length}/${sub.filter((p) => p.label === 0).length} | ` +
          `${cells.join(' | ')} |`,
      );
    }
    md.push('');
  }

  const curves = scored.map((s) => {
    const c = rocCurve(
      s.preds.map((p) => p.label),
      s.preds.map((p) => p.p),
    );
    return { name: s.run.label, fpr: c.fpr, tpr: c.tpr, auc: s.auc.estimate };
  });
  await writePng(join(task.dir, 'roc-all.png'), rocChart(curves, { title: `ROC, ${task.name} test` }));
  const pre = scored[1] ?? base; // the first pre-trained run: its confusion matrix and errors are shown
  const cm = confusionMatrix(
    pre.preds.map((p) => p.label),
    pre.preds.map((p) => (p.p >= 0.5 ? 1 : 0)),
    2,
  );
  await writePng(
    join(task.dir, `confusion-${pre.run.tag}.png`),
    confusionMatrixChart(cm, task.classes, { title: `${task.name}: ${pre.run.label}` }),
  );
  for (const s of [pre, base])
    await writePng(
      join(task.dir, `errors-${s.run.tag}.png`),
      await errorGallery(s.preds, task.classes, 12, `${task.name}, ${s.run.label}: most confident errors`),
    );
  const rel = (f: string) => `${task.name}/${f}`;
  md.push(
    `![ROC, ${task.name}](${rel('roc-all.png')}) ![confusion](${rel(`confusion-${pre.run.tag}.png`)})`,
    '',
    `Most confident errors, ${pre.run.label}:`,
    '',
    `![errors](${rel(`errors-${pre.run.tag}.png`)})`,
    '',
    `Most confident errors, ${base.run.label}:`,
    '',
    `![errors](${rel(`errors-${base.run.tag}.png`)})`,
    '',
  );
  return { md, scored };
}

export function writeReport(path: string, lines: readonly string[]): void {
  writeFileSync(path, lines.join('\n') + '\n');
}
