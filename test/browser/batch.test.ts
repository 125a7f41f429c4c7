// Batch mode in real Chromium (SwiftShader) on the default trained segmenter: several images go
// through the model one by one into the results table (an unreadable file gets an error row and
// the batch goes on), each row's numbers equal Node's for the same image, the table downloads as
// CSV, and a sample picked during a batch stops it between two images and is shown.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { polypSample } from '../../runtime-node/synthetic/index.ts';
import { buildBrowser } from '../../runtime-browser/build.ts';
import { serve, MODELS_DIR } from '../../runtime-browser/serve.ts';
import { loadCheckpoint, segment } from '../../runtime-browser/page/infer.ts';
import { preprocess, rgbToRgba } from '../../runtime-browser/page/preprocess.ts';
import { pngBytes } from '../../runtime-node/image.ts';
import { initNode } from '../../runtime-node/index.ts';
import { driveUx } from './harness.ts';

const ARTIFACTS = join(__dirname, '..', 'artifacts');
let server: Server;
let url: string;
let tmp: string;
/** Node's mean probability for each of the three frames. */
const nodeMean: number[] = [];

beforeAll(async () => {
  await initNode();
  const outDir = await buildBrowser(join(__dirname, '..', '..', 'dist', 'browser-test-batch'));
  tmp = mkdtempSync(join(tmpdir(), 'page-batch-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  const m = loadCheckpoint(readFileSync(join(MODELS_DIR, 'polyp-pvt-mu-kvasir.safetensors')), { source: 'pvt' });
  if (m.kind !== 'polyp-pvt') throw new Error('the default model is not a segmenter');
  const files: string[] = [];
  for (let i = 0; i < 3; i++) {
    // PNG: both sides decode the same pixels
    const img = polypSample(77, i, { width: 160 + 16 * i, height: 144, polyps: 1 }).image;
    files.push(join(tmp, `frame-${i}.png`));
    writeFileSync(files[i], pngBytes(img));
    const r = await segment(
      m,
      preprocess(
        { width: img.width, height: img.height, data: rgbToRgba(img.data, img.width, img.height) },
        96,
        96,
        'none',
      ).input,
    );
    nodeMean.push(r.prob.reduce((a, b) => a + b, 0) / r.prob.length);
  }
  m.model.dispose();
  writeFileSync(join(tmp, 'notes.png'), 'not a picture');
  const many = Array.from({ length: 6 }, (_, i) => files[i % 3]);
  writeFileSync(
    join(tmp, 'args.json'),
    JSON.stringify({ files: [files[0], join(tmp, 'notes.png'), files[1], files[2]], many }),
  );
  ({ server, url } = await serve([outDir, MODELS_DIR]));
}, 120_000);
afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Row {
  file: string;
  width: number;
  height: number;
  error: string | null;
  maskArea?: number;
  meanProb?: number;
  maxProb?: number;
  outOfDomain: string;
}
interface Snap {
  state: {
    batch: { model: string; total: number; rows: Row[]; stopped: boolean };
    result: { for: { image: string } } | null;
    outcomes: { superseded: number; failed: number };
  };
  progress: string;
}

describe('batch mode (swiftshader-core)', () => {
  it('runs several images into a table and a CSV, like Node, and stops for a newer request', async () => {
    const out = (await driveUx('swiftshader-core', url, 'batch', ARTIFACTS, join(tmp, 'args.json'))) as {
      full: Snap;
      cut: Snap;
      csv: { path: string; name: string };
      pageErrors: string[];
    };
    expect(out.pageErrors).toEqual([]);
    const b = out.full.state.batch;
    expect(b).toMatchObject({ model: '/polyp-pvt-mu-kvasir.safetensors', total: 4, stopped: false });
    expect(b.rows.map((r) => r.file)).toEqual(['frame-0.png', 'notes.png', 'frame-1.png', 'frame-2.png']);
    expect(b.rows[1].error).toMatch(/^cannot read or run this image/);
    const ok = [b.rows[0], b.rows[2], b.rows[3]];
    ok.forEach((r, i) => {
      expect(r.error).toBeNull();
      expect([r.width, r.height]).toEqual([160 + 16 * i, 144]);
      expect(Math.abs(r.meanProb! - nodeMean[i])).toBeLessThan(1e-4);
      expect(r.maskArea).toBeGreaterThanOrEqual(0);
      expect(r.maxProb).toBeGreaterThanOrEqual(r.meanProb!);
    });
    expect(out.full.progress).toBe('4 of 4 images · /polyp-pvt-mu-kvasir.safetensors');
    const csv = readFileSync(out.csv.path, 'utf8').trim().split('\n');
    expect(out.csv.name).toBe('batch-results.csv');
    expect(csv[0]).toBe(
      'model,file,width,height,mask area,mean probability,max probability,out-of-domain hint,error,ms',
    );
    expect(csv.length).toBe(5);
    expect(csv[1]).toMatch(
      new RegExp(`^/polyp-pvt-mu-kvasir\\.safetensors,frame-0\\.png,160,144,[\\d.]+,${ok[0].meanProb!.toFixed(4)},`),
    );
    // A sample clicked while six images run: the batch stops after the one in flight, the sample is shown.
    const cut = out.cut.state;
    expect(cut.batch.total).toBe(6);
    expect(cut.batch.stopped).toBe(true);
    expect(cut.batch.rows.length).toBeLessThan(6);
    expect(out.cut.progress).toMatch(/^\d of 6 images \(stopped by a newer request\)/);
    expect(cut.result?.for.image).toBe('Colonoscopy: polyp (2)');
    expect(cut.outcomes.failed).toBe(0);
  }, 300_000);
});
