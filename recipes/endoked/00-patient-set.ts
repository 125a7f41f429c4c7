// EndoKED stage 0: the patient set. EndoKED's data are patients: one bag of colonoscopy frames
// and one free-text report each (spec §2.1-2.2; [K] EndoKED_MIL/Datasets_loader/dataset_Endo.py).
// Its reports and frames are private, so this script builds a stand-in, written once and seeded:
//
//   --data synthetic (default)  synthetic patients (runtime-node/synth.ts writeReportSet): frames,
//                               exact masks, reports, a stratified patient-wise split.
//                               -> out/endoked/synthetic-set/
//   --data real                 real frames of ../shared/data/polypgen-frames (never copied; the
//                               CSVs point at them) with reports written from each bag's label.
//                               -> out/endoked/real-set/
//
// Produces (contract: runtime-node/report-sets.ts readReportSet):
//   reports.csv  patient_id,label,certain,n_frames,report,split,centre   (label: truth, evaluation only)
//   frames.csv   patient_id,frame_path,polyp,mask_path,centre,sequence   (polyp: truth, evaluation only)
//   set.json     how the set was built (flags, source, counts)
//   public-positives.csv  frame_path,centre (real only): train-split polyp frames left in no bag.
//                EndoKED adds public positive frames to its CAM pool; stage 3 does the same with
//                these (same centres as the negatives, so the classifier cannot learn the source).
//
// Real bags (PolypGen has 750 polyp frames without sequence ids and 750 polyp-free frames in 21
// examination sequences over three centres):
// - Split first, per centre and seeded: whole negative sequences go to test until their frames are
//   closest to --test-fraction of the centre's; polyp frames (single frames, no sequence) are split
//   at the same fraction. Frames of one sequence are therefore never in both splits.
// - One examination per patient: each polyp-free sequence is sub-sampled (every b-th frame) into b
//   bags of --bag-frames size, so each bag spans the examination and holds frames of that sequence
//   only. A seeded --negative-share of each sequence's bags stay negative (both kinds whenever the
//   sequence has two bags or more, so a sequence-specific overlay cannot tell the label); in each of
//   the others, --polyp-per-bag (1-3) frames are replaced by polyp frames of the same centre and
//   split. Positive and negative bags thus differ only by their polyp frames: not by size, nor by
//   how many examinations their normal frames come from (an earlier design filled positive bags
//   from several sequences, and the MIL teachers learnt that mixture instead of the polyps).
// - Positive patients are synthetic groupings (PolypGen gives no patient ids for its polyp frames).
//   Each frame is in at most one bag; polyp frames left over and the normal frames they replaced
//   are in no bag (counted in set.json).
// - Each patient gets a report written from its label by the synthetic report generator
//   (runtime-node/synthetic/reports.ts reportForLabel), hedged findings included, in English,
//   Chinese (as EndoKED's) or both (--report-language).
// - The green panel and on-screen text of some sequences are a shortcut risk: stages that load
//   these frames crop to the field of view and mask the panels (engine/data/fov.ts).
//
// Usage:
//   npx tsx recipes/endoked/00-patient-set.ts [--data synthetic|real] [--out DIR] [--seed N] [--force]
//       [--report-language en|zh|mixed]
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rng, serialiseCsv, shuffle } from '../../engine/data/index.ts';
import { reportForLabel } from '../../runtime-node/synthetic/index.ts';
import { naturalCompare, readPolypGenFrames, type ImageRecord } from '../../runtime-node/datasets.ts';
import { readReportSet, type PatientBag } from '../../runtime-node/report-sets.ts';
import { writeReportSet } from '../../runtime-node/synth.ts';
import { defineFlags, isMain, runMain, FlagError } from '../../runtime-node/flags.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const FLAGS = defineFlags(
  'recipes/endoked/00-patient-set.ts',
  'Builds the EndoKED patient set (bags of frames + reports), written once.',
  {
    data: {
      type: 'string',
      default: 'synthetic',
      choices: ['synthetic', 'real'],
      help: 'synthetic patients, or real PolypGen frames',
    },
    out: { type: 'string', help: 'output folder (default out/endoked/synthetic-set or out/endoked/real-set)' },
    source: {
      type: 'string',
      help: 'PolypGen frames folder (--data real; default ../shared/data/polypgen-frames from the repository root)',
    },
    seed: { type: 'int', default: 0, min: 0, help: 'seed of the split, bags and reports' },
    testFraction: {
      type: 'number',
      default: 0.3,
      min: 0,
      max: 0.9,
      help: 'fraction of patients (synthetic) / sequences and polyp frames (real) in test',
    },
    patients: { type: 'int', default: 120, min: 2, help: 'synthetic patients' },
    size: { type: 'int', default: 128, min: 16, max: 1024, help: 'synthetic frame size (square)' },
    bagFrames: { type: 'numbers', default: [7, 12], min: 1, help: 'frames per bag, lo,hi (real; synthetic uses 4,16)' },
    negativeShare: {
      type: 'number',
      default: 0.5,
      min: 0.05,
      max: 0.95,
      help: "share of each sequence's bags that stay negative (real)",
    },
    polypPerBag: { type: 'numbers', default: [1, 3], min: 1, help: 'polyp frames per positive bag, lo,hi (real)' },
    reportLanguage: {
      type: 'string',
      default: 'en',
      choices: ['en', 'zh', 'mixed'],
      help: "language of the real set's reports (mixed: half and half, seeded)",
    },
    force: { type: 'boolean', default: false, help: 'rebuild even if the set exists' },
  },
);

export interface ComposeOptions {
  seed: number;
  testFraction: number;
  bagFrames: readonly [number, number];
  negativeShare: number;
  polypPerBag: readonly [number, number];
}

export interface ComposedPatient {
  patientId: string;
  label: 0 | 1;
  split: 'train' | 'test';
  centre: string;
  /** Frames in bag order (records from readPolypGenFrames: label 1 = polyp frame). */
  frames: ImageRecord[];
}

export interface Composition {
  patients: ComposedPatient[];
  unusedPolyp: number;
  unusedNormal: number;
  /** Polyp frames of the train split left in no bag: stage 3 may add them to its CAM pool as public positive frames. */
  publicPositives: ImageRecord[];
}

/** Sequences to test, per centre: greedy on a seeded order, the test frame count closest to target. */
function splitSequences(seqs: Map<string, ImageRecord[]>, fraction: number, seed: number, centre: string): Set<string> {
  const names = shuffle([...seqs.keys()].sort(naturalCompare), rng(seed, 'sequence-split', centre));
  const total = names.reduce((s, n) => s + seqs.get(n)!.length, 0),
    target = fraction * total,
    test = new Set<string>();
  let count = 0;
  for (const n of names) {
    const k = seqs.get(n)!.length;
    if (Math.abs(count + k - target) < Math.abs(count - target) && test.size < names.length - 1) {
      test.add(n);
      count += k;
    }
  }
  if (fraction > 0 && test.size === 0 && names.length >= 2) test.add(names[0]);
  return test;
}

/** Pure composition of the real patient set from labelled frames (see the header for the rules). */
export function composePatients(frames: readonly ImageRecord[], o: ComposeOptions): Composition {
  const [lo, hi] = o.bagFrames,
    [kLo, kHi] = o.polypPerBag;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 2 && hi >= lo))
    throw new Error(`--bag-frames ${lo},${hi}: need two integers 2 <= lo <= hi`);
  if (!(Number.isInteger(kLo) && Number.isInteger(kHi) && kLo >= 1 && kHi >= kLo && 2 * kHi < lo)) {
    throw new Error(
      `--polyp-per-bag ${kLo},${kHi}: need integers 1 <= lo <= hi with 2*hi < the smallest bag ` +
        `(${lo}) so that most frames of a positive bag are normal`,
    );
  }
  const centres = [...new Set(frames.map((f) => f.centre ?? ''))].sort();
  const patients: ComposedPatient[] = [],
    publicPositives: ImageRecord[] = [];
  let unusedPolyp = 0,
    unusedNormal = 0;
  for (const centre of centres) {
    const seqs = new Map<string, ImageRecord[]>();
    const polyps = frames.filter((f) => (f.centre ?? '') === centre && f.label === 1);
    for (const f of frames) {
      if ((f.centre ?? '') !== centre || f.label !== 0) continue;
      if (!f.sequence) throw new Error(`polyp-free frame "${f.imagePath}" has no sequence`);
      seqs.set(f.sequence, [...(seqs.get(f.sequence) ?? []), f]);
    }
    const testSeqs = splitSequences(seqs, o.testFraction, o.seed, centre);
    const polypOrder = shuffle([...polyps], rng(o.seed, 'polyp-split', centre));
    const nTestPolyp = Math.round(o.testFraction * polypOrder.length);
    for (const split of ['train', 'test'] as const) {
      const pos = split === 'test' ? polypOrder.slice(0, nTestPolyp) : polypOrder.slice(nTestPolyp);
      const r = rng(o.seed, 'positive-bags', centre, split);
      for (const [seq, list] of [...seqs.entries()].sort((a, b) => naturalCompare(a[0], b[0]))) {
        if (testSeqs.has(seq) !== (split === 'test')) continue;
        const ordered = [...list].sort((a, b) => naturalCompare(a.imagePath, b.imagePath));
        // b bags of about (lo+hi)/2 frames, each within [lo, hi]; a sequence shorter than lo is in no bag.
        const n = ordered.length,
          b = Math.min(Math.floor(n / lo), Math.max(Math.ceil(n / hi), Math.round(n / ((lo + hi) / 2))));
        if (b < 1) {
          unusedNormal += n;
          continue;
        }
        // Which of the sequence's bags stay negative: both kinds whenever it has two bags or more.
        const order = shuffle(
          Array.from({ length: b }, (_, j) => j),
          rng(o.seed, 'bag-labels', centre, seq),
        );
        const nNeg =
          b === 1 ? (r.bool(o.negativeShare) ? 1 : 0) : Math.min(b - 1, Math.max(1, Math.round(o.negativeShare * b)));
        for (let j = 0; j < b; j++) {
          let frames = ordered.filter((_, i) => i % b === j);
          const k = Math.min(r.randint(kLo, kHi), pos.length, Math.floor((frames.length - 1) / 2));
          const positive = order.indexOf(j) >= nNeg && k >= kLo;
          if (positive) {
            // k normal frames leave the bag and k polyp frames take their places: bag size tells nothing.
            const out = new Set(
              shuffle(
                frames.map((_, i) => i),
                r,
              ).slice(0, k),
            );
            unusedNormal += k;
            frames = shuffle([...frames.filter((_, i) => !out.has(i)), ...pos.splice(0, k)], r);
          }
          patients.push({ patientId: `${centre}-${seq}-${j + 1}`, label: positive ? 1 : 0, split, centre, frames });
        }
      }
      unusedPolyp += pos.length;
      if (split === 'train') publicPositives.push(...pos);
    }
  }
  return { patients, unusedPolyp, unusedNormal, publicPositives };
}

/** Writes a composed set: reports.csv + frames.csv with frame paths relative to `dir`. */
export function writeComposedSet(
  dir: string,
  comp: Composition,
  seed: number,
  language: 'en' | 'zh' | 'mixed' = 'en',
): void {
  const reports: (string | number)[][] = [['patient_id', 'label', 'certain', 'n_frames', 'report', 'split', 'centre']];
  const frames: (string | number)[][] = [['patient_id', 'frame_path', 'polyp', 'mask_path', 'centre', 'sequence']];
  for (const p of comp.patients) {
    const lang = language === 'mixed' ? (rng(seed, 'report-language', p.patientId).bool(0.5) ? 'zh' : 'en') : language;
    const rep = reportForLabel(seed, p.patientId, p.label, lang);
    reports.push([p.patientId, p.label, rep.certain ? 1 : 0, p.frames.length, rep.report, p.split, p.centre]);
    for (const f of p.frames)
      frames.push([p.patientId, relative(dir, f.imagePath), f.label ?? '', '', f.centre ?? p.centre, f.sequence ?? '']);
  }
  writeFileSync(join(dir, 'reports.csv'), serialiseCsv(reports));
  writeFileSync(join(dir, 'frames.csv'), serialiseCsv(frames));
  const extra: (string | number)[][] = [['frame_path', 'centre']];
  for (const f of comp.publicPositives) extra.push([relative(dir, f.imagePath), f.centre ?? '']);
  writeFileSync(join(dir, 'public-positives.csv'), serialiseCsv(extra));
}

/** Patients, frames, polyp frames and positive patients per split and centre, as a text table. */
export function summaryTable(patients: readonly PatientBag[]): string {
  const rows = new Map<string, { p: number; pos: number; f: number; pf: number }>();
  for (const p of patients) {
    for (const key of [`${p.split ?? '-'}|${p.centre ?? '-'}`, `${p.split ?? '-'}|all`]) {
      const r = rows.get(key) ?? { p: 0, pos: 0, f: 0, pf: 0 };
      r.p++;
      r.pos += p.label;
      r.f += p.frames.length;
      r.pf += p.frames.filter((f) => f.label === 1).length;
      rows.set(key, r);
    }
  }
  const head = 'split  centre     patients  positive  frames  polyp frames';
  const lines = [...rows.entries()]
    .sort(([a], [b]) => naturalCompare(a.replace('|all', '|~'), b.replace('|all', '|~')))
    .map(([k, r]) => {
      const [split, centre] = k.split('|');
      return (
        `${split.padEnd(6)} ${centre.padEnd(10)} ${String(r.p).padStart(8)}  ` +
        `${String(r.pos).padStart(8)}  ${String(r.f).padStart(6)}  ${String(r.pf).padStart(12)}`
      );
    });
  return [head, ...lines].join('\n');
}

export async function main(argv: string[]): Promise<string | undefined> {
  const f = FLAGS.parse(argv);
  if (!f) return undefined;
  const out = f.out ? resolve(f.out) : join(ROOT, 'out', 'endoked', f.data === 'real' ? 'real-set' : 'synthetic-set');
  const t0 = Date.now();
  if (existsSync(join(out, 'reports.csv')) && !f.force) {
    console.log(`patient set exists: ${out} (written once; --force rebuilds it)`);
  } else {
    if (existsSync(out)) rmSync(out, { recursive: true });
    if (f.data === 'synthetic') {
      await writeReportSet(out, f.patients, {
        seed: f.seed,
        width: f.size,
        height: f.size,
        testFraction: f.testFraction,
        force: true,
      });
      writeFileSync(
        join(out, 'set.json'),
        JSON.stringify(
          { data: 'synthetic', seed: f.seed, patients: f.patients, size: f.size, testFraction: f.testFraction },
          null,
          2,
        ) + '\n',
      );
    } else {
      const source = f.source ? resolve(f.source) : resolve(ROOT, '..', 'shared', 'data', 'polypgen-frames');
      if (!existsSync(source))
        throw new FlagError(
          `${FLAGS.script}: --source "${source}" does not exist (PolypGen frames; see ` +
            `../shared/data/polypgen-frames/README.md)`,
        );
      if (f.bagFrames.length !== 2 || f.polypPerBag.length !== 2)
        throw new FlagError(`${FLAGS.script}: --bag-frames and --polyp-per-bag take two numbers, lo,hi`);
      const listing = readPolypGenFrames(source);
      const comp = composePatients(listing.records, {
        seed: f.seed,
        testFraction: f.testFraction,
        negativeShare: f.negativeShare,
        bagFrames: [f.bagFrames[0], f.bagFrames[1]],
        polypPerBag: [f.polypPerBag[0], f.polypPerBag[1]],
      });
      mkdirSync(out, { recursive: true });
      writeComposedSet(out, comp, f.seed, f.reportLanguage);
      writeFileSync(
        join(out, 'set.json'),
        JSON.stringify(
          {
            data: 'real',
            source: relative(out, source),
            seed: f.seed,
            testFraction: f.testFraction,
            bagFrames: f.bagFrames,
            negativeShare: f.negativeShare,
            polypPerBag: f.polypPerBag,
            reportLanguage: f.reportLanguage,
            frames: listing.records.length,
            unusedPolypFrames: comp.unusedPolyp,
            unusedNormalFrames: comp.unusedNormal,
          },
          null,
          2,
        ) + '\n',
      );
      console.log(`${comp.unusedPolyp} polyp frame(s) and ${comp.unusedNormal} polyp-free frame(s) are in no bag`);
    }
  }
  const set = readReportSet(out, { log: null });
  console.log(summaryTable(set.patients));
  console.log(`${set.patients.length} patients -> ${out} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const info = JSON.parse(readFileSync(join(out, 'set.json'), 'utf8')) as { data: string };
  if ((info.data === 'real') !== (f.data === 'real')) console.log(`note: ${out} holds a ${info.data} set`);
  return out;
}

if (isMain(import.meta.url)) runMain(main);
