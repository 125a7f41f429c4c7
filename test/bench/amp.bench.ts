// `npm run bench amp`: µ EVA-02 and µ Polyp-PVT trained 200 steps on synthetic data in f32 and
// under autocast + GradScaler, same seed and weights (amp-train.ts). Prints each curve's start,
// end and last-50 mean; the mean per-step |Δloss| / loss_f32 and the gap of the last-50 means;
// skipped steps; and the median step time ratio amp / f32 on this adapter (on a CPU driver f16 is
// emulated: the ratio there says nothing of a GPU). A control f32 run with inputs perturbed by one
// f16 rounding shows how far two trajectories drift from a perturbation of that size alone.
// A second table times conv2d in f32 and in f16 on conv.bench.ts's shapes (halfPrecisionTable).
// BENCH_AMP_STEPS / BENCH_AMP_EVA_SIZE / BENCH_AMP_PVT_SIZE / BENCH_AMP_BATCH change the run.
import { device } from '../../engine/index.ts';
import { fmtNum, type BenchTable } from './util.ts';
import { envInt } from './models.ts';
import { trainMu, meanRelDiff, mean, type AmpModel, type AmpRunOptions } from './amp-train.ts';
import { halfPrecisionTable } from './conv.bench.ts';

export default async function bench(): Promise<BenchTable[]> {
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
    // Control: f32 again with each input pixel scaled by 1 +- 2^-11 (one f16 rounding; random signs,
    // since a uniform scale would be undone by the LayerNorms): how far two f32 trajectories drift
    // apart from a perturbation of that size alone.
    const ctl = await trainMu(kind, false, { ...o, perturb: 2 ** -11, onStep: progress('f32 control') });
    const gap = (a: number[], b: number[]) =>
      Math.abs(mean(a.slice(-tail)) - mean(b.slice(-tail))) / mean(b.slice(-tail));
    const curve = (l: number[]) =>
      `${fmtNum(l[0])} → ${fmtNum(l.at(-1)!)} (last ${tail}: ${fmtNum(mean(l.slice(-tail)))})`;
    rows.push([
      `${kind} µ ${o.size}², batch ${o.batch}, ${steps} steps`,
      curve(f32.losses),
      curve(amp.losses),
      `${(100 * meanRelDiff(f32.losses, amp.losses, tail)).toFixed(2)}% ` +
        `(control ${(100 * meanRelDiff(f32.losses, ctl.losses, tail)).toFixed(2)}%)`,
      `${(100 * gap(amp.losses, f32.losses)).toFixed(2)}% (control ${(100 * gap(ctl.losses, f32.losses)).toFixed(2)}%)`,
      `${amp.skipped} (scale ${amp.finalScale})`,
      `${fmtNum(f32.msPerStep)} / ${fmtNum(amp.msPerStep)} = ${(amp.msPerStep / f32.msPerStep).toFixed(2)}`,
    ]);
  }
  const curves: BenchTable = {
    title: `Mixed precision: f32 vs autocast-f16 training curves (${device().adapterName})`,
    columns: [
      'run',
      'f32 loss start → end',
      'amp loss start → end',
      `mean |Δloss|/loss per step, last ${tail}`,
      `|Δ mean loss| / mean loss, last ${tail}`,
      'amp skipped steps',
      'ms/step f32 / amp = ratio',
    ],
    rows,
    notes: [
      'Same seed, weights and data; amp = matmuls (Linear, attention) and convolutions (forward, dx, dW) on ' +
        'f16 operands with f32 accumulation, f32 softmax/norms/losses, f32 master weights, dynamic loss ' +
        'scaling (init 2^16). ' +
        'control: a second f32 run with each input pixel scaled by 1 ± 2^-11 (random signs), ' +
        'the size of one f16 rounding.',
    ],
  };
  return [curves, await halfPrecisionTable()];
}
