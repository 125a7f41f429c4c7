// `npm run bench amp`: µ EVA-02 and µ Polyp-PVT trained 200 steps on synthetic data in f32 and
// under autocast + GradScaler, same seed and weights (amp-train.ts). Prints each curve's start,
// end and last-50 mean, the mean |Δloss| / loss_f32 over the last 50 steps, skipped steps, and the
// median step time ratio amp / f32 on this adapter (on a CPU driver f16 is emulated: the ratio
// there says nothing of a GPU). BENCH_AMP_STEPS / BENCH_AMP_EVA_SIZE / BENCH_AMP_PVT_SIZE /
// BENCH_AMP_BATCH change the run.
import { device } from '../../engine/index.ts';
import { fmtNum, type BenchTable } from './util.ts';
import { envInt } from './models.ts';
import { trainMu, meanRelDiff, mean, type AmpModel, type AmpRunOptions } from './amp-train.ts';

export default async function bench(): Promise<BenchTable> {
  const steps = envInt('BENCH_AMP_STEPS', 200),
    batch = envInt('BENCH_AMP_BATCH', 4),
    tail = Math.min(50, steps);
  const runs: [AmpModel, AmpRunOptions][] = [
    ['eva02', { steps, size: envInt('BENCH_AMP_EVA_SIZE', 32), batch, batches: 16 }],
    ['polyp-pvt', { steps, size: envInt('BENCH_AMP_PVT_SIZE', 64), batch: Math.max(1, batch / 2), batches: 16 }],
  ];
  const rows: string[][] = [];
  for (const [kind, o] of runs) {
    const progress = (mode: string) => (i: number, loss: number) => {
      if ((i + 1) % 25 === 0)
        console.error(`[amp bench] ${kind} ${mode} step ${i + 1}/${steps} loss ${loss.toFixed(4)}`);
    };
    const f32 = await trainMu(kind, false, { ...o, onStep: progress('f32') });
    const amp = await trainMu(kind, true, { ...o, onStep: progress('amp') });
    const curve = (l: number[]) =>
      `${fmtNum(l[0])} → ${fmtNum(l.at(-1)!)} (last ${tail}: ${fmtNum(mean(l.slice(-tail)))})`;
    rows.push([
      `${kind} µ ${o.size}², batch ${o.batch}, ${steps} steps`,
      curve(f32.losses),
      curve(amp.losses),
      `${(100 * meanRelDiff(f32.losses, amp.losses, tail)).toFixed(2)}%`,
      `${amp.skipped} (scale ${amp.finalScale})`,
      `${fmtNum(f32.msPerStep)} / ${fmtNum(amp.msPerStep)} = ${(amp.msPerStep / f32.msPerStep).toFixed(2)}`,
    ]);
  }
  return {
    title: `Mixed precision: f32 vs autocast-f16 training curves (${device().adapterName})`,
    columns: [
      'run',
      'f32 loss start → end',
      'amp loss start → end',
      `mean |Δloss|/loss, last ${tail}`,
      'amp skipped steps',
      'ms/step f32 / amp = ratio',
    ],
    rows,
    notes: [
      'Same seed, weights and data; amp = matmuls (Linear, attention) on f16 operands with f32 accumulation, ' +
        'f32 softmax/norms/losses/convs, f32 master weights, dynamic loss scaling (init 2^16).',
    ],
  };
}
