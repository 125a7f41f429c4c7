// EndoKED's patient set (spec §2.1-2.2; recipes/endoked/README.md stage 0): the report of each
// patient and the bag of frames it labels. reports.csv holds one row a patient (the report text, the
// truth label for evaluation, an optional fixed patient-wise split and centre); frames.csv, when
// present, lists each bag's frames (anywhere on disk), else a bag is the images of patients/<id>/.
// 00-patient-set.ts writes it (real PolypGen frames or the synthetic set), stages 1-3 read it.
// Nothing is dropped silently: skipped files are returned and summarised as datasets.ts does.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseCsvTable } from '../engine/data/index.ts';
import {
  imagesByStem,
  logSkipped,
  requireDir,
  stem,
  type ImageRecord,
  type ReaderOptions,
  type Skipped,
} from './datasets.ts';

export interface PatientBag {
  patientId: string;
  /** The truth bag label (1: polyp); for evaluation only, stage 1 derives its own from the report. */
  label: number;
  certain: boolean;
  report: string;
  /** The bag: frames.csv's rows of this patient when it exists, else every image in patients/<id>/. */
  frames: ImageRecord[];
  /** Patient-wise split fixed by the set (reports.csv's optional `split` column). */
  split?: 'train' | 'test';
  /** Acquisition centre (reports.csv's optional `centre` column), e.g. 'A' or 'synthetic'. */
  centre?: string;
}

export interface ReportSet {
  root: string;
  patients: PatientBag[];
  skipped: Skipped[];
}

/**
 * A patient set (EndoKED, spec §2.1-2.2): reports.csv (patient_id, label, certain, report
 * [, n_frames, split, centre]) and frames.csv (patient_id, frame_path, polyp, mask_path
 * [, centre, sequence]). frames.csv, when present, is the authoritative bag list and its paths may
 * point anywhere (relative ones resolve against its folder); without it each bag is the images of
 * patients/<id>/.
 */
export function readReportSet(root: string, opts: ReaderOptions = {}): ReportSet {
  const csv = join(root, 'reports.csv'),
    pdir = join(root, 'patients'),
    framesCsv = join(root, 'frames.csv');
  if (!existsSync(csv)) throw new Error(`report set: "${csv}" does not exist`);
  const hasFrames = existsSync(framesCsv);
  if (!hasFrames) requireDir(pdir, 'report set (no frames.csv)');
  const { rows } = parseCsvTable(readFileSync(csv, 'utf8'), csv, ['patient_id', 'label', 'certain', 'report']);
  if (rows.length === 0) throw new Error(`${csv}: no rows`);
  const skipped: Skipped[] = [],
    patients: PatientBag[] = [],
    listed = new Set<string>();
  rows.forEach((o, k) => {
    const id = o.patient_id.trim(),
      label = Number(o.label);
    if (id === '') throw new Error(`${csv}: row ${k + 1}: empty patient_id`);
    if (!(label === 0 || label === 1)) throw new Error(`${csv}: row ${k + 1}: label "${o.label}" is not 0 or 1`);
    if (listed.has(id)) throw new Error(`${csv}: row ${k + 1}: patient "${id}" listed twice`);
    const split = (o.split ?? '').trim();
    if (split !== '' && split !== 'train' && split !== 'test')
      throw new Error(`${csv}: row ${k + 1}: split "${o.split}" is not train, test or empty`);
    listed.add(id);
    patients.push({
      patientId: id,
      label,
      certain: o.certain.trim() === '1' || o.certain.trim().toLowerCase() === 'true',
      report: o.report,
      frames: [],
      ...(split ? { split: split as 'train' | 'test' } : {}),
      ...(o.centre?.trim() ? { centre: o.centre.trim() } : {}),
    });
  });
  const byId = new Map(patients.map((p) => [p.patientId, p]));
  if (hasFrames) {
    const base = dirname(framesCsv),
      seen = new Set<string>(),
      missing: string[] = [];
    parseCsvTable(readFileSync(framesCsv, 'utf8'), framesCsv, [
      'patient_id',
      'frame_path',
      'polyp',
      'mask_path',
    ]).rows.forEach((f, k) => {
      const id = f.patient_id.trim(),
        p = byId.get(id);
      const imagePath = resolve(base, f.frame_path);
      if (!p) {
        skipped.push({ path: imagePath, reason: 'frame of a patient without a report' });
        return;
      }
      const key = `${id}\u0000${imagePath}`;
      if (seen.has(key))
        throw new Error(`${framesCsv}: row ${k + 1}: frame "${f.frame_path}" listed twice for patient "${id}"`);
      seen.add(key);
      if (!existsSync(imagePath)) {
        missing.push(`row ${k + 1}: ${imagePath}`);
        return;
      }
      const polyp = f.polyp.trim();
      if (polyp !== '' && polyp !== '0' && polyp !== '1')
        throw new Error(`${framesCsv}: row ${k + 1}: polyp "${f.polyp}" is not 0, 1 or empty`);
      p.frames.push({
        id: stem(basename(imagePath)),
        imagePath,
        patientId: id,
        label: polyp === '' ? undefined : Number(polyp),
        maskPath: f.mask_path.trim() ? resolve(base, f.mask_path) : undefined,
        split: p.split,
        ...(f.centre?.trim() ? { centre: f.centre.trim() } : p.centre ? { centre: p.centre } : {}),
        ...(f.sequence?.trim() ? { sequence: f.sequence.trim() } : {}),
      });
    });
    if (missing.length)
      throw new Error(
        `${framesCsv}: ${missing.length} row(s) name frames that do not exist: ` +
          `${missing.slice(0, 3).join('; ')}${missing.length > 3 ? '; ...' : ''}`,
      );
    for (const p of patients)
      if (p.frames.length === 0) throw new Error(`${framesCsv}: patient "${p.patientId}" (in ${csv}) has no frames`);
  } else {
    for (const p of patients) {
      const dir = join(pdir, p.patientId);
      if (!existsSync(dir))
        throw new Error(`${csv}: patient "${p.patientId}" has no folder "${dir}" (and there is no frames.csv)`);
      const frames = imagesByStem(dir, skipped, `report set patient ${p.patientId}`);
      if (frames.size === 0) throw new Error(`report set: no images in "${dir}"`);
      p.frames = [...frames.entries()].map(([fid, imagePath]) => ({
        id: fid,
        imagePath,
        patientId: p.patientId,
        split: p.split,
        ...(p.centre ? { centre: p.centre } : {}),
      }));
    }
    for (const name of readdirSync(pdir).sort())
      if (!listed.has(name)) skipped.push({ path: join(pdir, name), reason: 'patient folder without a report' });
  }
  logSkipped(root, skipped, opts);
  return { root, patients, skipped };
}
