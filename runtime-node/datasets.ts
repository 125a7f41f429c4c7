// Dataset readers for the real layouts (and the synthetic sets, written in the same layouts):
//   Kvasir-SEG            root/images/*.jpg, root/masks/*.jpg, root/train.txt, root/test.txt
//   CVC-ClinicDB          root/Original/*, root/Ground Truth/* (PNG or TIFF; also under PNG/ or TIF/)
//   image/mask folders    any root/<images>/ + root/<masks>/ pair (Polyp-PVT's TestDataset sets)
//   class folders         root/<class>/**/*.jpg (Kvasir v2, Kvasir-Capsule, Capsule Vision 2024,
//                         whose class/<source>/ nesting gives the source) or the leaf folder as
//                         the class (HyperKvasir's labeled-images tree)
//   EndoExtend24 CSV      dataset,patient_id,frame_path,proposed_name,class,fold,original_class
//                         with class_mapping.json (spec §1.1)
//   patient set           reports.csv + frames.csv (or patients/<id>/*.jpg): EndoKED's bags and reports,
//                         read by report-sets.ts (readReportSet) with this file's folder helpers
//   pathology set         labels.csv: frame_path,patient_id,pathology (+ polyp_id, split) (EndoKED
//                         optical biopsy, spec §2.7)
// Readers list files and validate the layout; pixels are decoded later (seg-samples.ts
// loadSegSample), where an image/mask size mismatch is reported. Nothing is dropped silently: every skipped file is
// returned in `skipped` with its reason and, unless `log: null`, summarised on stderr.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative } from 'node:path';
import {
  applyLabelMapping,
  labelEe24Rows,
  parseClassMapping,
  parseEe24Csv,
  parseSplitFile,
  type ClassMapping,
  type LabelMapping,
} from '../engine/data/index.ts';
import { isImageFile } from './image.ts';

export interface ImageRecord {
  /** File stem, or the CSV's proposed_name. */
  id: string;
  imagePath: string;
  maskPath?: string;
  /** Class index (from a class mapping) or a binary label. */
  label?: number;
  className?: string;
  patientId?: string;
  dataset?: string;
  fold?: number;
  originalClass?: string;
  split?: string;
  /** Acquisition centre (patient sets). */
  centre?: string;
  /** Examination sequence the frame comes from (patient sets); frames of one never straddle splits. */
  sequence?: string;
}
export interface Skipped {
  path: string;
  reason: string;
}
export interface Listing {
  root: string;
  records: ImageRecord[];
  skipped: Skipped[];
}
export interface ReaderOptions {
  /** Where the skipped-items summary goes (default: stderr); null for silence. */
  log?: ((line: string) => void) | null;
}

/** "skipped 3 item(s) in ROOT: 2 not an image file (e.g. a.txt); 1 mask without an image (e.g. m.png)". */
export function summariseSkipped(root: string, skipped: readonly Skipped[]): string {
  const by = new Map<string, Skipped[]>();
  for (const s of skipped) by.set(s.reason, [...(by.get(s.reason) ?? []), s]);
  const parts = [...by.entries()].map(([reason, xs]) => `${xs.length} ${reason} (e.g. ${xs[0].path})`);
  return `skipped ${skipped.length} item(s) in ${root}: ${parts.join('; ')}`;
}

/** Summarises `skipped` on opts.log (default: stderr; null: silence); nothing when nothing was skipped. */
export function logSkipped(root: string, skipped: readonly Skipped[], opts: ReaderOptions): void {
  const log = opts.log === undefined ? (l: string) => process.stderr.write(l + '\n') : opts.log;
  if (skipped.length && log) log(summariseSkipped(root, skipped));
}

function finish(listing: Listing, opts: ReaderOptions): Listing {
  logSkipped(listing.root, listing.skipped, opts);
  return listing;
}

export function requireDir(path: string, what: string): void {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new Error(`${what}: folder "${path}" does not exist`);
}

export const stem = (name: string) => name.slice(0, name.length - extname(name).length);

/** Image files of a flat folder by stem; other entries go to `skipped`. */
export function imagesByStem(dir: string, skipped: Skipped[], what: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      skipped.push({ path: p, reason: 'folder inside an image folder' });
      continue;
    }
    if (!isImageFile(name)) {
      skipped.push({ path: p, reason: 'not an image file' });
      continue;
    }
    const s = stem(name);
    if (out.has(s)) throw new Error(`${what}: "${out.get(s)}" and "${p}" have the same name stem "${s}"`);
    out.set(s, p);
  }
  return out;
}

export interface PairOptions extends ReaderOptions {
  /** Dataset name put on records and in errors. */
  dataset?: string;
  /** 'error' (default): an image without a mask is an error; 'skip': it is skipped and reported. */
  onMissingMask?: 'error' | 'skip';
}

/** Image/mask pairs from two flat folders, matched by file stem (extensions may differ). */
export function readImageMaskFolders(root: string, imageDir: string, maskDir: string, opts: PairOptions = {}): Listing {
  const what = opts.dataset ?? 'image/mask folders';
  const idir = join(root, imageDir),
    mdir = join(root, maskDir);
  requireDir(idir, what);
  requireDir(mdir, what);
  const skipped: Skipped[] = [];
  const images = imagesByStem(idir, skipped, what),
    masks = imagesByStem(mdir, skipped, what);
  if (images.size === 0) throw new Error(`${what}: no images in "${idir}"`);
  const records: ImageRecord[] = [];
  for (const [id, imagePath] of images) {
    const maskPath = masks.get(id);
    if (!maskPath) {
      if (opts.onMissingMask === 'skip') {
        skipped.push({ path: imagePath, reason: 'image without a mask' });
        continue;
      }
      throw new Error(`${what}: missing mask for image "${imagePath}" (no file named "${id}.*" in "${mdir}")`);
    }
    records.push({ id, imagePath, maskPath, dataset: opts.dataset });
  }
  for (const [id, maskPath] of masks)
    if (!images.has(id)) skipped.push({ path: maskPath, reason: 'mask without an image' });
  return finish({ root, records, skipped }, opts);
}

export interface KvasirSegOptions extends PairOptions {
  /** 'train' / 'test': the ids of root/train.txt / root/test.txt; 'all' (default): every pair. */
  split?: 'train' | 'test' | 'all';
}

/** Kvasir-SEG: images/ + masks/ (+ train.txt / test.txt). */
export function readKvasirSeg(root: string, opts: KvasirSegOptions = {}): Listing {
  const dataset = opts.dataset ?? 'kvasir-seg',
    split = opts.split ?? 'all';
  const all = readImageMaskFolders(root, 'images', 'masks', { ...opts, dataset, log: null });
  const splits = new Map<string, string>();
  for (const name of ['train', 'test']) {
    const file = join(root, `${name}.txt`);
    if (!existsSync(file)) {
      if (split === name) throw new Error(`${dataset}: split file "${file}" does not exist`);
      continue;
    }
    for (const id of parseSplitFile(readFileSync(file, 'utf8'), file)) {
      if (splits.has(id)) throw new Error(`${dataset}: id "${id}" is in both ${splits.get(id)}.txt and ${name}.txt`);
      splits.set(id, name);
    }
  }
  const byId = new Map(all.records.map((r) => [r.id, r]));
  const skippedIds = new Set(
    all.skipped.filter((x) => x.reason === 'image without a mask').map((x) => stem(basename(x.path))),
  );
  for (const [id, name] of splits)
    if (!byId.has(id) && !skippedIds.has(id))
      throw new Error(
        `${dataset}: ${join(root, `${name}.txt`)} lists "${id}", which has no image/mask pair in "${root}"`,
      );
  const records = all.records
    .map((r) => ({ ...r, split: splits.get(r.id) }))
    .filter((r) => split === 'all' || r.split === split);
  if (records.length === 0) throw new Error(`${dataset}: split "${split}" of "${root}" is empty`);
  return finish({ root, records, skipped: all.skipped }, opts);
}

/** CVC-ClinicDB: Original/ + Ground Truth/ in root, root/PNG or root/TIF. */
export function readClinicDb(root: string, opts: PairOptions = {}): Listing {
  const dataset = opts.dataset ?? 'cvc-clinicdb';
  for (const base of ['', 'PNG', 'TIF']) {
    if (existsSync(join(root, base, 'Original')) && existsSync(join(root, base, 'Ground Truth'))) {
      const l = readImageMaskFolders(join(root, base), 'Original', 'Ground Truth', { ...opts, dataset });
      return { ...l, root };
    }
  }
  throw new Error(`${dataset}: no "Original/" and "Ground Truth/" folders in "${root}" (nor under PNG/ or TIF/)`);
}

export interface ClassFolderOptions extends ReaderOptions {
  /** 'top' (default): root/<class>/...; 'parent': the folder holding the image (HyperKvasir). */
  classFrom?: 'top' | 'parent';
  /** Folder name -> class name, or null to drop (counted in skipped). A folder it lacks is an error. */
  folderMapping?: Record<string, string | null>;
  /** Class name -> index; a class it lacks is an error. */
  classMapping?: ClassMapping;
  dataset?: string;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
}

/** Class-folder datasets: root/<class>/*.jpg, optionally nested (root/<class>/<source>/*.jpg). */
export function readClassFolders(root: string, opts: ClassFolderOptions = {}): Listing {
  const what = opts.dataset ?? 'class folders';
  requireDir(root, what);
  const files: string[] = [],
    skipped: Skipped[] = [],
    records: ImageRecord[] = [];
  walk(root, files);
  for (const p of files) {
    const parts = relative(root, p).split(/[\\/]/);
    if (parts.length < 2) {
      skipped.push({ path: p, reason: 'file outside the class folders' });
      continue;
    }
    if (!isImageFile(p)) {
      skipped.push({ path: p, reason: 'not an image file' });
      continue;
    }
    const folder = opts.classFrom === 'parent' ? parts[parts.length - 2] : parts[0];
    let className: string | null = folder;
    if (opts.folderMapping) {
      if (!Object.hasOwn(opts.folderMapping, folder))
        throw new Error(
          `${what}: folder "${join(root, parts[0])}": class folder "${folder}" is not in the folder mapping`,
        );
      className = opts.folderMapping[folder];
      if (className === null) {
        skipped.push({ path: p, reason: `image of a class dropped by the mapping ("${folder}")` });
        continue;
      }
    }
    let label: number | undefined;
    if (opts.classMapping) {
      if (!Object.hasOwn(opts.classMapping, className))
        throw new Error(
          `${what}: "${p}": unknown class "${className}" (known: ${Object.keys(opts.classMapping).join(', ')})`,
        );
      label = opts.classMapping[className];
    }
    const source = opts.classFrom !== 'parent' && parts.length > 2 ? parts.slice(1, -1).join('/') : undefined;
    records.push({ id: stem(basename(p)), imagePath: p, className, label, dataset: source ?? opts.dataset });
  }
  if (records.length === 0)
    throw new Error(
      `${what}: no images in class folders under ` +
        `"${root}"${skipped.length ? ` (${summariseSkipped(root, skipped)})` : ''}`,
    );
  return finish({ root, records, skipped }, opts);
}

/** Reads and validates class_mapping.json ({class: index}). */
export function readClassMapping(path: string): ClassMapping {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${e instanceof Error ? e.message : e}`);
  }
  return parseClassMapping(json, path);
}

export interface Ee24Options extends ReaderOptions {
  /** Folder frame_path is relative to (default: the CSV's folder). */
  imageRoot?: string;
  /** A mapping or its path (default: class_mapping.json next to the CSV, when present). */
  classMapping?: ClassMapping | string;
  /** Applied to original_class before labelling; rows mapped to null are skipped and reported. */
  labelMapping?: LabelMapping;
  /** 'error' (default) or 'skip' for rows whose image file does not exist; 'none' checks nothing. */
  onMissingFile?: 'error' | 'skip' | 'none';
}

/** An EndoExtend24-style CSV (spec §1.1). */
export function readEe24Csv(csvPath: string, opts: Ee24Options = {}): Listing {
  if (!existsSync(csvPath)) throw new Error(`EE24 CSV "${csvPath}" does not exist`);
  const imageRoot = opts.imageRoot ?? dirname(csvPath);
  const mapPath = join(dirname(csvPath), 'class_mapping.json');
  const mapping =
    typeof opts.classMapping === 'string'
      ? readClassMapping(opts.classMapping)
      : (opts.classMapping ?? (existsSync(mapPath) ? readClassMapping(mapPath) : undefined));
  let rows = parseEe24Csv(readFileSync(csvPath, 'utf8'), csvPath);
  if (rows.length === 0) throw new Error(`${csvPath}: no rows`);
  const skipped: Skipped[] = [];
  if (opts.labelMapping) {
    const m = applyLabelMapping(rows, opts.labelMapping, csvPath);
    rows = m.rows;
    for (const d of m.dropped)
      for (let k = 0; k < d.count; k++)
        skipped.push({
          path: `${csvPath} (${d.dataset}: ${d.originalClass})`,
          reason: 'row of a label mapped to null',
        });
  }
  if (mapping) rows = labelEe24Rows(rows, mapping, csvPath);
  const records: ImageRecord[] = [],
    missing: string[] = [];
  for (const r of rows) {
    const imagePath = join(imageRoot, r.frame_path);
    if ((opts.onMissingFile ?? 'error') !== 'none' && !existsSync(imagePath)) {
      if (opts.onMissingFile === 'skip') {
        skipped.push({ path: imagePath, reason: 'CSV row whose image does not exist' });
        continue;
      }
      missing.push(`row ${r.row}: ${imagePath}`);
      continue;
    }
    records.push({
      id: r.proposed_name || stem(basename(r.frame_path)),
      imagePath,
      label: r.label,
      className: r.class || undefined,
      patientId: r.patient_id || undefined,
      dataset: r.dataset,
      fold: r.fold,
      originalClass: r.original_class || undefined,
    });
  }
  if (missing.length)
    throw new Error(
      `${csvPath}: ${missing.length} row(s) name images that do not exist: ` +
        `${missing.slice(0, 3).join('; ')}${missing.length > 3 ? '; ...' : ''}`,
    );
  if (records.length === 0) throw new Error(`${csvPath}: no usable rows`);
  return finish({ root: imageRoot, records, skipped }, opts);
}

/** "seq2_img10" after "seq2_img9": digit runs compare as numbers. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * PolypGen frames (../shared/data/polypgen-frames): positive/centre_<C>/*.jpg (single polyp
 * frames, no sequence) and negative/centre_<C>/seq<N>/*.jpg (polyp-free examinations). Records
 * carry label (1 / 0), centre and, for negatives, the sequence; frames sort naturally (img2 before
 * img10). Anything else in the tree is skipped and reported.
 */
export function readPolypGenFrames(root: string, opts: ReaderOptions = {}): Listing {
  const what = 'polypgen-frames';
  requireDir(join(root, 'positive'), what);
  requireDir(join(root, 'negative'), what);
  const files: string[] = [],
    skipped: Skipped[] = [],
    records: ImageRecord[] = [];
  walk(join(root, 'positive'), files);
  walk(join(root, 'negative'), files);
  files.sort(naturalCompare);
  for (const p of files) {
    const parts = relative(root, p).split(/[\\/]/);
    if (!isImageFile(p)) {
      skipped.push({ path: p, reason: 'not an image file' });
      continue;
    }
    const centre = /^centre_(\w+)$/.exec(parts[1] ?? '')?.[1];
    if (parts[0] === 'positive' && parts.length === 3 && centre) {
      records.push({ id: `${centre}-${stem(parts[2])}`, imagePath: p, label: 1, centre, dataset: what });
    } else if (parts[0] === 'negative' && parts.length === 4 && centre && /^seq\d+$/.test(parts[2])) {
      records.push({ id: stem(parts[3]), imagePath: p, label: 0, centre, sequence: parts[2], dataset: what });
    } else skipped.push({ path: p, reason: 'file outside positive/centre_<C>/ and negative/centre_<C>/seq<N>/' });
  }
  if (!records.some((r) => r.label === 1) || !records.some((r) => r.label === 0)) {
    throw new Error(
      `${what}: "${root}" needs frames in both positive/centre_<C>/ and negative/centre_<C>/seq<N>/ ` +
        `(found ${records.length} frame(s))`,
    );
  }
  return finish({ root, records, skipped }, opts);
}
