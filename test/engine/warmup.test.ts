// Warm-up: a dry forward names the kernels a model needs, they compile with
// createComputePipelineAsync, and the first real forward then compiles no pipeline at all.
import { describe, it, expect } from 'vitest';
import {
  device,
  tensor,
  warmup,
  Linear,
  LayerNorm,
  conv2d,
  gelu,
  softmax,
  relu,
  reshape,
  narrow,
  type Tensor,
} from '../../engine/index.ts';
import { expectClose } from '../helpers.ts';

describe('warm-up', () => {
  it('precompiles every pipeline of a forward: the first real forward compiles none and is right', async () => {
    const fc = new Linear(12, 8),
      norm = new LayerNorm(8);
    const w = tensor(
      Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => ((i % 7) - 3) / 10),
      [4, 3, 3, 3],
    ).keep();
    const x = tensor(
      Array.from({ length: 2 * 3 * 5 * 5 }, (_, i) => Math.sin(i)),
      [2, 3, 5, 5],
    ).keep();
    const forward = (): Tensor => {
      const y = relu(conv2d(x, w, null, { padding: 1 })); // [2, 4, 5, 5]
      const h = gelu(fc.forward(narrow(reshape(y, [2, 4, 25]), 2, 0, 12))); // [2, 4, 8]
      return softmax(norm.forward(h), -1);
    };
    const dev = device();
    const before = dev.stats();
    const compiled = await warmup(forward);
    const warmed = dev.stats();
    expect(compiled).toBeGreaterThanOrEqual(5);
    expect(warmed.compiles.async - before.compiles.async).toBe(compiled);
    expect(warmed.compiles.sync).toBe(before.compiles.sync); // the dry run compiled nothing synchronously
    expect(warmed.liveBuffers).toBe(before.liveBuffers); // and freed what it made

    const y = forward();
    const got = await y.data();
    expect(dev.stats().compiles.sync).toBe(warmed.compiles.sync);
    expect(await warmup(forward)).toBe(0); // all cached now
    // The warmed pipelines compute what a cold device would: rows of a softmax sum to one and
    // match a second forward.
    const again = forward();
    expectClose(await again.data(), got, 'second forward', 0, 0);
    const probs = new Float32Array(got);
    const rows = Array.from({ length: 8 }, (_, r) => probs.slice(r * 8, r * 8 + 8).reduce((a, b) => a + b, 0));
    expectClose(rows, Array(8).fill(1), 'softmax rows', 1e-5, 1e-5);
    for (const t of [y, again, x, w]) t.dispose();
    fc.dispose();
    norm.dispose();
  });

  it('compiles a listed kernel, and a bad one fails naming the op and shader', async () => {
    const dev = device();
    const n = await warmup([{ op: 'fill', shader: 'fill', params: { T: 'u32' } }]);
    expect(n).toBeLessThanOrEqual(1);
    await expect(warmup([{ op: 'broken', shader: 'fill', params: { T: 'no_such_type' } }])).rejects.toThrow(
      /broken \(fill\.wgsl\): pipeline compile failed: .*no_such_type/s,
    );
    await dev.sync().catch(() => undefined);
  });
});
