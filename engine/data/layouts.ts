// Dataset layouts as text: CSV (RFC 4180), EndoExtend24-style rows and class mappings, label
// mappings between source vocabularies and target classes, patient-wise folds, split files.
// Pure functions over strings; runtime-node/datasets.ts does the file-system side.
// References: RFC 4180 (CSV); [R1] github.com/mvrcii/capsule_vision_challenge_2024:
// datasets/ce24/test.csv (the column order below; Windows '\' in frame_path; empty class and
// fold -1 for unlabelled test rows), datasets/cv24/original_70_30/class_mapping.json
// ({"angioectasia": 0, ... "worms": 9}), src/data/datamodule.py (frame_path is joined to the
// dataset root with '\' -> '/'; rows whose fold equals the fold index are validation), and
// datasets/ce24/train_val_stats_numbers.csv (the per-class, per-source count table).
import { shuffle } from './sampler.ts';
import { rng } from './rng.ts';

// ---- CSV ------------------------------------------------------------------------------------

/** Parses CSV text into rows of fields: quoted fields, "" escapes, CRLF/LF, a leading BOM. */
export function parseCsv(text: string, file = 'CSV'): string[][] {
  const rows: string[][] = [];
  let row: string[] = [],
    field = '',
    line = 1,
    quoteLine = 0;
  // inRow: the current row has begun; quoted: inside quotes; closed: just after a closing quote.
  let inRow = false,
    quoted = false,
    closed = false;
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch !== '"') {
        if (ch === '\n') line++;
        field += ch;
      } else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else {
        quoted = false;
        closed = true;
      }
      continue;
    }
    if (ch === ',') {
      row.push(field);
      field = '';
      closed = false;
      inRow = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      closed = false;
      inRow = false;
      line++;
    } else if (closed) throw new Error(`${file}: line ${line}: text after a closing quote`);
    else if (ch === '"') {
      if (field !== '')
        throw new Error(`${file}: line ${line}: a quote inside an unquoted field (${JSON.stringify(field + ch)})`);
      quoted = true;
      quoteLine = line;
      inRow = true;
    } else {
      field += ch;
      inRow = true;
    }
  }
  if (quoted) throw new Error(`${file}: unterminated quoted field starting on line ${quoteLine}`);
  if (inRow) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function quoteField(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Serialises rows to CSV with '\n' line ends and a final newline; quotes fields that need it. */
export function serialiseCsv(rows: readonly (readonly (string | number)[])[]): string {
  return rows.map((r) => r.map(quoteField).join(',')).join('\n') + (rows.length ? '\n' : '');
}

export interface CsvTable {
  header: string[];
  /** One object per data row, keyed by header names. */
  rows: Record<string, string>[];
}

/**
 * Parses CSV with a header row. Blank lines are ignored; a row with the wrong number of fields,
 * a duplicate column or a missing required column is an error naming the file and the row
 * (data rows count from 1, the header is not counted).
 */
export function parseCsvTable(text: string, file: string, required: readonly string[] = []): CsvTable {
  const all = parseCsv(text, file).filter((r) => !(r.length === 1 && r[0] === ''));
  if (all.length === 0) throw new Error(`${file}: empty CSV (no header row)`);
  const header = all[0].map((h) => h.trim());
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h)) throw new Error(`${file}: duplicate column "${h}"`);
    seen.add(h);
  }
  const missing = required.filter((c) => !seen.has(c));
  if (missing.length) throw new Error(`${file}: missing column(s) ${missing.join(', ')} (has: ${header.join(', ')})`);
  const rows = all.slice(1).map((r, k) => {
    if (r.length !== header.length)
      throw new Error(`${file}: row ${k + 1} has ${r.length} fields, the header has ${header.length}`);
    const o: Record<string, string> = {};
    header.forEach((h, j) => {
      o[h] = r[j];
    });
    return o;
  });
  return { header, rows };
}

// ---- EndoExtend24-style rows ----------------------------------------------------------------

export const EE24_COLUMNS = [
  'dataset',
  'patient_id',
  'frame_path',
  'proposed_name',
  'class',
  'fold',
  'original_class',
] as const;

export interface Ee24Row {
  dataset: string;
  /** Empty when unknown (the CE24 test set has none). */
  patient_id: string;
  /** Relative to the dataset root, '/'-separated ('\' is normalised on reading). */
  frame_path: string;
  proposed_name: string;
  /** Target class name; empty for unlabelled rows. */
  class: string;
  /** Fold index; -1 for rows outside the cross-validation (test). */
  fold: number;
  original_class: string;
}

export interface Ee24Record extends Ee24Row {
  /** Index from the class mapping; undefined for unlabelled rows. */
  label?: number;
  /** 1-based data row number in the file. */
  row: number;
}

/** class_mapping.json: class name -> index. */
export type ClassMapping = Record<string, number>;

/** Validates a class mapping: integer indices 0..K-1, each used once. */
export function parseClassMapping(json: unknown, file = 'class_mapping.json'): ClassMapping {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(`${file}: expected an object {class: index}`);
  const entries = Object.entries(json as Record<string, unknown>);
  if (entries.length === 0) throw new Error(`${file}: no classes`);
  const used = new Map<number, string>();
  for (const [k, v] of entries) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= entries.length)
      throw new Error(
        `${file}: class "${k}" has index ${JSON.stringify(v)}, expected an integer in 0..${entries.length - 1}`,
      );
    if (used.has(v)) throw new Error(`${file}: classes "${used.get(v)}" and "${k}" share index ${v}`);
    used.set(v, k);
  }
  return Object.fromEntries(entries) as ClassMapping;
}

/** Class names ordered by index. */
export function classNames(mapping: ClassMapping): string[] {
  return Object.entries(mapping)
    .sort((a, b) => a[1] - b[1])
    .map(([k]) => k);
}

/**
 * Parses an EndoExtend24-style CSV. With a class mapping, rows are labelled (labelEe24Rows): an
 * unknown class is an error naming the file, the row and the class.
 */
export function parseEe24Csv(text: string, file: string, mapping?: ClassMapping): Ee24Record[] {
  const { rows } = parseCsvTable(text, file, EE24_COLUMNS);
  const records = rows.map((o, k): Ee24Record => {
    const row = k + 1,
      foldText = o.fold.trim();
    const fold = foldText === '' ? -1 : Number(foldText);
    if (!Number.isInteger(fold) || fold < -1)
      throw new Error(`${file}: row ${row}: fold "${o.fold}" is not an integer >= -1`);
    if (o.frame_path.trim() === '') throw new Error(`${file}: row ${row}: empty frame_path`);
    return {
      dataset: o.dataset.trim(),
      patient_id: o.patient_id.trim(),
      frame_path: o.frame_path.trim().replace(/\\/g, '/'),
      proposed_name: o.proposed_name.trim(),
      class: o.class.trim(),
      fold,
      original_class: o.original_class.trim(),
      row,
    };
  });
  return mapping ? labelEe24Rows(records, mapping, file) : records;
}

/** Sets each labelled row's index from the class mapping; an unknown class names file, row and class. */
export function labelEe24Rows<T extends { class: string; row: number; label?: number }>(
  rows: readonly T[],
  mapping: ClassMapping,
  file: string,
): T[] {
  return rows.map((r) => {
    if (r.class === '') return { ...r, label: undefined };
    if (!Object.hasOwn(mapping, r.class))
      throw new Error(`${file}: row ${r.row}: unknown class "${r.class}" (known: ${classNames(mapping).join(', ')})`);
    return { ...r, label: mapping[r.class] };
  });
}

export function serialiseEe24Csv(rows: readonly Ee24Row[]): string {
  return serialiseCsv([[...EE24_COLUMNS], ...rows.map((r) => EE24_COLUMNS.map((c) => r[c]))]);
}

// ---- label mapping (source vocabulary -> target classes) ------------------------------------

/** Per source dataset: original label -> target class, or null to drop the row. */
export type LabelMapping = Record<string, Record<string, string | null>>;

export interface MappedRows<T> {
  rows: T[];
  /** Rows dropped by a null mapping, counted per (dataset, original label). */
  dropped: { dataset: string; originalClass: string; count: number }[];
}

/**
 * Sets `class` from `original_class` through the dataset's mapping and drops rows mapped to
 * null (reported in `dropped`). A dataset or label the mapping does not know is an error: a
 * mapping must say what happens to every label.
 */
export function applyLabelMapping<T extends { dataset: string; original_class: string; class: string }>(
  rows: readonly T[],
  mapping: LabelMapping,
  file = 'rows',
): MappedRows<T> {
  const out: T[] = [],
    dropped = new Map<string, { dataset: string; originalClass: string; count: number }>();
  rows.forEach((r, k) => {
    const m = Object.hasOwn(mapping, r.dataset) ? mapping[r.dataset] : undefined;
    if (!m)
      throw new Error(
        `${file}: row ${k + 1}: dataset "${r.dataset}" has no label mapping (mapped datasets: ` +
          `${Object.keys(mapping).join(', ')})`,
      );
    if (!Object.hasOwn(m, r.original_class))
      throw new Error(
        `${file}: row ${k + 1}: label "${r.original_class}" of dataset "${r.dataset}" is not in its mapping`,
      );
    const target = m[r.original_class];
    if (target === null) {
      const key = `${r.dataset}\u0000${r.original_class}`;
      const d = dropped.get(key) ?? { dataset: r.dataset, originalClass: r.original_class, count: 0 };
      d.count++;
      dropped.set(key, d);
    } else out.push({ ...r, class: target });
  });
  return { rows: out, dropped: [...dropped.values()] };
}

/**
 * Counts per class and source: header [Class, Total Count, ...datasets], one row per class,
 * sorted by total (descending), then name (the shape of [R1]'s train_val_stats_numbers.csv).
 */
export function countTable(rows: readonly { dataset: string; class: string }[]): (string | number)[][] {
  const datasets = [...new Set(rows.map((r) => r.dataset))].sort();
  const counts = new Map<string, number[]>();
  for (const r of rows) {
    const c = counts.get(r.class) ?? new Array<number>(datasets.length).fill(0);
    c[datasets.indexOf(r.dataset)]++;
    counts.set(r.class, c);
  }
  const body = [...counts.entries()].map(
    ([cls, c]) => [cls, c.reduce((a, b) => a + b, 0), ...c] as (string | number)[],
  );
  body.sort((a, b) => (b[1] as number) - (a[1] as number) || String(a[0]).localeCompare(String(b[0])));
  return [['Class', 'Total Count', ...datasets], ...body];
}

/** Formats a table (first row = header) as aligned text columns. */
export function formatTable(table: readonly (readonly (string | number)[])[]): string {
  const widths = table[0].map((_, j) => Math.max(...table.map((r) => String(r[j]).length)));
  return table
    .map((r) =>
      r
        .map((v, j) => (typeof v === 'number' ? String(v).padStart(widths[j]) : String(v).padEnd(widths[j])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

// ---- patient-wise folds ---------------------------------------------------------------------

/**
 * Assigns whole patients to k folds, balancing the number of frames per fold: patients in
 * decreasing frame count (ties in a seeded random order) each go to the fold with the fewest
 * frames so far (ties: lowest fold index). `items` holds one entry per frame.
 */
export function assignPatientFolds(items: readonly { patientId: string }[], k: number, seed = 0): Map<string, number> {
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`assignPatientFolds: k = ${k}, expected an integer >= 1`);
  const frames = new Map<string, number>();
  for (const it of items) {
    if (!it.patientId)
      throw new Error('assignPatientFolds: an item has an empty patientId (folds need a patient for every frame)');
    frames.set(it.patientId, (frames.get(it.patientId) ?? 0) + 1);
  }
  const order = shuffle([...frames.keys()].sort(), rng(seed, 'folds'));
  const rank = new Map(order.map((p, i) => [p, i]));
  order.sort((a, b) => frames.get(b)! - frames.get(a)! || rank.get(a)! - rank.get(b)!);
  const load = new Array<number>(k).fill(0),
    fold = new Map<string, number>();
  for (const p of order) {
    let best = 0;
    for (let f = 1; f < k; f++) if (load[f] < load[best]) best = f;
    fold.set(p, best);
    load[best] += frames.get(p)!;
  }
  return fold;
}

/**
 * Throws if a patient has frames in two different folds (naming the patient and the folds).
 * Rows with an empty patient id cannot be checked and are not.
 */
export function assertPatientDisjoint(
  rows: readonly { patientId?: string; patient_id?: string; fold: number }[],
): void {
  const seen = new Map<string, number>();
  for (const r of rows) {
    const p = r.patientId ?? r.patient_id ?? '';
    if (p === '') continue;
    const f = seen.get(p);
    if (f === undefined) seen.set(p, r.fold);
    else if (f !== r.fold)
      throw new Error(`patient "${p}" appears in folds ${f} and ${r.fold}: folds must be patient-disjoint`);
  }
}

// ---- split files ----------------------------------------------------------------------------

/** A split file (train.txt / test.txt): one id per line; blank lines ignored; duplicates are an error. */
export function parseSplitFile(text: string, file: string): string[] {
  const ids: string[] = [],
    seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((l, k) => {
    const id = l.trim();
    if (id === '') return;
    if (seen.has(id)) throw new Error(`${file}: line ${k + 1}: id "${id}" already listed on line ${seen.get(id)}`);
    seen.set(id, k + 1);
    ids.push(id);
  });
  return ids;
}

// ---- group-wise train/val/test splits -------------------------------------------------------

export type SplitName = 'train' | 'val' | 'test';

/**
 * Assigns whole groups (patients, sequences; a frame with no group id is its own group) to test,
 * val and train, separately within each stratum (e.g. source x label), so every split keeps each
 * stratum's share. Within a stratum the groups are shuffled with a seeded stream and dealt in that
 * order: to test until it holds `test` of the stratum's frames, then to val until `val`, the rest
 * to train. A group never straddles two splits. `items` holds one entry per frame.
 */
export function assignGroupSplits(
  items: readonly { group: string; stratum: string }[],
  fractions: { test: number; val: number },
  seed = 0,
): Map<string, SplitName> {
  const { test, val } = fractions;
  if (!(test >= 0 && val >= 0 && test + val < 1))
    throw new Error(`assignGroupSplits: fractions test ${test}, val ${val} must be >= 0 and sum below 1`);
  const strata = new Map<string, Map<string, number>>();
  const stratumOf = new Map<string, string>();
  for (const it of items) {
    if (!it.group)
      throw new Error('assignGroupSplits: an item has an empty group (give a frame without one its own id)');
    const prev = stratumOf.get(it.group);
    if (prev !== undefined && prev !== it.stratum)
      throw new Error(`assignGroupSplits: group "${it.group}" is in strata "${prev}" and "${it.stratum}"`);
    stratumOf.set(it.group, it.stratum);
    const g = strata.get(it.stratum) ?? new Map<string, number>();
    g.set(it.group, (g.get(it.group) ?? 0) + 1);
    strata.set(it.stratum, g);
  }
  const out = new Map<string, SplitName>();
  for (const stratum of [...strata.keys()].sort()) {
    const frames = strata.get(stratum)!;
    const total = [...frames.values()].reduce((a, b) => a + b, 0);
    const order = shuffle([...frames.keys()].sort(), rng(seed, 'split', stratum));
    let inTest = 0,
      inVal = 0;
    for (const g of order) {
      const n = frames.get(g)!;
      if (inTest < test * total) {
        out.set(g, 'test');
        inTest += n;
      } else if (inVal < val * total) {
        out.set(g, 'val');
        inVal += n;
      } else out.set(g, 'train');
    }
  }
  return out;
}
