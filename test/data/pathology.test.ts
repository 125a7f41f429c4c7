// The synthetic optical-biopsy set (runtime-node/synthetic/pathology.ts), its writer
// (runtime-node/synth.ts writePathologySet) and its reader (runtime-node/datasets.ts
// readPathologySet): determinism, the type balance, visual cues that separate the types, the
// written layout with a patient-wise split, and one specific error for each kind of bad input.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCsvTable, serialiseCsv } from '../../engine/data/index.ts';
import {
  PATHOLOGY_GROUPS,
  pathologyClass,
  pathologySet,
  renderPathologyFrame,
} from '../../runtime-node/synthetic/index.ts';
import { readPathologySet } from '../../runtime-node/pathology-set.ts';
import { writePathologySet } from '../../runtime-node/synth.ts';

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

describe('synthetic pathology set', () => {
  it('is deterministic per (seed, patient), whatever was generated before', () => {
    const a = pathologySet(5, { patients: 6, width: 64, height: 64 });
    const b = pathologySet(5, { patients: 9, width: 64, height: 64 }).slice(0, 6);
    expect(a.map((p) => p.patientId)).toEqual(b.map((p) => p.patientId));
    for (let k = 0; k < 6; k++) {
      expect(a[k].frames.map((f) => f.fileName)).toEqual(b[k].frames.map((f) => f.fileName));
      const fa = renderPathologyFrame(a[k].frames[0]),
        fb = renderPathologyFrame(b[k].frames[0]);
      expect(equalBytes(fa.image.data, fb.image.data)).toBe(true);
    }
    const c = pathologySet(6, { patients: 6, width: 64, height: 64 });
    expect(
      equalBytes(renderPathologyFrame(a[0].frames[0]).image.data, renderPathologyFrame(c[0].frames[0]).image.data),
    ).toBe(false);
  });

  it('has several frames per polyp, one type per polyp, and the configured type balance', () => {
    const set = pathologySet(0, { patients: 400, width: 32, height: 32 });
    const polyps = set.flatMap((p) => p.polyps);
    const counts = [0, 0, 0, 0];
    for (const p of polyps) counts[p.type]++;
    const expected = [0.4, 0.35, 0.15, 0.1];
    counts.forEach((c, t) =>
      expect(Math.abs(c / polyps.length - expected[t]), `type ${t}: ${c}/${polyps.length}`).toBeLessThan(0.05),
    );
    const twoClass = polyps.filter((p) => pathologyClass(p.type, 2) === 1).length / polyps.length;
    expect(twoClass).toBeGreaterThan(0.5);
    expect(twoClass).toBeLessThan(0.7);
    expect(polyps.length / set.length).toBeGreaterThan(1.1); // some patients have two polyps
    for (const p of set) {
      for (const polyp of p.polyps) {
        const frames = p.frames.filter((f) => f.polyp === polyp);
        expect(frames.length).toBeGreaterThanOrEqual(2);
        expect(frames.length).toBeLessThanOrEqual(5);
      }
      expect(new Set(p.frames.map((f) => f.fileName)).size).toBe(p.frames.length);
    }
    // Custom weights: only hyperplastic polyps.
    expect(
      pathologySet(1, { patients: 30, typeWeights: [1, 0, 0, 0] }).every((p) => p.polyps.every((q) => q.type === 0)),
    ).toBe(true);
    expect(() => pathologySet(1, { patients: 3, typeWeights: [1, 0] })).toThrow(
      /typeWeights must be 4 non-negative weights/,
    );
    expect(() => pathologySet(1, { patients: 3, framesPerPolyp: [3, 2] })).toThrow(/framesPerPolyp \[3, 2\]/);
  });

  it('groups the types as the reference does (2: 0 vs {1,2,3}; 3: 0 / {1,2} / 3)', () => {
    expect([0, 1, 2, 3].map((t) => pathologyClass(t, 2))).toEqual([0, 1, 1, 1]);
    expect([0, 1, 2, 3].map((t) => pathologyClass(t, 3))).toEqual([0, 1, 1, 2]);
    expect([0, 1, 2, 3].map((t) => pathologyClass(t, 4))).toEqual([0, 1, 2, 3]);
    expect(PATHOLOGY_GROUPS[2].classes).toEqual(['non-neoplastic', 'neoplastic']);
    expect(() => pathologyClass(4, 2)).toThrow(/type 4 is not 0, 1, 2 or 3/);
  });

  it('draws visual cues inside the polyp: neoplastic polyps are redder and their surface more patterned', () => {
    // Over many frames, the polyp's mean redness (r - (g + b) / 2, relative to its brightness) and
    // its local contrast (mean |pixel - right neighbour| in the mask) differ by class, with overlap.
    const set = pathologySet(2, { patients: 120, width: 96, height: 96 });
    const stats: [number[], number[]][] = [
      [[], []],
      [[], []],
    ];
    for (const p of set)
      for (const f of p.frames.slice(0, 2)) {
        const { image, mask } = renderPathologyFrame(f),
          d = image.data,
          w = image.width;
        let red = 0,
          lum = 0,
          edge = 0,
          n = 0;
        for (let i = 0; i < mask.data.length - 1; i++) {
          if (!mask.data[i] || !mask.data[i + 1] || (i + 1) % w === 0) continue;
          red += d[3 * i] - (d[3 * i + 1] + d[3 * i + 2]) / 2;
          lum += (d[3 * i] + d[3 * i + 1] + d[3 * i + 2]) / 3;
          edge += Math.abs(d[3 * i + 1] - d[3 * i + 4]);
          n++;
        }
        if (n < 20) continue;
        const c = pathologyClass(f.polyp.type, 2);
        stats[c][0].push(red / lum);
        stats[c][1].push(edge / n);
      }
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(stats[0][0].length).toBeGreaterThan(30);
    expect(stats[1][0].length).toBeGreaterThan(30);
    expect(mean(stats[1][0])).toBeGreaterThan(mean(stats[0][0]) * 1.1);
    expect(mean(stats[1][1])).toBeGreaterThan(mean(stats[0][1]));
    // Not trivial: some non-neoplastic polyps are redder than the neoplastic mean.
    expect(stats[0][0].some((v) => v > mean(stats[1][0]))).toBe(true);
  });
});

describe('pathology set on disk', () => {
  let tmp: string, dir: string, split: { train: string[]; test: string[] };
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'pathology-'));
    dir = join(tmp, 'set');
    split = await writePathologySet(dir, 10, { seed: 4, width: 48, height: 48 });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes images/<patient>/ and labels.csv with a seeded 70/30 patient-wise split that the reader returns', () => {
    expect(split.train.length).toBe(7);
    expect(split.test.length).toBe(3);
    const { header, rows } = parseCsvTable(readFileSync(join(dir, 'labels.csv'), 'utf8'), 'labels.csv');
    expect(header).toEqual(['frame_path', 'patient_id', 'polyp_id', 'pathology', 'pathology_name', 'split']);
    const set = readPathologySet(dir, { log: null });
    expect(set.records.length).toBe(rows.length);
    expect(set.classNames).toEqual(['non-neoplastic', 'neoplastic']);
    for (const r of set.records) {
      expect(r.imagePath.startsWith(join(dir, 'images', r.patientId))).toBe(true);
      expect(r.split).toBe(split.test.includes(r.patientId) ? 'test' : 'train');
      expect(r.label).toBe(pathologyClass(r.pathology, 2));
      expect(r.polypId.startsWith(r.patientId)).toBe(true);
    }
    expect(new Set(set.records.map((r) => r.id)).size).toBe(set.records.length);
    const three = readPathologySet(join(dir, 'labels.csv'), { classes: 3 });
    expect(three.records.map((r) => r.label)).toEqual(set.records.map((r) => pathologyClass(r.pathology, 3)));
  });

  it('fails clearly on a missing file, a bad type, a missing image, a duplicate, and a patient in both splits', () => {
    const csv = join(dir, 'labels.csv'),
      text = readFileSync(csv, 'utf8');
    const { header, rows } = parseCsvTable(text, csv);
    const write = (name: string, rs: Record<string, string>[], cols = header) => {
      const p = join(tmp, name);
      writeFileSync(
        p,
        serialiseCsv([cols, ...rs.map((r) => cols.map((c) => r[c]))]).replace(/images\//g, 'set/images/'),
      );
      return p;
    };
    expect(() => readPathologySet(join(tmp, 'nothing'))).toThrow(/nothing" does not exist.*--kind pathology/);
    expect(() => readPathologySet(write('cols.csv', rows, ['frame_path', 'patient_id']))).toThrow(
      /cols\.csv: missing column\(s\) pathology/,
    );
    expect(() => readPathologySet(write('type.csv', [rows[0], { ...rows[1], pathology: '4' }]))).toThrow(
      /type\.csv: row 2: pathology "4" is not a type 0, 1, 2 or 3/,
    );
    expect(() => readPathologySet(write('type2.csv', [{ ...rows[0], pathology: '' }]))).toThrow(
      /row 1: pathology "" is not a type/,
    );
    expect(() => readPathologySet(write('pid.csv', [{ ...rows[0], patient_id: ' ' }]))).toThrow(
      /row 1: empty patient_id/,
    );
    expect(() => readPathologySet(write('dup.csv', [rows[0], rows[1], rows[0]]))).toThrow(
      /dup\.csv: row 3: frame ".*" is already listed in row 1/,
    );
    expect(() =>
      readPathologySet(
        write('split.csv', [
          rows[0],
          { ...rows[1], patient_id: rows[0].patient_id, split: rows[0].split === 'train' ? 'test' : 'train' },
        ]),
      ),
    ).toThrow(/row 2: patient ".*" has frames in both splits/);
    expect(() => readPathologySet(write('split2.csv', [{ ...rows[0], split: 'val' }]))).toThrow(
      /row 1: split "val" is not train or test/,
    );
    expect(() => readPathologySet(write('empty.csv', []))).toThrow(/empty\.csv: no rows/);
    expect(() => readPathologySet(write('cls.csv', rows), { classes: 5 as 2 })).toThrow(/classes must be 2, 3 or 4/);
    unlinkSync(join(dir, rows[2].frame_path));
    expect(() => readPathologySet(dir)).toThrow(/1 row\(s\) name images that do not exist: row 3: /);
    writeFileSync(csv, text);
  });
});
