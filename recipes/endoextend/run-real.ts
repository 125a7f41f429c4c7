// The EndoExtend24 claim on real frames (`run-all.ts --data real`): domain-adaptive MIM
// pre-training of EVA-02 on every real GI frame we have (WCEBleedGen capsule frames, PolypGen
// colonoscopy frames, Kvasir-SEG polyp images; unlabelled), then fine-tuning on two binary tasks,
// each against the same fine-tuning budget from random initialisation in the same run:
//   capsule   bleeding vs no bleeding (WCEBleedGen; no patient ids: a random split, optimistic)
//   polypgen  polyp vs no polyp (PolypGen; negatives split by sequence; per-centre figures)
// and the teacher question: MIM against the frozen random conv teacher (models/patch-teacher.ts)
// vs MIM against a teacher trained here (the first MIM student), one row each, same budget.
// The paper's supervised EE24 stage (03) is left out here: its labels would be these tasks'.
//
// Stages: 01 --data real (merge, split file, frame cache) -> 02 (MIM, all frames) -> for each
// task: 04 + 05 from scratch, from MIM (random teacher), from MIM (trained teacher) -> report.
// Every stage resumes from its checkpoints; a finished run re-reports in seconds.
// Caveat: MIM sees every frame, the tasks' test frames included (unlabelled, as in
// transductive domain adaptation); the fine-tuning and model selection never see test labels.
//
//   npx tsx recipes/endoextend/run-all.ts --data real --budget quick    (minutes: a smoke run)
//   nice -n 10 npx tsx recipes/endoextend/run-all.ts --data real        (the full budget)
// On a machine with spare cores, processes can share the work: one with --inits mim, one with
// --inits scratch, then (once mim/ is done) one with --inits mim-tt; a last plain invocation
// resumes everything they finished and writes the report.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { main as buildDataset } from './01-build-dataset.ts';
import { main as mimPretrain } from './02-mim-pretrain.ts';
import { main as finetune } from './04-finetune-ce24.ts';
import { main as evaluate } from './05-evaluate.ts';
import type { RealDatasetInfo } from './real-data.ts';
import { taskSections, writeReport, type RealRun, type RealTaskReport } from './real-report.ts';
import { defineFlags } from '../../runtime-node/flags.ts';
import { REPO } from './kit.ts';

export const RUN_REAL_FLAGS = defineFlags(
  'recipes/endoextend/run-all.ts --data real',
  'EndoExtend24 on real frames: MIM on all frames, then capsule bleeding and PolypGen polyp tasks vs from scratch.',
  {
    data: { type: 'string', default: 'real', choices: ['real'] as const, help: 'the real sources (../shared/data)' },
    out: { type: 'string', default: 'runs/endoextend-real', help: 'one folder for the whole run' },
    budget: {
      type: 'string',
      default: 'full',
      choices: ['quick', 'full'] as const,
      help: 'quick: a smoke run in minutes; full: the measured run',
    },
    size: {
      type: 'string',
      default: 'mu',
      choices: ['mu', 'ti', 's', 'b'] as const,
      help: 'EVA-02 size (mu on a CPU driver)',
    },
    mimSteps: { type: 'int', min: 1, help: 'MIM steps per teacher (default: quick 20, full 60)' },
    epochs: { type: 'int', min: 1, help: 'fine-tuning epochs, the same for every init (default: quick 1, full 2)' },
    batch: { type: 'int', default: 32, min: 2, help: 'images per step (MIM and fine-tuning)' },
    tasks: {
      type: 'string',
      default: 'capsule,polypgen',
      help: 'tasks to fine-tune in this invocation (comma-separated; processes may split them once MIM is done)',
    },
    inits: {
      type: 'string',
      default: 'scratch,mim,mim-tt',
      help:
        'initialisations to fine-tune from (mim-tt: MIM against the first MIM student as teacher); ' +
        'processes may split them',
    },
    limit: { type: 'int', default: 0, min: 0, help: 'frames per source x label x split (0: all; smoke tests)' },
    dataRoot: { type: 'string', default: join(REPO, '..', 'shared', 'data'), help: 'the real sources' },
    cacheDir: { type: 'string', default: '', help: 'frame cache folder (default <out>/cache; runs may share one)' },
    splitFile: {
      type: 'string',
      default: join(REPO, 'recipes', 'endoextend', 'real-split.csv'),
      help: 'the fixed split file',
    },
    replicates: { type: 'int', default: 2000, min: 100, help: 'bootstrap resamples per interval' },
    seed: { type: 'int', default: 0, help: 'seed of every stage and of the bootstrap' },
  },
);

export async function main(argv: string[]): Promise<{ report: string; minutes: number } | null> {
  const cfg = RUN_REAL_FLAGS.parse(argv);
  if (!cfg) return null;
  if (!existsSync(cfg.dataRoot))
    throw new Error(
      `--dataRoot ${cfg.dataRoot} does not exist: the real frames live in ../shared/data (see its READMEs)`,
    );
  const quick = cfg.budget === 'quick';
  const mimSteps = cfg.mimSteps ?? (quick ? 20 : 60),
    epochs = cfg.epochs ?? (quick ? 1 : 2);
  const out = resolve(cfg.out),
    t0 = performance.now();
  const since = (t: number) => (performance.now() - t) / 60000;
  // Wall minutes per stage, summed over invocations (a resumed run adds only what it did), so a
  // run finished in two sittings (e.g. the teacher row added later) still reports its cost.
  const timingsPath = join(out, 'timings.json');
  const readTimings = (): Record<string, number> =>
    existsSync(timingsPath) ? JSON.parse(readFileSync(timingsPath, 'utf8')) : {};
  const spent = (key: string, t: number): number => {
    const timings = readTimings(); // re-read: another process may be working on another task
    timings.firstStart ??= Date.now() - since(t) * 60000;
    timings[key] = (timings[key] ?? 0) + since(t);
    writeFileSync(timingsPath, JSON.stringify(timings, null, 2) + '\n');
    return timings[key];
  };
  const tasks = cfg.tasks
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const unknown = tasks.filter((x) => x !== 'capsule' && x !== 'polypgen');
  if (unknown.length) throw new Error(`--tasks: unknown task(s) ${unknown.join(', ')} (capsule, polypgen)`);
  const common = ['--size', cfg.size, '--seed', String(cfg.seed)];

  const info = (await buildDataset([
    '--data',
    'real',
    '--out',
    out,
    '--data-root',
    cfg.dataRoot,
    '--split-file',
    cfg.splitFile,
    '--cache-dir',
    cfg.cacheDir,
    '--limit',
    String(cfg.limit),
    '--seed',
    String(cfg.seed),
  ])) as RealDatasetInfo;
  spent('data', t0);

  const want = new Set(
    cfg.inits
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  );
  const badInit = [...want].filter((x) => !['scratch', 'mim', 'mim-tt'].includes(x));
  if (badInit.length || want.size === 0)
    throw new Error(`--inits: expected some of scratch, mim, mim-tt, got '${cfg.inits}'`);

  // ---- MIM on every real frame: the random conv teacher, then a teacher trained here ------------
  const mimArgs = [
    ...common,
    '--out',
    out,
    '--steps',
    String(mimSteps),
    '--batch',
    String(cfg.batch),
    '--warmup',
    String(Math.max(1, Math.round(mimSteps / 10))),
    '--kvasir',
    '',
  ];
  let t = performance.now();
  type Mim = Awaited<ReturnType<typeof mimPretrain>>;
  let mim: Mim | null = null,
    mimTt: Mim | null = null;
  if (want.has('mim') || want.has('mim-tt')) {
    mim = await mimPretrain([...mimArgs, '--tag', 'mim']);
    spent('mim', t);
  }
  if (want.has('mim-tt')) {
    t = performance.now();
    mimTt = await mimPretrain([
      ...mimArgs,
      '--tag',
      'mim-trained-teacher',
      '--teacher',
      mim!.weights,
      '--teacher-size',
      cfg.size,
    ]);
    spent('mim-trained-teacher', t);
  }

  // ---- per task: the same fine-tuning budget from each initialisation (scratch first: the baseline) ----
  const inits: { tag: string; label: string; init: string }[] = [
    ...(want.has('scratch') ? [{ tag: 'finetune-scratch', label: 'random (scratch)', init: 'none' }] : []),
    ...(want.has('mim') ? [{ tag: 'finetune-mim', label: 'MIM, random conv teacher', init: mim!.weights }] : []),
    ...(mimTt ? [{ tag: 'finetune-mim-tt', label: 'MIM, trained teacher', init: mimTt.weights }] : []),
  ];
  const reports: RealTaskReport[] = [];
  for (const name of tasks as ('capsule' | 'polypgen')[]) {
    const task = info.tasks[name],
      runs: RealRun[] = [];
    for (const r of inits) {
      t = performance.now();
      await finetune([
        ...common,
        '--out',
        task.dir,
        '--init',
        r.init,
        '--tag',
        r.tag,
        '--epochs',
        String(epochs),
        '--batch',
        String(cfg.batch),
      ]);
      // Evaluation is deterministic: predictions newer than the checkpoint are kept.
      const preds = join(task.dir, r.tag, 'predictions.csv'),
        best = join(task.dir, r.tag, 'best.safetensors');
      if (!existsSync(preds) || statSync(preds).mtimeMs < statSync(best).mtimeMs)
        await evaluate(['--out', task.dir, '--tag', r.tag, '--size', cfg.size]);
      else console.log(`${name}/${r.tag}: test predictions are newer than its checkpoint; not evaluating again`);
      runs.push({ tag: r.tag, label: r.label, minutes: spent(`${name}/${r.tag}`, t) });
    }
    reports.push({
      name,
      dir: task.dir,
      classes: task.classes,
      runs,
      counts: `${task.train} training, ${task.val} validation (model selection), ${task.test} test frames.`,
    });
  }

  // ---- the report (needs the baseline; an invocation with a subset of inits only trains) ----------
  const minutes = since(t0);
  if (!want.has('scratch')) {
    console.log(
      `\ndone in ${minutes.toFixed(1)} min; no report: it compares with the scratch baseline (run ` +
        `again with --inits including scratch)`,
    );
    return null;
  }
  const tReport = performance.now();
  const sections: string[] = [];
  for (const r of reports) sections.push(...(await taskSections(r, { replicates: cfg.replicates, seed: cfg.seed })).md);
  const timings = readTimings();
  const m = (k: string) => (timings[k] ?? 0).toFixed(1);
  const total =
    Object.entries(timings)
      .filter(([k]) => k !== 'firstStart')
      .reduce((a, [, v]) => a + v, 0) + since(tReport);
  const elapsed = (Date.now() - timings.firstStart) / 60000;
  const report = join(out, 'report.md');
  const optional = [
    cfg.mimSteps ? ` --mim-steps ${cfg.mimSteps}` : '',
    cfg.epochs ? ` --epochs ${cfg.epochs}` : '',
    cfg.limit ? ` --limit ${cfg.limit}` : '',
  ].join('');
  const command =
    `npx tsx recipes/endoextend/run-all.ts --data real --budget ${cfg.budget}${optional} ` +
    `--inits ${[...want].join(',')} --out ${cfg.out}`;
  writeReport(report, [
    `# EndoExtend24 on real frames, EVA-02-${cfg.size}`,
    '',
    `Command: \`${command}\` (budget ${cfg.budget}: ${mimSteps} MIM steps per teacher, ${epochs} ` +
      `fine-tuning epochs for every initialisation, batch ${cfg.batch}, seed ${cfg.seed}).`,
    `Wall time: ${total.toFixed(1)} min of stages, summed over the processes and invocations that ` +
      `built this folder; ${elapsed.toFixed(1)} min from the first stage's start to this report ` +
      `(stages may run in parallel processes, each resuming the others' finished work). Data ` +
      `${m('data')}, MIM random teacher ` +
      `${m('mim')}${mimTt ? `, MIM trained teacher ${m('mim-trained-teacher')}` : ''}, fine-tuning + ` +
      `evaluation per run below. A CPU Vulkan driver shared with other work: times vary with load. ` +
      `Figures from one seed.`,
    '',
    `Data: ${info.ee24.frames} real frames pre-train with MIM, unlabelled (see summary.md: sources, ` +
      `label mappings, split, dropped rows).`,
    ...(mim
      ? [
          `MIM final loss (-cos, mean of the last 10 steps): random conv teacher ${mim.finalLoss.toFixed(4)}` +
            (mimTt ? `; trained teacher (the first MIM student, frozen) ${mimTt.finalLoss.toFixed(4)}` : '') +
            '.',
          '',
        ]
      : []),
    'Intervals: percentile bootstrap, 95%, resampling test frames within each class, ' +
      `${cfg.replicates} resamples, seed ${cfg.seed}. "Δ vs scratch" resamples the same frames for ` +
      `both models (paired); the overlap column compares the two marginal AUC intervals, which is ` +
      `the weaker test.`,
    'Balanced accuracy thresholds p(finding) at 0.5 (the argmax). The fine-tuned checkpoint is the ' +
      'epoch with the best validation balanced accuracy.',
    '',
    'Caveats: WCEBleedGen has no patient ids, so frames of one patient can be in train and test ' +
      '(optimistic for every init alike). MIM saw the test frames unlabelled. Frames are field-of-view ' +
      'normalised (engine/data/fov-square.ts) against the overlay and border shortcuts the READMEs ' +
      'warn about.',
    '',
    '## Results',
    '',
    ...sections,
    'Per-run details: <task>/<tag>/history.json, metrics.json, predictions.csv, curves.png; ' +
      'mim*/log.json, loss.png; timings.json.',
    '',
  ]);
  console.log(`\nreport: ${report} (${minutes.toFixed(1)} min)`);
  return { report, minutes };
}
