// EndoKED stage 4 (recipes/endoked/04-sam-pseudo-masks.ts) end to end at tiny sizes with an
// untrained backbone (`--backbone random`): --train on synthetic frames writes weights under SAM's
// keys, a loss plot, held-out metrics and a feature cache, and a second run resumes and has
// lowered the loss by step 8; a diverging run stops before checkpointing the bad step; pseudo-masks
// from a Kvasir-layout folder's masks and from a boxes.csv with relative paths come out in the
// Kvasir-SEG layout. Plus the recipe's
// helpers: components, SAM's box noise, the focal + Dice loss against a host computation.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor, tidy, Rng } from '../../engine/index.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { imageSize, readMask } from '../../runtime-node/image.ts';
import { components, jitterBox, samMaskLoss, boxMask, dice } from '../../recipes/endoked/sam-kit.ts';
import { expectClose, runScript } from '../helpers.ts';

const RECIPE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'recipes',
  'endoked',
  '04-sam-pseudo-masks.ts',
);

const run = (args: string[]) => runScript(RECIPE, args);

const trainState = (path: string) =>
  JSON.parse(parseSafetensors(new Uint8Array(readFileSync(path))).metadata!.train_state).extra as {
    step: number;
    losses: number[];
  };
const TINY = [
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
];

describe('recipes/endoked/04-sam-pseudo-masks', () => {
  let tmp: string, data: string, split: { train: string[]; test: string[] };
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'sam-'));
    data = join(tmp, 'data');
    split = await writePolypSet(data, 12, { seed: 5, width: 80, height: 64 });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('--train: weights under SAM keys, loss plot, held-out metrics, feature cache; a second run resumes', async () => {
    const out = join(tmp, 'train');
    const first = await run(['--train', ...TINY, '--steps', '2', '--ckpt-every', '1', '--out', out]);
    expect(first.code, first.err).toBe(0);
    const s1 = trainState(join(out, 'state.safetensors'));
    expect(s1.step).toBe(2);
    const keys = Object.keys(parseSafetensors(new Uint8Array(readFileSync(join(out, 'weights.safetensors')))).tensors);
    expect(keys).toContain('image_encoder.neck.0.weight');
    expect(keys).toContain('prompt_encoder.pe_layer.positional_encoding_gaussian_matrix');
    expect(keys).toContain('mask_decoder.transformer.layers.1.cross_attn_image_to_token.q_proj.weight');
    expect(keys).toContain('mask_decoder.iou_prediction_head.layers.2.bias');
    expect([...readFileSync(join(out, 'loss.png')).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    const m = JSON.parse(readFileSync(join(out, 'train-metrics.json'), 'utf8'));
    for (const v of [m.heldOut.meanDiceDecoder, m.heldOut.meanDiceBox]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(m.heldOut.meanDiceBox).toBeGreaterThan(0.5); // a polyp fills much of its own box
    const cache = join(out, 'cache', 'features-0-6-s64.safetensors');
    const cachedAt = statSync(cache).mtimeMs;

    const second = await run(['--train', ...TINY, '--steps', '8', '--ckpt-every', '1', '--out', out]);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toContain('resumed from');
    const s2 = trainState(join(out, 'state.safetensors'));
    expect(s2.step).toBe(8);
    expect(s2.losses.slice(0, 2)).toEqual(s1.losses);
    // Training lowers the loss: the focal + Dice loss of steps 7-8 is below 0.85 times that of
    // steps 1-2. This shows the optimisation works, not yet that boxes become masks: held-out
    // decoder Dice is still about 0 this early (random backbone), so part of the fall may be
    // calibration. Observed ratios with --seed 0, 1, 2: 0.72, 0.77, 0.66 (5.95 -> 4.30,
    // 6.58 -> 5.05, 6.65 -> 4.36).
    const [early, late] = [(s2.losses[0] + s2.losses[1]) / 2, (s2.losses[6] + s2.losses[7]) / 2];
    expect(late, s2.losses.join(' ')).toBeLessThan(0.85 * early);
    expect(statSync(cache).mtimeMs).toBe(cachedAt); // features were read from the cache, not recomputed
  });

  it('a diverging run stops with an error before checkpointing the bad step', async () => {
    const out = join(tmp, 'diverge');
    const r = await run(['--train', ...TINY, '--lr', '1e30', '--steps', '6', '--ckpt-every', '1', '--out', out]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/loss became (NaN|Infinity|-Infinity) at step (\d+)/);
    const bad = Number(/at step (\d+)/.exec(r.err)![1]);
    if (bad > 0) expect(trainState(join(out, 'state.safetensors')).step).toBe(bad);
    else expect(existsSync(join(out, 'state.safetensors'))).toBe(false);
    expect(existsSync(join(out, 'weights.safetensors'))).toBe(false);
  });

  it('pseudo-masks from the masks of a Kvasir-layout folder, and from a boxes.csv with relative paths', async () => {
    const weights = join(tmp, 'train', 'weights.safetensors');
    const out = join(tmp, 'pseudo');
    const r = await run([
      '--backbone',
      'random',
      '--size',
      '64',
      '--weights',
      weights,
      '--boxes-from-masks',
      data,
      '--out',
      out,
    ]);
    expect(r.code, r.err).toBe(0);
    const boxes = readFileSync(join(out, 'boxes.csv'), 'utf8').trim().split('\n');
    expect(boxes[0]).toBe('image_path,x0,y0,x1,y1,accepted,reason');
    const ids = readFileSync(join(out, 'train.txt'), 'utf8').trim().split('\n');
    const withPolyp = [];
    for (const id of split.train)
      if ((await readMask(join(data, 'masks', `${id}.png`))).data.some((v) => v)) withPolyp.push(id);
    expect(ids).toEqual(withPolyp); // train.txt only; frames without a polyp give no box
    expect(readFileSync(join(out, 'test.txt'), 'utf8').trim().split('\n')).toEqual(split.test);
    for (const id of [...ids, ...split.test]) {
      expect(lstatSync(join(out, 'images', `${id}.jpg`)).isSymbolicLink()).toBe(true);
      expect(await imageSize(join(out, 'masks', `${id}.png`))).toEqual({ width: 80, height: 64 });
    }
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(m.scored).toBe(ids.length);
    expect(m.meanDiceBox).toBeGreaterThan(0.5);
    expect(m.msPerBoxDecoder).toBeGreaterThan(0);

    // The stage-3 contract: relative image paths against the CSV's folder; rejected rows are skipped.
    const csv = join(data, 'boxes.csv');
    writeFileSync(
      csv,
      'image_path,x0,y0,x1,y1,accepted,reason\n' +
        `images/${ids[0]}.jpg,10,8,50,40,1,\n` +
        `images/${ids[1]}.jpg,0,0,80,64,0,area-too-large\n`,
    );
    const out2 = join(tmp, 'pseudo2');
    const r2 = await run(['--backbone', 'random', '--size', '64', '--weights', weights, '--boxes', csv, '--out', out2]);
    expect(r2.code, r2.err).toBe(0);
    expect(readFileSync(join(out2, 'train.txt'), 'utf8')).toBe(`${ids[0]}\n`);
    expect(existsSync(join(out2, 'test.txt'))).toBe(false);

    // The same file stem in two folders (PolypGen's centre_A/img1.jpg, centre_B/img1.jpg): ids take the folder's name.
    for (const d of ['centre_A', 'centre_B']) {
      mkdirSync(join(data, d), { recursive: true });
      copyFileSync(join(data, 'images', `${ids[0]}.jpg`), join(data, d, 'img1.jpg'));
    }
    writeFileSync(
      csv,
      'image_path,x0,y0,x1,y1,accepted,reason\ncentre_A/img1.jpg,10,8,50,40,1,\ncentre_B/img1.jpg,12,8,50,40,1,\n',
    );
    const out3 = join(tmp, 'pseudo3');
    const r3 = await run(['--backbone', 'random', '--size', '64', '--weights', weights, '--boxes', csv, '--out', out3]);
    expect(r3.code, r3.err).toBe(0);
    expect(readFileSync(join(out3, 'train.txt'), 'utf8')).toBe('centre_A_img1\ncentre_B_img1\n');
    for (const id of ['centre_A_img1', 'centre_B_img1']) {
      expect(lstatSync(join(out3, 'images', `${id}.jpg`)).isSymbolicLink()).toBe(true);
      expect(existsSync(join(out3, 'masks', `${id}.png`))).toBe(true);
    }
  });

  it('bad inputs fail at start and name the flag or file', async () => {
    const a = await run(['--train', '--backbone', join(tmp, 'nope.safetensors')]);
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/--backbone .*nope\.safetensors does not exist/);
    const b = await run(['--backbone', 'random']);
    expect(b.err).toMatch(/give --train, --boxes boxes.csv or --boxes-from-masks DIR/);
    const c = await run(['--train', '--backbone', 'random', '--size', '48']);
    expect(c.err).toMatch(/--size 48 must be a multiple of 32/);
    const noWeights = join(tmp, 'no-weights');
    const d = await run([
      '--backbone',
      'random',
      '--boxes-from-masks',
      data,
      '--weights',
      join(tmp, 'nope-weights.safetensors'),
      '--out',
      noWeights,
    ]);
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/--weights .*nope-weights\.safetensors does not exist; train the decoder first with --train/);
    expect(existsSync(noWeights)).toBe(false);
    const e = await run(['--backbone', 'random', '--boxes', join(tmp, 'nope-boxes.csv'), '--out', noWeights]);
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/--boxes .*nope-boxes\.csv does not exist; stage 3/);
    expect(existsSync(noWeights)).toBe(false);
  });
});

describe('stage 4 helpers', () => {
  it('8-connected components and their exclusive boxes', () => {
    // Two diagonal pixels join; a separate pixel is its own component.
    const mask = {
      width: 5,
      height: 4,
      data: Uint8Array.from([1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    };
    expect(components(mask).map((c) => [c.box, c.area])).toEqual([
      [[0, 0, 2, 2], 2],
      [[4, 2, 5, 4], 2],
    ]);
    expect(dice(boxMask([0, 0, 2, 2], 5, 4), mask.data)).toBeCloseTo((2 * 2) / (4 + 4));
  });

  it("SAM's box noise: at most 20 px per coordinate, inside the image, non-empty", () => {
    const rng = new Rng(1);
    let moved = 0;
    for (let i = 0; i < 200; i++) {
      const b = jitterBox([100, 50, 400, 300], rng, 0.1, 20, 480, 320);
      expect(Math.abs(b[0] - 100)).toBeLessThanOrEqual(20);
      expect(Math.abs(b[3] - 300)).toBeLessThanOrEqual(20);
      expect(b[0]).toBeGreaterThanOrEqual(0);
      expect(b[2]).toBeLessThanOrEqual(480);
      expect(b[2]).toBeGreaterThan(b[0]);
      if (Math.abs(b[1] - 50) > 1) moved++;
    }
    expect(moved).toBeGreaterThan(100); // std 0.1 * 250 = 25 px, clamped at 20
  });

  it('20 focal + Dice per sample and mask equals a host computation', async () => {
    const logits = [2, -1, 0.5, -3, 0.1, 1.5, -0.2, 4],
      target = [1, 0, 1, 0];
    const out = tidy(() => samMaskLoss(tensor(logits, [1, 2, 2, 2]), tensor(target, [1, 1, 2, 2])));
    const expected = [0, 1].map((t) => {
      const x = logits.slice(4 * t, 4 * t + 4),
        p = x.map((v) => 1 / (1 + Math.exp(-v)));
      const focal =
        x
          .map((v, i) => {
            const ce = Math.log1p(Math.exp(-Math.abs(v))) + Math.max(v, 0) - v * target[i];
            const pt = target[i] ? p[i] : 1 - p[i];
            return (target[i] ? 0.25 : 0.75) * (1 - pt) ** 2 * ce;
          })
          .reduce((a, b) => a + b, 0) / 4;
      const inter = p.reduce((s, v, i) => s + v * target[i], 0);
      const d = 1 - (2 * inter + 1) / (p.reduce((a, b) => a + b, 0) + 2 + 1);
      return 20 * focal + d;
    });
    expectClose(await out.data(), expected, 'loss', 1e-5, 1e-5);
    out.dispose();
  });
});
