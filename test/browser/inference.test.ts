// The page in real Chromium (both WebGPU modes): its self-check equals Node's; then checkpoints
// loaded from the server,
// images picked through the file input. The page's probabilities, class-activation grid and
// polyp-mask probabilities equal what Node computes with the same checkpoint, image,
// preprocessing (runtime-browser/page/preprocess.ts) and model code (runtime-browser/page/infer.ts),
// and a checkpoint that does not fit its model shows loadStateDict's message on the page.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { weightsBytes } from '../../engine/index.ts';
import { CE24_CLASSES, renderCapsule, polypSample } from '../../runtime-node/synthetic/index.ts';
import { Eva02 } from '../../models/eva02.ts';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { serve } from '../../runtime-browser/serve.ts';
import { decodeImage, pngBytes } from '../../runtime-node/image.ts';
import { preprocess, rgbToRgba, rgbChecksum } from '../../runtime-browser/page/preprocess.ts';
import { loadCheckpoint, classify, segment } from '../../runtime-browser/page/infer.ts';
import { writeDemoCheckpoints, demoEvaConfig } from '../../runtime-browser/make-demo-assets.ts';
import { MODES, drive, type Mode } from './harness.ts';
import type { Step } from './drive.ts';
import { expectClose } from '../helpers.ts';
import { selfCheck } from '../../runtime-browser/page/selfcheck.ts';

const ARTIFACTS = join(__dirname, '..', 'artifacts');
let server: Server;
let url: string;
let tmp: string;
/** What Node computes for the two images. */
let ref: {
  capsule: { checksum: string; probs: Float32Array; cam: Float32Array };
  colon: { checksum: string; prob: Float32Array };
};

async function decodeRgba(path: string) {
  const img = await decodeImage(path);
  return { width: img.width, height: img.height, data: rgbToRgba(img.data, img.width, img.height) };
}

beforeAll(async () => {
  const outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test'));
  tmp = mkdtempSync(join(tmpdir(), 'page-inference-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  // Checkpoints: the µ demo models, and a 7-class EVA-02 saved without metadata (the page then
  // assumes the µ preset's 10 classes, so the head does not fit).
  const ck = await writeDemoCheckpoints(tmp);
  const seven = new Eva02(demoEvaConfig(7));
  writeFileSync(join(tmp, 'eva02-7-classes-no-metadata.safetensors'), await weightsBytes(seven));
  seven.dispose();
  // Images (PNG: lossless, so Chromium and sharp decode the same pixels), not the model's size.
  const capsule = renderCapsule({
    seed: 11,
    width: 200,
    height: 176,
    label: CE24_CLASSES.indexOf('bleeding'),
    tone: 0.4,
  });
  const colon = polypSample(5, 1, { width: 208, height: 192, polyps: 1, polypArea: [0.08, 0.2] }).image;
  writeFileSync(join(tmp, 'capsule.png'), pngBytes(capsule));
  writeFileSync(join(tmp, 'colon.png'), pngBytes(colon));

  const capPixels = await decodeRgba(join(tmp, 'capsule.png')),
    colonPixels = await decodeRgba(join(tmp, 'colon.png'));
  const eva = loadCheckpoint(readFileSync(ck.eva02), { source: 'eva' });
  const pvt = loadCheckpoint(readFileSync(ck.polypPvt), { source: 'pvt' });
  if (eva.kind !== 'eva02' || pvt.kind !== 'polyp-pvt') throw new Error('demo checkpoints were not detected');
  const c = await classify(eva, preprocess(capPixels, 64, 64, 'imagenet').input);
  const s = await segment(pvt, preprocess(colonPixels, 64, 64, 'none').input);
  eva.model.dispose();
  pvt.model.dispose();
  ref = {
    capsule: { checksum: rgbChecksum(capPixels), probs: c.probs, cam: c.cam },
    colon: { checksum: rgbChecksum(colonPixels), prob: s.prob },
  };
  ({ server, url } = await serve([outDir, tmp]));
});
afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface StepState {
  model: { kind: string; classes?: string[]; inputSize: number[]; notes: string[] } | null;
  modelError: string | null;
  modelErrorShown: string | null;
  resultShown: boolean;
  resultError: string | null;
  image: { width: number; height: number; checksum: string } | null;
  result:
    | null
    | {
        kind: 'eva02';
        probs: number[];
        cam: number[];
        grid: number[];
        top: { index: number; name: string; p: number }[];
      }
    | { kind: 'polyp-pvt'; prob: number[]; size: number[]; maskArea: number };
  timings: Record<string, number>;
}

describe('inference page', () => {
  it('lists the served checkpoints (training states left out)', async () => {
    writeFileSync(join(tmp, 'state.safetensors'), new Uint8Array(8));
    const list = (await (await fetch(url + 'checkpoints.json')).json()) as { url: string; bytes: number }[];
    expect(list.map((c) => c.url).sort()).toEqual([
      '/eva02-7-classes-no-metadata.safetensors',
      '/eva02-mu-demo.safetensors',
      '/polyp-pvt-mu-demo.safetensors',
    ]);
    const res = await fetch(url + 'eva02-mu-demo.safetensors');
    expect(Number(res.headers.get('content-length'))).toBe(
      list.find((c) => c.url === '/eva02-mu-demo.safetensors')!.bytes,
    );
  });

  for (const mode of Object.keys(MODES) as Mode[]) {
    it(`runs the engine, classifies and segments like Node, and explains a wrong checkpoint (${mode})`, async () => {
      const shot = (name: string) => join(ARTIFACTS, `inference-${mode}-${name}.png`);
      const steps: Step[] = [
        { checkpoint: '/eva02-mu-demo.safetensors', image: join(tmp, 'capsule.png'), shot: shot('eva02') },
        { checkpoint: '/polyp-pvt-mu-demo.safetensors', image: join(tmp, 'colon.png'), shot: shot('polyp-pvt') },
        { sample: 'Colonoscopy: polyp', shot: shot('polyp-pvt-sample') },
        { kind: 'eva02', checkpoint: '/polyp-pvt-mu-demo.safetensors', shot: shot('pvt-into-eva02') },
        { kind: 'auto', checkpoint: '/eva02-7-classes-no-metadata.safetensors', shot: shot('wrong-class-count') },
      ];
      writeFileSync(join(tmp, `steps-${mode}.json`), JSON.stringify(steps));
      const out = (await drive(mode, url, shot('ready'), ['infer', join(tmp, `steps-${mode}.json`)], 230_000)) as {
        ready: { status: string; error?: string; featureLevel: string; selfCheck: number[] };
        steps: StepState[];
      };
      expect(out.ready.error ?? '').toBe('');
      expect(out.ready.status).toBe('ready');
      expect(out.ready.featureLevel).toBe(mode === 'angle-compatibility' ? 'compatibility' : 'core');
      expectClose(out.ready.selfCheck, await selfCheck(), `self-check in ${mode}`, 1e-5, 1e-4);
      const [cls, seg, sample, pvtIntoEva, wrongCount] = out.steps;

      // EVA-02: the same pixels, probabilities and per-patch class scores as Node.
      expect(cls.modelError).toBeNull();
      expect(cls.resultError).toBeNull();
      expect(cls.model?.kind).toBe('eva02');
      expect(cls.model?.classes).toEqual([...CE24_CLASSES]);
      expect(cls.image).toEqual({ name: 'capsule.png', width: 200, height: 176, checksum: ref.capsule.checksum });
      if (cls.result?.kind !== 'eva02') throw new Error(`no classification: ${JSON.stringify(cls.result)}`);
      expectClose(cls.result.probs, ref.capsule.probs, `probabilities (${mode})`, 1e-5, 1e-4);
      expect(cls.result.grid).toEqual([8, 8]);
      expectClose(cls.result.cam, ref.capsule.cam, `CAM grid (${mode})`, 1e-4, 1e-4);
      const best = ref.capsule.probs.indexOf(Math.max(...ref.capsule.probs));
      expect(cls.result.top[0]).toMatchObject({ index: best, name: CE24_CLASSES[best] });
      expect(cls.resultShown).toBe(true);
      for (const stage of ['decode', 'upload', 'forward', 'readback'])
        expect(cls.timings[stage], stage).toBeGreaterThan(0);

      // Polyp-PVT: the same mask probabilities sigmoid(P1 + P2) at 64².
      expect(seg.modelError).toBeNull();
      expect(seg.model?.kind).toBe('polyp-pvt');
      expect(seg.image?.checksum).toBe(ref.colon.checksum);
      if (seg.result?.kind !== 'polyp-pvt') throw new Error(`no segmentation: ${JSON.stringify(seg.result)}`);
      expect(seg.result.size).toEqual([64, 64]);
      expectClose(seg.result.prob, ref.colon.prob, `mask probabilities (${mode})`, 1e-5, 1e-4);

      // A bundled sample (JPEG): decoded by the browser, shown with its mask and contour.
      expect(sample.image).toMatchObject({ name: 'Colonoscopy: polyp', width: 256, height: 256 });
      if (sample.result?.kind !== 'polyp-pvt')
        throw new Error(`no segmentation of the sample: ${JSON.stringify(sample.result)}`);
      expect(sample.result.maskArea).toBeGreaterThan(0.05);
      expect(sample.result.maskArea).toBeLessThan(0.95);

      // A Polyp-PVT checkpoint loaded as EVA-02, and a 7-class head where 10 are expected: each
      // error is shown, and the working segmenter and its result on the sample stay.
      for (const failed of [pvtIntoEva, wrongCount]) {
        expect(failed.model?.kind).toBe('polyp-pvt');
        expect(failed.result?.kind).toBe('polyp-pvt');
        expect(failed.resultShown).toBe(true);
        expect(failed.image?.checksum).toBe(sample.image?.checksum);
      }
      expect(pvtIntoEva.modelError).toMatch(
        new RegExp(
          String.raw`^This checkpoint does not fit the EVA-02 classifier: \d+ weights ` +
            String.raw`missing, \d+ unexpected\. No EVA-02 config in the metadata: built ` +
            String.raw`the EVA-02 µ preset\. It looks like a Polyp-PVT segmenter checkpoint\.\n`,
        ),
      );
      expect(pvtIntoEva.modelError).toMatch(
        new RegExp(
          String.raw`\n\/polyp-pvt-mu-demo\.safetensors: loadStateDict: Error\(s\) in ` +
            String.raw`loading state_dict for Eva02:\n {2}Missing key\(s\) in state_dict: ` +
            String.raw`"cls_token", "pos_embed"`,
        ),
      );
      expect(pvtIntoEva.modelError).toMatch(
        /Unexpected key\(s\) in state_dict: .*"backbone\.patch_embed1\.proj\.weight"/,
      );
      // on the page: summary, then the details
      expect(pvtIntoEva.modelErrorShown).toBe(pvtIntoEva.modelError!.replace('\n', ''));
      expect(wrongCount.modelErrorShown).toMatch(
        new RegExp(
          String.raw`^This checkpoint does not fit the EVA-02 classifier: 2 of another ` +
            String.raw`shape \(head\.weight: \[7, 64\] in the checkpoint, \[10, 64\] in ` +
            String.raw`the model;`,
        ),
      );
      expect(wrongCount.modelErrorShown).toMatch(
        new RegExp(
          String.raw`size mismatch for head\.weight: copying a param with shape \[7, 64\] ` +
            String.raw`from checkpoint, the shape in current model is \[10, 64\]`,
        ),
      );
    }, 240_000);
  }
});
