// Mixed precision end to end: a µ EVA-02 and a µ Polyp-PVT trained from the same seed and weights
// in f32 and under autocast + GradScaler follow the same loss curve. Measured: the mean over the
// last half of the steps of |loss_amp - loss_f32| / loss_f32, which must stay under 5%; and the
// amp run must actually learn (its loss falls). `npm run bench amp` runs 200 steps.
import { describe, it, expect } from 'vitest';
import { device } from '../../engine/index.ts';
import { trainMu, meanRelDiff, mean, type AmpModel, type AmpRunOptions } from '../bench/amp-train.ts';

const CASES: [AmpModel, AmpRunOptions][] = [
  ['eva02', { steps: 24, size: 32, batch: 4, batches: 4 }],
  ['polyp-pvt', { steps: 16, size: 64, batch: 2, batches: 4 }],
];

describe('autocast training', () => {
  for (const [kind, o] of CASES) {
    it(`${kind}: f16 loss curve within 5% of f32 over the last ${o.steps / 2} of ${o.steps} steps`, async () => {
      expect(device().hasF16).toBe(true);
      const f32 = await trainMu(kind, false, o);
      const amp = await trainMu(kind, true, o);
      const half = o.steps / 2;
      const rel = meanRelDiff(f32.losses, amp.losses, half);
      console.log(
        `${kind}: mean |Δloss|/loss over last ${half} = ${(100 * rel).toFixed(3)}%; ` +
          `f32 ${f32.losses[0].toFixed(4)} -> ${f32.losses.at(-1)!.toFixed(4)}, ` +
          `amp ${amp.losses[0].toFixed(4)} -> ${amp.losses.at(-1)!.toFixed(4)}; ` +
          `skipped ${amp.skipped}; ms/step f32 ${f32.msPerStep.toFixed(0)} amp ${amp.msPerStep.toFixed(0)}`,
      );
      expect(rel).toBeLessThan(0.05);
      expect(rel).toBeGreaterThan(0); // the amp run really computed in f16
      expect(mean(amp.losses.slice(-4))).toBeLessThan(mean(amp.losses.slice(0, 4)));
    }, 120_000);
  }
});
