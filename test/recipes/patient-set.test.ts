// The EndoKED patient set (recipes/endoked/00-patient-set.ts): the bag composition rules on
// crafted frame lists, the PolypGen reader and the CLI on a crafted real-like tree, the synthetic
// set, and (when ../shared/data is present) the real set.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import {
  composePatients,
  main,
  type ComposedPatient,
  type ComposeOptions,
} from '../../recipes/endoked/00-patient-set.ts';
import { readPolypGenFrames, type ImageRecord } from '../../runtime-node/datasets.ts';
import { readReportSet, type PatientBag } from '../../runtime-node/report-sets.ts';
import { writeJpeg } from '../../runtime-node/image.ts';

const POLYPGEN = resolve(__dirname, '..', '..', '../shared/data/polypgen-frames');
const OPTS: ComposeOptions = {
  seed: 3,
  testFraction: 0.3,
  bagFrames: [7, 12],
  negativeShare: 0.5,
  polypPerBag: [1, 3],
};

/** Frame records as readPolypGenFrames gives them, without files. */
function crafted(): ImageRecord[] {
  const out: ImageRecord[] = [];
  const seqLengths: Record<string, number[]> = { A: [48, 31, 23, 36, 39], B: [61, 22, 30, 35], C: [21, 49, 38] };
  let s = 0;
  for (const [centre, lengths] of Object.entries(seqLengths)) {
    for (const n of lengths) {
      const seq = `seq${++s}`;
      for (let k = 1; k <= n; k++)
        out.push({
          id: `${seq}_img${k}`,
          imagePath: `/d/negative/centre_${centre}/${seq}/${seq}_img${k}.jpg`,
          label: 0,
          centre,
          sequence: seq,
        });
    }
    for (let k = 1; k <= 120; k++)
      out.push({ id: `${centre}-img${k}`, imagePath: `/d/positive/centre_${centre}/img${k}.jpg`, label: 1, centre });
  }
  return out;
}

/** The composition rules, for composed patients or a set read back (frames carry label/centre/sequence). */
function checkRules(
  patients: readonly (ComposedPatient | PatientBag)[],
  bag: readonly [number, number],
  perBag: readonly [number, number],
): void {
  const seqSplit = new Map<string, string>(),
    seen = new Set<string>();
  for (const p of patients) {
    expect(p.frames.length, p.patientId).toBeGreaterThanOrEqual(bag[0]);
    expect(p.frames.length, p.patientId).toBeLessThanOrEqual(bag[1]);
    const polyp = p.frames.filter((f) => f.label === 1).length;
    for (const f of p.frames) {
      expect(seen.has(f.imagePath), `${f.imagePath} in two bags`).toBe(false);
      seen.add(f.imagePath);
      expect(f.centre).toBe(p.centre);
      if (f.label === 0) {
        const prev = seqSplit.get(f.sequence!);
        if (prev) expect(prev, `sequence ${f.sequence} in both splits`).toBe(p.split);
        seqSplit.set(f.sequence!, p.split!);
      }
    }
    // One examination per patient: the normal frames of every bag come from one sequence.
    expect(new Set(p.frames.filter((f) => f.label === 0).map((f) => f.sequence)).size, p.patientId).toBe(1);
    if (p.label === 0) {
      expect(polyp).toBe(0);
    } else {
      expect(polyp).toBeGreaterThanOrEqual(perBag[0]);
      expect(polyp).toBeLessThanOrEqual(perBag[1]);
      expect(p.frames.length - polyp).toBeGreaterThan(polyp); // most frames normal
    }
  }
  for (const split of ['train', 'test']) {
    for (const label of [0, 1])
      expect(
        patients.some((p) => p.split === split && p.label === label),
        `${split} has label ${label}`,
      ).toBe(true);
  }
}

describe('patient-set composition (crafted frame lists)', () => {
  const frames = crafted();

  it('follows the bag rules: sequence-disjoint splits, one examination per bag, mostly-normal positives', () => {
    const c = composePatients(frames, OPTS);
    checkRules(c.patients, OPTS.bagFrames, OPTS.polypPerBag);
    // Every polyp-free frame is in a bag except those a polyp frame replaced (every crafted sequence is long enough).
    const used = c.patients.reduce((s, p) => s + p.frames.length, 0);
    expect(used + c.unusedPolyp + c.unusedNormal).toBe(frames.length);
    expect(c.unusedNormal).toBe(c.patients.reduce((s, p) => s + p.frames.filter((f) => f.label === 1).length, 0));
    // Bag size tells nothing: positive and negative bags have the same mean size within a frame.
    const mean = (l: number) => {
      const b = c.patients.filter((p) => p.label === l);
      return b.reduce((s, p) => s + p.frames.length, 0) / b.length;
    };
    expect(Math.abs(mean(1) - mean(0))).toBeLessThan(1);
    // Public positives: every polyp frame in no bag that belongs to the train split, and only those.
    const inBag = new Set(c.patients.flatMap((p) => p.frames.map((f) => f.imagePath)));
    expect(c.publicPositives.length).toBeGreaterThan(0);
    expect(c.publicPositives.every((f) => f.label === 1 && !inBag.has(f.imagePath))).toBe(true);
    const testPolyps = new Set(
      c.patients
        .filter((p) => p.split === 'test')
        .flatMap((p) => p.frames.filter((f) => f.label === 1).map((f) => f.imagePath)),
    );
    const c2 = composePatients(frames, { ...OPTS, testFraction: 0 });
    expect(
      c2.publicPositives.length + c2.patients.reduce((s, p) => s + p.frames.filter((f) => f.label === 1).length, 0),
    ).toBe(360); // all polyps are train at fraction 0
    for (const f of c.publicPositives) expect(testPolyps.has(f.imagePath)).toBe(false);
    for (const centre of ['A', 'B', 'C']) {
      const pos = c.patients.filter((p) => p.centre === centre && p.label === 1).length,
        neg = c.patients.filter((p) => p.centre === centre && p.label === 0).length;
      expect(pos).toBeGreaterThan(0.5 * neg);
      expect(pos).toBeLessThan(2 * neg); // roughly balanced
    }
    // Each sequence gives frames to negative bags and to positive ones (an overlay cannot tell the label).
    for (const seq of new Set(frames.filter((f) => f.label === 0).map((f) => f.sequence))) {
      const labels = new Set(c.patients.filter((p) => p.frames.some((f) => f.sequence === seq)).map((p) => p.label));
      expect([...labels].sort(), seq).toEqual([0, 1]);
    }
    const test = c.patients.filter((p) => p.split === 'test').reduce((s, p) => s + p.frames.length, 0);
    expect(test / used).toBeGreaterThan(0.15);
    expect(test / used).toBeLessThan(0.45);
  });

  it('is seeded: the same seed gives the same set, another seed another one', () => {
    const ids = (seed: number) =>
      composePatients(frames, { ...OPTS, seed }).patients.map(
        (p) => `${p.patientId}:${p.frames.map((f) => f.id).join(',')}`,
      );
    expect(ids(3)).toEqual(ids(3));
    expect(ids(4)).not.toEqual(ids(3));
  });

  it('rejects options that break the rules, naming the flag', () => {
    expect(() => composePatients(frames, { ...OPTS, polypPerBag: [1, 4] })).toThrow(
      /--polyp-per-bag 1,4: .*most frames of a positive bag are normal/,
    );
    expect(() => composePatients(frames, { ...OPTS, bagFrames: [9, 8] })).toThrow(/--bag-frames 9,8/);
    expect(() => composePatients([{ id: 'x', imagePath: '/x.jpg', label: 0, centre: 'A' }], OPTS)).toThrow(
      /"\/x\.jpg" has no sequence/,
    );
  });
});

describe('the patient-set CLI', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'patient-set-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('--data real on a crafted PolypGen tree: frames stay in place, read back with split, centre, seq', async () => {
    const src = join(dir, 'polypgen');
    const img = { width: 24, height: 16, data: new Uint8Array(24 * 16 * 3).fill(90) };
    for (const centre of ['A', 'B']) {
      for (const seq of centre === 'A' ? ['seq1', 'seq2', 'seq3'] : ['seq4', 'seq5', 'seq6']) {
        mkdirSync(join(src, 'negative', `centre_${centre}`, seq), { recursive: true });
        for (let k = 1; k <= 14; k++)
          await writeJpeg(join(src, 'negative', `centre_${centre}`, seq, `${seq}_img${k}.jpg`), img);
      }
      mkdirSync(join(src, 'positive', `centre_${centre}`), { recursive: true });
      for (let k = 1; k <= 20; k++) await writeJpeg(join(src, 'positive', `centre_${centre}`, `img${k}.jpg`), img);
    }
    writeFileSync(join(src, 'README.md'), 'x');
    writeFileSync(join(src, 'positive', 'centre_A', 'notes.txt'), 'x');
    const listing = readPolypGenFrames(src, { log: null });
    expect(listing.records.length).toBe(2 * (3 * 14 + 20));
    expect(listing.skipped.map((s) => s.reason)).toEqual(['not an image file']);
    const seq1 = listing.records.filter((r) => r.sequence === 'seq1').map((r) => r.id);
    expect(seq1.slice(0, 3)).toEqual(['seq1_img1', 'seq1_img2', 'seq1_img3']); // natural order
    const b7 = listing.records.find((r) => r.id === 'B-img7')!;
    expect([b7.label, b7.centre, b7.sequence]).toEqual([1, 'B', undefined]);

    const out = join(dir, 'real-set');
    const logs: string[] = [],
      log = console.log;
    console.log = (...a: unknown[]) => {
      logs.push(a.join(' '));
    };
    try {
      await main(['--data', 'real', '--source', src, '--out', out, '--bag-frames', '7,10', '--seed', '1']);
    } finally {
      console.log = log;
    }
    expect(logs.join('\n')).toMatch(/split +centre +patients +positive +frames +polyp frames/);
    expect(logs.join('\n')).toMatch(/^test +all /m);
    const set = readReportSet(out, { log: null });
    checkRules(set.patients, [7, 10], [1, 3]);
    const frames = readFileSync(join(out, 'frames.csv'), 'utf8').split('\n')[1].split(',');
    expect(isAbsolute(frames[1])).toBe(false);
    expect(frames[1].startsWith('../polypgen/')).toBe(true); // points outside the set folder
    for (const p of set.patients) {
      expect(p.report.length).toBeGreaterThan(40);
      expect(p.frames.every((f) => f.imagePath.startsWith(src))).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(out, 'set.json'), 'utf8'))).toMatchObject({
      data: 'real',
      seed: 1,
      bagFrames: [7, 10],
    });
    const extra = readFileSync(join(out, 'public-positives.csv'), 'utf8').trim().split('\n');
    expect(extra[0]).toBe('frame_path,centre');
    expect(extra.slice(1).every((l) => l.startsWith('../polypgen/positive/'))).toBe(true);
    // Chinese reports for the same bags.
    const zh = join(dir, 'real-set-zh');
    console.log = () => {};
    try {
      await main([
        '--data',
        'real',
        '--source',
        src,
        '--out',
        zh,
        '--bag-frames',
        '7,10',
        '--seed',
        '1',
        '--report-language',
        'zh',
      ]);
    } finally {
      console.log = log;
    }
    const zset = readReportSet(zh, { log: null });
    expect(zset.patients.map((p) => [p.patientId, p.label, p.frames.map((f) => f.imagePath)])).toEqual(
      set.patients.map((p) => [p.patientId, p.label, p.frames.map((f) => f.imagePath)]),
    );
    expect(zset.patients.every((p) => /[\u4e00-\u9fff]/.test(p.report))).toBe(true);
    // Written once: a second run reads the set and leaves it alone.
    const before = statSync(join(out, 'reports.csv')).mtimeMs;
    console.log = () => {};
    try {
      await main(['--data', 'real', '--source', src, '--out', out, '--seed', '2']);
    } finally {
      console.log = log;
    }
    expect(statSync(join(out, 'reports.csv')).mtimeMs).toBe(before);
  });

  it('--data synthetic: a stratified patient-wise split, centre "synthetic", one sequence per patient', async () => {
    const out = join(dir, 'synthetic-set'),
      log = console.log;
    console.log = () => {};
    try {
      await main(['--out', out, '--patients', '20', '--size', '32']);
    } finally {
      console.log = log;
    }
    const set = readReportSet(out, { log: null });
    expect(set.patients.length).toBe(20);
    expect(set.patients.every((p) => p.centre === 'synthetic' && (p.split === 'train' || p.split === 'test'))).toBe(
      true,
    );
    for (const label of [0, 1]) {
      const ps = set.patients.filter((p) => p.label === label);
      const nTest = ps.filter((p) => p.split === 'test').length;
      expect(Math.abs(nTest - 0.3 * ps.length)).toBeLessThanOrEqual(0.5); // stratified: round(0.3 n) per label
    }
    expect(
      set.patients.every((p) => p.frames.every((f) => f.sequence === p.patientId && f.centre === 'synthetic')),
    ).toBe(true);
  });

  it('bad flags fail at start naming the flag', async () => {
    await expect(main(['--data', 'real', '--source', join(dir, 'nope'), '--out', join(dir, 'x')])).rejects.toThrow(
      /--source ".*nope" does not exist/,
    );
    await expect(main(['--data', 'nonsense'])).rejects.toThrow(/--data "nonsense" is not one of synthetic, real/);
  });
});

describe.skipIf(!existsSync(POLYPGEN))('the real patient set (../shared/data/polypgen-frames)', () => {
  it('every centre in both splits, the bag rules hold, reports written', () => {
    const listing = readPolypGenFrames(POLYPGEN, { log: null });
    expect(listing.records.length).toBe(1500);
    const c = composePatients(listing.records, { ...OPTS, seed: 0 });
    checkRules(c.patients, OPTS.bagFrames, OPTS.polypPerBag);
    for (const centre of ['A', 'B', 'C'])
      for (const split of ['train', 'test']) {
        expect(
          c.patients.filter((p) => p.centre === centre && p.split === split && p.label === 1).length,
          `${centre} ${split}`,
        ).toBeGreaterThan(0);
        expect(
          c.patients.filter((p) => p.centre === centre && p.split === split && p.label === 0).length,
          `${centre} ${split}`,
        ).toBeGreaterThan(0);
      }
  });
});
