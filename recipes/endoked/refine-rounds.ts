// One round of EndoKED stage 6's refinement loop (06-refine.ts; spec §2.3 "Iteration loop"), and
// what the loop writes after each: round 0 trains the segmenter (05-segmenter.ts) on stage 4's
// pseudo-masks; round k >= 1 re-labels the pool with the round-(k-1) segmenter (refine-labels.ts),
// or with --sam-in-rounds prompts the stage-4 decoder with the predicted boxes, writes the round's
// folder (refine-data.ts) and retrains from scratch on the accepted set. Each round is reused
// while its inputs, flags and code are unchanged (pipeline.ts stamps); an interrupted round
// continues from its checkpoint. Reference: zwyang6/ENDOKED EndoKED_WSSS/datasets/
// data_processing_refining/ (a5_... predictions as labels; a4_... SAM prompted with the boxes).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCsvTable } from '../../engine/data/index.ts';
import * as plot from '../../runtime-node/plot/index.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import { codeHash, fileHash, folderListingHash, runStage, withStamp } from './pipeline.ts';
import { boxesCsv, labelsCsv, loadPredictor, relabelPool, type LabelRow, type PoolItem } from './refine-labels.ts';
import { layoutDice, readLayout, writeRoundData } from './refine-data.ts';
import { main as segmenter } from './05-segmenter.ts';
import { trainStepArgs } from '../../runtime-node/amp.ts';
import type { RefineFlags } from './06-refine.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const SEGMENTER = join(HERE, '05-segmenter.ts');
export const SAM_STAGE = join(HERE, '04-sam-pseudo-masks.ts');

export interface SegMetrics {
  steps: number;
  epochs: number;
  trainSeconds: number;
  numTrain: number;
  test: { meanDice: number; meanIou: number; minMax: { meanDice: number } };
}

/** Trains stage 5 on `data` into `out` (resuming there), then checks it reached its budget. */
async function trainSegmenter(f: RefineFlags, data: string, out: string): Promise<SegMetrics> {
  const argv = ['--data', data, '--out', out, '--config', f.config];
  if (f.steps !== undefined) argv.push('--steps', String(f.steps));
  if (f.epochs !== undefined) argv.push('--epochs', String(f.epochs));
  if (f.size !== undefined) argv.push('--size', String(f.size));
  if (f.batchSize !== undefined) argv.push('--batch-size', String(f.batchSize));
  if (f.init !== undefined) argv.push('--init', f.init);
  if (f.maxMinutes !== undefined) argv.push('--max-minutes', String(f.maxMinutes));
  argv.push(...trainStepArgs(f));
  console.log(`\n== 05-segmenter.ts ${argv.join(' ')}`);
  await segmenter(argv);
  const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as SegMetrics;
  const short = f.steps !== undefined ? m.steps < f.steps : f.epochs !== undefined && m.epochs < f.epochs - 1e-9;
  if (short)
    throw new Error(
      `06-refine: the segmenter in ${out} stopped at step ${m.steps} (--max-minutes); run again to continue the round`,
    );
  return m;
}

export interface RoundSummary {
  round: number;
  labels: string;
  candidates: number;
  accepted: number;
  rejected: Record<string, number>;
  pseudoDice: { mean: number | null; n: number };
  /** Test Dice/IoU of the round's last checkpoint; null when the round accepted no image (the loop stops there). */
  test: { dice: number; iou: number; diceMinMax: number } | null;
  steps: number;
  trainSeconds: number;
}

/** What every round shares: the flags, the folders, the pool and where its true masks are. */
export interface RefineContext {
  f: RefineFlags;
  /** The output folder (absolute). */
  out: string;
  /** Stage 4's folder: round 0's training data and every round's test split. */
  pseudo: string;
  /** Stage 3's boxes.csv (absent with a single round). */
  boxes: string | undefined;
  pool: PoolItem[];
  truth: Map<string, string>;
}

/** The stamp key of round 0's input: stage 4's folder listing and its split files. */
export function pseudoKey(pseudo: string): string {
  const splitHashes = `${fileHash(join(pseudo, 'train.txt'))}:${fileHash(join(pseudo, 'test.txt'))}`;
  return `pseudo:${folderListingHash(pseudo)}:${splitHashes}`;
}

/** Runs (or reuses) round k after the round whose stamp hash is `prev`; returns its hash and summary. */
export async function runRound(
  ctx: RefineContext,
  k: number,
  prev: string,
): Promise<{ hash: string; summary: RoundSummary }> {
  const { f } = ctx;
  const dir = join(ctx.out, `round-${k}`);
  const seg = {
    config: f.config,
    steps: f.steps,
    epochs: f.epochs,
    size: f.size,
    batchSize: f.batchSize,
    init: f.init && fileHash(f.init),
    code: codeHash(SEGMENTER),
    // --amp / --loss-scale / --checkpoint-blocks as passed on (absent without them: the f32 key is unchanged)
    trainStep: trainStepArgs(f).join(' ') || undefined,
  };
  const measure = { set: f.set && resolve(f.set), kvasir: f.kvasir && resolve(f.kvasir) };
  const key =
    k === 0
      ? { round: 0, pseudo: prev, seg, measure }
      : {
          round: k,
          prev,
          seg,
          measure,
          threshold: f.threshold,
          sam: f.samInRounds ? f.samArgs : false,
          pool: ctx.boxes && fileHash(ctx.boxes),
          code: codeHash(join(HERE, '06-refine.ts')),
        };
  const { hash } = await withStamp(dir, key, () => roundWork(ctx, k, dir), { within: ctx.out });
  return { hash, summary: JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RoundSummary };
}

/** The round's work: labels (k >= 1), the candidates' fate, label Dice, the segmenter; summary.json. */
async function roundWork(ctx: RefineContext, k: number, dir: string): Promise<void> {
  const { f } = ctx;
  const data = k === 0 ? ctx.pseudo : join(dir, 'data');
  if (k > 0 && !existsSync(join(dir, 'labels.csv'))) await relabelRound(ctx, k, dir, data);
  const lay = readLayout(data);
  const { candidates, rejected } = candidatesOf(ctx, k, dir, lay.train.length);
  const pseudoDice = await layoutDice(data, ctx.pool, ctx.truth);
  // No accepted image: nothing to train on, so the loop ends here (recorded, not an error).
  const m = lay.train.length ? await trainSegmenter(f, data, join(dir, 'segmenter')) : null;
  const s: RoundSummary = {
    round: k,
    labels:
      k === 0
        ? 'stage 4: decoder prompted with CAM boxes'
        : f.samInRounds
          ? `stage 4: decoder prompted with round-${k - 1} predicted boxes`
          : `round-${k - 1} segmenter predictions`,
    candidates,
    accepted: lay.train.length,
    rejected,
    pseudoDice,
    test: m && { dice: m.test.meanDice, iou: m.test.meanIou, diceMinMax: m.test.minMax.meanDice },
    steps: m?.steps ?? 0,
    trainSeconds: m?.trainSeconds ?? 0,
  };
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(s, null, 2) + '\n');
}

/** Round k >= 1's labels from the round-(k-1) segmenter, its training folder, and labels.csv (written last). */
async function relabelRound(ctx: RefineContext, k: number, dir: string, data: string): Promise<void> {
  const { f, pool } = ctx;
  console.log(
    `round ${k}: re-labelling ${pool.length} images with the round-${k - 1} segmenter (>= ` +
      `${f.threshold} after min-max)`,
  );
  const bar = new Progress({ total: pool.length, label: 'relabel', unit: 'img' });
  const p = await loadPredictor(join(ctx.out, `round-${k - 1}`, 'segmenter', 'weights.safetensors'));
  let last = 0;
  const rows: LabelRow[] = await relabelPool(pool, p.predict, f.threshold, f.predictBatch, (d) => {
    bar.tick(d - last);
    last = d;
  });
  p.dispose();
  // The predicted boxes, in stage 3's boxes.csv schema, go back to the decoder (with none accepted
  // there is nothing to prompt: the round's layout is written empty and the loop stops after it).
  if (f.samInRounds && rows.some((r) => r.relabel.decision.accepted)) {
    const csv = join(dir, 'boxes.csv');
    writeFileSync(csv, boxesCsv(rows));
    await runStage(SAM_STAGE, [
      '--boxes',
      csv,
      '--test-from',
      ctx.pseudo,
      '--out',
      data,
      ...f.samArgs.split(/\s+/).filter(Boolean),
    ]);
  } else {
    writeRoundData(data, rows, ctx.pseudo);
  }
  writeFileSync(join(dir, 'labels.csv'), labelsCsv(rows)); // written last: marks the re-labelling done
}

/** The round's candidates and why the rejected ones were: its labels.csv, or for round 0 stage 3's boxes.csv. */
function candidatesOf(
  ctx: RefineContext,
  k: number,
  dir: string,
  accepted: number,
): { candidates: number; rejected: Record<string, number> } {
  const rejected: Record<string, number> = {};
  if (k > 0) {
    const labelsFile = join(dir, 'labels.csv');
    const { rows } = parseCsvTable(readFileSync(labelsFile, 'utf8'), labelsFile, ['accepted', 'reason']);
    for (const r of rows) if (r.accepted !== '1') rejected[r.reason] = (rejected[r.reason] ?? 0) + 1;
    return { candidates: rows.length, rejected };
  }
  if (!ctx.boxes) return { candidates: accepted, rejected };
  const { rows } = parseCsvTable(readFileSync(ctx.boxes, 'utf8'), ctx.boxes, ['accepted']);
  for (const r of rows)
    if (r.accepted !== '1') rejected[r.reason || 'rejected'] = (rejected[r.reason || 'rejected'] ?? 0) + 1;
  return { candidates: rows.length, rejected };
}

/** The round's line in the log. */
export function logRound(s: RoundSummary): void {
  const fmt = (v: number | null) => (v === null ? 'n/a' : v.toFixed(4));
  console.log(
    `round ${s.round}: ${s.accepted}/${s.candidates} accepted, pseudo-mask Dice ` +
      `${fmt(s.pseudoDice.mean)} (n=${s.pseudoDice.n}); ` +
      (s.test
        ? `test Dice ${s.test.dice.toFixed(4)}, IoU ${s.test.iou.toFixed(4)}`
        : `no image accepted (${JSON.stringify(s.rejected)}): the loop stops`),
  );
}

/** rounds.json and rounds.png over the rounds so far. */
export async function writeRounds(out: string, summaries: RoundSummary[]): Promise<void> {
  writeFileSync(join(out, 'rounds.json'), JSON.stringify(summaries, null, 2) + '\n');
  await writeChartPng(
    join(out, 'rounds.png'),
    plot.lineChart(
      [
        { name: 'test Dice (last checkpoint)', y: summaries.map((r) => r.test?.dice ?? NaN) },
        { name: 'pseudo-mask Dice vs true masks', y: summaries.map((r) => r.pseudoDice.mean ?? NaN) },
        { name: 'accepted fraction', y: summaries.map((r) => r.accepted / Math.max(1, r.candidates)), dash: true },
      ],
      { title: 'EndoKED refinement rounds', xLabel: 'round', yLabel: 'score', yMin: 0, yMax: 1 },
    ),
  );
}
