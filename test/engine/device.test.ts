import { describe, it, expect } from 'vitest';
import { device, tensor, add, mul, sum, tidy, Tensor, zeros, exp } from '../../engine/index.ts';
import { fillTemplate } from '../../engine/shader.ts';
import { sizeClass } from '../../engine/device.ts';
import { launch, Params } from '../../engine/ops/kernel.ts';

describe('device layer', () => {
  it('templates fail loudly on a missing or unused key', () => {
    expect(fillTemplate('a {{X}} b', { X: 1 })).toBe('a 1 b');
    expect(() => fillTemplate('a {{X}} {{Y}}', { X: 1 }, 'k')).toThrow(/k\.wgsl: placeholder \{\{Y\}\} has no value/);
    expect(() => fillTemplate('a {{X}}', { X: 1, Z: 2 }, 'k')).toThrow(/parameter 'Z' is not used/);
  });

  it('size classes waste at most 12.5% above 4 KiB', () => {
    for (const b of [1, 255, 257, 4096, 4097, 10_000, 1_000_000, 123_456_789]) {
      const s = sizeClass(b);
      expect(s).toBeGreaterThanOrEqual(b);
      if (b > 4096) expect(s / b).toBeLessThanOrEqual(1.125);
    }
  });

  it('reuses pooled buffers only after their submit completed, and reuse keeps values right', async () => {
    const dev = device();
    const before = dev.stats().allocatedBytes;
    for (let i = 0; i < 20; i++) {
      const r = tidy(() => sum(mul(tensor([1, 2, 3, 4], [4]), i)));
      expect(await r.item()).toBe(10 * i);
      r.dispose();
    }
    // 20 iterations of the same shapes reach a steady state: the pool stops growing.
    const mid = dev.stats().allocatedBytes;
    for (let i = 0; i < 20; i++) {
      const r = tidy(() => sum(mul(tensor([1, 2, 3, 4], [4]), i)));
      expect(await r.item()).toBe(10 * i);
      r.dispose();
    }
    expect(dev.stats().allocatedBytes).toBe(mid);
    expect(mid).toBeGreaterThanOrEqual(before);
  });

  it('caches one pipeline per shader text, whatever the shape', async () => {
    const dev = device();
    // Sizes that are multiples of 4 take the vec4 kernels, others the scalar ones: warm both.
    for (const k of [2, 4]) await add(zeros([k]), zeros([k])).data();
    const n = dev.stats().pipelines;
    for (const k of [3, 17, 1000, 4096]) await add(zeros([k]), zeros([k])).data();
    expect(dev.stats().pipelines).toBe(n);
  });

  it('surfaces a WGSL or validation error as an Error naming the op', async () => {
    const out = zeros([4]);
    // A binding the shader does not declare is a validation error at dispatch time.
    launch({
      op: 'bogus-op',
      shader: 'fill',
      inputs: [zeros([4])],
      outputs: [out],
      uniforms: new Params().u32({ n: 4, bits: 0 }),
      workgroups: [1],
    });
    await expect(out.data()).rejects.toThrow(/bogus-op/);
    // The device keeps working afterwards.
    expect(await sum(tensor([1, 2], [2])).item()).toBe(3);
  });

  it('stores f16 when the adapter has shader-f16', async () => {
    if (!device().hasF16) return;
    const t = Tensor.fromArray([0.5, -2, 65504, 1e-8, 3.14159], [5], 'f16');
    const back = await t.data();
    expect(Array.from(back.slice(0, 3))).toEqual([0.5, -2, 65504]);
    expect(back[4]).toBeCloseTo(3.140625, 5);
  });

  it('windows share a parent buffer at aligned offsets and outlive the parent handle', async () => {
    const parent = Tensor.fromArray(
      Array.from({ length: 256 }, (_, i) => i),
      [256],
    );
    const w = Tensor.window(parent, 256, [4, 4]);
    parent.dispose();
    expect(Array.from(await w.data())).toEqual(Array.from({ length: 16 }, (_, i) => 64 + i));
    expect(Array.from(await exp(mul(w, 0)).data())).toEqual(new Array(16).fill(1));
    expect(() => Tensor.window(w, 4, [1])).toThrow(/offset 4 is not a multiple of \d+ bytes/);
    w.dispose();
  });

  it('a disposed tensor is an error naming the op and the shape', () => {
    const t = zeros([2, 3]);
    t.dispose();
    expect(() => add(t, t)).toThrow(/add: input tensor \[2, 3\].*disposed/);
  });

  it(
    'DEBUG=1 prints each flush with its ops, and times kernels with timestamp queries when the adapter ' + 'has them',
    async () => {
      const dev = device();
      const lines: string[] = [];
      const log = dev as unknown as { log: (l: string) => void };
      const prevLog = log.log;
      log.log = (l: string) => lines.push(l);
      dev.debug = 1;
      try {
        await sum(exp(zeros([1000]))).data();
        await dev.sync();
        await new Promise((r) => setTimeout(r, 50));
        await dev.sync();
      } finally {
        dev.debug = 0;
        log.log = prevLog;
      }
      expect(lines.some((l) => /^\[flush\] submit \d+: \d+ dispatches \(.*exp x1/.test(l))).toBe(true);
      if (!dev.hasTimestamps) return;
      expect(lines.some((l) => /^\[gpu\] exp \d+\.\d us$/.test(l))).toBe(true);
      expect(dev.timingReport()).toMatch(/exp\s+\d+ x/);
    },
  );
});
