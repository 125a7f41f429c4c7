// The EndoKED segmenter recipe (recipes/endoked/05-segmenter.ts) end to end on a tiny synthetic
// polyp set: it trains a few steps of Polyp-PVT-µ at 64², evaluates, writes its outputs, and a
// second invocation resumes from the training state (step counter and loss history continue; the
// first steps are not trained again) and trains to step 8, by when the loss has fallen. A missing
// dataset folder is a clear error.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { runScript } from '../helpers.ts';

const RECIPE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes', 'endoked', '05-segmenter.ts');

const run = (args: string[]) => runScript(RECIPE, args);

interface TrainStateMeta {
  extra: { step: number; losses: number[] };
}
const trainState = (path: string) =>
  JSON.parse(parseSafetensors(new Uint8Array(readFileSync(path))).metadata!.train_state) as TrainStateMeta;
const metricsOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

describe('recipes/endoked/05-segmenter', () => {
  let tmp: string, data: string, testIds: string[];
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'segmenter-'));
    data = join(tmp, 'data');
    // 20 frames at 64²: 18 train / 2 test (10% of the seeded ids go to test.txt).
    testIds = (await writePolypSet(data, 20, { seed: 3, width: 64, height: 64 })).test;
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('trains, evaluates and writes its outputs; a second run resumes from the training state', async () => {
    const out = join(tmp, 'run');
    // lr 1e-3 (the recipe's default is the reference's 1e-4): the loss falls clearly within 8 steps.
    const common = [
      '--data',
      data,
      '--config',
      'cpu',
      '--size',
      '64',
      '--batch-size',
      '4',
      '--lr',
      '1e-3',
      '--out',
      out,
    ];
    const first = await run([...common, '--steps', '1']);
    expect(first.code, first.err).toBe(0);

    const m1 = metricsOf(out);
    expect(m1.steps).toBe(1);
    expect(m1.optimizerSteps).toBe(3);
    expect(m1.numTest).toBe(testIds.length);
    for (const v of [m1.test.meanDice, m1.test.meanIou, m1.test.minMax.meanDice, m1.test.minMax.meanIou]) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(m1.test.meanIou).toBeLessThanOrEqual(m1.test.meanDice);
    expect(m1.perImage.map((r: { id: string }) => r.id)).toEqual(testIds);

    // Overlays: one PNG per test image (fewer than numOverlays exist), named by id.
    expect(readdirSync(join(out, 'overlays')).sort()).toEqual(testIds.map((id) => `${id}.png`).sort());
    for (const f of ['loss.png', ...testIds.map((id) => `overlays/${id}.png`)]) {
      expect([...readFileSync(join(out, f)).subarray(0, 8)], f).toEqual(PNG_SIGNATURE);
    }
    // Weights: the model alone, under the reference's state_dict keys.
    const weights = parseSafetensors(new Uint8Array(readFileSync(join(out, 'weights.safetensors'))));
    const keys = Object.keys(weights.tensors);
    expect(keys).toContain('backbone.patch_embed1.proj.weight');
    expect(keys).toContain('CFM.conv4.bn.running_var');
    expect(keys).toContain('out_SAM.weight');
    expect(keys.some((k) => k.startsWith('model.') || k.startsWith('optimizer.'))).toBe(false);
    expect(weights.metadata?.train_state).toBeUndefined();

    const s1 = trainState(join(out, 'state.safetensors'));
    expect(s1.extra.step).toBe(1);
    expect(s1.extra.losses).toHaveLength(1);

    // Resume (the default): continues at step 1 up to 8, keeping the first loss as it was.
    const second = await run([...common, '--steps', '8']);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(/resumed from .*state\.safetensors at step 1\b/);
    const s2 = trainState(join(out, 'state.safetensors'));
    expect(s2.extra.step).toBe(8);
    expect(s2.extra.losses).toHaveLength(8);
    expect(s2.extra.losses.slice(0, 1)).toEqual(s1.extra.losses);
    expect(second.out).toMatch(/training steps 1\.\.8/);
    expect(metricsOf(out).steps).toBe(8);
    // Training lowers the loss: the mean loss of steps 6-8 is below that of steps 1-3 by more than
    // 0.15. This shows the optimisation works; Dice on the 2 test frames is too coarse to show
    // segmentation this early. Observed drops with this command on polyp sets of seeds 3, 4, 5:
    // 0.30, 0.29, 0.27 (3.15 -> 2.86, 3.03 -> 2.74, 3.02 -> 2.75).
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const [early, late] = [mean(s2.extra.losses.slice(0, 3)), mean(s2.extra.losses.slice(5))];
    expect(late, s2.extra.losses.join(' ')).toBeLessThan(early - 0.15);
    // No temporary file is left behind by the atomic writes.
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('names a missing dataset folder and how to get data', async () => {
    const missing = join(tmp, 'no-such-kvasir');
    const r = await run(['--data', missing, '--out', join(tmp, 'never')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`"${missing}" does not exist`);
    expect(r.err).toContain('--data synthetic');
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });
});
