// EVA-02-Ti training step (forward, cross-entropy, backward, SGD update) at 224², batch 8: this
// engine vs tfjs's WebGPU backend on the same Dawn adapter and PyTorch CPU, each peer in its own
// process, alternating one step of each engine per round (models.ts benchAgainstPeers). The speed
// issue's goal: >= 4x faster than tfjs. On a CPU driver a step takes tens of seconds:
// BENCH_VIT_SIZE / BENCH_VIT_BATCH shrink it (same setting for all); BENCH_ROUNDS (default 5) and
// BENCH_PEERS (tfjs,torch) as in models.ts.
import { tensor, crossEntropy, randn, device } from '../../engine/index.ts';
import { SGD } from '../../engine/optim/index.ts';
import { Eva02, eva02Config } from '../../models/eva02.ts';
import { trainStep, type BenchTable } from './util.ts';
import { benchAgainstPeers, PEERS, envInt } from './models.ts';
import { join } from 'node:path';

export default async function bench(): Promise<BenchTable> {
  const size = envInt('BENCH_VIT_SIZE', 224),
    batch = envInt('BENCH_VIT_BATCH', 8);
  const args = ['--batch', String(batch), '--size', String(size), '--warmup', '1', '--serve'];
  const model = new Eva02(eva02Config('ti', { numClasses: 10, imgSize: size, refFeatShape: [16, 16] }));
  model.flattenParameters();
  const opt = new SGD(model.parameters(), { lr: 1e-3 });
  const x = randn([batch, 3, size, size]).keep();
  const y = tensor(
    Array.from({ length: batch }, (_, i) => i % 10),
    [batch],
    'i32',
  ).keep();
  const table = await benchAgainstPeers({
    title: `EVA-02-Ti train step, ${size}², batch ${batch}`,
    batch,
    peers: [
      {
        key: 'tfjs',
        name: 'tfjs 4.22 WebGPU, same Dawn adapter',
        cmd: process.execPath,
        args: ['--import', 'tsx', join(PEERS, 'tfjs-vit-cli.ts'), ...args],
      },
      {
        key: 'torch',
        name: 'PyTorch CPU (2 threads)',
        cmd: '/usr/bin/python3',
        args: [join(PEERS, 'torch_bench.py'), '--model', 'vit', ...args],
      },
    ],
    ourStep: async () => {
      await trainStep(opt, () => crossEntropy(model.forward(x), y));
      await device().sync();
    },
    extra: ['Goal (speed issue): tfjs time / this engine >= 4.'],
  });
  opt.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return table;
}
