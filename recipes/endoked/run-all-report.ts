// report.md of the EndoKED end-to-end run (run-all.ts): the headline figures of every stage's
// metrics.json, the segmenter rounds next to the two baselines trained with the same budget (spec
// §2.6: Dice from pseudo-labels alone against Dice from real masks), the rounds plot, and the time
// each stage took (or 'reused'). A run stopped by --stop-after gets a short report of its stage times.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as plot from '../../runtime-node/plot/index.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import type { RoundSummary } from './refine-rounds.ts';
import type { RunFlags } from './run-all.ts';
import { refineFolder } from './run-all-segmenters.ts';
import type { Run } from './run-all-stages.ts';

const readJson = (p: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
};

const stageTimes = (ran: Record<string, string>): string =>
  Object.entries(ran)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

/** report.md of a run stopped by --stop-after: the stages it ran and their times. */
export function writeStoppedReport(run: Run): string {
  const title = `# EndoKED run stopped after ${run.flags.stopAfter} (--stop-after)`;
  const text = `${title}\n\nStage times: ${stageTimes(run.ran)}.\n`;
  writeFileSync(join(run.out, 'report.md'), text);
  return text;
}

/**
 * Numeric leaves of a metrics object whose path matches `pattern` (arrays, i.e. histories and per-image lists,
 * skipped).
 */
export function headline(obj: unknown, pattern: RegExp, max = 12, prefix = ''): [string, number][] {
  const out: [string, number][] = [];
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return out;
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number' && Number.isFinite(v) && pattern.test(path)) out.push([path, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v)) out.push(...headline(v, pattern, max, path));
  }
  return out.slice(0, max);
}

const fmt = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(4);

/** The command that reproduces this run (the flags that differ from npm run endoked's defaults). */
function command(f: RunFlags): string {
  const extra = [
    f.data === 'real' ? '--data real' : '',
    f.config === 'gpu' ? '--config gpu' : '',
    f.quick ? '--quick' : '',
    f.threshold !== 0.01 ? `--threshold ${f.threshold}` : '',
    f.samInRounds ? '--sam-in-rounds' : '',
  ].filter(Boolean);
  return `npm run endoked${extra.length ? ` -- ${extra.join(' ')}` : ''}`;
}

/** Writes report.md (and rounds.png) in the run's folder; returns the report's text. */
export async function writeReport(run: Run, r: { rounds: RoundSummary[]; minutes: number }): Promise<string> {
  const { flags: f, out } = run;
  const seg = (name: string) =>
    readJson(join(out, name, 'metrics.json')) as { test: { meanDice: number; meanIou: number } } | null;
  const upper = seg('05-real-masks'),
    box = seg('05-box-masks');
  const stageRow = (name: string, what: string, pattern: RegExp) => {
    const m = readJson(join(out, name, 'metrics.json'));
    const figs = m
      ? headline(m, pattern)
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join('; ')
      : 'no metrics.json';
    return `| ${name} | ${what} | ${figs || '(none matched)'} | ${run.ran[name] ?? ''} |`;
  };
  const testName = f.data === 'real' ? 'Kvasir-SEG test (100 images)' : 'synthetic test split';
  const rows = r.rounds.map(
    (s) =>
      `| round ${s.round}: ${s.labels} | ${s.accepted}/${s.candidates} | ${fmt(s.pseudoDice.mean)} ` +
      `(n=${s.pseudoDice.n}) | ${fmt(s.test?.dice)} | ${fmt(s.test?.iou)} | ` +
      `${s.test && upper ? (s.test.dice / upper.test.meanDice).toFixed(3) : 'n/a'} |`,
  );
  const x = r.rounds.map((s) => s.round);
  await writeChartPng(
    join(out, 'rounds.png'),
    plot.lineChart(
      [
        { name: 'pseudo-label segmenter, test Dice', x, y: r.rounds.map((s) => s.test?.dice ?? NaN) },
        { name: 'pseudo-mask Dice vs true masks', x, y: r.rounds.map((s) => s.pseudoDice.mean ?? NaN) },
        { name: 'real masks (upper bound)', x, y: x.map(() => upper?.test.meanDice ?? NaN), dash: true },
        { name: 'CAM boxes as masks', x, y: x.map(() => box?.test.meanDice ?? NaN), dash: true },
      ],
      {
        title: `EndoKED: ${testName} Dice per round (same segmenter budget)`,
        xLabel: 'round',
        yLabel: 'Dice',
        yMin: 0,
        yMax: 1,
      },
    ),
  );
  const stopped = r.rounds.find((s) => !s.test);
  const text = [
    `# EndoKED end to end: ${f.data} data, ${f.config} config${f.quick ? ' (quick smoke run: not a measurement)' : ''}`,
    '',
    `Command: \`${command(f)}\`. Wall time of this invocation: ${r.minutes.toFixed(1)} min (stages reused ` +
      `from earlier runs cost nothing).`,
    `Segmenter budget for every training below: ${run.budget.segSteps} steps (05-segmenter.ts --steps), ` +
      `${f.config} preset. Test figures: ${testName}, binarised at 0.5, from the last checkpoint of ` +
      `each training (no selection on the test set).`,
    '',
    '## Stages',
    '',
    '| stage | what | figures (metrics.json) | time |',
    '|---|---|---|---|',
    stageRow(
      '01-report-labels',
      'report text -> patient label',
      /^(accuracy|coverage|f1|baselines\.naiveKeyword\.accuracy)$/,
    ),
    stageRow(
      '02-mil',
      'MIL frame scores (test patients)',
      /^(test\.(bagAuc|instanceAuc)\w*|perCentre\.\w+\.bagAucStudent|selection\.all\.(selected|precision))$/,
    ),
    stageRow(
      '03-cam',
      'CAM -> box rule (vs true masks)',
      /^(kvasirTrain|milPositives)\.(images|accepted|meanBoxIouAccepted|meanBoxIouAll|meanCamDice)$/,
    ),
    stageRow(
      '04-pseudo',
      'decoder pseudo-masks from the CAM boxes',
      /^(images|boxes_total|meanDice|meanDiceBox|msPerBoxDecoderMedian)$/,
    ),
    '',
    `## Segmenter on the ${testName}`,
    '',
    '| labels | accepted / candidates | pseudo-mask Dice vs true | test Dice | test IoU | Dice / real-mask Dice |',
    '|---|---|---|---|---|---|',
    `| real masks (upper bound, ${f.data === 'real' ? 'Kvasir-SEG train' : 'synthetic train split'}) ` +
      `| all | 1 | ${fmt(upper?.test.meanDice)} | ${fmt(upper?.test.meanIou)} | 1 |`,
    `| CAM boxes filled as masks (baseline) | accepted boxes | see 04-pseudo | ` +
      `${fmt(box?.test.meanDice)} | ${fmt(box?.test.meanIou)} | ` +
      `${box && upper ? (box.test.meanDice / upper.test.meanDice).toFixed(3) : 'n/a'} |`,
    ...rows,
    '',
    stopped
      ? `The loop stopped at round ${stopped.round}: no re-labelled image ` +
        `passed the box rule (${JSON.stringify(stopped.rejected)}); at ` +
        `--threshold ${f.threshold} the normalised maps of a weak segmenter cover the frame.\n`
      : '',
    `![rounds](rounds.png) ![refine](${refineFolder(f)}/rounds.png)`,
    '',
    '![MIL](02-mil/auc.png) ![MIL loss](02-mil/loss.png)',
    '',
    `Stage times: ${stageTimes(run.ran)}.`,
    '',
  ].join('\n');
  writeFileSync(join(out, 'report.md'), text);
  return text;
}
