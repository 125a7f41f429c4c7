// EndoKED stage 6 (recipes/endoked/06-refine.ts). The round logic on crafted predictions: min-max
// normalisation and the >= threshold, the box rule deciding acceptance only, the whole binarised
// prediction as the new label, no fusion with earlier rounds (the accepted set changes), test ids
// carried over and never trained on. Then the loop end to end on a tiny synthetic set with the real
// segmenter: round 0 on the given pseudo-masks, round 1 on round 0's predictions; a rerun reuses
// both rounds, and a changed --threshold redoes only round 1.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKvasirSeg } from '../../runtime-node/datasets.ts';
import { readMask, writeMaskPng } from '../../runtime-node/image.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { parseCsvTable, serialiseCsv } from '../../engine/data/index.ts';
import { maskBox } from '../../engine/data/boxes.ts';
import { main } from '../../recipes/endoked/06-refine.ts';
import { relabel, relabelPool, type PoolItem } from '../../recipes/endoked/refine-labels.ts';
import { writeRoundData } from '../../recipes/endoked/refine-data.ts';
import { uniqueIds } from '../../recipes/endoked/pipeline.ts';
import { runScript } from '../helpers.ts';

const W = 32,
  H = 24;
/** A probability map: `bg` everywhere, `fg` inside the given rectangles [x0, y0, x1, y1) (x1/y1 exclusive). */
function map(bg: number, fg: number, rects: [number, number, number, number][]): Float32Array {
  const p = new Float32Array(W * H).fill(bg);
  for (const [x0, y0, x1, y1] of rects) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) p[y * W + x] = fg;
  return p;
}
const count = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);

describe('06-refine: one image re-labelled from a prediction', () => {
  it('binarises after min-max normalisation at >= threshold and keeps every component in the label', () => {
    // a polyp plus a small second blob: 2 components (< 3), box area 100/768 in (0.01, 0.35): accepted
    const p = map(0.001, 0.9, [
      [8, 6, 18, 16],
      [24, 18, 26, 20],
    ]);
    const r = relabel(p, W, H, 0.01);
    expect(r.decision.accepted).toBe(true);
    expect(r.decision.reason).toBe('');
    expect(r.decision.box).toEqual([8, 6, 18, 16]);
    expect(count(r.mask)).toBe(100 + 4); // the label is the prediction, not only the box's component
    expect(r.mask[19 * W + 25]).toBe(1);
    // min-max makes the label invariant to an affine rescaling of the map
    expect(
      relabel(
        p.map((v) => 0.2 + 0.5 * v),
        W,
        H,
        0.01,
      ).mask,
    ).toEqual(r.mask);
    // >= : a pixel exactly at the threshold after normalisation is foreground
    const q = map(0, 1, [[8, 6, 18, 16]]);
    q[0] = 0.25;
    expect(relabel(q, W, H, 0.25 / (1 + 1e-8)).mask[0]).toBe(1); // the released code's +1e-8 in the range
    expect(relabel(q, W, H, 0.2501).mask[0]).toBe(0);
  });

  it('rejects through the stage-3 box rule, with its reasons', () => {
    // background a little above the minimum: after min-max most of the frame passes 0.01 and touches the border
    const noisy = map(0.05, 0.9, [[8, 6, 18, 16]]);
    noisy[5] = 0; // one pixel at the minimum
    expect(relabel(noisy, W, H, 0.01).decision.reason).toBe('touches-border');
    expect(relabel(noisy, W, H, 0.5).decision.accepted).toBe(true); // the same map at another threshold
    expect(relabel(map(0, 1, [[10, 10, 12, 12]]), W, H, 0.01).decision.reason).toBe('area-too-small');
    expect(relabel(map(0, 1, [[2, 2, 30, 22]]), W, H, 0.01).decision.reason).toBe('area-too-large');
    expect(
      relabel(
        map(0, 1, [
          [2, 2, 6, 6],
          [10, 10, 14, 14],
          [20, 2, 24, 6],
        ]),
        W,
        H,
        0.01,
      ).decision.reason,
    ).toBe('too-many-components');
    expect(relabel(new Float32Array(W * H), W, H, 0.01).decision.reason).toBe('no-foreground');
  });

  it('gives unique ids when stems collide across folders', () => {
    expect(
      uniqueIds(['/d/centre_A/img1.jpg', '/d/centre_B/img1.jpg', '/d/centre_A/img2.jpg', '/e/centre_A/img1.png']),
    ).toEqual(['centre_A_img1', 'centre_B_img1', 'img2', 'centre_A_img1_1']);
  });
});

describe('06-refine: rounds', () => {
  let tmp: string, kv: string, pseudo: string, boxes: string, testIds: string[], trainIds: string[];
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'refine-'));
    kv = join(tmp, 'kvasir');
    ({ test: testIds, train: trainIds } = await writePolypSet(kv, 20, { seed: 5, width: 64, height: 64 }));
    // A stage-4-shaped folder: the train ids labelled with their true boxes filled (a crude pseudo-mask),
    // the test ids with their real masks; and a stage-3-shaped boxes.csv over the train images.
    pseudo = join(tmp, 'pseudo');
    mkdirSync(join(pseudo, 'images'), { recursive: true });
    const rows: (string | number)[][] = [['image_path', 'x0', 'y0', 'x1', 'y1', 'accepted', 'reason']];
    for (const id of [...trainIds, ...testIds]) {
      writeFileSync(join(pseudo, 'images', `${id}.jpg`), readFileSync(join(kv, 'images', `${id}.jpg`)));
      const m = await readMask(join(kv, 'masks', `${id}.png`));
      const b = maskBox(m.data, m.width, m.height) ?? [0, 0, 0, 0];
      const filled = testIds.includes(id)
        ? m.data
        : m.data.map((_, i) => {
            const x = i % m.width,
              y = (i / m.width) | 0;
            return x >= b[0] && x < b[2] && y >= b[1] && y < b[3] ? 1 : 0;
          });
      writeMaskPng(join(pseudo, 'masks', `${id}.png`), { width: m.width, height: m.height, data: filled });
      if (!testIds.includes(id)) rows.push([join('..', 'kvasir', 'images', `${id}.jpg`), ...b, 1, '']);
    }
    writeFileSync(join(pseudo, 'train.txt'), trainIds.join('\n') + '\n');
    writeFileSync(join(pseudo, 'test.txt'), testIds.join('\n') + '\n');
    mkdirSync(join(tmp, 'cam'));
    boxes = join(tmp, 'cam', 'boxes.csv');
    writeFileSync(boxes, serialiseCsv(rows));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('labels come from the current predictions only: the accepted set changes and nothing is fused', async () => {
    const pool: PoolItem[] = trainIds
      .slice(0, 4)
      .map((id) => ({ id, imagePath: join(kv, 'images', `${id}.jpg`), truthMask: join(kv, 'masks', `${id}.png`) }));
    const blob = (x: number) => map(0, 1, [[x, 6, x + 8, 14]]);
    const round = (maps: Float32Array[]) =>
      relabelPool(
        pool,
        async (items) => items.map((it) => ({ prob: maps[pool.indexOf(it)], width: W, height: H })),
        0.01,
        3,
      );
    // round 1: images 0 and 1 accepted, 2 touches the border, 3 is empty
    const r1 = await round([blob(4), blob(12), map(0, 1, [[0, 0, 8, 8]]), new Float32Array(W * H)]);
    expect(r1.map((r) => r.relabel.decision.accepted)).toEqual([true, true, false, false]);
    expect(r1[0].dice).not.toBeNull(); // measured against the true mask (accepted images only)
    expect(r1[2].dice).toBeNull();
    const d1 = join(tmp, 'round-1');
    expect(writeRoundData(d1, r1, pseudo).train).toEqual([pool[0].id, pool[1].id]);
    // round 2: the same images predicted differently; the new labels are exactly the new predictions
    const r2 = await round([new Float32Array(W * H), blob(20), blob(10), blob(2)]);
    const d2 = join(tmp, 'round-2');
    const { train, test } = writeRoundData(d2, r2, pseudo);
    expect(train).toEqual([pool[1].id, pool[2].id, pool[3].id]); // image 0 dropped, 2 and 3 joined
    expect(test).toEqual(testIds);
    for (const k of [1, 2, 3]) {
      const m = await readMask(join(d2, 'masks', `${pool[k].id}.png`));
      expect(m.data).toEqual(r2[k].relabel.mask);
    }
    const m1 = await readMask(join(d2, 'masks', `${pool[1].id}.png`));
    expect(count(m1.data)).toBe(64); // blob(20) alone: round 1's blob(12) is not merged in
    // The folder reads as Kvasir-SEG; test images keep their real masks and are not in train.txt.
    const listing = readKvasirSeg(d2, { log: null }).records;
    expect(
      listing
        .filter((r) => r.split === 'train')
        .map((r) => r.id)
        .sort(),
    ).toEqual([...train].sort());
    expect(
      listing
        .filter((r) => r.split === 'test')
        .map((r) => r.id)
        .sort(),
    ).toEqual([...testIds].sort());
    const t = await readMask(join(d2, 'masks', `${testIds[0]}.png`)),
      truth = await readMask(join(kv, 'masks', `${testIds[0]}.png`));
    expect(t.data).toEqual(truth.data);
  });

  it("--sam-in-rounds: round k prompts the stage-4 decoder with the boxes of round k-1's predictions", async () => {
    // A tiny decoder (one training step on synthetic frames, untrained backbone) is enough to check the wiring.
    const sam = join(tmp, 'sam');
    const stage4 = join(__dirname, '..', '..', 'recipes', 'endoked', '04-sam-pseudo-masks.ts');
    const t = await runScript(stage4, [
      '--train',
      '--backbone',
      'random',
      '--size',
      '64',
      '--frame-size',
      '64',
      '--train-images',
      '6',
      '--val-images',
      '3',
      '--batch-size',
      '4',
      '--steps',
      '1',
      '--out',
      sam,
    ]);
    expect(t.code, t.err).toBe(0);
    const out = join(tmp, 'sam-rounds');
    const s = (await main([
      '--pseudo',
      pseudo,
      '--boxes',
      boxes,
      '--kvasir',
      kv,
      '--out',
      out,
      '--rounds',
      '2',
      '--steps',
      '4',
      '--size',
      '64',
      '--batch-size',
      '4',
      '--threshold',
      '0.9',
      '--sam-in-rounds',
      `--sam-args=--weights ${join(sam, 'weights.safetensors')} --backbone random --size 64`,
    ]))!;
    expect(s[1].labels).toBe('stage 4: decoder prompted with round-0 predicted boxes');
    // The prompts: one row per candidate, in stage 3's schema; the decoder's layout holds exactly the accepted ones.
    const { rows } = parseCsvTable(readFileSync(join(out, 'round-1', 'boxes.csv'), 'utf8'), 'boxes.csv', [
      'image_path',
      'accepted',
    ]);
    expect(rows).toHaveLength(trainIds.length);
    const accepted = rows.filter((r) => r.accepted === '1').map((r) => r.image_path);
    expect(accepted.length).toBe(s[1].accepted);
    expect(accepted.length).toBeGreaterThan(0);
    const train = readFileSync(join(out, 'round-1', 'data', 'train.txt'), 'utf8')
      .trim()
      .split('\n');
    expect(train).toHaveLength(accepted.length);
    expect(
      readFileSync(join(out, 'round-1', 'data', 'test.txt'), 'utf8')
        .trim()
        .split('\n')
        .sort(),
    ).toEqual([...testIds].sort());
    // stage 4's decoder wrote this layout, not the prediction path
    expect(existsSync(join(out, 'round-1', 'data', 'metrics.json'))).toBe(true);
    expect(s[1].test).not.toBeNull();
  }, 900_000);

  it('refuses a candidate that is a test image', async () => {
    const item: PoolItem = { id: testIds[0], imagePath: join(kv, 'images', `${testIds[0]}.jpg`) };
    const rows = await relabelPool(
      [item],
      async () => [{ prob: map(0, 1, [[4, 6, 12, 14]]), width: W, height: H }],
      0.01,
      1,
    );
    expect(() => writeRoundData(join(tmp, 'leak'), rows, pseudo)).toThrow(/test image/);
  });

  it('segmenter rounds 0, 1: reuses done rounds, redoes what a flag changes, stops if none accepted', async () => {
    const out = join(tmp, 'run');
    // 8 steps at 64² leave a weak segmenter: at the released 0.01 its normalised maps cover the frame
    // (rejected: touches-border); at 0.9 about half the images give an acceptable blob (measured here).
    const argv = [
      '--pseudo',
      pseudo,
      '--boxes',
      boxes,
      '--kvasir',
      kv,
      '--out',
      out,
      '--rounds',
      '2',
      '--steps',
      '8',
      '--size',
      '64',
      '--batch-size',
      '4',
      '--threshold',
      '0.9',
    ];
    const s = (await main(argv))!;
    expect(s.map((r) => r.round)).toEqual([0, 1]);
    expect(s[0].accepted).toBe(trainIds.length);
    expect(s[0].pseudoDice.n).toBe(trainIds.length); // box masks vs true masks: a real measurement, below 1
    expect(s[0].pseudoDice.mean!).toBeGreaterThan(0.3);
    expect(s[0].pseudoDice.mean!).toBeLessThan(1);
    expect(s[1].candidates).toBe(trainIds.length);
    expect(s[1].accepted).toBeGreaterThan(0);
    expect(s[1].accepted).toBeLessThan(trainIds.length);
    expect(s[1].accepted + Object.values(s[1].rejected).reduce((a, b) => a + b, 0)).toBe(trainIds.length);
    expect(s[1].pseudoDice.n).toBe(s[1].accepted);
    for (const r of s) {
      expect(r.steps).toBe(8);
      expect(r.test!.dice).toBeGreaterThanOrEqual(0);
      expect(r.test!.dice).toBeLessThanOrEqual(1);
    }
    const labels = readFileSync(join(out, 'round-1', 'labels.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(labels[0]).toBe('image_path,id,x0,y0,x1,y1,accepted,reason,dice');
    expect(labels).toHaveLength(trainIds.length + 1);
    expect(
      readFileSync(join(out, 'round-1', 'data', 'train.txt'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(s[1].accepted);
    expect(JSON.parse(readFileSync(join(out, 'rounds.json'), 'utf8'))).toHaveLength(2);
    expect(existsSync(join(out, 'rounds.png'))).toBe(true);

    const w0 = statSync(join(out, 'round-0', 'segmenter', 'weights.safetensors')).mtimeMs;
    const l1 = statSync(join(out, 'round-1', 'labels.csv')).mtimeMs;
    expect(await main(argv)).toEqual(s); // both rounds reused as they are
    expect(statSync(join(out, 'round-1', 'labels.csv')).mtimeMs).toBe(l1);
    // The released threshold: round 0 is kept, round 1 is redone, accepts nothing, and the loop stops there.
    const faithful = argv.map((a, i) =>
      argv[i - 1] === '--threshold' ? '0.01' : argv[i - 1] === '--rounds' ? '3' : a,
    );
    const s2 = (await main(faithful))!;
    expect(s2).toHaveLength(2); // round 2 never starts
    expect(statSync(join(out, 'round-0', 'segmenter', 'weights.safetensors')).mtimeMs).toBe(w0);
    expect(s2[0]).toEqual(s[0]);
    expect(s2[1].accepted).toBe(0);
    expect(s2[1].rejected).toEqual({ 'touches-border': trainIds.length });
    expect(s2[1].test).toBeNull();
    expect(existsSync(join(out, 'round-1', 'segmenter'))).toBe(false);
    expect(existsSync(join(out, 'round-2'))).toBe(false);
    expect(readdirSync(join(out, 'round-1')).filter((n) => n.startsWith('.stamp-pending'))).toEqual([]);
  }, 900_000);
});
