// Dataset layouts and readers: CSV, EndoExtend24 rows, label mappings, patient-wise folds;
// readers on the real Kvasir-SEG copy (when present) and on the synthetic sets written to a
// temporary folder; and one specific error for each kind of bad input.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  applyLabelMapping,
  assertPatientDisjoint,
  assignPatientFolds,
  countTable,
  formatTable,
  parseClassMapping,
  parseCsv,
  parseCsvTable,
  parseEe24Csv,
  parseSplitFile,
  serialiseCsv,
  serialiseEe24Csv,
  type Ee24Row,
} from '../../engine/data/index.ts';
import { polypSample, reportSet, CE24_CLASSES, CAPSULE_SOURCES } from '../../runtime-node/synthetic/index.ts';
import { findSizeMismatches, loadSegSample } from '../../runtime-node/seg-samples.ts';
import {
  readClassFolders,
  readClassMapping,
  readClinicDb,
  readEe24Csv,
  readImageMaskFolders,
  readKvasirSeg,
} from '../../runtime-node/datasets.ts';
import { readReportSet } from '../../runtime-node/report-sets.ts';
import { decodeImage, readMask, writeMaskPng, writePng } from '../../runtime-node/image.ts';
import { writeCapsuleSet, writePolypSet, writeReportSet } from '../../runtime-node/synth.ts';

const REPO = resolve(__dirname, '..', '..');
const KVASIR = resolve(REPO, '../shared/data/kvasir-seg');

describe('CSV and EndoExtend24 rows', () => {
  it('round-trips quotes, commas, newlines, CRLF and a BOM', () => {
    const rows = [
      ['a', 'b,c', 'say "hi"'],
      ['multi\nline', '', ' padded '],
      ['x', 'y', 'z'],
    ];
    const text = serialiseCsv(rows);
    expect(text).toBe('a,"b,c","say ""hi"""\n"multi\nline",," padded "\nx,y,z\n');
    expect(parseCsv(text)).toEqual(rows);
    expect(parseCsv('\ufeffh1,h2\r\n1,"2\r\n3"\r\n')).toEqual([
      ['h1', 'h2'],
      ['1', '2\r\n3'],
    ]);
    expect(parseCsv('a,b')).toEqual([['a', 'b']]);
    expect(parseCsv('a,\n')).toEqual([['a', '']]);
  });

  it('rejects malformed CSV naming the file and the line or row', () => {
    expect(() => parseCsv('a,"b\nc', 'f.csv')).toThrow(/f\.csv: unterminated quoted field starting on line 1/);
    expect(() => parseCsv('a,"b"c', 'f.csv')).toThrow(/f\.csv: line 1: text after a closing quote/);
    expect(() => parseCsv('a,b"c', 'f.csv')).toThrow(/f\.csv: line 1: a quote inside an unquoted field/);
    expect(() => parseCsvTable('x,y\n1,2\n3\n', 'g.csv')).toThrow(/g\.csv: row 2 has 1 fields, the header has 2/);
    expect(() => parseCsvTable('x,y\n', 'g.csv', ['x', 'z'])).toThrow(/g\.csv: missing column\(s\) z/);
  });

  it('parses EE24 rows: Windows paths, unlabelled test rows, class indices', () => {
    const text =
      'dataset,patient_id,frame_path,proposed_name,class,fold,original_class\n' +
      'capsulevision,,capsulevision\\testing\\Images\\00Z0Xo99wp.jpg,00Z0Xo99wp.jpg,,-1,\n' +
      'kvasircapsule,p1,kc/a.jpg,a.jpg,ulcer,2,Ulcer\n';
    const mapping = parseClassMapping(Object.fromEntries(CE24_CLASSES.map((c, i) => [c, i])));
    const rows = parseEe24Csv(text, 'test.csv', mapping);
    expect(rows[0]).toMatchObject({
      frame_path: 'capsulevision/testing/Images/00Z0Xo99wp.jpg',
      class: '',
      fold: -1,
      label: undefined,
      row: 1,
    });
    expect(rows[1]).toMatchObject({
      patient_id: 'p1',
      class: 'ulcer',
      fold: 2,
      label: 8,
      original_class: 'Ulcer',
      row: 2,
    });
    const back = parseEe24Csv(serialiseEe24Csv(rows), 'x.csv', mapping);
    expect(back.map(({ row, ...r }) => r)).toEqual(rows.map(({ row, ...r }) => r));
  });

  it('an unknown class names the file, the row and the class', () => {
    const mapping = { normal: 0, polyp: 1 };
    const text = [
      'dataset,patient_id,frame_path,proposed_name,class,fold,original_class',
      'd,p,a.jpg,a.jpg,polyp,0,x',
      'd,p,b.jpg,b.jpg,gastritis,0,y',
      '',
    ].join('\n');
    expect(() => parseEe24Csv(text, 'train_val.csv', mapping)).toThrow(
      /train_val\.csv: row 2: unknown class "gastritis"/,
    );
    expect(() => parseEe24Csv(text.replace(',0,x', ',zero,x'), 'train_val.csv')).toThrow(/row 1: fold "zero"/);
  });

  it('class mappings must use each index 0..K-1 once', () => {
    expect(() => parseClassMapping({ a: 0, b: 0 }, 'm.json')).toThrow(/m\.json: classes "a" and "b" share index 0/);
    expect(() => parseClassMapping({ a: 0, b: 5 }, 'm.json')).toThrow(/"b" has index 5/);
    expect(() => parseClassMapping([], 'm.json')).toThrow(/expected an object/);
  });

  it('label mapping: maps per dataset, drops nulls with counts, rejects unknown labels', () => {
    const row = (dataset: string, original_class: string) => ({ dataset, original_class, class: '' });
    const mapping = { kc: { Ulcer: 'ulcer', Pylorus: null }, see: { ulcer: 'ulcer', redness: 'erythema' } };
    const m = applyLabelMapping(
      [row('kc', 'Ulcer'), row('kc', 'Pylorus'), row('kc', 'Pylorus'), row('see', 'redness')],
      mapping,
    );
    expect(m.rows.map((r) => r.class)).toEqual(['ulcer', 'erythema']);
    expect(m.dropped).toEqual([{ dataset: 'kc', originalClass: 'Pylorus', count: 2 }]);
    expect(() => applyLabelMapping([row('kc', 'Erosion')], mapping, 'f.csv')).toThrow(
      /f\.csv: row 1: label "Erosion" of dataset "kc" is not in its mapping/,
    );
    expect(() => applyLabelMapping([row('gv', 'x')], mapping)).toThrow(/dataset "gv" has no label mapping/);
  });

  it('count table per class and source', () => {
    const rows = [
      { dataset: 'b', class: 'normal' },
      { dataset: 'a', class: 'normal' },
      { dataset: 'a', class: 'worms' },
      { dataset: 'a', class: 'normal' },
    ];
    const t = countTable(rows);
    expect(t).toEqual([
      ['Class', 'Total Count', 'a', 'b'],
      ['normal', 3, 2, 1],
      ['worms', 1, 1, 0],
    ]);
    expect(formatTable(t).split('\n')[1]).toBe('normal            3  2  1');
  });

  it('patient-wise folds: whole patients, balanced by frame count, seeded', () => {
    const items: { patientId: string }[] = [];
    for (let p = 0; p < 40; p++) for (let f = 0; f < 1 + ((p * 7) % 13); f++) items.push({ patientId: `p${p}` });
    const folds = assignPatientFolds(items, 5, 3);
    expect(new Set(folds.values())).toEqual(new Set([0, 1, 2, 3, 4]));
    const rows = items.map((it) => ({ patientId: it.patientId, fold: folds.get(it.patientId)! }));
    assertPatientDisjoint(rows);
    const load = [0, 1, 2, 3, 4].map((f) => rows.filter((r) => r.fold === f).length);
    expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(13);
    expect([...assignPatientFolds(items, 5, 3)]).toEqual([...folds]);
    expect(() =>
      assertPatientDisjoint([
        { patient_id: 'p1', fold: 0 },
        { patient_id: 'p1', fold: 2 },
      ]),
    ).toThrow(/patient "p1" appears in folds 0 and 2/);
    expect(() => assignPatientFolds([{ patientId: '' }], 2)).toThrow(/empty patientId/);
  });

  it('split files: ids per line, duplicates rejected', () => {
    expect(parseSplitFile('a\r\nb\n\n c \n', 's.txt')).toEqual(['a', 'b', 'c']);
    expect(() => parseSplitFile('a\nb\na\n', 'test.txt')).toThrow(/test\.txt: line 3: id "a" already listed on line 1/);
  });
});

describe.skipIf(!existsSync(join(KVASIR, 'images')))('real Kvasir-SEG (../shared/data/kvasir-seg)', () => {
  it('900 train / 100 test ids, every image with a mask', () => {
    const train = readKvasirSeg(KVASIR, { split: 'train', log: null });
    const test = readKvasirSeg(KVASIR, { split: 'test', log: null });
    expect(train.records.length).toBe(900);
    expect(test.records.length).toBe(100);
    expect(train.skipped).toEqual([]);
    expect(new Set([...train.records, ...test.records].map((r) => r.id)).size).toBe(1000);
    expect(train.records.every((r) => r.maskPath && r.split === 'train')).toBe(true);
  });

  it('every mask has the size of its image; masks decode to {0,1}', async () => {
    const all = readKvasirSeg(KVASIR, { log: null });
    expect(all.records.length).toBe(1000);
    expect(await findSizeMismatches(all.records)).toEqual([]);
    for (const r of all.records.slice(0, 3)) {
      const s = await loadSegSample(r);
      expect(s.image.data.length).toBe(s.image.width * s.image.height * 3);
      const fg = s.mask.data.reduce((a, v) => a + v, 0);
      expect(s.mask.data.every((v) => v === 0 || v === 1)).toBe(true);
      expect(fg).toBeGreaterThan(0);
      expect(fg).toBeLessThan(s.mask.data.length);
      const small = await loadSegSample(r, [88, 66]);
      expect([small.image.width, small.image.height, small.mask.width, small.mask.height]).toEqual([88, 66, 88, 66]);
    }
  });
});

describe('readers on the synthetic layouts', () => {
  let dir = '';
  let capsuleRows: Ee24Row[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'synth-readers-'));
    await writePolypSet(join(dir, 'polyp'), 12, { seed: 2, width: 64, height: 48 });
    capsuleRows = await writeCapsuleSet(join(dir, 'capsule'), 60, { seed: 2, width: 48, height: 48, folds: 3 });
    await writeReportSet(join(dir, 'reports'), 6, { seed: 2, width: 48, height: 48 });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('polyp set: Kvasir-SEG layout, exact masks, images close to the render', async () => {
    const train = readKvasirSeg(join(dir, 'polyp'), { split: 'train', log: null }),
      test = readKvasirSeg(join(dir, 'polyp'), { split: 'test', log: null });
    expect(train.records.length + test.records.length).toBe(12);
    expect(test.records.length).toBe(1);
    for (const r of [...train.records, ...test.records].slice(0, 4)) {
      const i = Number(r.id.split('-')[1]),
        truth = polypSample(2, i, { width: 64, height: 48 });
      const s = await loadSegSample(r);
      expect(Array.from(s.mask.data)).toEqual(Array.from(truth.mask.data));
      let err = 0;
      for (let k = 0; k < s.image.data.length; k++) err += Math.abs(s.image.data[k] - truth.image.data[k]);
      expect(err / s.image.data.length).toBeLessThan(4); // JPEG quality 95
    }
  });

  it('capsule set: class folders (root files reported as skipped) and the EE24 CSV agree', () => {
    const lines: string[] = [];
    const mapping = readClassMapping(join(dir, 'capsule', 'class_mapping.json'));
    const folders = readClassFolders(join(dir, 'capsule'), { classMapping: mapping, log: (l) => lines.push(l) });
    expect(folders.records.length).toBe(60);
    expect(folders.skipped.map((s) => s.reason)).toEqual(Array(3).fill('file outside the class folders'));
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/skipped 3 item\(s\) in .*capsule: 3 file outside the class folders/);
    const csv = readEe24Csv(join(dir, 'capsule', 'train_val.csv'), { log: null });
    expect(csv.records.length).toBe(60);
    const byPath = new Map(folders.records.map((r) => [r.imagePath, r]));
    for (const r of csv.records) {
      expect(byPath.get(r.imagePath)?.label).toBe(r.label);
      expect(r.label).toBe(CE24_CLASSES.indexOf(r.className as (typeof CE24_CLASSES)[number]));
      expect(r.fold).toBeGreaterThanOrEqual(0);
      expect(r.fold).toBeLessThan(3);
    }
    assertPatientDisjoint(csv.records.map((r) => ({ patientId: r.patientId, fold: r.fold! })));
    expect(new Set(csv.records.map((r) => r.patientId)).size).toBeGreaterThan(3);
    // The label mapping written next to the CSV reproduces every class from original_class.
    const labelMapping = JSON.parse(readFileSync(join(dir, 'capsule', 'label_mapping.json'), 'utf8'));
    expect(labelMapping).toEqual(CAPSULE_SOURCES);
    const remapped = readEe24Csv(join(dir, 'capsule', 'train_val.csv'), { labelMapping, log: null });
    expect(remapped.records.map((r) => r.label)).toEqual(csv.records.map((r) => r.label));
    expect(capsuleRows.length).toBe(60);
  });

  it('report set: bags, reports, labels and frame truth', () => {
    const set = readReportSet(join(dir, 'reports'), { log: null });
    const truth = reportSet(2, { patients: 6, width: 48, height: 48 });
    expect(set.patients.map((p) => [p.patientId, p.label, p.report, p.frames.length])).toEqual(
      truth.map((t) => [t.patientId, t.label, t.report, t.frames.length]),
    );
    for (const [k, p] of set.patients.entries()) {
      expect(p.frames.map((f) => f.label)).toEqual(truth[k].frames.map((f) => (f.polyp ? 1 : 0)));
      expect(p.frames.every((f) => (f.label === 1) === existsSync(f.maskPath ?? '/nonexistent'))).toBe(true);
    }
    expect(set.skipped).toEqual([]);
    // The patient-wise split and the centre columns.
    expect(new Set(set.patients.map((p) => p.split))).toEqual(new Set(['train', 'test']));
    expect(
      set.patients.every(
        (p) => p.centre === 'synthetic' && p.frames.every((f) => f.sequence === p.patientId && f.split === p.split),
      ),
    ).toBe(true);
  });

  it(
    'patient set with frames.csv as the bag list: paths outside the set, absolute or relative; ' + 'optional columns',
    () => {
      const root = join(dir, 'crafted-set'),
        elsewhere = join(dir, 'frames-elsewhere');
      mkdirSync(root, { recursive: true });
      mkdirSync(join(elsewhere, 'seqA'), { recursive: true });
      const src = readReportSet(join(dir, 'reports'), { log: null })
        .patients.flatMap((p) => p.frames)
        .slice(0, 3);
      for (const [k, f] of src.entries()) cpSync(f.imagePath, join(elsewhere, 'seqA', `f${k}.jpg`));
      writeFileSync(
        join(root, 'reports.csv'),
        serialiseCsv([
          ['patient_id', 'label', 'certain', 'report', 'split', 'centre'],
          ['p1', 0, 1, 'No polyps, "clean" colon.', 'train', 'A'],
          ['p2', 1, 0, 'Possible polyp,\nbiopsied.', 'test', ''],
        ]),
      );
      writeFileSync(
        join(root, 'frames.csv'),
        serialiseCsv([
          ['patient_id', 'frame_path', 'polyp', 'mask_path', 'centre', 'sequence'],
          ['p1', '../frames-elsewhere/seqA/f0.jpg', 0, '', 'A', 'seqA'],
          ['p1', join(elsewhere, 'seqA', 'f1.jpg'), 0, '', 'A', 'seqA'],
          ['p2', '../frames-elsewhere/seqA/f2.jpg', 1, '', '', ''],
          ['p9', '../frames-elsewhere/seqA/f2.jpg', 1, '', '', ''],
        ]),
      );
      const set = readReportSet(root, { log: null });
      expect(set.patients.map((p) => [p.patientId, p.label, p.certain, p.split, p.centre, p.frames.length])).toEqual([
        ['p1', 0, true, 'train', 'A', 2],
        ['p2', 1, false, 'test', undefined, 1],
      ]);
      expect(set.patients[1].report).toBe('Possible polyp,\nbiopsied.');
      expect(set.patients[0].frames.map((f) => [f.imagePath, f.label, f.centre, f.sequence])).toEqual([
        [join(elsewhere, 'seqA', 'f0.jpg'), 0, 'A', 'seqA'],
        [join(elsewhere, 'seqA', 'f1.jpg'), 0, 'A', 'seqA'],
      ]);
      expect(set.patients[1].frames[0]).toMatchObject({ label: 1, split: 'test' });
      expect(set.skipped).toEqual([
        { path: join(elsewhere, 'seqA', 'f2.jpg'), reason: 'frame of a patient without a report' },
      ]);
      // Errors name the file, the row and the fix.
      const frames = readFileSync(join(root, 'frames.csv'), 'utf8');
      writeFileSync(join(root, 'frames.csv'), frames.replace('f1.jpg', 'missing.jpg'));
      expect(() => readReportSet(root, { log: null })).toThrow(
        /frames\.csv: 1 row\(s\) name frames that do not exist: row 2: .*missing\.jpg/,
      );
      writeFileSync(join(root, 'frames.csv'), frames.replace(/\np2,[^\n]*/, ''));
      expect(() => readReportSet(root, { log: null })).toThrow(/patient "p2" \(in .*reports\.csv\) has no frames/);
      writeFileSync(join(root, 'frames.csv'), frames);
      writeFileSync(
        join(root, 'reports.csv'),
        readFileSync(join(root, 'reports.csv'), 'utf8').replace(',test,', ',val,'),
      );
      expect(() => readReportSet(root, { log: null })).toThrow(
        /reports\.csv: row 2: split "val" is not train, test or empty/,
      );
      rmSync(join(root, 'frames.csv'));
      expect(() => readReportSet(root, { log: null })).toThrow(
        /report set \(no frames\.csv\): folder ".*patients" does not exist/,
      );
    },
  );

  describe('bad inputs', () => {
    let bad = '';
    beforeAll(() => {
      bad = mkdtempSync(join(tmpdir(), 'synth-bad-'));
    });
    afterAll(() => {
      if (bad) rmSync(bad, { recursive: true, force: true });
    });
    const copy = (name: string) => {
      const to = join(bad, name + '-' + Math.random().toString(36).slice(2));
      cpSync(join(dir, name), to, { recursive: true });
      return to;
    };

    it('missing mask for an image', () => {
      const root = copy('polyp');
      unlinkSync(join(root, 'masks', 'polyp-00003.png'));
      expect(() => readKvasirSeg(root, { log: null })).toThrow(/missing mask for image ".*polyp-00003\.jpg"/);
      const l = readKvasirSeg(root, { log: null, onMissingMask: 'skip', split: 'all' });
      expect(l.records.length).toBe(11);
      expect(l.skipped).toEqual([{ path: join(root, 'images', 'polyp-00003.jpg'), reason: 'image without a mask' }]);
    });

    it('image/mask size mismatch, reported when decoding', async () => {
      const root = copy('polyp');
      writeMaskPng(join(root, 'masks', 'polyp-00001.png'), { width: 32, height: 32, data: new Uint8Array(32 * 32) });
      const l = readKvasirSeg(root, { log: null });
      const rec = l.records.find((r) => r.id === 'polyp-00001')!;
      await expect(loadSegSample(rec)).rejects.toThrow(
        /size mismatch: image ".*polyp-00001\.jpg" is 64x48 but its mask ".*polyp-00001\.png" is 32x32/,
      );
      expect(await findSizeMismatches(l.records)).toEqual([
        expect.stringMatching(/polyp-00001\.jpg is 64x48 but .*polyp-00001\.png is 32x32/),
      ]);
    });

    it('unknown class in a CSV: file, row number and class', () => {
      const root = copy('capsule'),
        csv = join(root, 'train_val.csv');
      const lines = readFileSync(csv, 'utf8').split('\n');
      const cells = lines[5].split(',');
      cells[4] = 'gastritis';
      lines[5] = cells.join(',');
      writeFileSync(csv, lines.join('\n'));
      expect(() => readEe24Csv(csv, { log: null })).toThrow(
        new RegExp(`${csv.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: row 5: unknown class "gastritis"`),
      );
    });

    it('EE24 rows whose image is missing: an error, or skipped and counted', () => {
      const root = copy('capsule'),
        csv = join(root, 'train_val.csv');
      const first = readEe24Csv(csv, { log: null }).records[0];
      unlinkSync(first.imagePath);
      expect(() => readEe24Csv(csv, { log: null })).toThrow(/1 row\(s\) name images that do not exist: row 1: /);
      const l = readEe24Csv(csv, { log: null, onMissingFile: 'skip' });
      expect(l.records.length).toBe(59);
      expect(l.skipped).toEqual([{ path: first.imagePath, reason: 'CSV row whose image does not exist' }]);
    });

    it('empty dataset: the error names the folder', () => {
      const empty = join(bad, 'empty');
      mkdirSync(join(empty, 'images'), { recursive: true });
      mkdirSync(join(empty, 'masks'));
      expect(() => readClassFolders(empty, { log: null })).toThrow(
        new RegExp(`no images in class folders under "${empty}"`),
      );
      expect(() => readKvasirSeg(empty, { log: null })).toThrow(new RegExp(`no images in "${join(empty, 'images')}"`));
      expect(() => readClinicDb(empty)).toThrow(/no "Original\/" and "Ground Truth\/" folders/);
      expect(() => readImageMaskFolders(empty, 'imgs', 'masks')).toThrow(/folder ".*imgs" does not exist/);
      writeFileSync(join(empty, 'x.csv'), 'dataset,patient_id,frame_path,proposed_name,class,fold,original_class\n');
      expect(() => readEe24Csv(join(empty, 'x.csv'))).toThrow(/x\.csv: no rows/);
    });

    it('corrupt or truncated image: the error names the file', async () => {
      const root = copy('polyp'),
        jpg = join(root, 'images', 'polyp-00002.jpg');
      const bytes = readFileSync(jpg);
      writeFileSync(jpg, bytes.subarray(0, bytes.length >> 1));
      const rec = readKvasirSeg(root, { log: null }).records.find((r) => r.id === 'polyp-00002')!;
      await expect(loadSegSample(rec)).rejects.toThrow(new RegExp(`cannot decode ".*polyp-00002\\.jpg"`));
      writeFileSync(jpg, 'not an image at all');
      await expect(decodeImage(jpg)).rejects.toThrow(/cannot decode ".*polyp-00002\.jpg": .*unsupported image format/);
    });

    it('split file naming a missing id; non-image files are skipped and counted', () => {
      const root = copy('polyp');
      writeFileSync(join(root, 'test.txt'), readFileSync(join(root, 'test.txt'), 'utf8') + 'polyp-99999\n');
      expect(() => readKvasirSeg(root, { log: null })).toThrow(
        /test\.txt lists "polyp-99999", which has no image\/mask pair/,
      );
      const root2 = copy('polyp');
      writeFileSync(join(root2, 'images', 'notes.txt'), 'x');
      writeMaskPng(join(root2, 'masks', 'orphan.png'), { width: 2, height: 2, data: new Uint8Array(4) });
      const lines: string[] = [];
      const l = readKvasirSeg(root2, { log: (s) => lines.push(s) });
      expect(l.records.length).toBe(12);
      expect(l.skipped.map((s) => s.reason).sort()).toEqual(['mask without an image', 'not an image file']);
      expect(lines).toEqual([
        expect.stringMatching(
          /skipped 2 item\(s\) in .*: 1 not an image file \(e\.g\. .*notes\.txt\); 1 mask without an image/,
        ),
      ]);
    });

    it('class folders: folder mappings, dropped classes counted, unknown folders rejected', () => {
      const root = join(bad, 'cv24');
      const img = { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(90) };
      for (const [cls, src] of [
        ['Ulcer', 'KID'],
        ['Ulcer', 'SEE-AI'],
        ['Normal', 'KID'],
        ['Pylorus', 'KID'],
      ])
        writePng(join(root, cls, src, `${cls}-${src}.png`), img);
      const folderMapping = { Ulcer: 'ulcer', Normal: 'normal-mucosa', Pylorus: null };
      const classMapping = Object.fromEntries(CE24_CLASSES.map((c, i) => [c, i]));
      const l = readClassFolders(root, { folderMapping, classMapping, log: null });
      expect(l.records.map((r) => [r.className, r.label, r.dataset])).toEqual([
        ['normal-mucosa', 6, 'KID'],
        ['ulcer', 8, 'KID'],
        ['ulcer', 8, 'SEE-AI'],
      ]);
      expect(l.skipped.map((s) => s.reason)).toEqual(['image of a class dropped by the mapping ("Pylorus")']);
      expect(() => readClassFolders(root, { folderMapping: { Ulcer: 'ulcer' }, log: null })).toThrow(
        /class folder "Normal" is not in the folder mapping/,
      );
      expect(() => readClassFolders(root, { classMapping, log: null })).toThrow(/unknown class "Normal"/);
      const leaf = readClassFolders(root, { classFrom: 'parent', log: null });
      expect(new Set(leaf.records.map((r) => r.className))).toEqual(new Set(['KID', 'SEE-AI']));
    });

    it('CVC-ClinicDB layout with TIFF pairs; masks stored as 0/1 read as {0,1}', async () => {
      const root = join(bad, 'clinic');
      let i = 0;
      while (polypSample(4, i, { width: 40, height: 30 }).scene.polyps.length === 0) i++;
      const s = polypSample(4, i, { width: 40, height: 30 });
      expect(s.mask.data.some((v) => v === 1)).toBe(true);
      mkdirSync(join(root, 'Original'), { recursive: true });
      mkdirSync(join(root, 'Ground Truth'));
      const sharp = (await import('sharp')).default;
      await sharp(Buffer.from(s.image.data), { raw: { width: 40, height: 30, channels: 3 } })
        .tiff({ compression: 'lzw' })
        .toFile(join(root, 'Original', '1.tif'));
      await sharp(Buffer.from(s.mask.data), { raw: { width: 40, height: 30, channels: 1 } })
        .tiff({ compression: 'lzw' })
        .toFile(join(root, 'Ground Truth', '1.tif'));
      const l = readClinicDb(root, { log: null });
      expect(l.records.map((r) => r.id)).toEqual(['1']);
      const pair = await loadSegSample(l.records[0]);
      expect(Array.from(pair.image.data)).toEqual(Array.from(s.image.data));
      expect(Array.from(pair.mask.data)).toEqual(Array.from(s.mask.data));
      expect(Array.from((await readMask(join(root, 'Ground Truth', '1.tif'))).data)).toEqual(Array.from(s.mask.data));
    });
  });
});
