// EndoKED stage 3 (03-cam.ts): the CAM classifier's training pool, read from the MIL-scored patient
// set. Positives: MIL-selected frames (student >= posThreshold in positive patients of the train
// split), the set's public positives (train-split polyp frames in no bag) and Kvasir-SEG train
// images (never test.txt ids); negatives: the lowest-scored frames of negative train patients,
// negRatio per positive. The set's true frame labels are read only to report the selection's
// precision and to measure boxes, except under --scores-from-truth (a development aid: they are the
// scores). Spec: recipes/endoked/README.md §3 "Consumes"; EndoKED (zwyang6/ENDOKED EndoKED_WSSS).
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { parseCsvTable } from '../../engine/data/index.ts';
import { readKvasirSeg } from '../../runtime-node/datasets.ts';
import { FlagError } from '../../runtime-node/flags.ts';

/** A bad flag or input of 03-cam.ts, named as the user typed it. */
export const fail = (flag: string, msg: string): never => {
  throw new FlagError(`recipes/endoked/03-cam.ts: --${flag}: ${msg}`);
};

export interface Frame {
  path: string;
  label: number;
  source: 'mil' | 'mil-negative' | 'kvasir' | 'public';
  stem: string;
  maskPath?: string;
  truth?: number;
  centre?: string;
}

export interface PoolOptions {
  /** The patient set folder (absolute). */
  setDir: string;
  /** Stage 2's frame_scores.csv (absolute); unused with scoresFromTruth. */
  scoresPath?: string;
  scoresFromTruth: boolean;
  /** Kvasir-SEG folder (absolute), or '' for none. */
  kvasirDir: string;
  kvasirTrain: boolean;
  publicPositives: boolean;
  posThreshold: number;
  negRatio: number;
}

export interface Pool {
  /** The MIL positives (also the images boxed besides Kvasir-SEG's). */
  milPositives: Frame[];
  /** Every Kvasir-SEG train image (boxed; in training only with kvasirTrain). */
  kvasir: Frame[];
  kvasirPositives: Frame[];
  publicPositives: Frame[];
  negatives: Frame[];
  /** milPositives, kvasirPositives, publicPositives, negatives, in that order. */
  trainSet: Frame[];
  /** Share of the MIL positives that are true polyp frames (null when none has a true label). */
  milPrecision: number | null;
}

/** Reads the set, the scores and Kvasir-SEG train into the training pool; logs its make-up. */
export function readPool(o: PoolOptions): Pool {
  const truth = readSetTruth(o.setDir);
  const scores = o.scoresFromTruth ? truthScores(truth) : readScores(o.scoresPath!);
  if (o.scoresFromTruth)
    console.log(
      "DEVELOPMENT AID: --scores-from-truth: frame scores are the patient set's TRUE frame labels, not a MIL model's",
    );
  const train = (p: string) => truth.split.get(p) !== 'test';
  const posPatients = scores.filter((r) => r.bagLabel === 1 && train(r.patientId));
  const milPos = posPatients.filter((r) => r.student >= o.posThreshold);
  const negPool = scores.filter((r) => r.bagLabel === 0 && train(r.patientId)).sort((a, b) => a.student - b.student);
  const frames: Frame[] = milPos.map((r) => ({
    path: r.path,
    label: 1,
    source: 'mil',
    stem: stemOf(r.patientId, r.path),
    truth: truth.frame.get(r.path)?.polyp,
    centre: truth.frame.get(r.path)?.centre,
    maskPath: truth.frame.get(r.path)?.maskPath,
  }));
  const kvasir = o.kvasirDir ? readKvasirTrain(o.kvasirDir) : [];
  const publicPos = o.publicPositives ? readPublicPositives(o.setDir, truth) : [];
  const kvasirPos = o.kvasirTrain ? kvasir : [];
  const nPos = frames.length + kvasirPos.length + publicPos.length;
  const negatives = negPool.slice(0, Math.round(o.negRatio * nPos)).map((r): Frame => ({
    path: r.path,
    label: 0,
    source: 'mil-negative',
    stem: stemOf(r.patientId, r.path),
    truth: truth.frame.get(r.path)?.polyp,
  }));
  const trainSet = [...frames, ...kvasirPos, ...publicPos, ...negatives];
  if (nPos === 0)
    fail(
      o.scoresFromTruth ? 'set' : 'scores',
      `no positives: no frame with student >= ${o.posThreshold} in a positive train patient, no ` +
        `public positives and no --kvasir`,
    );
  if (negatives.length === 0)
    fail(o.scoresFromTruth ? 'set' : 'scores', 'no negatives: no frame of a negative train patient');
  const labelled = frames.filter((x) => x.truth !== undefined).length;
  const milPrecision = labelled ? frames.filter((x) => x.truth === 1).length / labelled : null;
  console.log(
    `train: ${frames.length} MIL positives (precision vs true frame labels ` +
      `${milPrecision === null ? 'n/a' : milPrecision.toFixed(3)}), ${kvasirPos.length} Kvasir-SEG ` +
      `train positives, ${publicPos.length} public positives, ${negatives.length} negatives`,
  );
  return {
    milPositives: frames,
    kvasir,
    kvasirPositives: kvasirPos,
    publicPositives: publicPos,
    negatives,
    trainSet,
    milPrecision,
  };
}

interface ScoreRow {
  path: string;
  patientId: string;
  bagLabel: number;
  student: number;
}
interface SetTruth {
  split: Map<string, string>;
  frame: Map<string, { polyp: number; patientId: string; centre?: string; maskPath?: string }>;
}

const resolveIn = (dir: string, p: string) => (isAbsolute(p) ? p : resolve(dir, p));
const stemOf = (patientId: string, path: string) =>
  `${patientId}_${basename(path, extname(path))}`.replace(/[^A-Za-z0-9_.-]/g, '_');

/** reports.csv (optional split column) and frames.csv (true frame labels), for the split and evaluation. */
function readSetTruth(dir: string): SetTruth {
  const split = new Map<string, string>(),
    frame: SetTruth['frame'] = new Map();
  const rep = join(dir, 'reports.csv');
  if (existsSync(rep))
    for (const r of parseCsvTable(readFileSync(rep, 'utf8'), rep, ['patient_id']).rows)
      if (r.split) split.set(r.patient_id, r.split);
  const fcsv = join(dir, 'frames.csv');
  for (const r of parseCsvTable(readFileSync(fcsv, 'utf8'), fcsv, ['patient_id', 'frame_path', 'polyp']).rows) {
    frame.set(resolveIn(dir, r.frame_path), {
      polyp: Number(r.polyp),
      patientId: r.patient_id,
      centre: r.centre || undefined,
      maskPath: r.mask_path ? resolveIn(dir, r.mask_path) : undefined,
    });
  }
  return { split, frame };
}

/** Development aid: bag label = any true polyp frame in the patient; student = the true frame label. */
function truthScores(t: SetTruth): ScoreRow[] {
  const bag = new Map<string, number>();
  for (const v of t.frame.values()) bag.set(v.patientId, Math.max(bag.get(v.patientId) ?? 0, v.polyp));
  return [...t.frame.entries()].map(([path, v]) => ({
    path,
    patientId: v.patientId,
    bagLabel: bag.get(v.patientId)!,
    student: v.polyp,
  }));
}

function readScores(path: string): ScoreRow[] {
  if (!existsSync(path)) fail('scores', `"${path}" does not exist (stage 2 writes frame_scores.csv)`);
  const { rows } = parseCsvTable(readFileSync(path, 'utf8'), path, [
    'frame_path',
    'patient_id',
    'bag_label',
    'student',
  ]);
  return rows
    .filter((r) => r.bag_label === '0' || r.bag_label === '1')
    .map((r, i) => {
      const student = Number(r.student);
      if (!(student >= 0 && student <= 1))
        throw new Error(`${path}: row ${i + 1}: student "${r.student}" is not in [0, 1]`);
      return {
        path: resolveIn(dirname(path), r.frame_path),
        patientId: r.patient_id,
        bagLabel: Number(r.bag_label),
        student,
      };
    });
}

/** Kvasir-SEG train.txt images (refusing any test.txt id), as positives with their masks. */
function readKvasirTrain(root: string): Frame[] {
  if (!existsSync(join(root, 'train.txt')))
    fail('kvasir', `"${root}" has no train.txt (Kvasir-SEG layout: images/, masks/, train.txt, test.txt)`);
  const testIds = new Set(
    readFileSync(join(root, 'test.txt'), 'utf8')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const kvasir = readKvasirSeg(root, { split: 'train', log: null }).records.map((r) => ({
    path: r.imagePath,
    label: 1,
    source: 'kvasir' as const,
    stem: `kvasir_${r.id}`,
    maskPath: r.maskPath,
  }));
  const leaked = kvasir.filter((k) => testIds.has(k.stem.slice(7)));
  if (leaked.length)
    throw new Error(
      `Kvasir-SEG test ids in the training list: ${leaked
        .slice(0, 3)
        .map((k) => k.stem)
        .join(', ')}`,
    );
  return kvasir;
}

/**
 * Public positive frames (EndoKED adds public polyp datasets to its CAM pool): the set's train-split
 * polyp frames that are in no bag, from the same centres as the negatives (public-positives.csv).
 */
function readPublicPositives(setDir: string, truth: SetTruth): Frame[] {
  const publicCsv = join(setDir, 'public-positives.csv');
  if (!existsSync(publicCsv)) return [];
  return parseCsvTable(readFileSync(publicCsv, 'utf8'), publicCsv, ['frame_path']).rows.map((r) => {
    const path = resolveIn(setDir, r.frame_path);
    if (truth.frame.has(path))
      throw new Error(
        `${publicCsv}: ${r.frame_path} is also in a bag (frames.csv); rebuild the set with ` +
          `00-patient-set.ts --force`,
      );
    return {
      path,
      label: 1,
      source: 'public' as const,
      stem: `public_${basename(path, extname(path))}_${r.centre ?? ''}`.replace(/[^A-Za-z0-9_.-]/g, '_'),
      centre: r.centre || undefined,
    };
  });
}
