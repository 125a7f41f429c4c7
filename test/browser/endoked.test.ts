// The page's EndoKED modes in real Chromium (both WebGPU modes), against Node on Dawn with the
// same checkpoint, image and code (runtime-browser/page/endoked.ts):
// - ToCo CAM: the multi-scale + flip CAM grid, the polyp score and EndoKED's box decision;
// - SAM box prompts: the image embedding once, then per box (dragged with the mouse, typed and
//   submitted with the button, typed and submitted with Enter) the decoder's mask logits and
//   predicted IoU; an empty box is refused with a message.
// The checkpoints are random initialisations written here (the page labels them untrained).
// Per-box decoder times are written to test/artifacts/endoked-latency-<mode>.json.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { manualSeed, weightsBytes } from '../../engine/index.ts';
import { polypSample } from '../../runtime-node/synthetic/index.ts';
import { TocoCam, tocoConfig } from '../../models/toco.ts';
import { PolypPVT, POLYP_PVT, FEATURE_CHANNELS } from '../../models/polyp-pvt.ts';
import { SamPromptDecoder } from '../../models/sam-decoder.ts';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { serve } from '../../runtime-browser/serve.ts';
import { decodeImage, pngBytes } from '../../runtime-node/image.ts';
import { preprocess, rgbToRgba, type RgbaImage } from '../../runtime-browser/page/preprocess.ts';
import { loadCheckpoint } from '../../runtime-browser/page/infer.ts';
import {
  camAndBox,
  samEmbed,
  samDecodeBox,
  samBundleBytes,
  samConfigForSize,
  type CamBox,
} from '../../runtime-browser/page/endoked.ts';
import type { Box } from '../../engine/data/boxes.ts';
import { MODES, drive, type Mode } from './harness.ts';
import type { Step } from './drive.ts';
import { expectClose } from '../helpers.ts';

const ARTIFACTS = join(__dirname, '..', 'artifacts');
const SAM_SIZE = 128; // stage 4's default frame size
let server: Server;
let url: string;
let tmp: string;
let pixels: RgbaImage;
let camRef: CamBox;
let samBytes: Uint8Array;

beforeAll(async () => {
  const outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test-endoked'));
  tmp = mkdtempSync(join(tmpdir(), 'page-endoked-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  manualSeed(3);
  const toco = new TocoCam(tocoConfig('mu'));
  writeFileSync(
    join(tmp, 'toco-cam-test.safetensors'),
    await weightsBytes(toco, {
      model: 'toco_cam',
      config: JSON.stringify(toco.cfg),
      note: 'random initialisation (test)',
    }),
  );
  toco.dispose();
  // Stage 4 keeps the segmenter and the decoder in two files; the page takes them joined.
  const seg = new PolypPVT(POLYP_PVT.mu),
    dec = new SamPromptDecoder(samConfigForSize(SAM_SIZE), { neckInChans: FEATURE_CHANNELS });
  samBytes = await samBundleBytes(
    await weightsBytes(dec),
    await weightsBytes(seg),
    SAM_SIZE,
    'random initialisation (test)',
  );
  seg.dispose();
  dec.dispose();
  writeFileSync(join(tmp, 'sam-box-test.safetensors'), samBytes);
  const colon = polypSample(5, 1, { width: 208, height: 192, polyps: 1, polypArea: [0.08, 0.2] }).image;
  writeFileSync(join(tmp, 'colon.png'), pngBytes(colon));
  const img = await decodeImage(join(tmp, 'colon.png'));
  pixels = { width: img.width, height: img.height, data: rgbToRgba(img.data, img.width, img.height) };
  const m = loadCheckpoint(readFileSync(join(tmp, 'toco-cam-test.safetensors')), { source: 'toco' });
  if (m.kind !== 'toco-cam') throw new Error(`ToCo checkpoint detected as ${m.kind}`);
  camRef = await camAndBox(m.model, preprocess(pixels, 64, 64, 'imagenet').input, pixels.width, pixels.height);
  m.model.dispose();
  ({ server, url } = await serve([outDir, tmp]));
}, 240_000);
afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Node's masks for these boxes, and its per-box decoder times (after one warm-up box). */
async function samReference(boxes: Box[]) {
  const m = loadCheckpoint(samBytes, { source: 'sam' });
  if (m.kind !== 'sam-box') throw new Error(`SAM checkpoint detected as ${m.kind}`);
  const { embedding, ms: embedMs } = await samEmbed(m.model, preprocess(pixels, SAM_SIZE, SAM_SIZE, 'none').input);
  await samDecodeBox(m.model, embedding, [10, 10, 60, 60], pixels.width, pixels.height);
  const out = [];
  for (const b of boxes) out.push(await samDecodeBox(m.model, embedding, b, pixels.width, pixels.height));
  embedding.dispose();
  m.model.dispose();
  return { embedMs, out };
}

interface StepState {
  model: { kind: string } | null;
  modelError: string | null;
  resultError: string | null;
  resultShown: boolean;
  result:
    | null
    | {
        kind: 'toco-cam';
        cam: number[];
        size: number[];
        prob: number;
        camBox: number[] | null;
        box: number[] | null;
        accepted: boolean;
        reason: string;
        untrained: boolean;
      }
    | {
        kind: 'sam-box';
        embedMs: number;
        untrained: boolean;
        boxes: { box: number[]; logits: number[]; size: number[]; iou: number; ms: number }[];
      };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];

describe('EndoKED modes of the page', () => {
  it('serves the EndoKED checkpoints', async () => {
    const list = (await (await fetch(url + 'checkpoints.json')).json()) as { url: string }[];
    expect(list.map((c) => c.url).sort()).toEqual(['/sam-box-test.safetensors', '/toco-cam-test.safetensors']);
  });

  for (const mode of Object.keys(MODES) as Mode[]) {
    it(`CAM box and box-prompt masks equal Node's (${mode})`, async () => {
      const shot = (name: string) => join(ARTIFACTS, `endoked-${mode}-${name}.png`);
      const steps: Step[] = [
        { checkpoint: '/toco-cam-test.safetensors', image: join(tmp, 'colon.png'), shot: shot('cam') },
        { checkpoint: '/sam-box-test.safetensors', shot: shot('sam-ready') },
        { drag: [40, 30, 150, 140], shot: shot('sam-drag') },
        { typed: [20, 25, 110, 100], shot: shot('sam-typed-button') },
        { typed: [90, 60, 200, 180], enter: true, shot: shot('sam-typed-enter') },
        { drag: [120, 100, 60, 20], shot: shot('sam-drag-2') },
        { drag: [30, 40, 90, 160], shot: shot('sam-drag-3') },
        { typed: [50, 50, 50, 90], shot: shot('sam-empty-box') },
      ];
      writeFileSync(join(tmp, `steps-${mode}.json`), JSON.stringify(steps));
      const out = (await drive(mode, url, shot('ready'), ['infer', join(tmp, `steps-${mode}.json`)], 280_000)) as {
        ready: { status: string; error?: string };
        steps: StepState[];
      };
      expect(out.ready.error ?? '').toBe('');
      const [cam, , , , , , last, empty] = out.steps;

      // ToCo: the CAM at 64², the score and the box decision equal Node's.
      expect(cam.modelError).toBeNull();
      expect(cam.resultError).toBeNull();
      expect(cam.model?.kind).toBe('toco-cam');
      if (cam.result?.kind !== 'toco-cam') throw new Error(`no CAM: ${JSON.stringify(cam.result)}`);
      expect(cam.result.size).toEqual([64, 64]);
      expectClose(cam.result.cam, camRef.cam, `CAM (${mode})`, 1e-4, 1e-4);
      expect(cam.result.prob).toBeCloseTo(camRef.prob, 4);
      expect({
        camBox: cam.result.camBox,
        box: cam.result.box,
        accepted: cam.result.accepted,
        reason: cam.result.reason,
      }).toEqual({
        camBox: camRef.decision.box,
        box: camRef.box,
        accepted: camRef.decision.accepted,
        reason: camRef.decision.reason,
      });
      expect(cam.result.untrained).toBe(true);
      expect(cam.resultShown).toBe(true);

      // SAM: five boxes, in the order given; the dragged ones where the mouse went (±2 px).
      if (last.result?.kind !== 'sam-box') throw new Error(`no box-prompt result: ${JSON.stringify(last.result)}`);
      expect(last.resultError).toBeNull();
      const got = last.result.boxes;
      expect(got.length).toBe(5);
      const wanted = [
        [40, 30, 150, 140],
        [20, 25, 110, 100],
        [90, 60, 200, 180],
        [60, 20, 120, 100],
        [30, 40, 90, 160],
      ];
      got.forEach((g, i) =>
        g.box.forEach((v, k) =>
          expect(Math.abs(v - wanted[i][k]), `box ${i} coordinate ${k}: ${g.box}`).toBeLessThanOrEqual(
            i === 1 || i === 2 ? 0 : 2,
          ),
        ),
      );
      const ref = await samReference(got.map((g) => g.box as Box));
      got.forEach((g, i) => {
        expect(g.size).toEqual([SAM_SIZE / 2, SAM_SIZE / 2]);
        expectClose(g.logits, ref.out[i].logits, `mask logits, box ${i} (${mode})`, 1e-4, 1e-4);
        expect(g.iou).toBeCloseTo(ref.out[i].iou, 4);
      });
      expect(empty.resultError).toMatch(/^The box \[50, 50, 50, 90\] is empty or outside the 208×192 image\.$/);
      expect(empty.result?.kind === 'sam-box' && empty.result.boxes.length).toBe(5);

      const latency = {
        mode,
        chromiumEmbedMs: last.result.embedMs,
        chromiumBoxMs: got.map((g) => g.ms),
        chromiumMedianAfterFirstMs: median(got.slice(1).map((g) => g.ms)),
        nodeEmbedMs: ref.embedMs,
        nodeBoxMs: ref.out.map((o) => o.ms),
        nodeMedianMs: median(ref.out.map((o) => o.ms)),
      };
      writeFileSync(join(ARTIFACTS, `endoked-latency-${mode}.json`), JSON.stringify(latency, null, 2) + '\n');
      console.log(JSON.stringify(latency));
    }, 300_000);
  }
});
