// Stage 1 of EndoExtend24 (arXiv 2410.21302; spec §1.1): build the merged dataset.
//
// Consumes: source datasets with their own label vocabularies, as EndoExtend24-style CSVs
//   (dataset, patient_id, frame_path, proposed_name, class, fold, original_class) plus a label
//   mapping JSON ({dataset: {original_label: target_class | null}}) and a class_mapping.json
//   ({class: index}). By default it first writes seeded synthetic capsule sets in exactly that
//   layout (two sources with different vocabularies, realistic imbalance, patient ids), so the
//   pipeline runs with no download.
// Produces (in --out): ee24.csv (the merged pre-training set: labels mapped per dataset, rows
//   mapped to null dropped, patient-wise folds), ce24-trainval.csv and ce24-test.csv (the
//   10-class Capsule Endoscopy 2024 task: fold 0 is validation, i.e. the 80/20 re-pooled split),
//   class_mapping.json, summary.md (classes per source, dropped labels, fold sizes), dataset.json
//   (paths and counts for the next stages).
//
//   npx tsx recipes/endoextend/01-build-dataset.ts --out runs/endoextend
//   npx tsx recipes/endoextend/01-build-dataset.ts --data real --out runs/endoextend-real
//     (the real frames in ../shared/data: see real-data.ts; `--data real --help` lists its flags)
import { writeFileSync, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import {
  countTable,
  formatTable,
  assertPatientDisjoint,
  serialiseEe24Csv,
  assignPatientFolds,
  type LabelMapping,
  type Ee24Row,
} from '../../engine/data/index.ts';
import { readEe24Csv, readClassMapping, type ImageRecord } from '../../runtime-node/datasets.ts';
import { writeCapsuleSet } from '../../runtime-node/synth.ts';
import { shutdown } from '../../runtime-node/index.ts';
import { ensureDir, join, dataFlag } from './kit.ts';
import { defineFlags, isMain, runMain, FlagError } from '../../runtime-node/flags.ts';
import { buildRealDataset, type RealDatasetInfo } from './real-data.ts';

export const FLAGS = defineFlags(
  'recipes/endoextend/01-build-dataset.ts',
  'Merge the EE24-style sources (synthetic by default) and write the CE24 task tables.',
  {
    data: {
      type: 'string',
      default: 'synthetic',
      choices: ['synthetic', 'real'] as const,
      help: 'synthetic (written here, or the CSVs below) | real (../shared/data; `--data real --help`)',
    },
    out: { type: 'string', default: 'runs/endoextend', help: 'output folder shared by every stage' },
    ee24Csv: { type: 'string', default: '', help: 'a real merged-source CSV (empty: write the synthetic sources)' },
    labelMapping: { type: 'string', default: '', help: 'its label mapping JSON (required with --ee24-csv)' },
    ce24Csv: { type: 'string', default: '', help: 'a real CE24 train/val CSV (empty: synthetic)' },
    ce24TestCsv: { type: 'string', default: '', help: 'a real CE24 test CSV (empty: synthetic)' },
    ee24Frames: { type: 'int', default: 1200, min: 1, help: 'synthetic EE24 frames (both sources together)' },
    ce24Frames: { type: 'int', default: 800, min: 1, help: 'synthetic CE24 train+val frames' },
    ce24TestFrames: { type: 'int', default: 400, min: 1, help: 'synthetic CE24 test frames' },
    imageSize: {
      type: 'int',
      default: 64,
      min: 8,
      max: 4096,
      help: 'synthetic frame size in pixels (µ models read 64x64)',
    },
    folds: { type: 'int', default: 5, min: 2, help: 'patient-wise folds; fold 0 is validation (80/20)' },
    seed: { type: 'int', default: 0, min: 0, help: 'seed of the synthetic data and the folds' },
    force: { type: 'boolean', default: false, help: 'rewrite existing synthetic data' },
  },
);

export interface DatasetInfo {
  classes: string[];
  ee24: { csv: string; frames: number };
  ce24: { csv: string; test: string; frames: number; testFrames: number };
}

function rowsOf(records: readonly ImageRecord[], root: string): Ee24Row[] {
  return records.map((r) => ({
    dataset: r.dataset ?? '',
    patient_id: r.patientId ?? '',
    frame_path: r.imagePath.startsWith(root) ? r.imagePath.slice(root.length + 1) : r.imagePath,
    proposed_name: r.id,
    class: r.className ?? '',
    fold: r.fold ?? 0,
    original_class: r.originalClass ?? '',
  }));
}

export async function main(argv: string[]): Promise<DatasetInfo | RealDatasetInfo | null> {
  if (dataFlag(argv) === 'real') return buildRealDataset(argv);
  const cfg = FLAGS.parse(argv);
  if (!cfg) return null;
  const out = ensureDir(cfg.out);
  const dataDir = ensureDir(join(out, 'data'));
  const size = { width: cfg.imageSize, height: cfg.imageSize, force: cfg.force };

  // ---- the sources ----------------------------------------------------------------------------
  let ee24Csv = cfg.ee24Csv,
    mappingPath = cfg.labelMapping;
  if (!ee24Csv) {
    const dir = join(dataDir, 'ee24-sources');
    if (!existsSync(join(dir, 'train_val.csv')) || cfg.force) {
      console.log(`writing ${cfg.ee24Frames} synthetic EE24 frames to ${dir}`);
      await writeCapsuleSet(dir, cfg.ee24Frames, { ...size, seed: cfg.seed, folds: cfg.folds });
    }
    ee24Csv = join(dir, 'train_val.csv');
    mappingPath = join(dir, 'label_mapping.json');
  } else if (!mappingPath) {
    throw new FlagError(
      `${FLAGS.script}: --ee24-csv needs --label-mapping (a JSON {dataset: {original_label: class | null}})`,
    );
  }
  const labelMapping = JSON.parse(readFileSync(mappingPath, 'utf8')) as LabelMapping;

  // ---- merge: map each source's labels, drop unmapped rows, patient-wise folds -----------------
  const merged = readEe24Csv(ee24Csv, { labelMapping, log: (l) => console.log(l) });
  const rows = rowsOf(merged.records, merged.root);
  const folds = assignPatientFolds(
    rows.map((r) => ({ patientId: r.patient_id })),
    cfg.folds,
    cfg.seed,
  );
  for (const r of rows) r.fold = folds.get(r.patient_id)!;
  assertPatientDisjoint(rows);
  const mergedCsv = join(out, 'ee24.csv');
  // frame_path relative to the CSV's folder, as the readers resolve it.
  writeFileSync(
    mergedCsv,
    serialiseEe24Csv(rows.map((r) => ({ ...r, frame_path: relative(out, join(merged.root, r.frame_path)) }))),
  );
  const classMap = join(dirname(ee24Csv), 'class_mapping.json');
  copyFileSync(classMap, join(out, 'class_mapping.json'));
  const mapping = readClassMapping(classMap);
  const classes = Object.keys(mapping).sort((a, b) => mapping[a] - mapping[b]);

  // ---- the CE24 task ----------------------------------------------------------------------------
  const ce24 = async (csv: string, name: string, n: number, seed: number): Promise<string> => {
    if (csv) return csv;
    const dir = join(dataDir, name);
    if (!existsSync(join(dir, 'train_val.csv')) || cfg.force) {
      console.log(`writing ${n} synthetic CE24 frames to ${dir}`);
      await writeCapsuleSet(dir, n, { ...size, seed, folds: cfg.folds });
    }
    return join(dir, 'train_val.csv');
  };
  const ce24Csv = await ce24(cfg.ce24Csv, 'ce24', cfg.ce24Frames, cfg.seed + 1);
  const ce24Test = await ce24(cfg.ce24TestCsv, 'ce24-test', cfg.ce24TestFrames, cfg.seed + 2);
  const trainval = readEe24Csv(ce24Csv, { classMapping: mapping, log: (l) => console.log(l) });
  const test = readEe24Csv(ce24Test, { classMapping: mapping, log: (l) => console.log(l) });
  assertPatientDisjoint(rowsOf(trainval.records, trainval.root));
  const rebased = (l: typeof trainval) =>
    rowsOf(l.records, l.root).map((r) => ({ ...r, frame_path: relative(out, join(l.root, r.frame_path)) }));
  writeFileSync(join(out, 'ce24-trainval.csv'), serialiseEe24Csv(rebased(trainval)));
  writeFileSync(join(out, 'ce24-test.csv'), serialiseEe24Csv(rebased(test)));

  // ---- summary ----------------------------------------------------------------------------------
  const table = countTable(rows);
  const foldSizes = Array.from({ length: cfg.folds }, (_, f) => rows.filter((r) => r.fold === f).length);
  const dropped = merged.skipped.length;
  const summary = [
    '# Merged dataset (EE24-style)',
    '',
    `Sources: ${[...new Set(rows.map((r) => r.dataset))].join(', ')}; ${rows.length} frames kept, ` +
      `${dropped} dropped by the label mapping; ${new Set(rows.map((r) => r.patient_id)).size} ` +
      `patients.`,
    '',
    '```',
    formatTable(table),
    '```',
    '',
    `Patient-wise folds (frames): ${foldSizes.join(', ')} (fold 0 = validation); no patient is in two folds.`,
    '',
    `CE24 task: ${trainval.records.length} train+val frames, ${test.records.length} test frames, ` +
      `${classes.length} classes.`,
    '',
    '```',
    formatTable(countTable(rowsOf(trainval.records, trainval.root))),
    '```',
    '',
  ].join('\n');
  writeFileSync(join(out, 'summary.md'), summary);
  console.log(summary);

  const info: DatasetInfo = {
    classes,
    ee24: { csv: mergedCsv, frames: rows.length },
    ce24: {
      csv: join(out, 'ce24-trainval.csv'),
      test: join(out, 'ce24-test.csv'),
      frames: trainval.records.length,
      testFrames: test.records.length,
    },
  };
  writeFileSync(join(out, 'dataset.json'), JSON.stringify(info, null, 2) + '\n');
  return info;
}

if (isMain(import.meta.url)) runMain((argv) => main(argv).finally(shutdown));
