// Stage 1 of EndoExtend24 on real frames (`01-build-dataset.ts --data real`; spec §1.1): the real
// sources in ../shared/data merged through the same label-mapping machinery as the synthetic
// EE24 sources, plus the two evaluation tasks.
//
// Sources (read in place; see each README there):
//   capsule-bleeding/{bleeding,non-bleeding}/*.jpg          WCEBleedGen (Handa et al., arXiv 2408.12466)
//   polypgen-frames/positive/centre_X/imgN.jpg               PolypGen (Ali et al., Sci Data 2023)
//   polypgen-frames/negative/centre_X/seqN/seqN_imgK.jpg
//   kvasir-seg/images/*.jpg                                  Kvasir-SEG (Jha et al., MMM 2020); MIM only
// Each source keeps its own vocabulary in `original_class` (bleeding / non-bleeding; positive /
// negative; polyp); one label mapping per table maps it to the table's classes, rows mapped to
// null are counted and dropped (readEe24Csv's labelMapping, as for the synthetic sources).
// Groups: WCEBleedGen and Kvasir-SEG have no patient ids, so each frame is its own group (a random
// split is optimistic: frames of one patient can fall on both sides); PolypGen's negative frames
// are grouped by sequence (one examination); its positive frames are single frames, each its own
// group. The PolypGen centre is the source name (polypgen-A/B/C), so figures can be per centre.
//
// The split (test 20%, val 10%, train 70% of each source x label stratum, whole groups, seeded)
// is written once to --splitFile (kept with the recipe) and read back on every later run, so
// every run is scored on the same test frames. Frames are decoded once, normalised to a square
// field of view (engine/data/fov-square.ts: overlays, margins and the FOV shape are shortcut cues),
// resized to --cacheSize and cached as JPEG; all later stages read the cache.
//
// Produces (in --out): sources.csv (every frame, original labels), ee24.csv + class_mapping.json +
//   label_mapping.json (the merged 4-class table: stage 2 pre-trains on all of it, unlabelled),
//   capsule/ and polypgen/ (each: ce24-trainval.csv with fold 0 = val, ce24-test.csv,
//   class_mapping.json, label_mapping.json: the binary tasks in the layout stages 4-5 read),
//   cache/, summary.md, dataset.json.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';
import {
  assignGroupSplits,
  countTable,
  formatTable,
  parseCsvTable,
  serialiseCsv,
  serialiseEe24Csv,
  type ClassMapping,
  type Ee24Row,
  type LabelMapping,
  type SplitName,
  fovCrop,
} from '../../engine/data/index.ts';
import { readEe24Csv, type ImageRecord } from '../../runtime-node/datasets.ts';
import { decodeImageFit, isImageFile, resizeImage, writeJpeg } from '../../runtime-node/image.ts';
import { defineFlags } from '../../runtime-node/flags.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic } from '../../runtime-node/checkpoint.ts';
import { ensureDir, REPO } from './kit.ts';

export const REAL_FLAGS = defineFlags(
  'recipes/endoextend/01-build-dataset.ts --data real',
  'Merge the real GI sources; write the capsule and PolypGen tasks and the frame cache.',
  {
    data: { type: 'string', default: 'real', choices: ['real'] as const, help: 'the real sources in --dataRoot' },
    out: { type: 'string', default: 'runs/endoextend-real', help: 'output folder shared by every stage' },
    dataRoot: {
      type: 'string',
      default: join(REPO, '..', 'shared', 'data'),
      help: 'folder holding capsule-bleeding/, polypgen-frames/, kvasir-seg/',
    },
    splitFile: {
      type: 'string',
      default: join(REPO, 'recipes', 'endoextend', 'real-split.csv'),
      help: 'the fixed split (written once if absent, then reused)',
    },
    testFraction: {
      type: 'number',
      default: 0.2,
      min: 0,
      max: 0.5,
      help: 'share of each stratum for test (new split files only)',
    },
    valFraction: {
      type: 'number',
      default: 0.1,
      min: 0,
      max: 0.5,
      help: 'share of each stratum for validation (new split files only)',
    },
    cacheDir: { type: 'string', default: '', help: 'frame cache folder (default <out>/cache; runs may share one)' },
    cacheSize: {
      type: 'int',
      default: 128,
      min: 16,
      max: 1024,
      help: 'side of the cached square frames (µ reads 64-74 px)',
    },
    limit: {
      type: 'int',
      default: 0,
      min: 0,
      help: 'at most this many frames per source x label x split (0: all; for smoke tests)',
    },
    seed: { type: 'int', default: 0, help: 'seed of a new split file' },
  },
);

export interface RealTask {
  dir: string;
  classes: string[];
  train: number;
  val: number;
  test: number;
}
export interface RealDatasetInfo {
  data: 'real';
  classes: string[];
  ee24: { csv: string; frames: number };
  tasks: { capsule: RealTask; polypgen: RealTask };
}

/** A frame of a source before label mapping. */
interface SourceFrame {
  dataset: string;
  group: string;
  path: string;
  originalClass: string;
  name: string;
}

const CLASSES: ClassMapping = { bleeding: 0, 'no-bleeding': 1, polyp: 2, 'no-polyp': 3 };
const CENTRES = ['A', 'B', 'C'];
const capsuleMap = { bleeding: 'bleeding', 'non-bleeding': 'no-bleeding' };
const polypgenMap = { positive: 'polyp', negative: 'no-polyp' };
/** The merged table: every source's labels into one vocabulary. */
export const MERGED_MAPPING: LabelMapping = {
  'capsule-bleeding': capsuleMap,
  ...Object.fromEntries(CENTRES.map((c) => [`polypgen-${c}`, polypgenMap])),
  'kvasir-seg': { polyp: 'polyp' },
};
const drop = (m: Record<string, string>) => Object.fromEntries(Object.keys(m).map((k) => [k, null]));
/** The two tasks: their own source to binary classes; every other source maps to null (dropped). */
export const TASKS = {
  capsule: {
    classes: { 'no-bleeding': 0, bleeding: 1 } as ClassMapping,
    mapping: {
      'capsule-bleeding': capsuleMap,
      ...Object.fromEntries(CENTRES.map((c) => [`polypgen-${c}`, drop(polypgenMap)])),
      'kvasir-seg': { polyp: null },
    } as LabelMapping,
  },
  polypgen: {
    classes: { 'no-polyp': 0, polyp: 1 } as ClassMapping,
    mapping: {
      'capsule-bleeding': drop(capsuleMap),
      ...Object.fromEntries(CENTRES.map((c) => [`polypgen-${c}`, polypgenMap])),
      'kvasir-seg': { polyp: null },
    } as LabelMapping,
  },
};

function images(dir: string): string[] {
  if (!existsSync(dir))
    throw new Error(`real data: folder "${dir}" does not exist (see ../shared/data/*/README.md, or pass --dataRoot)`);
  return readdirSync(dir)
    .filter(isImageFile)
    .sort()
    .map((n) => join(dir, n));
}
const stemOf = (p: string) => basename(p, extname(p));

/** Every frame of the three sources, with its group and original label. */
export function listRealSources(root: string): SourceFrame[] {
  const out: SourceFrame[] = [];
  for (const cls of ['bleeding', 'non-bleeding']) {
    for (const p of images(join(root, 'capsule-bleeding', cls)))
      out.push({
        dataset: 'capsule-bleeding',
        group: `frame-${cls}-${stemOf(p)}`,
        path: p,
        originalClass: cls,
        name: `${cls}-${stemOf(p)}`,
      });
  }
  for (const c of CENTRES) {
    for (const p of images(join(root, 'polypgen-frames', 'positive', `centre_${c}`)))
      out.push({
        dataset: `polypgen-${c}`,
        group: `frame-${c}-${stemOf(p)}`,
        path: p,
        originalClass: 'positive',
        name: `${c}-${stemOf(p)}`,
      });
    const negDir = join(root, 'polypgen-frames', 'negative', `centre_${c}`);
    for (const seq of readdirSync(negDir)
      .filter((s) => statSync(join(negDir, s)).isDirectory())
      .sort()) {
      for (const p of images(join(negDir, seq)))
        out.push({
          dataset: `polypgen-${c}`,
          group: seq,
          path: p,
          originalClass: 'negative',
          name: `${c}-${stemOf(p)}`,
        });
    }
  }
  for (const p of images(join(root, 'kvasir-seg', 'images')))
    out.push({
      dataset: 'kvasir-seg',
      group: `frame-${stemOf(p)}`,
      path: p,
      originalClass: 'polyp',
      name: `kvasir-${stemOf(p)}`,
    });
  return out;
}

/** The split file: frame (relative to the data root) -> split; written once, then reused and checked. */
function loadOrWriteSplit(
  frames: readonly SourceFrame[],
  root: string,
  cfg: { splitFile: string; testFraction: number; valFraction: number; seed: number },
): Map<string, SplitName> {
  const task = frames.filter((f) => f.dataset !== 'kvasir-seg');
  const rel = (f: SourceFrame) => relative(root, f.path).split('\\').join('/');
  if (existsSync(cfg.splitFile)) {
    const { rows } = parseCsvTable(readFileSync(cfg.splitFile, 'utf8'), cfg.splitFile, ['frame', 'group', 'split']);
    const split = new Map(rows.map((r) => [r.frame, r.split as SplitName]));
    const missing = task.filter((f) => !split.has(rel(f)));
    if (missing.length)
      throw new Error(
        `${cfg.splitFile} does not list ${missing.length} frame(s) of ${root} (e.g. ` +
          `${rel(missing[0])}): the data changed; delete the file to write a new split (the test set ` +
          `changes with it)`,
      );
    const bad = rows.filter((r) => !['train', 'val', 'test'].includes(r.split));
    if (bad.length)
      throw new Error(`${cfg.splitFile}: split "${bad[0].split}" of ${bad[0].frame} is not train, val or test`);
    return split;
  }
  const byGroup = assignGroupSplits(
    task.map((f) => ({ group: `${f.dataset}/${f.group}`, stratum: `${f.dataset}/${f.originalClass}` })),
    { test: cfg.testFraction, val: cfg.valFraction },
    cfg.seed,
  );
  const split = new Map(task.map((f) => [rel(f), byGroup.get(`${f.dataset}/${f.group}`)!]));
  write(
    cfg.splitFile,
    serialiseCsv([['frame', 'group', 'split'], ...task.map((f) => [rel(f), f.group, split.get(rel(f))!])]),
  );
  console.log(
    `wrote the split to ${cfg.splitFile} (seed ${cfg.seed}; test ${cfg.testFraction}, val ` +
      `${cfg.valFraction} of each source x label, whole groups)`,
  );
  return split;
}

/** Decodes, normalises the field of view and resizes each frame once; later runs reuse the files. */
async function cacheFrames(frames: readonly { src: string; dst: string }[], size: number): Promise<void> {
  const todo = frames.filter((f) => !existsSync(f.dst));
  if (todo.length === 0) return;
  const bar = new Progress({ total: todo.length, label: 'cache frames', unit: 'img' });
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const f = todo[next++];
      const img = await decodeImageFit(f.src, Math.max(2 * size, 256));
      await writeJpeg(f.dst, await resizeImage(fovCrop(img).image, size, size), 95);
      bar.tick();
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

/** Whole-file replacement: a process reading these tables never sees half of one. */
const write = (path: string, text: string) => writeAtomic(path, new TextEncoder().encode(text));

const FOLD: Record<SplitName, number> = { val: 0, train: 1, test: -1 };

export async function buildRealDataset(argv: readonly string[]): Promise<RealDatasetInfo | null> {
  const cfg = REAL_FLAGS.parse(argv);
  if (!cfg) return null;
  const out = ensureDir(resolve(cfg.out));
  const root = resolve(cfg.dataRoot);
  const frames = listRealSources(root);
  const split = loadOrWriteSplit(frames, root, { ...cfg, splitFile: resolve(cfg.splitFile) });
  const splitOf = (f: SourceFrame): SplitName =>
    f.dataset === 'kvasir-seg' ? 'train' : split.get(relative(root, f.path).split('\\').join('/'))!;

  // --limit: a deterministic subset per source x label x split (smoke tests, quick runs).
  let kept = frames;
  if (cfg.limit > 0) {
    const seen = new Map<string, number>();
    kept = frames.filter((f) => {
      const k = `${f.dataset}/${f.originalClass}/${splitOf(f)}`,
        n = seen.get(k) ?? 0;
      seen.set(k, n + 1);
      return n < cfg.limit;
    });
  }
  const cacheDir = join(cfg.cacheDir ? resolve(cfg.cacheDir) : join(out, 'cache'), String(cfg.cacheSize));
  const cached = (f: SourceFrame) => join(cacheDir, relative(root, f.path).replace(/\.[^.]+$/, '.jpg'));
  await cacheFrames(
    kept.map((f) => ({ src: f.path, dst: cached(f) })),
    cfg.cacheSize,
  );

  // ---- every frame with its original label, then the merged table through the label mapping ----
  const sourceRows: Ee24Row[] = kept.map((f) => ({
    dataset: f.dataset,
    patient_id: f.group,
    frame_path: relative(out, cached(f)),
    proposed_name: f.name,
    class: '',
    fold: FOLD[splitOf(f)],
    original_class: f.originalClass,
  }));
  write(join(out, 'sources.csv'), serialiseEe24Csv(sourceRows));
  write(join(out, 'label_mapping.json'), JSON.stringify(MERGED_MAPPING, null, 2) + '\n');
  write(join(out, 'class_mapping.json'), JSON.stringify(CLASSES, null, 2) + '\n');
  const merged = readEe24Csv(join(out, 'sources.csv'), {
    labelMapping: MERGED_MAPPING,
    classMapping: CLASSES,
    log: null,
  });
  const asRows = (rs: readonly ImageRecord[], dir: string): Ee24Row[] =>
    rs.map((r) => ({
      dataset: r.dataset!,
      patient_id: r.patientId ?? '',
      frame_path: relative(dir, r.imagePath),
      proposed_name: r.id,
      class: r.className ?? '',
      fold: r.fold ?? 0,
      original_class: r.originalClass ?? '',
    }));
  write(join(out, 'ee24.csv'), serialiseEe24Csv(asRows(merged.records, out)));

  // ---- the two binary tasks: the same rows, each through its own mapping ------------------------
  const lines: string[] = [];
  const tasks = {} as RealDatasetInfo['tasks'];
  for (const [name, t] of Object.entries(TASKS) as [keyof typeof TASKS, (typeof TASKS)[keyof typeof TASKS]][]) {
    const dir = ensureDir(join(out, name));
    const got = readEe24Csv(join(out, 'sources.csv'), { labelMapping: t.mapping, classMapping: t.classes, log: null });
    const rows = asRows(got.records, dir);
    write(join(dir, 'ce24-trainval.csv'), serialiseEe24Csv(rows.filter((r) => r.fold >= 0)));
    write(join(dir, 'ce24-test.csv'), serialiseEe24Csv(rows.filter((r) => r.fold < 0)));
    write(join(dir, 'class_mapping.json'), JSON.stringify(t.classes, null, 2) + '\n');
    write(join(dir, 'label_mapping.json'), JSON.stringify(t.mapping, null, 2) + '\n');
    const count = (f: (r: Ee24Row) => boolean) => rows.filter(f).length;
    tasks[name] = {
      dir,
      classes: Object.keys(t.classes),
      train: count((r) => r.fold === 1),
      val: count((r) => r.fold === 0),
      test: count((r) => r.fold < 0),
    };
    lines.push(
      `### Task: ${name}`,
      '',
      `${rows.length} frames kept, ${got.skipped.length} rows of other sources dropped by its label ` +
        `mapping (mapped to null).`,
      '',
      '| source | class | train | val | test | groups |',
      '|---|---|---|---|---|---|',
      ...[...new Set(rows.map((r) => `${r.dataset}\u0000${r.class}`))].sort().map((k) => {
        const [ds, cls] = k.split('\u0000'),
          rs = rows.filter((r) => r.dataset === ds && r.class === cls);
        return (
          `| ${ds} | ${cls} | ${rs.filter((r) => r.fold === 1).length} | ` +
          `${rs.filter((r) => r.fold === 0).length} | ${rs.filter((r) => r.fold < 0).length} | ` +
          `${new Set(rs.map((r) => r.patient_id)).size} |`
        );
      }),
      '',
    );
  }
  const summary = [
    '# Real frames: merged table and tasks',
    '',
    `Sources in ${root}: ${merged.records.length} frames kept in the merged table, ` +
      `${merged.skipped.length} dropped by its label ` +
      `mapping${cfg.limit ? ` (--limit ${cfg.limit} per source x label x split)` : ''}.`,
    `Split file: ${resolve(cfg.splitFile)} (whole groups; fold 0 = val, 1 = train, -1 = test). ` +
      `Groups: PolypGen negatives by sequence; every other frame is its own group (WCEBleedGen and ` +
      `Kvasir-SEG have no patient ids, so a random split is optimistic).`,
    `Frames cached at ${cfg.cacheSize}x${cfg.cacheSize} after field-of-view normalisation ` +
      `(engine/data/fov-square.ts) in ${cacheDir}.`,
    '',
    '```',
    formatTable(countTable(merged.records.map((r) => ({ dataset: r.dataset!, class: r.className! })))),
    '```',
    '',
    ...lines,
  ].join('\n');
  write(join(out, 'summary.md'), summary);
  console.log(summary);
  const info: RealDatasetInfo = {
    data: 'real',
    classes: Object.keys(CLASSES),
    ee24: { csv: join(out, 'ee24.csv'), frames: merged.records.length },
    tasks,
  };
  write(join(out, 'dataset.json'), JSON.stringify(info, null, 2) + '\n');
  return info;
}
