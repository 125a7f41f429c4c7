// The whole EndoExtend24 pipeline end to end, and the paper's claim in miniature: stages 1-5
// (merged dataset -> MIM pre-training -> supervised EE24 pre-training -> CE24 fine-tuning ->
// test evaluation), then the same fine-tuning budget from scratch, evaluated the same way.
// Every stage resumes from its own checkpoint, so an interrupted run picks up where it stopped.
//
// Consumes: nothing by default (seeded synthetic data). `--data real` runs the real-frame
//   pipeline instead (run-real.ts: ../shared/data, its own flags; `--data real --help`).
// Produces (in --out): every stage's outputs, and report.md comparing pre-trained and
//   from-scratch fine-tuning with their ROC and confusion plots.
//
//   npx tsx recipes/endoextend/run-all.ts --out runs/endoextend     (npm run main)
//   npx tsx recipes/endoextend/run-all.ts --data real --budget quick
import { writeFileSync } from 'node:fs';
import { main as buildDataset } from './01-build-dataset.ts';
import { main as mimPretrain } from './02-mim-pretrain.ts';
import { main as supervisedPretrain } from './03-supervised-pretrain.ts';
import { main as finetune } from './04-finetune-ce24.ts';
import { main as evaluate, type EvalResult } from './05-evaluate.ts';
import { main as runReal } from './run-real.ts';
import type { DatasetInfo } from './01-build-dataset.ts';
import { shutdown } from '../../runtime-node/index.ts';
import { SIZES, join, dataFlag, TRAIN_STEP_FLAGS, trainStepArgs } from './kit.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';

export const FLAGS = defineFlags(
  'recipes/endoextend/run-all.ts',
  'EndoExtend24 end to end on seeded synthetic data: stages 1-5, then the same fine-tuning from scratch.',
  {
    data: {
      type: 'string',
      default: 'synthetic',
      choices: ['synthetic', 'real'] as const,
      help: 'synthetic (seeded, embedded) | real (../shared/data: run-real.ts; `--data real --help`)',
    },
    out: { type: 'string', default: 'runs/endoextend', help: 'one folder for the whole run' },
    size: {
      type: 'string',
      default: 'mu',
      choices: SIZES,
      help: 'EVA-02 size: mu on a CPU driver (minutes); ti/s/b on a GPU',
    },
    mimSteps: { type: 'int', default: 150, min: 1, help: 'stage 2 optimiser steps' },
    ee24Epochs: { type: 'int', default: 3, min: 1, help: 'stage 3 epochs' },
    ce24Epochs: {
      type: 'int',
      default: 6,
      min: 1,
      help: 'stage 4 epochs, the same for the pre-trained and the scratch run',
    },
    quick: { type: 'boolean', default: false, help: 'a tiny smoke-test run (tests use it)' },
    seed: { type: 'int', default: 0, min: 0, help: 'seed of every stage' },
    // --amp, --loss-scale, --checkpoint-blocks: passed on to stages 2-4.
    ...TRAIN_STEP_FLAGS,
  },
);

/** A stage's result (stages return null only after printing --help, which run-all never passes). */
function ran<T>(r: T | null, stage: string): T {
  if (r === null) throw new Error(`run-all: ${stage} returned no result`);
  return r;
}

export async function main(
  argv: string[],
): Promise<{ pretrained: EvalResult; scratch: EvalResult } | Awaited<ReturnType<typeof runReal>>> {
  if (dataFlag(argv) === 'real') return runReal(argv);
  const cfg = FLAGS.parse(argv);
  if (!cfg) return null;
  const t0 = performance.now();
  const o = ['--out', cfg.out];
  const size = ['--size', cfg.size];
  const seed = ['--seed', String(cfg.seed)];
  const step = trainStepArgs(cfg);
  const q = cfg.quick;
  const info = ran(
    await buildDataset([
      ...o,
      ...seed,
      ...(q ? ['--ee24-frames', '120', '--ce24-frames', '100', '--ce24-test-frames', '60'] : []),
    ]),
    'stage 1',
  ) as DatasetInfo;
  const mim = ran(
    await mimPretrain([
      ...o,
      ...size,
      ...seed,
      ...step,
      '--steps',
      String(q ? 4 : cfg.mimSteps),
      ...(q ? ['--batch', '8', '--warmup', '1', '--kvasir', ''] : []),
    ]),
    'stage 2',
  );
  const ee24 = ran(
    await supervisedPretrain([
      ...o,
      ...size,
      ...seed,
      ...step,
      '--epochs',
      String(q ? 1 : cfg.ee24Epochs),
      ...(q ? ['--batch', '16'] : []),
    ]),
    'stage 3',
  );
  const ftArgs = [
    ...o,
    ...size,
    ...seed,
    ...step,
    '--epochs',
    String(q ? 1 : cfg.ce24Epochs),
    ...(q ? ['--batch', '16'] : []),
  ];
  const ft = ran(await finetune([...ftArgs, '--init', 'ee24', '--tag', 'finetune']), 'stage 4');
  const pretrained = ran(await evaluate([...o, ...size, '--tag', 'finetune']), 'stage 5');
  const sc = ran(await finetune([...ftArgs, '--init', 'none', '--tag', 'finetune-scratch']), 'stage 4 (scratch)');
  const scratch = ran(await evaluate([...o, ...size, '--tag', 'finetune-scratch']), 'stage 5 (scratch)');

  const minutes = (performance.now() - t0) / 60000;
  const row = (name: string, r: EvalResult, val: number) =>
    `| ${name} | ${r.macroAuc.toFixed(4)} | ${r.balancedAccuracy.toFixed(4)} | ` +
    `${r.challengeScore.toFixed(4)} | ${r.macroF1.toFixed(4)} | ${r.mAP.toFixed(4)} | ` +
    `${val.toFixed(4)} |`;
  const report = [
    `# EndoExtend24 pipeline, EVA-02-${cfg.size}`,
    '',
    `Data: ${info.ee24.frames} merged pre-training frames (EE24-style), ${info.ce24.frames} CE24 ` +
      `train+val frames, ${info.ce24.testFrames} CE24 test frames (${info.classes.length} classes).`,
    `MIM pre-training final loss (-cos): ${mim.finalLoss.toFixed(4)}. EE24 supervised pre-training ` +
      `best val balanced accuracy: ${ee24.bestBalancedAccuracy.toFixed(4)}.`,
    `Run time: ${minutes.toFixed(1)} min.`,
    '',
    '## CE24 test set: pre-trained vs from scratch (same fine-tuning budget)',
    '',
    '| fine-tuning init | macro AUC | balanced acc. | (AUC+BA)/2 | macro F1 | mAP | best val BA |',
    '|---|---|---|---|---|---|---|',
    row("MIM -> EE24 (the paper's path)", pretrained, ft.bestBalancedAccuracy),
    row('random (scratch)', scratch, sc.bestBalancedAccuracy),
    '',
    '| class | support | AUC pre-trained | AUC scratch |',
    '|---|---|---|---|',
    ...pretrained.perClass.map(
      (c, k) => `| ${c.name} | ${c.support} | ${c.auc.toFixed(4)} | ${scratch.perClass[k].auc.toFixed(4)} |`,
    ),
    '',
    '![ROC, pre-trained](finetune/roc.png) ![ROC, scratch](finetune-scratch/roc.png)',
    '',
    '![Confusion, pre-trained](finetune/confusion.png)',
    '',
    '![MIM loss](mim/loss.png) ![EE24 curves](ee24/curves.png) ![CE24 curves](finetune/curves.png)',
    '',
    'Per-stage details: summary.md, mim/log.json, ee24/history.json, finetune*/history.json, finetune*/metrics.json.',
    '',
  ].join('\n');
  writeFileSync(join(cfg.out, 'report.md'), report);
  console.log(`\n${report}\nreport: ${join(cfg.out, 'report.md')}`);
  return { pretrained, scratch };
}

if (isMain(import.meta.url)) runMain((argv) => main(argv).finally(shutdown));
