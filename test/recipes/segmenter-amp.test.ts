// --amp, --loss-scale and --checkpoint-blocks in the EndoKED segmenter (recipes/endoked/05-segmenter.ts),
// on a tiny synthetic polyp set (Polyp-PVT-µ at 64², batch 4; the three rates all round to 64 there):
// recomputing the backbone's blocks changes no loss and no weight; mixed precision trains (finite,
// falling loss, really computed in f16); an overflow the scaler skips is counted and printed per
// rate; a resumed run continues with the saved loss scale; a NaN loss under --amp still stops the
// run before a checkpoint; the drivers (06-refine, run-all) take the flags and pass them on; a bad
// --loss-scale fails at start naming the flag.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { initNode } from '../../runtime-node/index.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { checkStep } from '../../runtime-node/run-guard.ts';
import { TrainStep, trainStepArgs, type StepResult } from '../../runtime-node/amp.ts';
import { POLYP_PVT } from '../../models/polyp-pvt.ts';
import { FLAGS as SEGMENTER_FLAGS, main as segmenter } from '../../recipes/endoked/05-segmenter.ts';
import { FLAGS as REFINE_FLAGS } from '../../recipes/endoked/06-refine.ts';
import { FLAGS as RUN_ALL_FLAGS } from '../../recipes/endoked/run-all.ts';
import { buildModel } from '../../recipes/endoked/segmenter-train.ts';
import type { SegSettings } from '../../recipes/endoked/segmenter-data.ts';
import { runScript, captured } from '../helpers.ts';

const RECIPE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes', 'endoked', '05-segmenter.ts');

type Scaler = { scale: number; growthTracker: number; skippedSteps: number };
const trainState = (dir: string) =>
  JSON.parse(parseSafetensors(new Uint8Array(readFileSync(join(dir, 'state.safetensors')))).metadata!.train_state) as {
    extra: { step: number; losses: number[]; scaler?: Scaler };
  };
const losses = (dir: string) => trainState(dir).extra.losses;
const maxAbsDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

describe('--amp, --loss-scale, --checkpoint-blocks in the segmenter: flags and rules', () => {
  it('05, 06-refine and run-all take the flags; the drivers pass them on unchanged', () => {
    const argv = ['--amp', '--loss-scale', '1024', '--checkpoint-blocks'];
    for (const flags of [SEGMENTER_FLAGS, REFINE_FLAGS, RUN_ALL_FLAGS]) {
      const f = flags.parse(argv)!;
      expect([f.amp, f.lossScale, f.checkpointBlocks]).toEqual([true, 1024, true]);
      expect(trainStepArgs(f)).toEqual(argv);
      expect(trainStepArgs(flags.parse([])!)).toEqual([]);
    }
  });

  it('a bad --loss-scale fails at start, naming the flag', async () => {
    for (const v of ['0', '0.5', '-1', 'x'])
      await expect(segmenter(['--data', 'synthetic', '--amp', '--loss-scale', v]), v).rejects.toThrow(
        new RegExp(`--loss-scale "${v}" is (out of range|not a number)`),
      );
  });

  it("each rate's guard: a NaN loss stops; inf gradients stop unless the scaler skipped them at S > 1", () => {
    const t = new TrainStep({ amp: true, lossScale: 65536 }, true, () => undefined);
    const r = (o: Partial<StepResult>): StepResult => ({ loss: 1, norm: 2, skipped: false, scale: 65536, ...o });
    const check =
      (...rs: StepResult[]) =>
      () =>
        checkStep(4, Object.assign({}, ...rs.map((x, k) => t.guarded(x, ` at rate ${[0.75, 1, 1.25][k]}`))));
    expect(check(r({}), r({ norm: Infinity, skipped: true }), r({ scale: 32768 }))).not.toThrow();
    expect(check(r({}), r({ norm: Infinity, skipped: true, scale: 1 }))).toThrow(
      /gradient norm at rate 1 is Infinity at step 4/,
    );
    expect(check(r({}), r({}), r({ loss: NaN, norm: NaN, skipped: true }))).toThrow(
      /loss at rate 1.25 is NaN at step 4: no checkpoint/,
    );
  });

  it('--checkpoint-blocks reaches the PVTv2 backbone and leaves the shared preset alone', async () => {
    const s = { seed: 0, modelPreset: 'mu', lr: 1e-4, weightDecay: 1e-4, scaledSizes: [64], batchSize: 1 };
    const build = (checkpointBlocks: boolean) =>
      captured(async () => buildModel({ ...s, checkpointBlocks } as SegSettings)).then((c) => c.result);
    const [on, off] = [await build(true), await build(false)];
    expect(on.model.backbone.config.checkpointBlocks).toBe(true);
    expect(off.model.backbone.config.checkpointBlocks).toBeUndefined();
    expect(POLYP_PVT.mu.backbone.checkpointBlocks).toBeUndefined();
    for (const m of [on, off]) {
      m.optimizer.dispose();
      m.model.dispose();
    }
  });
});

describe('--amp and --checkpoint-blocks in the segmenter recipe', () => {
  let tmp: string, data: string;
  let hasF16 = false;
  const args = (out: string, steps: number, ...more: string[]) => [
    ...['--data', data, '--size', '64', '--batch-size', '4', '--lr', '1e-3'],
    ...['--steps', String(steps), '--out', join(tmp, out), ...more],
  ];
  beforeAll(async () => {
    hasF16 = (await initNode()).hasF16;
    tmp = mkdtempSync(join(tmpdir(), 'segmenter-amp-'));
    data = join(tmp, 'data');
    await writePolypSet(data, 20, { seed: 3, width: 64, height: 64 }); // 18 train / 2 test
  }, 60_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('--checkpoint-blocks gives the losses and weights of a run without it', async () => {
    await captured(() => segmenter(args('f32', 4)));
    await captured(() => segmenter(args('ckpt', 4, '--checkpoint-blocks')));
    // Measured: identical to the last bit (max |Δ| 0 over the 4 steps, and weights.safetensors
    // byte for byte): the recomputed blocks run the same kernels and replay the drop-path draws.
    const [a, b] = [losses(join(tmp, 'f32')), losses(join(tmp, 'ckpt'))];
    expect(maxAbsDiff(a, b), `${a} vs ${b}`).toBe(0);
    const weights = (dir: string) => readFileSync(join(tmp, dir, 'weights.safetensors'));
    expect(weights('ckpt').equals(weights('f32'))).toBe(true); // the saved config leaves the flag out too
  }, 120_000);

  it('--amp trains: finite, falling loss computed in f16 (or f32 with a note without shader-f16)', async () => {
    const { lines } = await captured(() => segmenter(args('amp', 6, '--amp')));
    const [f32, amp] = [losses(join(tmp, 'f32')), losses(join(tmp, 'amp'))];
    expect(amp.every(Number.isFinite), amp.join(' ')).toBe(true);
    if (!hasF16) {
      expect(lines).toContain('--amp is off: this adapter lacks shader-f16 (no f16 kernels), so the run trains in f32');
      expect(amp.slice(0, 4)).toEqual(f32);
      return;
    }
    expect(lines).toContain('--amp: f16 matmuls and convolutions under autocast, loss scale from 65536');
    // With convolutions in f16 the first rates of step 0 overflow at the default scale 2^16 (as
    // PyTorch's GradScaler often does on its first steps): measured on data seeds 3/4/5, 2/1/2
    // skipped rates. Every skip is printed, counted in the summary and the state, and halves S.
    const skipped = lines.filter((l) => l.includes('overflowed')).length;
    expect(lines.at(-1)).toBe(`amp: ${skipped} overflow step(s) skipped`);
    expect(trainState(join(tmp, 'amp')).extra.scaler).toMatchObject({
      scale: 65536 / 2 ** skipped,
      skippedSteps: skipped,
    });
    // Measured on data seeds 3/4/5 (rate-1 loss, step 0 -> mean of steps 4-5): 3.559 -> 2.862,
    // 3.420 -> 2.804, 3.497 -> 2.870 (drops 0.70 / 0.62 / 0.63; f32 alike); 0.3 leaves room.
    expect((amp[4] + amp[5]) / 2, amp.join(' ')).toBeLessThan(amp[0] - 0.3);
    // The run really differs from f32 (f16 kernels, skipped first rates: max |Δ| over the 4 steps
    // of the f32 run 0.23 / 0.21 / 0.14), yet follows it: |Δ| of the mean of steps 2-3 measured
    // 0.066 / 0.045 / 0.100.
    expect(maxAbsDiff(amp.slice(0, 4), f32)).toBeGreaterThan(0);
    expect(Math.abs((amp[2] + amp[3]) / 2 - (f32[2] + f32[3]) / 2), `${amp} vs ${f32}`).toBeLessThan(0.2);
    expect(trainState(join(tmp, 'f32')).extra.scaler).toBeUndefined();
  }, 120_000);

  it('skips overflowing rates (counted, printed) and a resumed run goes on with the saved scale', async ({ skip }) => {
    if (!hasF16) skip();
    // At 2^20 the scaled f16 backward overflows: the scale halves per skipped rate, each skip is
    // printed with the scale it happened at, and the state holds the count and the last scale.
    const first = await captured(() => segmenter(args('ovf', 1, '--amp', '--loss-scale', String(2 ** 20))));
    const note = (rate: number, scale: number, n: number) =>
      `step 0 (rate ${rate}): gradients overflowed at loss scale ${scale}: step skipped (${n} so far), ` +
      `scale now ${scale / 2}`;
    const skips = first.lines.filter((l) => l.includes('overflowed'));
    expect(skips.length).toBeGreaterThan(0);
    const rates = skips.map((l) => Number(/\(rate ([\d.]+)\)/.exec(l)![1]));
    expect(skips).toEqual(rates.map((r, i) => note(r, 2 ** (20 - i), i + 1)));
    const k = skips.length,
      saved = 2 ** (20 - k);
    const dir = join(tmp, 'ovf');
    expect(trainState(dir).extra).toMatchObject({ step: 1, scaler: { scale: saved, skippedSteps: k } });
    // Resumed with more steps and the same flags: the scale and the count go on from the state (a
    // fresh scaler would say scale 2^20, skipped 0).
    const again = await captured(() => segmenter(args('ovf', 3, '--amp', '--loss-scale', String(2 ** 20))));
    expect(again.lines).toContain(
      `resumed from ${join(dir, 'state.safetensors')} at step 1 scale ${saved} skipped ${k}`,
    );
    const more = again.lines.filter((l) => l.includes('overflowed')).length;
    const end = trainState(dir).extra;
    expect(end.step).toBe(3);
    expect(end.scaler).toMatchObject({ scale: saved / 2 ** more, skippedSteps: k + more });
    expect(end.losses.every(Number.isFinite), end.losses.join(' ')).toBe(true);
  }, 120_000);

  it('a diverging run under --amp stops at its NaN loss before a checkpoint, keeping the last good one', async () => {
    // As a command (the stop is an exit; a run that threw in this process would leave its Ctrl-C
    // handler behind). lr 1e6 with weight decay 1 blows the weights up at the first rate; measured:
    // the f16 forward of the next rates gives a NaN loss at step 1 (from scratch: at step 0).
    const dir = join(tmp, 'diverge');
    const first = await runScript(RECIPE, args('diverge', 1, '--amp'));
    expect(first.code, first.err).toBe(0);
    const state = readFileSync(join(dir, 'state.safetensors'));
    const r = await runScript(RECIPE, [
      ...args('diverge', 3, '--amp', '--lr', '1e6', '--weight-decay', '1', '--ckpt-every', '1'),
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /loss at rate [\d.]+ is (NaN|-?Infinity).* at step 1: no checkpoint was written for this step, so the last good/,
    );
    expect(readFileSync(join(dir, 'state.safetensors')).equals(state)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  }, 120_000);
});
