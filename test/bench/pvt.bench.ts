// Polyp-PVT (PVTv2-b2 backbone) training step (forward, structure loss on both outputs,
// backward, AdamW) at 352², batch 8, this engine vs PyTorch CPU in its own process, alternating
// one step of each per round (models.ts benchAgainstPeers). The speed issue's goal: >= 1.5x
// faster than PyTorch CPU. On a CPU driver a step takes minutes: BENCH_PVT_SIZE /
// BENCH_PVT_BATCH shrink it (same setting for both; sizes must be multiples of 32);
// BENCH_ROUNDS (default 5) as in models.ts.
import { randn, rand, gt, cast, device } from '../../engine/index.ts';
import { AdamW } from '../../engine/optim/index.ts';
import { polypPvt, polypPvtLoss } from '../../models/polyp-pvt.ts';
import { trainStep, type BenchTable } from './util.ts';
import { benchAgainstPeers, PEERS, envInt } from './models.ts';
import { join } from 'node:path';

export default async function bench(): Promise<BenchTable> {
  const size = envInt('BENCH_PVT_SIZE', 352),
    batch = envInt('BENCH_PVT_BATCH', 8);
  const model = polypPvt('b2');
  model.flattenParameters();
  const opt = new AdamW(model.parameters(), { lr: 1e-4, weightDecay: 1e-4 });
  const x = randn([batch, 3, size, size]).keep();
  const m = cast(gt(rand([batch, 1, size, size]), 0.7), 'f32').keep();
  const args = ['--model', 'pvt', '--batch', String(batch), '--size', String(size), '--warmup', '1', '--serve'];
  const table = await benchAgainstPeers({
    title: `Polyp-PVT (PVTv2-b2) train step, ${size}², batch ${batch}`,
    batch,
    peers: [
      {
        key: 'torch',
        name: 'PyTorch CPU (2 threads)',
        cmd: '/usr/bin/python3',
        args: [join(PEERS, 'torch_bench.py'), ...args],
      },
    ],
    ourStep: async () => {
      await trainStep(opt, () => polypPvtLoss(model.forward(x), m));
      await device().sync();
    },
    extra: ['One scale per step (the recipe runs three). Goal (speed issue): PyTorch time / this engine >= 1.5.'],
  });
  opt.dispose();
  model.dispose();
  x.dispose();
  m.dispose();
  return table;
}
