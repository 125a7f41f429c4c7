// EndoKED stage 2 (02-mil.ts), its data: one bag per patient of a report set (spec §2.2), labelled by
// stage 1's labels.csv (or the set's truth labels), split patient-wise into train and test, and the
// frames behind the bags decoded once into a byte cache that each step uploads from.
// Reference: zwyang6/ENDOKED EndoKED_MIL (the bag dataset of
// train_Endo_BagDistillation_SharedEnc_Similarity_StuFilter.py; frame normalisation mean/std).
// Frames are FOV-cropped (engine/data/fov.ts, --fov) and resized to the model's size (reference 512²).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tensor, type Tensor } from '../../engine/index.ts';
import { parseCsvTable, rng, prepareFrame } from '../../engine/data/index.ts';
import { readReportSet, type PatientBag } from '../../runtime-node/report-sets.ts';
import { decodeImage, resizeImage } from '../../runtime-node/image.ts';
import { Progress } from '../../runtime-node/progress.ts';
import { writeAtomic } from '../../runtime-node/checkpoint.ts';
import { main as buildPatientSet } from './00-patient-set.ts';
import type { MilFlags } from './02-mil.ts';

const MEAN = [0.315, 0.205, 0.136],
  STD = [0.307, 0.216, 0.152]; // the reference's frame normalisation

export interface Bag {
  id: string;
  label: number | 'uncertain';
  truth: number;
  split: 'train' | 'test';
  centre: string;
  frames: number[];
}
export interface Frame {
  path: string;
  bag: number;
  truth: number;
}

/** The bags and frames of a set; trainBags/testBags index `bags`, trainFrames index `frames`. */
export interface MilBags {
  setDir: string;
  bags: Bag[];
  frames: Frame[];
  /** Training bags: train split, a certain label, at least 2 frames (BatchNorm in the teacher pass). */
  trainBags: number[];
  testBags: number[];
  trainFrames: number[];
}

const fail = (m: string): never => {
  throw new Error(`02-mil: ${m}`);
};

/** --set resolved ('synthetic' / 'real' built once by 00-patient-set.ts), its bags labelled and split. */
export async function readBags(f: MilFlags, root: string): Promise<MilBags> {
  const named = f.set === 'synthetic' || f.set === 'real';
  const setDir = named ? join(root, 'out', 'endoked', `${f.set}-set`) : resolve(f.set);
  if (named && !existsSync(join(setDir, 'reports.csv'))) await buildPatientSet(['--data', f.set]);
  if (!existsSync(join(setDir, 'reports.csv')))
    fail(
      `--set "${setDir}" has no reports.csv; build one with recipes/endoked/00-patient-set.ts or pass --set synthetic`,
    );
  const patients: (PatientBag & { split?: string; centre?: string })[] = readReportSet(setDir).patients;
  const used = bagLabels(f.labels, patients);
  const splitRng = rng(f.seed, 'mil-split');
  const hasSplit = patients.every((p) => p.split === 'train' || p.split === 'test');
  if (!hasSplit)
    console.log(
      `split: the set has no split column; seeded patient-wise split, ${Math.round(f.testFraction * 100)}% test`,
    );
  const frames: Frame[] = [];
  const bags: Bag[] = patients.map((p, b) => {
    const idx = p.frames.map((r) => frames.push({ path: r.imagePath, bag: b, truth: r.label ?? NaN }) - 1);
    const split = hasSplit ? (p.split as 'train' | 'test') : splitRng.random() < f.testFraction ? 'test' : 'train';
    return {
      id: p.patientId,
      label: used.get(p.patientId)!,
      truth: p.label,
      split,
      centre: p.centre ?? 'all',
      frames: idx,
    };
  });
  const trainBags = bags
    .map((_, i) => i)
    .filter((i) => bags[i].split === 'train' && bags[i].label !== 'uncertain' && bags[i].frames.length >= 2);
  const testBags = bags.map((_, i) => i).filter((i) => bags[i].split === 'test');
  const trainFrames = trainBags.flatMap((i) => bags[i].frames);
  if (!trainBags.some((i) => bags[i].label === 1) || !trainBags.some((i) => bags[i].label === 0))
    fail('the training bags need both labels (1 and 0)');
  console.log(
    `set: ${setDir}: ${bags.length} patients, ${frames.length} frames; train ${trainBags.length} ` +
      `bags / ${trainFrames.length} frames` +
      ` (${bags.filter((b) => b.split === 'train' && b.label === 'uncertain').length} uncertain left ` +
      `out), test ${testBags.length} bags`,
  );
  return { setDir, bags, frames, trainBags, testBags, trainFrames };
}

/** Each patient's bag label: stage 1's labels.csv (1, 0 or uncertain; every patient needed), else the truth. */
function bagLabels(labels: string | undefined, patients: readonly PatientBag[]): Map<string, number | 'uncertain'> {
  const used = new Map<string, number | 'uncertain'>();
  if (labels) {
    const file = resolve(labels);
    if (!existsSync(file))
      fail(
        `--labels "${file}" does not exist (stage 1 writes it: recipes/endoked/01-report-labels.ts ` +
          `--out DIR -> DIR/labels.csv)`,
      );
    for (const r of parseCsvTable(readFileSync(file, 'utf8'), file, ['patient_id', 'label']).rows) {
      const v = r.label.trim();
      if (v !== '0' && v !== '1' && v !== 'uncertain')
        fail(`${file}: patient ${r.patient_id}: label "${v}" is not 1, 0 or uncertain`);
      used.set(r.patient_id.trim(), v === 'uncertain' ? 'uncertain' : Number(v));
    }
    const missing = patients.filter((p) => !used.has(p.patientId));
    if (missing.length)
      fail(`${file} has no label for ${missing.length} patient(s) of the set, e.g. ${missing[0].patientId}`);
    console.log(`labels: ${file}`);
  } else {
    for (const p of patients) used.set(p.patientId, p.label);
    console.log("labels: truth labels (no stage-1 file given) — the set's reports.csv label column");
  }
  return used;
}

/** Frames decoded, FOV-cropped (fov), resized to S² (RGB bytes, HWC), cached in `dir` keyed by the path list. */
export async function loadFrames(paths: string[], S: number, fov: boolean, dir: string): Promise<Uint8Array> {
  const key = hash(`${S}\n${fov}\n${paths.join('\n')}`),
    file = join(dir, `frames-${S}-${key}.u8`);
  const size = paths.length * S * S * 3;
  if (existsSync(file)) {
    const b = new Uint8Array(readFileSync(file));
    if (b.length === size) return b;
  }
  const out = new Uint8Array(size),
    bar = new Progress({ total: paths.length, label: 'decode', unit: 'frame' });
  for (let i = 0; i < paths.length; i += 8) {
    await Promise.all(
      paths.slice(i, i + 8).map(async (p, k) => {
        const img = await decodeImage(p);
        out.set((await resizeImage(fov ? prepareFrame(img).image : img, S, S)).data, (i + k) * S * S * 3);
      }),
    );
    bar.tick(Math.min(8, paths.length - i));
  }
  writeAtomic(file, out);
  return out;
}

function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** Frame indices -> a normalised [n, 3, S, S] batch on the device, from the cached HWC bytes. */
export type Upload = (idx: readonly number[]) => Tensor;

export function frameUploader(pixels: Uint8Array, S: number): Upload {
  return (idx) => {
    const n = idx.length,
      plane = S * S,
      out = new Float32Array(n * 3 * plane);
    idx.forEach((fi, k) => {
      const src = pixels.subarray(fi * 3 * plane, (fi + 1) * 3 * plane);
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < plane; p++) out[(k * 3 + c) * plane + p] = (src[p * 3 + c] / 255 - MEAN[c]) / STD[c];
    });
    return tensor(out, [n, 3, S, S]); // HWC bytes -> [n, 3, S, S] normalised
  };
}
