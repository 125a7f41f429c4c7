// Deterministic ownership: after each training step (forward, loss, backward, clipping,
// optimizer step, EMA update, zeroGrad, all inside tidy()) the device holds exactly the buffers
// it held before the first step, for 100 steps, with flattened and with unflattened parameters.
import { describe, it, expect } from 'vitest';
import { Tensor, tensor, tidy, gelu, backward, manualSeed, device } from '../../engine/index.ts';
import { crossEntropy } from '../../engine/ops/losses.ts';
import { Module } from '../../engine/nn/module.ts';
import { Linear, LayerNorm, Dropout } from '../../engine/nn/layers.ts';
import { AdamW, ModelEma, clipGradNorm, paramGroupsWeightDecay, cosineLr } from '../../engine/optim/index.ts';
import { randomArray } from '../helpers.ts';

class MLP extends Module {
  fc1 = new Linear(6, 32);
  norm = new LayerNorm(32);
  drop = new Dropout(0.1);
  fc2 = new Linear(32, 3);
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.drop.forward(gelu(this.norm.forward(this.fc1.forward(x)))));
  }
}

describe('memory', () => {
  for (const flat of [true, false]) {
    it(`live buffers at the baseline after each of 100 steps (${flat ? 'flat' : 'separate'} parameters)`, async () => {
      const start = device().liveBuffers;
      manualSeed(0);
      const x = tensor(randomArray(16 * 6, 3), [16, 6]);
      const y = tensor(
        Array.from({ length: 16 }, (_, i) => i % 3),
        [16],
        'i32',
      );
      const model = new MLP();
      if (flat) model.flattenParameters();
      const opt = new AdamW(paramGroupsWeightDecay(model.namedParameters(), 0.05), { lr: 1e-3 });
      const ema = new ModelEma(model, { decay: 0.99 });
      const baseline = device().liveBuffers;
      const counts: number[] = [];
      let last = NaN;
      for (let step = 0; step < 100; step++) {
        const loss = tidy(() => {
          opt.setLr(cosineLr(step, { baseLr: 1e-3, totalSteps: 100, warmupSteps: 10 }));
          const l = crossEntropy(model.forward(x), y);
          backward(l);
          clipGradNorm(model.parameters(), 1.0);
          opt.step();
          ema.update(model);
          opt.zeroGrad();
          return l;
        });
        if (step % 20 === 19) last = await loss.item();
        loss.dispose();
        counts.push(device().liveBuffers);
      }
      expect(Number.isFinite(last)).toBe(true);
      expect(
        counts.filter((c) => c !== baseline),
        `live buffers per step (baseline ${baseline})`,
      ).toEqual([]);
      ema.dispose();
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
      expect(device().liveBuffers).toBe(start);
    });
  }
});
