// Writes the seeded synthetic datasets (runtime-node/synthetic) to disk, in the layouts the
// readers in datasets.ts read:
//   OUT/polyp/    Kvasir-SEG layout: images/<id>.jpg, masks/<id>.png (0/255), train.txt, test.txt
//   OUT/capsule/  class folders <class>/<file>.jpg, train_val.csv (EndoExtend24 columns, patient
//                 ids, patient-wise folds; fold 0 is validation), class_mapping.json,
//                 label_mapping.json (per source: original_class -> class or null)
//   OUT/reports/  patients/<id>/*.jpg bags, masks/<id>/*.png for polyp frames, reports.csv
//                 (patient_id, label, certain, n_frames, report, split, centre), frames.csv
//                 (per-frame truth: patient_id, frame_path, polyp, mask_path, centre, sequence)
//   OUT/pathology/ images/<patient>/<polyp>_<k>.jpg close-up polyp frames, labels.csv
//                 (frame_path, patient_id, polyp_id, pathology 0..3, pathology_name, split
//                 train|test by patient, 70/30 seeded); read by readPathologySet (spec §2.7)
// Usage (`--help` lists every flag):
//   npx tsx runtime-node/synth.ts --out DIR [--seed N] [--kind polyp|capsule|reports|pathology|all]
//       [--n N | --n-polyp N --n-capsule N --n-patients N] [--size N|WxH] [--folds K] [--force]
//       [--contact-sheet FILE.png]
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { escapeXml, FONT_FAMILY, svgToPng } from './plots.ts';
import {
  assignPatientFolds,
  rng,
  serialiseCsv,
  serialiseEe24Csv,
  type Ee24Row,
  type RgbImage,
  shuffle,
} from '../engine/data/index.ts';
import {
  CAPSULE_SOURCES,
  CE24_CLASSES,
  PATHOLOGY_TYPES,
  capsuleSet,
  overlayMask,
  pathologySet,
  polypSample,
  renderCapsule,
  renderColonoscopy,
  renderPathologyFrame,
  reportSet,
  tileGrid,
} from './synthetic/index.ts';
import { jpegBytes, writeMaskPng } from './image.ts';
import { defineFlags, isMain, runMain, FlagError } from './flags.ts';

export interface SynthOptions {
  seed?: number;
  width?: number;
  height?: number;
}

function prepare(dir: string, force: boolean): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    if (!force) throw new Error(`synth: "${dir}" exists and is not empty (pass --force to replace it)`);
    rmSync(dir, { recursive: true });
  }
  mkdirSync(dir, { recursive: true });
}

async function writeJpegFile(path: string, img: RgbImage): Promise<void> {
  writeFileSync(path, await jpegBytes(img, 95));
}

/** The polyp set in Kvasir-SEG layout; 10% of the ids (seeded) go to test.txt. */
export async function writePolypSet(
  dir: string,
  n: number,
  opts: SynthOptions & { force?: boolean } = {},
): Promise<{ train: string[]; test: string[] }> {
  const seed = opts.seed ?? 0;
  prepare(dir, opts.force ?? false);
  mkdirSync(join(dir, 'images'));
  mkdirSync(join(dir, 'masks'));
  const ids = Array.from({ length: n }, (_, i) => `polyp-${String(i).padStart(5, '0')}`);
  for (let i = 0; i < n; i++) {
    const s = polypSample(seed, i, { width: opts.width, height: opts.height });
    await writeJpegFile(join(dir, 'images', `${ids[i]}.jpg`), s.image);
    writeMaskPng(join(dir, 'masks', `${ids[i]}.png`), s.mask);
  }
  const order = shuffle([...ids], rng(seed, 'polyp-split'));
  const nTest = Math.round(0.1 * n),
    test = new Set(order.slice(0, nTest));
  const train = ids.filter((id) => !test.has(id)),
    testIds = ids.filter((id) => test.has(id));
  writeFileSync(join(dir, 'train.txt'), train.join('\n') + (train.length ? '\n' : ''));
  writeFileSync(join(dir, 'test.txt'), testIds.join('\n') + (testIds.length ? '\n' : ''));
  return { train, test: testIds };
}

/** The capsule set: class folders + train_val.csv + class_mapping.json + label_mapping.json. */
export async function writeCapsuleSet(
  dir: string,
  n: number,
  opts: SynthOptions & { folds?: number; force?: boolean } = {},
): Promise<Ee24Row[]> {
  const seed = opts.seed ?? 0;
  prepare(dir, opts.force ?? false);
  const items = capsuleSet(seed, { n, width: opts.width, height: opts.height });
  const folds = assignPatientFolds(items, opts.folds ?? 5, seed);
  const rows: Ee24Row[] = [];
  for (const it of items) {
    mkdirSync(join(dir, it.className), { recursive: true });
    await writeJpegFile(join(dir, it.className, it.fileName), renderCapsule(it.scene));
    rows.push({
      dataset: it.dataset,
      patient_id: it.patientId,
      frame_path: `${it.className}/${it.fileName}`,
      proposed_name: it.fileName,
      class: it.className,
      fold: folds.get(it.patientId)!,
      original_class: it.originalClass,
    });
  }
  writeFileSync(join(dir, 'train_val.csv'), serialiseEe24Csv(rows));
  writeFileSync(
    join(dir, 'class_mapping.json'),
    JSON.stringify(Object.fromEntries(CE24_CLASSES.map((c, i) => [c, i]))) + '\n',
  );
  writeFileSync(join(dir, 'label_mapping.json'), JSON.stringify(CAPSULE_SOURCES, null, 2) + '\n');
  return rows;
}

/**
 * A patient-wise train/test split, stratified by label and seeded: round(testFraction * n) of each
 * label's patients go to test (at least one when a label has two or more patients).
 */
export function patientSplit(
  items: readonly { patientId: string; label: number }[],
  testFraction: number,
  seed: number,
): Map<string, 'train' | 'test'> {
  if (!(testFraction >= 0 && testFraction < 1))
    throw new Error(`patientSplit: testFraction ${testFraction} must be in [0, 1)`);
  const out = new Map<string, 'train' | 'test'>();
  for (const label of [...new Set(items.map((i) => i.label))].sort()) {
    const ids = shuffle(
      items.filter((i) => i.label === label).map((i) => i.patientId),
      rng(seed, 'patient-split', label),
    );
    let nTest = Math.round(testFraction * ids.length);
    if (testFraction > 0 && nTest === 0 && ids.length >= 2) nTest = 1;
    ids.forEach((id, k) => out.set(id, k < nTest ? 'test' : 'train'));
  }
  return out;
}

/**
 * The report (patient) set: patients/<id>/*.jpg bags, masks of polyp frames, reports.csv
 * (patient_id, label, certain, n_frames, report, split, centre) and frames.csv (patient_id,
 * frame_path, polyp, mask_path, centre, sequence). The split is patient-wise (stratified,
 * seeded; `testFraction` default 0.3); the centre is 'synthetic' and each patient is one sequence.
 */
export async function writeReportSet(
  dir: string,
  patients: number,
  opts: SynthOptions & { force?: boolean; testFraction?: number; framesPerPatient?: readonly [number, number] } = {},
): Promise<void> {
  const seed = opts.seed ?? 0;
  prepare(dir, opts.force ?? false);
  const cases = reportSet(seed, {
    patients,
    width: opts.width,
    height: opts.height,
    framesPerPatient: opts.framesPerPatient,
  });
  const split = patientSplit(cases, opts.testFraction ?? 0.3, seed);
  const frameRows: (string | number)[][] = [['patient_id', 'frame_path', 'polyp', 'mask_path', 'centre', 'sequence']];
  for (const p of cases) {
    mkdirSync(join(dir, 'patients', p.patientId), { recursive: true });
    for (const f of p.frames) {
      const { image, mask } = renderColonoscopy(f.scene);
      const framePath = `patients/${p.patientId}/${f.fileName}`;
      await writeJpegFile(join(dir, framePath), image);
      let maskPath = '';
      if (f.polyp) {
        maskPath = `masks/${p.patientId}/${f.fileName.replace(/\.jpg$/, '.png')}`;
        writeMaskPng(join(dir, maskPath), mask);
      }
      frameRows.push([p.patientId, framePath, f.polyp ? 1 : 0, maskPath, 'synthetic', p.patientId]);
    }
  }
  writeFileSync(
    join(dir, 'reports.csv'),
    serialiseCsv([
      ['patient_id', 'label', 'certain', 'n_frames', 'report', 'split', 'centre'],
      ...cases.map((p) => [
        p.patientId,
        p.label,
        p.certain ? 1 : 0,
        p.frames.length,
        p.report,
        split.get(p.patientId)!,
        'synthetic',
      ]),
    ]),
  );
  writeFileSync(join(dir, 'frames.csv'), serialiseCsv(frameRows));
}

/**
 * The optical-biopsy set: close-up polyp frames with pathology types (runtime-node/synthetic/
 * pathology.ts), labels.csv with a patient-wise split (`testFraction` of the patients, seeded).
 */
export async function writePathologySet(
  dir: string,
  patients: number,
  opts: SynthOptions & { force?: boolean; testFraction?: number } = {},
): Promise<{ train: string[]; test: string[] }> {
  const seed = opts.seed ?? 0;
  prepare(dir, opts.force ?? false);
  const cases = pathologySet(seed, { patients, width: opts.width, height: opts.height });
  const order = shuffle(
    cases.map((p) => p.patientId),
    rng(seed, 'pathology-split'),
  );
  const test = new Set(order.slice(0, Math.round((opts.testFraction ?? 0.3) * cases.length)));
  const rows: (string | number)[][] = [
    ['frame_path', 'patient_id', 'polyp_id', 'pathology', 'pathology_name', 'split'],
  ];
  for (const p of cases) {
    mkdirSync(join(dir, 'images', p.patientId), { recursive: true });
    for (const f of p.frames) {
      const framePath = `images/${p.patientId}/${f.fileName}`;
      await writeJpegFile(join(dir, framePath), renderPathologyFrame(f).image);
      rows.push([
        framePath,
        p.patientId,
        f.polyp.polypId,
        f.polyp.type,
        PATHOLOGY_TYPES[f.polyp.type],
        test.has(p.patientId) ? 'test' : 'train',
      ]);
    }
  }
  writeFileSync(join(dir, 'labels.csv'), serialiseCsv(rows));
  return {
    train: cases.map((p) => p.patientId).filter((id) => !test.has(id)),
    test: cases.map((p) => p.patientId).filter((id) => test.has(id)),
  };
}

/**
 * A contact sheet: row 1 colonoscopy frames, row 2 the same with their masks (green), rows 3-4
 * capsule frames, one column per class (named under the column).
 */
export async function writeContactSheet(path: string, seed = 0): Promise<void> {
  const size = 224,
    cols = CE24_CLASSES.length,
    pad = 4;
  const polyps = Array.from({ length: cols }, (_, i) =>
    polypSample(seed, i, { width: size, height: size, polyps: i % 5 === 4 ? 0 : [0, 0.75, 0.25] }),
  );
  const tiles: RgbImage[] = [
    ...polyps.map((s) => s.image),
    ...polyps.map((s) => overlayMask(s.image, s.mask, [0.1, 1, 0.2])),
  ];
  for (let row = 0; row < 2; row++) {
    for (let k = 0; k < cols; k++)
      tiles.push(
        renderCapsule({
          seed: rng(seed, 'sheet', row, k).nextU32(),
          width: size,
          height: size,
          label: k,
          tone: rng(seed, 'tone', row, k).random(),
        }),
      );
  }
  const grid = tileGrid(tiles, cols, pad);
  const labelH = 26,
    W = grid.width,
    H = grid.height + labelH;
  const text = CE24_CLASSES.map(
    (c, k) =>
      `<text x="${pad + k * (size + pad) + size / 2}" y="${grid.height + 18}" ` +
      `font-family="${FONT_FAMILY}" font-size="15" fill="#eee" text-anchor="middle">${escapeXml(c)}</text>`,
  ).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${text}</svg>`;
  const base = await sharp(Buffer.from(grid.data), { raw: { width: W, height: grid.height, channels: 3 } })
    .extend({ bottom: labelH, background: { r: 26, g: 26, b: 26 } })
    .raw()
    .toBuffer();
  mkdirSync(resolve(path, '..'), { recursive: true });
  writeFileSync(path, await svgToPng(svg, { data: base, width: W, height: H, channels: 3 }));
}

// ---- CLI ----------------------------------------------------------------------------------------

export const FLAGS = defineFlags(
  'runtime-node/synth.ts',
  'Write the seeded synthetic datasets to disk (and/or a contact sheet of the capsule classes).',
  {
    out: { type: 'string', help: 'output folder (polyp/, capsule/, reports/, pathology/ below it)' },
    seed: { type: 'int', default: 0, min: 0, help: 'seed of every set' },
    kind: {
      type: 'string',
      default: 'all',
      choices: ['polyp', 'capsule', 'reports', 'pathology', 'all'] as const,
      help: 'which set to write',
    },
    n: { type: 'int', min: 0, help: 'size of every set written (default per set: the --n-* defaults)' },
    nPolyp: { type: 'int', min: 0, help: 'polyp frames [default --n, else 1000]' },
    nCapsule: { type: 'int', min: 0, help: 'capsule frames [default --n, else 2000]' },
    nPatients: { type: 'int', min: 0, help: 'patients of the reports and pathology sets [default --n, else 100]' },
    size: { type: 'string', help: "frame size, N or WxH (default: each set's own)" },
    folds: { type: 'int', default: 5, min: 1, help: 'patient-wise folds of the capsule set' },
    force: { type: 'boolean', default: false, help: 'replace an output folder that is not empty' },
    contactSheet: { type: 'string', help: 'also write a contact sheet PNG of the capsule classes here' },
  },
);

export async function main(argv: string[]): Promise<void> {
  const a = FLAGS.parse(argv);
  if (!a) return;
  if (!a.out && !a.contactSheet)
    throw new FlagError(`${FLAGS.script}: --out or --contact-sheet is required (--help lists the flags)`);
  const { seed, kind, force, n } = a;
  let width: number | undefined, height: number | undefined;
  if (a.size !== undefined) {
    const m = /^(\d+)(?:x(\d+))?$/.exec(a.size);
    if (!m) throw new FlagError(`${FLAGS.script}: --size "${a.size}" is not N or WxH`);
    width = Number(m[1]);
    height = Number(m[2] ?? m[1]);
  }
  const t0 = Date.now();
  if (a.out) {
    const out = resolve(a.out);
    if (kind === 'polyp' || kind === 'all') {
      const k = a.nPolyp ?? n ?? 1000;
      const s = await writePolypSet(join(out, 'polyp'), k, { seed, width, height, force });
      console.log(`polyp: ${k} frames (${s.train.length} train / ${s.test.length} test) -> ${join(out, 'polyp')}`);
    }
    if (kind === 'capsule' || kind === 'all') {
      const k = a.nCapsule ?? n ?? 2000;
      const rows = await writeCapsuleSet(join(out, 'capsule'), k, { seed, width, height, folds: a.folds, force });
      console.log(
        `capsule: ${rows.length} frames, ${new Set(rows.map((r) => r.patient_id)).size} patients ` +
          `-> ${join(out, 'capsule')}`,
      );
    }
    if (kind === 'reports' || kind === 'all') {
      const k = a.nPatients ?? n ?? 100;
      await writeReportSet(join(out, 'reports'), k, { seed, width, height, force });
      console.log(`reports: ${k} patients -> ${join(out, 'reports')}`);
    }
    if (kind === 'pathology' || kind === 'all') {
      const k = a.nPatients ?? n ?? 100;
      const s = await writePathologySet(join(out, 'pathology'), k, { seed, width, height, force });
      console.log(
        `pathology: ${k} patients (${s.train.length} train / ${s.test.length} test) -> ${join(out, 'pathology')}`,
      );
    }
  }
  if (a.contactSheet) {
    await writeContactSheet(resolve(a.contactSheet), seed);
    console.log(`contact sheet -> ${resolve(a.contactSheet)}`);
  }
  console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

if (isMain(import.meta.url)) runMain(main);
