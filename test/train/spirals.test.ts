// End to end: a 2-64-64-2 tanh MLP trained with Adam on a seeded two-spirals set (200 points,
// 2 turns each) reaches 100% train accuracy within a bounded number of full-batch steps.
// Exercises Linear, autograd through matmul/add/tanh, crossEntropy, the fused Adam step on
// flattened parameters, zeroGrad and tidy, end to end.
import { describe, it, expect } from 'vitest';
import { Tensor, tensor, tidy, tanh, backward, manualSeed, device } from '../../engine/index.ts';
import { crossEntropy } from '../../engine/ops/losses.ts';
import { argmax } from '../../engine/ops/arg-reduce.ts';
import { Module } from '../../engine/nn/module.ts';
import { Linear } from '../../engine/nn/layers.ts';
import { Adam } from '../../engine/optim/index.ts';
import { hostRandom } from '../helpers.ts';

function twoSpirals(perClass: number, turns: number, seed: number): { x: number[]; y: number[] } {
  const r = hostRandom(seed);
  const x: number[] = [];
  const y: number[] = [];
  for (let c = 0; c < 2; c++) {
    for (let i = 0; i < perClass; i++) {
      const t = i / perClass;
      const radius = 0.05 + 0.95 * t;
      const theta = turns * 2 * Math.PI * t + c * Math.PI;
      x.push(radius * Math.cos(theta) + 0.01 * (r() - 0.5), radius * Math.sin(theta) + 0.01 * (r() - 0.5));
      y.push(c);
    }
  }
  return { x, y };
}

class MLP extends Module {
  fc1 = new Linear(2, 64);
  fc2 = new Linear(64, 64);
  fc3 = new Linear(64, 2);
  forward(x: Tensor): Tensor {
    return this.fc3.forward(tanh(this.fc2.forward(tanh(this.fc1.forward(x)))));
  }
}

describe('two spirals', () => {
  it('a small MLP trained with Adam reaches 100% train accuracy', async () => {
    const base = device().liveBuffers;
    manualSeed(0);
    const { x: xs, y: ys } = twoSpirals(100, 2, 1);
    const x = tensor(xs, [200, 2]);
    const y = tensor(ys, [200], 'i32');
    const model = new MLP().flattenParameters();
    const opt = new Adam(model.parameters(), { lr: 0.01 });
    const MAX_STEPS = 1500;
    let acc = 0,
      step = 0,
      firstLoss = NaN,
      loss = NaN;
    while (step < MAX_STEPS && acc < 1) {
      const [l, pred] = tidy(() => {
        const logits = model.forward(x);
        const lossT = crossEntropy(logits, y);
        backward(lossT);
        opt.step();
        opt.zeroGrad();
        return [lossT, argmax(logits, 1)];
      });
      step++;
      if (step === 1 || step % 25 === 0) {
        loss = await l.item();
        if (step === 1) firstLoss = loss;
        const p = await pred.data();
        acc = Array.from(p).filter((v, i) => v === ys[i]).length / ys.length;
      }
      l.dispose();
      pred.dispose();
    }
    expect(acc, `accuracy after ${step} steps (loss ${firstLoss} -> ${loss})`).toBe(1);
    expect(loss).toBeLessThan(firstLoss);
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
    expect(device().liveBuffers).toBe(base);
  });
});
