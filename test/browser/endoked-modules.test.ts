// The page's EndoKED modules in Node (no browser): which checkpoints they recognise, the error for
// stage 4's decoder file on its own, the box the user types or drags, and what the server lists.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { weightsBytes } from '../../engine/index.ts';
import { SamPromptDecoder } from '../../models/sam-decoder.ts';
import { FEATURE_CHANNELS } from '../../models/polyp-pvt.ts';
import { loadCheckpoint, detectKind, readHeader } from '../../runtime-browser/page/infer.ts';
import { normaliseBox, samConfigForSize, isUntrained } from '../../runtime-browser/page/endoked.ts';
import { writeEndokedDemoCheckpoints } from '../../runtime-browser/make-demo-assets.ts';
import { serve } from '../../runtime-browser/serve.ts';

let dir: string;
let ck: { toco: string; sam: string };
let server: Server;
let url: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'endoked-modules-'));
  ck = await writeEndokedDemoCheckpoints(join(dir, 'demo'), 7, 64);
  const dec = new SamPromptDecoder(samConfigForSize(64), { neckInChans: FEATURE_CHANNELS });
  mkdirSync(join(dir, 'stage4', 'cache'), { recursive: true });
  writeFileSync(
    join(dir, 'stage4', 'weights.safetensors'),
    await weightsBytes(dec, { model: 'sam_decoder', config: JSON.stringify(dec.config) }),
  );
  writeFileSync(join(dir, 'stage4', 'cache', 'features-0-8-s64.safetensors'), new Uint8Array(8));
  dec.dispose();
  ({ server, url } = await serve([join(dir, 'nothing'), dir]));
}, 120_000);
afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  rmSync(dir, { recursive: true, force: true });
});

describe('EndoKED checkpoints on the page', () => {
  it('recognises the ToCo and SAM box-prompt checkpoints by metadata and by key names', () => {
    for (const [path, kind] of [
      [ck.toco, 'toco-cam'],
      [ck.sam, 'sam-box'],
    ] as const) {
      const h = readHeader(new Uint8Array(readFileSync(path)))!;
      expect(detectKind(h)).toBe(kind);
      expect(detectKind({ metadata: {}, keys: h.keys })).toBe(kind);
      expect(isUntrained(h.metadata)).toBe(true);
    }
    const toco = loadCheckpoint(readFileSync(ck.toco), { source: 'toco' }),
      sam = loadCheckpoint(readFileSync(ck.sam), { source: 'sam' });
    expect([toco.kind, toco.inputSize, toco.norm, toco.notes]).toEqual(['toco-cam', [64, 64], 'imagenet', []]);
    expect([sam.kind, sam.inputSize, sam.norm, sam.notes]).toEqual(['sam-box', [64, 64], 'none', []]);
    toco.model.dispose();
    sam.model.dispose();
  });

  it("explains that stage 4's decoder file needs its backbone", () => {
    expect(() =>
      loadCheckpoint(readFileSync(join(dir, 'stage4', 'weights.safetensors')), { source: 'weights.safetensors' }),
    ).toThrow(
      new RegExp(
        String.raw`^weights\.safetensors: this is a SAM decoder without its image backbone ` +
          String.raw`.*\nnpx tsx runtime-browser\/make-demo-assets\.ts --sam-bundle `,
      ),
    );
  });

  it("lists the checkpoints, not stage 4's feature caches nor its backbone-less decoder", async () => {
    const list = (await (await fetch(url + 'checkpoints.json')).json()) as { url: string; untrained: boolean }[];
    expect(list.map((c) => c.url).sort()).toEqual([
      '/demo/sam-box-mu-demo.safetensors',
      '/demo/toco-cam-mu-demo.safetensors',
    ]);
    expect(list.every((c) => c.untrained)).toBe(true);
  });
});

describe('box prompts typed or dragged', () => {
  it('orders corners, clamps to the image, rounds, refuses empty or non-numeric boxes', () => {
    expect(normaliseBox([10, 20, 50, 60], 100, 80)).toEqual([10, 20, 50, 60]);
    expect(normaliseBox([50, 60, 10, 20], 100, 80)).toEqual([10, 20, 50, 60]);
    expect(normaliseBox([-5, -1, 150, 90.4], 100, 80)).toEqual([0, 0, 100, 80]);
    expect(normaliseBox([10.4, 20.6, 49.5, 60], 100, 80)).toEqual([10, 21, 50, 60]);
    expect(normaliseBox([50, 50, 50, 90], 100, 80)).toBeNull();
    expect(normaliseBox([120, 10, 130, 20], 100, 80)).toBeNull();
    expect(normaliseBox([Number.NaN, 10, 20, 30], 100, 80)).toBeNull();
    expect(normaliseBox([1, 2, 3], 100, 80)).toBeNull();
  });
});
