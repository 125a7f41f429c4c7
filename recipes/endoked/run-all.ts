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
//
//   npx tsx recipes/endoked/run-all.ts [--data synthetic|real] [--config cpu|gpu] [--rounds K]
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as plot from '../../runtime-node/plot/index.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';
import { imageSize } from '../../runtime-node/image.ts';
import { shutdown } from '../../runtime-node/index.ts';
import { writePng as writeChartPng } from '../../runtime-node/plots.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { parseCsvTable } from '../../engine/data/index.ts';
import { fileHash, folderListingHash, runStage, withStamp } from './pipeline.ts';
import { main as refine } from './06-refine.ts';
import { readPool, truthIndex, writeRoundData } from './refine-data.ts';
import type { LabelRow } from './refine-labels.ts';
import type { RoundSummary } from './refine-rounds.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const script = (name: string) => join(HERE, name);

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
  },
);
type Parsed = NonNullable<ReturnType<typeof FLAGS.parse>>;

/**
 * Budgets per preset: every entry is a flag of the stage it goes to. On the CPU driver the MIL
 * stage uses the Adam deviation its script offers for CPU-sized runs (reference: SGD lr 1e-3 over
 * 1000 epochs, out of reach here); every other stage keeps its script's defaults except lengths.
 */
function budget(f: Parsed) {
  const cpu = f.config === 'cpu',
    real = f.data === 'real';
  if (f.quick) {
    return {
      patients: 12,
      setSize: 64,
      milArgs: ['--epochs', '2'],
      camArgs: ['--steps', '4', '--overlays', '2', '--no-grad-cam'],
      samTrainSteps: 4,
      samTrainImages: 16,
      samSize: 64,
      backboneSteps: 2,
      backboneSize: 64,
      segSteps: 2,
      segSize: 64,
      segBatch: 4,
      kvasirN: 16,
      kvasirSize: 64,
    };
  }
  return {
    patients: 120,
    setSize: 128,
    // Real frames on the CPU driver: the MIL flags measured in recipes/endoked/README.md §2 (64², GroupNorm,
    // no dropout, no StuFilter); CAM without Kvasir-SEG in training (Kvasir positives against PolypGen
    // negatives teach the source, not the polyp: §3), its train images still get boxes.
    milArgs: cpu
      ? [
          '--epochs',
          real ? '30' : '10',
          '--optimizer',
          'adam',
          '--lr',
          '1e-3',
          '--batch-size',
          '16',
          ...(real
            ? [
                '--image-size',
                '64',
                '--encoder-norm',
                'group',
                '--dropout',
                '0',
                '--head-init',
                'pytorch',
                '--smooth-e',
                '1000',
              ]
            : []),
        ]
      : ['--epochs', '200'],
    // (--box-limit: boxes for 300 evenly spaced Kvasir-SEG train images on the CPU driver, 1-2 s each.)
    camArgs: [
      ...(cpu ? ['--steps', real ? '250' : '200'] : ['--steps', '3000']),
      ...(real ? ['--no-kvasir-train', '--no-grad-cam', ...(cpu ? ['--box-limit', '300'] : [])] : []),
    ],
    // The Polyp-PVT trainings run at 64² on the CPU driver (rates 64/64/64: one scale, a deviation
    // for time; 96² costs about 3x more per step on a shared 2-core machine).
    samTrainSteps: cpu ? 400 : 4000,
    samTrainImages: 400,
    samSize: 128,
    backboneSteps: cpu ? 40 : 2000,
    backboneSize: cpu ? 64 : 128,
    segSteps: f.segSteps ?? (cpu ? (real ? 150 : 30) : 2000),
    segSize: cpu ? 64 : 352,
    segBatch: 8,
    kvasirN: 200,
    kvasirSize: 256,
  };
}

export async function main(argv: string[]): Promise<{ report: string; rounds: RoundSummary[] } | null> {
  const f = FLAGS.parse(argv);
  if (!f) return null;
  const t0 = performance.now();
  const b = budget(f);
  const out = resolve(ROOT, f.out ?? join('runs', 'endoked', `${f.data}-${f.config}${f.quick ? '-quick' : ''}`));
  const seed = ['--seed', String(f.seed)];
  const dir = (name: string) => join(out, name);
  const ran: Record<string, string> = {};
  /** One stage: reused when its script, flags and input files are unchanged. */
  const stage = async (name: string, file: string, args: string[], inputs: string[] = [], upstream: string[] = []) => {
    const key = {
      script: fileHash(script(file)),
      args,
      inputs: inputs.map((p) => [relative(out, p), fileHash(p)]),
      upstream,
    };
    const t = performance.now();
    const r = await withStamp(dir(name), key, () => runStage(script(file), args), { within: out });
    ran[name] = r.status === 'reused' ? 'reused' : `${((performance.now() - t) / 60000).toFixed(1)} min`;
    return r.hash;
  };
  const order = ['00-set', '01-report-labels', '02-mil', '03-cam', '04-pseudo', 'all'];
  const scripts = [
    '00-patient-set.ts',
    '01-report-labels.ts',
    '02-mil.ts',
    '03-cam.ts',
    '04-sam-pseudo-masks.ts',
    '05-segmenter.ts',
  ];
  const missing = scripts.slice(0, order.indexOf(f.stopAfter) + 1).filter((s) => !existsSync(script(s)));
  if (missing.length)
    throw new Error(
      `run-all: stage script(s) not in this checkout: ${missing.join(', ')} (--stop-after runs the stages before them)`,
    );
  const done = (name: string) => f.stopAfter === name;
  const partial = () => {
    const text = `# EndoKED run stopped after ${f.stopAfter} (--stop-after)\n\nStage times: ${Object.entries(ran)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.\n`;
    writeFileSync(join(out, 'report.md'), text);
    return { report: text, rounds: [] };
  };

  // The test set's folder (Kvasir-SEG layout): real Kvasir-SEG, or a seeded synthetic stand-in whose
  // seed differs from the synthetic set that stage 4's backbone trains on.
  let kvasir = resolve(ROOT, '..', 'shared', 'data', 'kvasir-seg');
  if (f.data === 'synthetic') {
    kvasir = dir('synthetic-kvasir');
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
      { within: out },
    );
  } else if (!existsSync(join(kvasir, 'test.txt')))
    throw new Error(`run-all: --data real needs Kvasir-SEG at ${kvasir} (see its README)`);

  // Stages 0-2: patients, report labels, MIL frame scores.
  const set = dir('00-set');
  const setArgs = [
    '--data',
    f.data,
    '--out',
    set,
    ...seed,
    '--force',
    ...(f.data === 'synthetic' ? ['--patients', String(b.patients), '--size', String(b.setSize)] : []),
  ];
  const hSet = await stage('00-set', '00-patient-set.ts', setArgs);
  if (done('00-set')) return partial();
  const h1 = await stage(
    '01-report-labels',
    '01-report-labels.ts',
    ['--reports', join(set, 'reports.csv'), '--out', dir('01-report-labels')],
    [join(set, 'reports.csv')],
    [hSet],
  );
  if (done('01-report-labels')) return partial();
  const h2 = await stage(
    '02-mil',
    '02-mil.ts',
    [
      '--set',
      set,
      '--labels',
      join(dir('01-report-labels'), 'labels.csv'),
      '--out',
      dir('02-mil'),
      ...b.milArgs,
      ...seed,
    ],
    [join(dir('01-report-labels'), 'labels.csv'), join(set, 'frames.csv')],
    [hSet, h1],
  );
  if (done('02-mil')) return partial();
  // Stage 3: CAM on the MIL positives (+ the test set's train images as extra positives) -> boxes.
  const scores = join(dir('02-mil'), 'frame_scores.csv');
  const h3 = await stage(
    '03-cam',
    '03-cam.ts',
    ['--scores', scores, '--set', set, '--kvasir', kvasir, '--out', dir('03-cam'), ...seed, ...b.camArgs],
    [scores, join(kvasir, 'train.txt')],
    [hSet, h2],
  );
  if (done('03-cam')) return partial();
  const boxes = join(dir('03-cam'), 'boxes.csv');
  // Stage 4: a synthetic-only backbone, the decoder trained on synthetic masks, then pseudo-masks from the CAM boxes.
  const backbone = join(dir('04-backbone'), 'weights.safetensors');
  const hBb = await stage('04-backbone', '05-segmenter.ts', [
    '--data',
    'synthetic',
    '--out',
    dir('04-backbone'),
    '--config',
    'cpu',
    '--steps',
    String(b.backboneSteps),
    '--size',
    String(b.backboneSize),
  ]);
  const decoder = dir('04-decoder');
  const hDec = await stage(
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
      ...seed,
    ],
    [],
    [hBb],
  );
  const pseudo = dir('04-pseudo');
  await stage(
    '04-pseudo',
    '04-sam-pseudo-masks.ts',
    [
      '--boxes',
      boxes,
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
    [boxes, join(kvasir, 'test.txt')],
    [h3, hDec],
  );
  if (done('04-pseudo')) return partial();

  // Stages 5/6 and the two baselines, all with the same segmenter budget.
  const seg = [
    '--config',
    f.config,
    '--steps',
    String(b.segSteps),
    '--size',
    String(b.segSize),
    '--batch-size',
    String(b.segBatch),
  ];
  const measure = ['--set', set, '--kvasir', kvasir];
  const tr = performance.now();
  // Another threshold, or the decoder in the rounds, keeps the released setting's rounds in their own folder.
  const refineDir = `06-refine${f.threshold === 0.01 ? '' : `-t${f.threshold}`}${f.samInRounds ? '-sam' : ''}`;
  const sam = f.samInRounds
    ? [
        '--sam-in-rounds',
        `--sam-args=--weights ${join(decoder, 'weights.safetensors')} --backbone ${backbone} --size ${b.samSize}`,
      ]
    : [];
  const rounds = (await refine([
    '--pseudo',
    pseudo,
    '--boxes',
    boxes,
    ...measure,
    '--out',
    dir(refineDir),
    '--rounds',
    String(f.rounds),
    '--threshold',
    String(f.threshold),
    ...sam,
    ...seg,
  ]))!;
  ran['05/06 rounds'] = `${((performance.now() - tr) / 60000).toFixed(1)} min (rounds reused when unchanged)`;
  await stage(
    '05-real-masks',
    '05-segmenter.ts',
    ['--data', kvasir, '--out', dir('05-real-masks'), ...seg],
    [join(kvasir, 'train.txt'), join(kvasir, 'test.txt')],
    [folderListingHash(join(kvasir, 'masks'))],
  );
  const boxData = dir('05-box-masks-data');
  await withStamp(
    boxData,
    {
      boxes: fileHash(boxes),
      test: fileHash(join(kvasir, 'test.txt')),
      code: fileHash(fileURLToPath(new URL('./06-refine.ts', import.meta.url))),
    },
    async () => {
      writeRoundData(boxData, await boxRows(boxes), kvasir);
    },
    { within: out },
  );
  await stage(
    '05-box-masks',
    '05-segmenter.ts',
    ['--data', boxData, '--out', dir('05-box-masks'), ...seg],
    [join(boxData, 'train.txt')],
    [folderListingHash(join(boxData, 'masks'))],
  );

  const minutes = (performance.now() - t0) / 60000;
  const report = await writeReport(f, out, { kvasir, rounds, ran, minutes, segSteps: b.segSteps });
  console.log(`\n${report}\nreport: ${join(out, 'report.md')} (${minutes.toFixed(1)} min)`);
  return { report, rounds };
}

/** Stage 3's accepted boxes filled in as masks (the box-as-mask baseline), in 06-refine's row form. */
async function boxRows(boxesCsv: string): Promise<LabelRow[]> {
  const { rows } = parseCsvTable(readFileSync(boxesCsv, 'utf8'), boxesCsv, [
    'image_path',
    'x0',
    'y0',
    'x1',
    'y1',
    'accepted',
  ]);
  const pool = readPool(boxesCsv, new Map());
  const byPath = new Map(rows.map((r) => [resolve(dirname(boxesCsv), r.image_path), r]));
  const out: LabelRow[] = [];
  for (const item of pool) {
    const r = byPath.get(item.imagePath)!;
    if (r.accepted !== '1') continue;
    const { width, height } = await imageSize(item.imagePath);
    const [x0, y0, x1, y1] = [r.x0, r.y0, r.x1, r.y1].map(Number);
    const mask = new Uint8Array(width * height);
    for (let y = Math.max(0, y0); y < Math.min(height, y1); y++)
      mask.fill(1, y * width + Math.max(0, x0), y * width + Math.min(width, x1));
    out.push({
      item,
      width,
      height,
      dice: null,
      relabel: { mask, decision: { box: [x0, y0, x1, y1], accepted: true, reason: '', kept: [], areaFraction: 0 } },
    });
  }
  return out;
}

// ---- report ----------------------------------------------------------------------------------------

const readJson = (p: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
};

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

async function writeReport(
  f: Parsed,
  out: string,
  r: { kvasir: string; rounds: RoundSummary[]; ran: Record<string, string>; minutes: number; segSteps: number },
): Promise<string> {
  const fmt = (v: number | null | undefined) =>
    v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(4);
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
    return `| ${name} | ${what} | ${figs || '(none matched)'} | ${r.ran[name] ?? ''} |`;
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
  const extra = [
    f.data === 'real' ? '--data real' : '',
    f.config === 'gpu' ? '--config gpu' : '',
    f.quick ? '--quick' : '',
    f.threshold !== 0.01 ? `--threshold ${f.threshold}` : '',
    f.samInRounds ? '--sam-in-rounds' : '',
  ].filter(Boolean);
  const cmd = `npm run endoked${extra.length ? ` -- ${extra.join(' ')}` : ''}`;
  const text = [
    `# EndoKED end to end: ${f.data} data, ${f.config} config${f.quick ? ' (quick smoke run: not a measurement)' : ''}`,
    '',
    `Command: \`${cmd}\`. Wall time of this invocation: ${r.minutes.toFixed(1)} min (stages reused ` +
      `from earlier runs cost nothing).`,
    `Segmenter budget for every training below: ${r.segSteps} steps (05-segmenter.ts --steps), ` +
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
    r.rounds.some((s) => !s.test)
      ? `The loop stopped at round ${r.rounds.find((s) => !s.test)!.round}: no re-labelled image ` +
        `passed the box rule (${JSON.stringify(r.rounds.find((s) => !s.test)!.rejected)}); at ` +
        `--threshold ${f.threshold} the normalised maps of a weak segmenter cover the frame.\n`
      : '',
    `![rounds](rounds.png) ` +
      `![refine](06-refine${f.threshold === 0.01 ? '' : `-t${f.threshold}`}${f.samInRounds ? '-sam' : ''}/rounds.png)`,
    '',
    '![MIL](02-mil/auc.png) ![MIL loss](02-mil/loss.png)',
    '',
    `Stage times: ${Object.entries(r.ran)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    '',
  ].join('\n');
  writeFileSync(join(out, 'report.md'), text);
  return text;
}

if (isMain(import.meta.url))
  runMain(async (argv) => {
    await main(argv);
    await shutdown();
  });
