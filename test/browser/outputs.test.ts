// What a user takes away from the page (runtime-browser/page/outputs.ts), in real Chromium
// (SwiftShader) on the default trained segmenter and its sample: a ground-truth mask scored with
// Dice and IoU (equal to Node's on the same numbers, and to the recipe's way of scoring), the
// threshold and opacity sliders, and the mask PNG / overlay PNG / JSON downloads (the mask PNG equal
// to the page's probabilities thresholded at the image's size). The Dice and IoU go when the image changes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { diceIou } from '../../engine/metrics/segmentation.ts';
import { upsampleBilinear as recipeUpsample } from '../../recipes/endoked/seg-eval.ts';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { serve, MODELS_DIR } from '../../runtime-browser/serve.ts';
import { sampleImages } from '../../runtime-browser/make-demo-assets.ts';
import { binaryMask, maskValues, scoreAgainst } from '../../runtime-browser/page/outputs.ts';
import { upsampleBilinear } from '../../runtime-browser/page/overlay.ts';
import { domainCheck, imageFeatures, statsOf, type InputStats } from '../../runtime-browser/page/domain.ts';
import { rgbToRgba } from '../../runtime-browser/page/preprocess.ts';
import { decodeImage, pngBytes } from '../../runtime-node/image.ts';
import { driveUx } from './harness.ts';

const ARTIFACTS = join(__dirname, '..', 'artifacts');
let server: Server;
let url: string;
let tmp: string;

beforeAll(async () => {
  const outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test-outputs'));
  tmp = mkdtempSync(join(tmpdir(), 'page-outputs-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  // The true mask of the default model's sample frame (synthetic, so its mask is known exactly).
  const sample = sampleImages().find((s) => s.entry.title === 'Colonoscopy: polyp')!;
  writeFileSync(join(tmp, 'truth.png'), pngBytes(sample.mask!, 'mask'));
  writeFileSync(join(tmp, 'args.json'), JSON.stringify({ truth: join(tmp, 'truth.png') }));
  ({ server, url } = await serve([outDir, MODELS_DIR]));
}, 120_000);
afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const rgba = async (path: string) => {
  const i = await decodeImage(path);
  return { width: i.width, height: i.height, data: rgbToRgba(i.data, i.width, i.height) };
};

describe('result outputs', () => {
  it('the page upsamples as the segmenter recipe scores (seg-eval.ts)', () => {
    const map = Float32Array.from({ length: 12 * 9 }, (_, i) => Math.abs(Math.sin(i * 1.7)));
    const a = upsampleBilinear(map, 12, 9, 97, 61),
      b = recipeUpsample(map, 12, 9, 97, 61);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-5);
  });

  it('the out-of-domain statistics: per-frame numbers, their spread, the 3-sd and 60% limits', () => {
    const flat = (r: number, g: number, b: number) => ({
      width: 80,
      height: 70,
      data: Uint8Array.from({ length: 80 * 70 * 4 }, (_, i) => [r, g, b, 255][i % 4]),
    });
    expect(imageFeatures(flat(200, 100, 50)).map((v) => Math.round(v * 1000) / 1000)).toEqual([200, 100, 50, 0]);
    const stats = statsOf(
      [
        [100, 50, 40, 30],
        [110, 60, 50, 40],
        [120, 70, 60, 50],
      ],
      'three frames',
    );
    expect(stats).toEqual({ of: 'three frames', count: 3, mean: [110, 60, 50, 40], std: [10, 10, 10, 10] });
    const near = domainCheck(flat(115, 65, 45), { ...stats, std: [10, 10, 10, 20] }, 0.9);
    expect(near.far).toEqual([]); // z = 0.5, 0.5, -0.5, -2.0
    expect(near.lowConfidence).toBe(false);
    const far = domainCheck(flat(200, 65, 45), stats as InputStats, 0.55);
    expect(far.far).toEqual(['mean red +9.0 sd', 'luma spread -4.0 sd']);
    expect(far.lowConfidence).toBe(true);
  });

  it('ground-truth Dice/IoU, threshold, opacity and the three downloads (swiftshader-core)', async () => {
    type Snap = {
      state: {
        result: {
          kind: string;
          prob: number[];
          size: [number, number];
          maskArea: number;
          for: { image: string };
        } | null;
        truth: { dice: number; iou: number; threshold: number; width: number; height: number } | null;
        view: { threshold: number; opacity: number; camClass: number };
      };
    };
    const out = (await driveUx('swiftshader-core', url, 'outputs', ARTIFACTS, join(tmp, 'args.json'))) as Record<
      string,
      Snap
    > & {
      pageErrors: string[];
      gtText: string;
      caption: string;
      nextGtText: string;
      mask: { path: string; name: string };
      overlay: { path: string; name: string };
      json: { path: string; name: string };
    };
    expect(out.pageErrors).toEqual([]);
    const r = out.truth.state.result!;
    expect(r.kind).toBe('polyp-pvt');
    // The synthetic sample is smoother than Kvasir-SEG's frames: the hint says so, with Node's numbers.
    const card = JSON.parse(readFileSync(join(MODELS_DIR, 'polyp-pvt-mu-kvasir.card.json'), 'utf8')) as {
      inputStats: InputStats;
    };
    const node = domainCheck(
      await rgba(join(__dirname, '..', '..', 'runtime-browser', 'page', 'samples', 'colonoscopy-0.jpg')),
      card.inputStats,
      null,
    );
    const page = out.before as unknown as { state: { domain: { z: number[]; far: string[] } }; ood: string | null };
    page.state.domain.z.forEach((z, j) => expect(Math.abs(z - node.z[j])).toBeLessThan(0.1));
    expect(page.state.domain.far).toEqual(node.far);
    expect(node.far.length).toBeGreaterThan(0);
    expect(page.ood).toMatch(
      new RegExp(
        String.raw`^Out-of-domain hint: its colour statistics are far from the 900 training ` +
          String.raw`frames \(luma spread -\d\.\d sd; more than 3 sd\)\. Do not trust this ` +
          String.raw`answer\.$`,
      ),
    );
    expect(r.for.image).toBe('Colonoscopy: polyp');
    const truth = await rgba(join(tmp, 'truth.png'));

    // Dice / IoU at 0.5: Node's from the page's probabilities, and the recipe's upsampling within a pixel's worth.
    const at = (t: number) => scoreAgainst(r.prob, r.size, truth, t);
    const t5 = out.truth.state.truth!;
    expect(t5).toMatchObject({ threshold: 0.5, width: 256, height: 256 });
    expect(t5.dice).toBeCloseTo(at(0.5).dice, 9);
    expect(t5.iou).toBeCloseTo(at(0.5).iou, 9);
    const recipe = diceIou(
      recipeUpsample(Float32Array.from(r.prob), r.size[0], r.size[1], 256, 256),
      maskValues(truth),
      0.5,
    );
    expect(Math.abs(recipe.dice - t5.dice)).toBeLessThan(2 / 256);
    expect(out.gtText).toContain(`Dice ${t5.dice.toFixed(3)} · IoU ${t5.iou.toFixed(3)}`);

    // Threshold 0.3, opacity 50%: a larger mask, rescored.
    const low = out.lowered.state;
    expect(low.view).toEqual({ threshold: 0.3, opacity: 0.5, camClass: -1 });
    expect(low.truth!.threshold).toBe(0.3);
    expect(low.truth!.dice).toBeCloseTo(at(0.3).dice, 9);
    expect(low.result!.maskArea).toBeGreaterThanOrEqual(out.truth.state.result!.maskArea);
    expect(out.caption).toMatch(/> 0\.30,/);

    // The mask PNG: the probabilities upsampled to 256² and thresholded at 0.3, as 0/255.
    expect(out.mask.name).toBe('colonoscopy-polyp-mask.png');
    const png = await decodeImage(out.mask.path);
    expect([png.width, png.height]).toEqual([256, 256]);
    const want = binaryMask(r.prob, r.size[0], r.size[1], 256, 256, 0.3);
    let differ = 0;
    for (let i = 0; i < want.length; i++) if ((png.data[3 * i] > 127 ? 1 : 0) !== want[i]) differ++;
    expect(differ).toBe(0);
    expect(out.overlay.name).toBe('colonoscopy-polyp-overlay.png');
    const overlay = await decodeImage(out.overlay.path);
    expect([overlay.width, overlay.height]).toEqual([360, 360]);
    const json = JSON.parse(readFileSync(out.json.path, 'utf8')) as {
      image: { image: string };
      model: { card: string };
      threshold: number;
      prob: number[];
      truth: { dice: number };
    };
    expect(json.image.image).toBe('Colonoscopy: polyp');
    expect(json.model.card).toBe('Polyp-PVT-µ, Kvasir-SEG (16 min on CPU)');
    expect(json.threshold).toBe(0.3);
    expect(json.prob.length).toBe(96 * 96);
    expect(json.truth.dice).toBe(low.truth!.dice);

    // Another image: no ground truth, no score.
    expect(out.next.state.result?.for.image).toBe('Colonoscopy: polyp (2)');
    expect(out.next.state.truth).toBeNull();
    expect(out.nextGtText).toBe('');
  }, 300_000);
});
