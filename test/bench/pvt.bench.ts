// Polyp-PVT (PVTv2-b2 backbone) training step (forward, structure loss on both outputs,
// backward, AdamW) at 352², batch 8, this engine vs PyTorch CPU in one run. On a CPU driver a
// step takes minutes: BENCH_PVT_SIZE / BENCH_PVT_BATCH / BENCH_PVT_STEPS shrink it (same setting
// for both; sizes must be multiples of 32).
import { tidy, backward, randn, rand, gt, cast } from '../../engine/index.ts';
import { AdamW } from '../../engine/optim/index.ts';
import { polypPvt, polypPvtLoss } from '../../models/polyp-pvt.ts';
import { timeit, fmtNum, type BenchTable } from './util.ts';
import { runPeer, PEERS, envInt } from './models.ts';
import { join } from 'node:path';

export default async function bench(): Promise<BenchTable> {
  const size = envInt('BENCH_PVT_SIZE', 352),
    batch = envInt('BENCH_PVT_BATCH', 8),
    steps = envInt('BENCH_PVT_STEPS', 2);
  const model = polypPvt('b2');
  model.flattenParameters();
  const opt = new AdamW(model.parameters(), { lr: 1e-4, weightDecay: 1e-4 });
  const x = randn([batch, 3, size, size]).keep();
  const m = cast(gt(rand([batch, 1, size, size]), 0.7), 'f32').keep();
  const step = async () => {
    const l = tidy(() => {
      const loss = polypPvtLoss(model.forward(x), m);
      backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss;
    });
    await l.item();
    l.dispose();
  };
  const ours = await timeit(step, { warmup: 1, iters: steps });
  opt.dispose();
  model.dispose();
  x.dispose();
  m.dispose();
  const torch = await runPeer('/usr/bin/python3', [
    join(PEERS, 'torch_bench.py'),
    '--model',
    'pvt',
    '--batch',
    String(batch),
    '--size',
    String(size),
    '--steps',
    String(steps),
    '--warmup',
    '1',
  ]);
  return {
    title: `Polyp-PVT (PVTv2-b2) train step, ${size}², batch ${batch}`,
    columns: ['engine', 's/step (median)', 'images/s', 'time vs this engine', 'note'],
    rows: [
      ['this engine (WebGPU)', fmtNum(ours / 1000, 2), fmtNum((batch * 1000) / ours, 2), '1.00x', ''],
      [
        'PyTorch CPU (2 threads)',
        fmtNum(torch.msPerStep / 1000, 2),
        fmtNum((batch * 1000) / torch.msPerStep, 2),
        fmtNum(torch.msPerStep / ours, 2) + 'x',
        torch.error ?? '',
      ],
    ],
    notes: [`Median of ${steps} timed steps after 1 warm-up each; one scale per step (the recipe runs three).`],
  };
}
