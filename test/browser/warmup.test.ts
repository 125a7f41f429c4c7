// The page warms a model up after loading it: the first inference then compiles no pipeline
// (every one was compiled ahead of time with createComputePipelineAsync), for each model kind.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { device } from '../../engine/index.ts';
import { loadCheckpoint, classify, segment, warmupModel } from '../../runtime-browser/page/infer.ts';
import { camAndBox, samEmbed, samDecodeBox } from '../../runtime-browser/page/endoked.ts';
import { writeDemoCheckpoints, writeEndokedDemoCheckpoints } from '../../runtime-browser/make-demo-assets.ts';

let dir: string;
let files: string[];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warmup-'));
  const a = await writeDemoCheckpoints(join(dir, 'a'));
  const b = await writeEndokedDemoCheckpoints(join(dir, 'b'), 7, 64);
  files = [a.eva02, a.polypPvt, b.toco, b.sam];
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('page warm-up', () => {
  it('after warmupModel the first inference of every model kind compiles no pipeline', async () => {
    let total = 0; // a kind whose kernels an earlier one (or the checkpoint writer) compiled adds none
    for (const f of files) {
      const m = loadCheckpoint(readFileSync(f), { source: f });
      const [h, w] = m.inputSize;
      const input = new Float32Array(3 * h * w).fill(0.5);
      const compiled = await warmupModel(m);
      const before = device().stats().compiles.sync;
      if (m.kind === 'eva02') expect((await classify(m, input)).probs.every(Number.isFinite)).toBe(true);
      else if (m.kind === 'polyp-pvt') expect((await segment(m, input)).prob.every(Number.isFinite)).toBe(true);
      else if (m.kind === 'toco-cam') expect(Number.isFinite((await camAndBox(m.model, input, w, h)).prob)).toBe(true);
      else {
        const { embedding } = await samEmbed(m.model, input);
        expect(Number.isFinite((await samDecodeBox(m.model, embedding, [4, 4, w - 4, h - 4], w, h)).iou)).toBe(true);
        embedding.dispose();
      }
      expect(device().stats().compiles.sync - before, `${m.kind}: pipelines compiled by the first inference`).toBe(0);
      total += compiled;
      m.model.dispose();
    }
    expect(total).toBeGreaterThan(0);
  });
});
