// The optical-biopsy layout (spec §2.7, as EndoKED's dataset_Endo_3Center_withPathologyLabel.py
// implies it): labels.csv with frame_path, patient_id, pathology (type 0..3), optionally polyp_id
// and split; frames named relative to the CSV. Read by recipes/endoked/07-optical-biopsy.ts;
// written synthetically by `npx tsx runtime-node/synth.ts --kind pathology`.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join } from 'node:path';
import { parseCsvTable } from '../engine/data/index.ts';
import { PATHOLOGY_GROUPS, type PathologyClasses } from './synthetic/index.ts';
import type { ImageRecord, ReaderOptions } from './datasets.ts';

export interface PathologyRecord extends ImageRecord {
  patientId: string;
  /** The polyp the frame shows (the patient id when the CSV has no polyp_id column). */
  polypId: string;
  /** The pathology type, 0..3 (spec §2.7). */
  pathology: number;
  /** The class under the chosen grouping (2: 0 vs {1,2,3}; 3: 0 / {1,2} / 3; 4: the type). */
  label: number;
  split?: 'train' | 'test';
}

export interface PathologySetOptions extends ReaderOptions {
  /** The grouping of the four types (default 2). */
  classes?: PathologyClasses;
}

/**
 * An optical-biopsy set: `labels.csv` (in `path`, or `path` itself) with columns frame_path,
 * patient_id, pathology (the type, 0..3) and optionally polyp_id and split (train|test, by
 * patient). frame_path is relative to the CSV's folder (or absolute). Every row must name an
 * existing image; a frame listed twice, a patient in both splits, or a polyp under two patients
 * is an error.
 */
export function readPathologySet(
  path: string,
  opts: PathologySetOptions = {},
): { root: string; csv: string; records: PathologyRecord[]; classNames: string[] } {
  const csv = existsSync(path) && statSync(path).isDirectory() ? join(path, 'labels.csv') : path;
  if (!existsSync(csv))
    throw new Error(
      `pathology set: "${csv}" does not exist (expected labels.csv with columns frame_path, ` +
        `patient_id, pathology; write a synthetic one with: npx tsx runtime-node/synth.ts --kind ` +
        `pathology --out DIR)`,
    );
  const classes = opts.classes ?? 2;
  const group = PATHOLOGY_GROUPS[classes];
  if (!group) throw new Error(`pathology set: classes must be 2, 3 or 4, got ${classes}`);
  const root = dirname(csv);
  const { header, rows } = parseCsvTable(readFileSync(csv, 'utf8'), csv, ['frame_path', 'patient_id', 'pathology']);
  if (rows.length === 0) throw new Error(`${csv}: no rows`);
  const hasSplit = header.includes('split'),
    hasPolyp = header.includes('polyp_id');
  const records: PathologyRecord[] = [],
    missing: string[] = [];
  const seen = new Map<string, number>(),
    splitOf = new Map<string, string>(),
    patientOf = new Map<string, string>();
  rows.forEach((o, k) => {
    const row = `${csv}: row ${k + 1}`;
    const framePath = o.frame_path.trim(),
      patientId = o.patient_id.trim(),
      polypId = hasPolyp && o.polyp_id.trim() ? o.polyp_id.trim() : patientId;
    if (!framePath) throw new Error(`${row}: empty frame_path`);
    if (!patientId)
      throw new Error(`${row}: empty patient_id (every frame needs its patient for the patient-wise split)`);
    const type = Number(o.pathology.trim());
    if (o.pathology.trim() === '' || !Number.isInteger(type) || type < 0 || type > 3)
      throw new Error(`${row}: pathology "${o.pathology}" is not a type 0, 1, 2 or 3`);
    const imagePath = isAbsolute(framePath) ? framePath : join(root, framePath);
    if (seen.has(imagePath))
      throw new Error(`${row}: frame "${framePath}" is already listed in row ${seen.get(imagePath)}`);
    seen.set(imagePath, k + 1);
    let split: 'train' | 'test' | undefined;
    if (hasSplit) {
      const v = o.split.trim();
      if (v !== 'train' && v !== 'test') throw new Error(`${row}: split "${o.split}" is not train or test`);
      split = v;
      const prev = splitOf.get(patientId);
      if (prev && prev !== v)
        throw new Error(
          `${row}: patient "${patientId}" has frames in both splits (${prev} and ${v}); splits must be patient-wise`,
        );
      splitOf.set(patientId, v);
    }
    const owner = patientOf.get(polypId);
    if (owner && owner !== patientId)
      throw new Error(`${row}: polyp "${polypId}" belongs to patients "${owner}" and "${patientId}"`);
    patientOf.set(polypId, patientId);
    if (!existsSync(imagePath)) {
      missing.push(`row ${k + 1}: ${imagePath}`);
      return;
    }
    records.push({
      id: framePath.slice(0, framePath.length - extname(framePath).length),
      imagePath,
      patientId,
      polypId,
      pathology: type,
      label: group.of[type],
      className: group.classes[group.of[type]],
      split,
    });
  });
  if (missing.length)
    throw new Error(
      `${csv}: ${missing.length} row(s) name images that do not exist: ` +
        `${missing.slice(0, 3).join('; ')}${missing.length > 3 ? '; ...' : ''}`,
    );
  return { root, csv, records, classNames: [...group.classes] };
}
