// Running the EndoKED stages 0-4 in order with resume (run-all.ts; spec §2.1-2.5, recipes/endoked/README.md):
// each stage is its own script (pipeline.ts runStage) writing into its folder of the run, stamped
// with the hash of its script, its flags and its input files (pipeline.ts withStamp). A rerun
// reuses a stage whose stamp matches, continues an interrupted one from its checkpoint, and redoes
// a stage, and what depends on it (the upstream hashes in its key), whose inputs changed.
//
//   test set    the Kvasir-SEG folder every test figure is measured on (real, or a seeded stand-in)
//   00-set      patients: reports + frame bags            (00-patient-set.ts)
//   01-...      report text -> patient label              (01-report-labels.ts)
//   02-mil      MIL frame scores                          (02-mil.ts)
//   03-cam      CAM on the MIL positives -> boxes         (03-cam.ts)
//   04-*        backbone, SAM-style decoder, pseudo-masks (05-segmenter.ts, 04-sam-pseudo-masks.ts)
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { trainStepArgs } from '../../runtime-node/amp.ts';
import { codeHash, fileHash, runStage, withStamp } from './pipeline.ts';
import { budgetFor, type Budget } from './run-all-budget.ts';
import type { RunFlags } from './run-all.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const script = (name: string) => join(HERE, name);

/** One invocation: its flags, budgets, output folder, and each stage's time ('reused' when its stamp matched). */
export interface Run {
  flags: RunFlags;
  budget: Budget;
  out: string;
  /** ['--seed', N]: passed to every stage. */
  seed: string[];
  ran: Record<string, string>;
}

export function openRun(f: RunFlags): Run {
  const out = resolve(ROOT, f.out ?? join('runs', 'endoked', `${f.data}-${f.config}${f.quick ? '-quick' : ''}`));
  return { flags: f, budget: budgetFor(f), out, seed: ['--seed', String(f.seed)], ran: {} };
}

export const stageDir = (run: Run, name: string): string => join(run.out, name);

/** A stage's folder and the hash of its key (what the stages after it put in theirs). */
export interface StageOut {
  dir: string;
  hash: string;
}

/** One stage: reused when its script, flags and input files are unchanged. */
export async function stage(
  run: Run,
  name: string,
  file: string,
  args: string[],
  inputs: string[] = [],
  upstream: string[] = [],
): Promise<StageOut> {
  const key = {
    script: codeHash(script(file)),
    args,
    inputs: inputs.map((p) => [relative(run.out, p), fileHash(p)]),
    upstream,
  };
  const t = performance.now();
  const r = await withStamp(stageDir(run, name), key, () => runStage(script(file), args), { within: run.out });
  run.ran[name] = r.status === 'reused' ? 'reused' : `${((performance.now() - t) / 60000).toFixed(1)} min`;
  return { dir: stageDir(run, name), hash: r.hash };
}

const ORDER = ['00-set', '01-report-labels', '02-mil', '03-cam', '04-pseudo', 'all'];
/** The stage scripts, in --stop-after's order (05-segmenter.ts: stage 4's backbone and every segmenter). */
export const STAGE_SCRIPTS = [
  '00-patient-set.ts',
  '01-report-labels.ts',
  '02-mil.ts',
  '03-cam.ts',
  '04-sam-pseudo-masks.ts',
  '05-segmenter.ts',
];

/** Fails at start when a stage script the run needs (up to --stop-after) is not in this checkout. */
export function checkStageScripts(run: Run): void {
  const missing = STAGE_SCRIPTS.slice(0, ORDER.indexOf(run.flags.stopAfter) + 1).filter((s) => !existsSync(script(s)));
  if (missing.length)
    throw new Error(
      `run-all: stage script(s) not in this checkout: ${missing.join(', ')} (--stop-after runs the stages before them)`,
    );
}

/** True when --stop-after names this stage. */
export const stopsAfter = (run: Run, name: string): boolean => run.flags.stopAfter === name;

/**
 * The test set's folder (Kvasir-SEG layout): real Kvasir-SEG, or a seeded synthetic stand-in whose
 * seed differs from the synthetic set that stage 4's backbone trains on.
 */
export async function testSet(run: Run): Promise<string> {
  const { flags: f, budget: b } = run;
  if (f.data !== 'synthetic') {
    const kvasir = resolve(ROOT, '..', 'shared', 'data', 'kvasir-seg');
    if (!existsSync(join(kvasir, 'test.txt')))
      throw new Error(`run-all: --data real needs Kvasir-SEG at ${kvasir} (see its README)`);
    return kvasir;
  }
  const kvasir = stageDir(run, 'synthetic-kvasir');
  await withStamp(
    kvasir,
    { n: b.kvasirN, size: b.kvasirSize, seed: 1000 + f.seed },
    async () => {
      await writePolypSet(kvasir, b.kvasirN, {
        seed: 1000 + f.seed,
        width: b.kvasirSize,
        height: b.kvasirSize,
        force: true,
      });
    },
    { within: run.out },
  );
  return kvasir;
}

/** Stage 0: the patient set (reports.csv, frames.csv). */
export function patientSet(run: Run): Promise<StageOut> {
  const { flags: f, budget: b } = run;
  const setArgs = [
    '--data',
    f.data,
    '--out',
    stageDir(run, '00-set'),
    ...run.seed,
    '--force',
    ...(f.data === 'synthetic' ? ['--patients', String(b.patients), '--size', String(b.setSize)] : []),
  ];
  return stage(run, '00-set', '00-patient-set.ts', setArgs);
}

/** Stage 1: a label per patient from its report (labels.csv). */
export function reportLabels(run: Run, set: StageOut): Promise<StageOut> {
  return stage(
    run,
    '01-report-labels',
    '01-report-labels.ts',
    ['--reports', join(set.dir, 'reports.csv'), '--out', stageDir(run, '01-report-labels')],
    [join(set.dir, 'reports.csv')],
    [set.hash],
  );
}

/** Stage 2: MIL on the report-labelled bags -> frame_scores.csv. */
export function milScores(run: Run, set: StageOut, labels: StageOut): Promise<StageOut> {
  return stage(
    run,
    '02-mil',
    '02-mil.ts',
    [
      '--set',
      set.dir,
      '--labels',
      join(labels.dir, 'labels.csv'),
      '--out',
      stageDir(run, '02-mil'),
      ...run.budget.milArgs,
      ...run.seed,
    ],
    [join(labels.dir, 'labels.csv'), join(set.dir, 'frames.csv')],
    [set.hash, labels.hash],
  );
}

/** Stage 3: CAM on the MIL positives (+ the test set's train images as extra positives) -> boxes. */
export async function camBoxes(
  run: Run,
  set: StageOut,
  mil: StageOut,
  kvasir: string,
): Promise<StageOut & { boxes: string }> {
  const scores = join(mil.dir, 'frame_scores.csv');
  const cam = await stage(
    run,
    '03-cam',
    '03-cam.ts',
    [
      '--scores',
      scores,
      '--set',
      set.dir,
      '--kvasir',
      kvasir,
      '--out',
      stageDir(run, '03-cam'),
      ...run.seed,
      ...run.budget.camArgs,
    ],
    [scores, join(kvasir, 'train.txt')],
    [set.hash, mil.hash],
  );
  return { ...cam, boxes: join(cam.dir, 'boxes.csv') };
}

/** Stage 4's outputs: the pseudo-mask folder and the decoder that made it (rounds may re-prompt it). */
export interface PseudoMasks {
  pseudo: string;
  backbone: string;
  decoderWeights: string;
}

/** Stage 4: a synthetic-only backbone, the decoder trained on synthetic masks, then pseudo-masks from the CAM boxes. */
export async function pseudoMasks(
  run: Run,
  cam: { boxes: string; hash: string },
  kvasir: string,
): Promise<PseudoMasks> {
  const b = run.budget;
  const backbone = join(stageDir(run, '04-backbone'), 'weights.safetensors');
  const hBb = await stage(run, '04-backbone', '05-segmenter.ts', [
    '--data',
    'synthetic',
    '--out',
    stageDir(run, '04-backbone'),
    '--config',
    'cpu',
    '--steps',
    String(b.backboneSteps),
    '--size',
    String(b.backboneSize),
    ...trainStepArgs(run.flags),
  ]);
  const decoder = stageDir(run, '04-decoder');
  const hDec = await stage(
    run,
    '04-decoder',
    '04-sam-pseudo-masks.ts',
    [
      '--train',
      '--backbone',
      backbone,
      '--out',
      decoder,
      '--steps',
      String(b.samTrainSteps),
      '--train-images',
      String(b.samTrainImages),
      '--size',
      String(b.samSize),
      ...run.seed,
    ],
    [],
    [hBb.hash],
  );
  const pseudo = stageDir(run, '04-pseudo');
  await stage(
    run,
    '04-pseudo',
    '04-sam-pseudo-masks.ts',
    [
      '--boxes',
      cam.boxes,
      '--weights',
      join(decoder, 'weights.safetensors'),
      '--backbone',
      backbone,
      '--test-from',
      kvasir,
      '--size',
      String(b.samSize),
      '--out',
      pseudo,
    ],
    [cam.boxes, join(kvasir, 'test.txt')],
    [cam.hash, hDec.hash],
  );
  return { pseudo, backbone, decoderWeights: join(decoder, 'weights.safetensors') };
}
