// The whole EndoKED pipeline as one reproducible experiment (npm run endoked), and the paper's
// central claim measured on pixels: a segmenter trained without a single real mask approaches the
// same segmenter trained on real masks with the same budget (spec §2; EndoKED reports Kvasir Dice
// 0.883 from pseudo-labels alone, §2.6).
//
//   0 patient set -> 1 report labels -> 2 MIL frame scores -> 3 CAM boxes -> 4 SAM-style decoder
//   pseudo-masks -> 5/6 segmenter rounds (06-refine.ts), next to two baselines trained with the
//   same segmenter budget: the real masks of the test set's train split (upper bound) and the
//   stage-3 boxes filled in as masks (what the decoder adds).
//
// Data: --data synthetic (default; seeded, written once, minutes on a CPU driver) or --data real:
//   PolypGen frames in patient bags for stages 0-3, Kvasir-SEG train images as stage 3's extra
//   positives, Kvasir-SEG test for every test figure. Kvasir masks are read only to measure
//   (pseudo-mask Dice, test Dice) and to train the upper-bound baseline.
// Produces, in --out (default runs/endoked/<data>-<config>): one folder per stage, each with a
//   .stamp.json (hash of the stage script, its flags and its input files): rerunning reuses every
//   stage whose stamp matches, continues an interrupted one from its checkpoint, and redoes a
//   stage (and what depends on it) whose inputs changed. report.md gathers the figures and plots.
// Parts: run-all-budget.ts (the presets' budgets), run-all-stages.ts (stages 0-4, stamped and
//   resumable), run-all-segmenters.ts (the rounds and both baselines), run-all-report.ts (report.md).
//
//   npx tsx recipes/endoked/run-all.ts [--data synthetic|real] [--config cpu|gpu] [--rounds K]
import { join } from 'node:path';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';
import { TRAIN_STEP_FLAGS } from '../../runtime-node/amp.ts';
import { shutdown } from '../../runtime-node/index.ts';
import type { RoundSummary } from './refine-rounds.ts';
import { writeReport, writeStoppedReport } from './run-all-report.ts';
import { boxMaskBaseline, realMaskBaseline, refineRounds } from './run-all-segmenters.ts';
import {
  camBoxes,
  checkStageScripts,
  milScores,
  openRun,
  patientSet,
  pseudoMasks,
  reportLabels,
  stopsAfter,
  testSet,
} from './run-all-stages.ts';

export const FLAGS = defineFlags(
  'recipes/endoked/run-all.ts',
  'EndoKED end to end: reports -> MIL -> CAM -> SAM-style decoder -> segmenter rounds, with ' +
    'baselines (npm run endoked).',
  {
    data: {
      type: 'string',
      default: 'synthetic',
      choices: ['synthetic', 'real'] as const,
      help: 'seeded synthetic data, or ../shared/data (PolypGen frames, Kvasir-SEG)',
    },
    config: {
      type: 'string',
      default: 'cpu',
      choices: ['cpu', 'gpu'] as const,
      help: "model sizes and budgets: cpu (lavapipe, tiny models) or gpu (the paper's segmenter)",
    },
    out: { type: 'string', help: 'output folder (default runs/endoked/<data>-<config>)' },
    rounds: { type: 'int', default: 3, min: 1, help: 'segmenter rounds (06-refine.ts --rounds)' },
    threshold: {
      type: 'number',
      default: 0.01,
      min: 0,
      max: 1,
      help: 're-labelling threshold after min-max (06-refine.ts --threshold; released: 0.01)',
    },
    samInRounds: {
      type: 'boolean',
      default: false,
      help:
        'rounds >= 1 re-prompt the stage-4 decoder with the predicted boxes (06-refine.ts ' +
        '--sam-in-rounds; released: off)',
    },
    segSteps: {
      type: 'int',
      min: 1,
      help: 'segmenter steps for every training (rounds and baselines; default per data/config)',
    },
    stopAfter: {
      type: 'string',
      default: 'all',
      choices: ['00-set', '01-report-labels', '02-mil', '03-cam', '04-pseudo', 'all'] as const,
      help: 'run the stages up to this one only',
    },
    quick: {
      type: 'boolean',
      default: false,
      help: 'tiny sizes everywhere: a smoke test of the wiring (tests use it), not a measurement',
    },
    seed: { type: 'int', default: 0, min: 0, help: 'seed passed to every stage' },
    // --amp, --loss-scale, --checkpoint-blocks: passed on to every segmenter training (05-segmenter.ts:
    // stage 4's backbone, the rounds, both baselines), and so part of those stages' reuse stamps.
    ...TRAIN_STEP_FLAGS,
  },
);
/** The parsed flags: what every part of the run reads (run-all-budget.ts, -stages, -segmenters, -report). */
export type RunFlags = NonNullable<ReturnType<typeof FLAGS.parse>>;
type Result = { report: string; rounds: RoundSummary[] };

export async function main(argv: string[]): Promise<Result | null> {
  const f = FLAGS.parse(argv);
  if (!f) return null;
  const t0 = performance.now();
  const run = openRun(f);
  checkStageScripts(run);
  const stopped = (): Result => ({ report: writeStoppedReport(run), rounds: [] });
  const kvasir = await testSet(run);

  // Stages 0-2: patients, report labels, MIL frame scores.
  const set = await patientSet(run);
  if (stopsAfter(run, '00-set')) return stopped();
  const labels = await reportLabels(run, set);
  if (stopsAfter(run, '01-report-labels')) return stopped();
  const mil = await milScores(run, set, labels);
  if (stopsAfter(run, '02-mil')) return stopped();
  // Stage 3: CAM boxes; stage 4: the decoder's pseudo-masks from them.
  const cam = await camBoxes(run, set, mil, kvasir);
  if (stopsAfter(run, '03-cam')) return stopped();
  const stage4 = await pseudoMasks(run, cam, kvasir);
  if (stopsAfter(run, '04-pseudo')) return stopped();

  // Stages 5/6 and the two baselines, all with the same segmenter budget.
  const rounds = await refineRounds(run, set, cam.boxes, stage4, kvasir);
  await realMaskBaseline(run, kvasir);
  await boxMaskBaseline(run, cam.boxes, kvasir);

  const minutes = (performance.now() - t0) / 60000;
  const report = await writeReport(run, { rounds, minutes });
  console.log(`\n${report}\nreport: ${join(run.out, 'report.md')} (${minutes.toFixed(1)} min)`);
  return { report, rounds };
}

if (isMain(import.meta.url))
  runMain(async (argv) => {
    await main(argv);
    await shutdown();
  });
