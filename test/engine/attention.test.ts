import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Tensor, tensor, tidy, device, backward, requiresGrad, sum, mul, noGrad } from '../../engine/index.ts';
import {
  scaledDotProductAttention,
  attentionReference,
  setAttentionTraining,
  attentionTrainingPath,
  type AttentionOptions,
} from '../../engine/ops/attention.ts';
import type { Dispatch } from '../../engine/device.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, expectClose, randomArray } from '../helpers.ts';

type Attn = (q: Tensor, k: Tensor, v: Tensor, o?: AttentionOptions) => Tensor;

// Training may take the unfused path by adapter; these tests are about the fused kernels.
beforeAll(() => setAttentionTraining('fused'));
afterAll(() => setAttentionTraining('auto'));

describe('attention against PyTorch', () => {
  for (const c of loadGolden('attention_norm').filter((x) => x.name.startsWith('attn_'))) {
    for (const [label, fn] of [
      ['fused', scaledDotProductAttention],
      ['reference', attentionReference],
    ] as [string, Attn][]) {
      it(`${c.name} (${label})`, async () => {
        const a = c.args as { mask?: { shape: number[]; data: number[] }; scale?: number };
        const mask = a.mask ? tensor(a.mask.data, a.mask.shape) : null;
        await checkGolden(c, ([q, k, v]) => fn(q, k, v, { mask, scale: a.scale }));
        mask?.dispose();
      });
    }
  }
});

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Output and every input gradient of fused and reference attention on the same inputs. */
async function compare(
  shapes: { q: number[]; k: number[]; v: number[] },
  maskShape: number[] | null,
  seed: number,
  maskValues?: number[],
) {
  const run = (fn: Attn) =>
    tidy(() => {
      const [q, k, v] = [shapes.q, shapes.k, shapes.v].map((s, i) =>
        requiresGrad(tensor(randomArray(numel(s), seed + i), s)),
      );
      const mask = maskShape ? tensor(maskValues ?? randomArray(numel(maskShape), seed + 3, -3, 1), maskShape) : null;
      const o = fn(q, k, v, { mask });
      backward(sum(mul(o, tensor(randomArray(o.size, seed + 4), o.shape))));
      return [o, q.grad!, k.grad!, v.grad!].map((t) => t.keep());
    });
  const f = run(scaledDotProductAttention);
  const r = run(attentionReference);
  const names = ['out', 'dq', 'dk', 'dv'];
  for (let i = 0; i < 4; i++) expectClose(await f[i].data(), await r[i].data(), names[i], 3e-5, 1e-3);
  for (const t of [...f, ...r]) t.dispose();
}

const qkv = (b: number, h: number, lq: number, lk: number, d: number, dv = d) => ({
  q: [b, h, lq, d],
  k: [b, h, lk, d],
  v: [b, h, lk, dv],
});

describe('fused attention equals the reference (forward and all gradients)', () => {
  it('L = 257, D = 32, 2 heads', async () => {
    await compare(qkv(1, 2, 257, 257, 32), null, 10);
  });
  it('L = 1024, D = 16', async () => {
    await compare(qkv(1, 1, 1024, 1024, 16), null, 20);
  });
  it('D = Dv = 128, Lq 70 != Lk 20', async () => {
    await compare(qkv(1, 1, 70, 20, 128), null, 30);
  });
  it('one query over 257 keys, D 64, Dv 48', async () => {
    await compare(qkv(2, 1, 1, 257, 64, 48), null, 40);
  });
  it('odd head dims (D 13, Dv 7)', async () => {
    await compare(qkv(1, 2, 9, 5, 13, 7), null, 50);
  });
  it('mask [B, 1, Lq, Lk]', async () => {
    await compare(qkv(2, 3, 7, 33, 16), [2, 1, 7, 33], 60);
  });
  it('mask [1, H, 1, 1] and [Lk]', async () => {
    await compare(qkv(1, 3, 7, 9, 16), [1, 3, 1, 1], 70);
    await compare(qkv(2, 1, 65, 9, 16), [9], 80);
  });
  it('mask with -inf entries (rows keep at least one key)', async () => {
    const lq = 7,
      lk = 19;
    const m = randomArray(lq * lk, 90, -2, 1).map((x, i) => ((i % lk) % 3 === 1 ? -Infinity : x));
    await compare(qkv(1, 2, lq, lk, 32), [lq, lk], 91, m);
  });
});

describe('attention behaviour', () => {
  it('a fully masked row gives NaN, as PyTorch', async () => {
    const s = qkv(1, 1, 3, 5, 8);
    const [q, k, v] = [s.q, s.k, s.v].map((x, i) => tensor(randomArray(numel(x), i), x));
    const mask = tensor([...Array(5).fill(-Infinity), ...randomArray(10, 7)], [3, 5]);
    const o = scaledDotProductAttention(q, k, v, { mask });
    const r = attentionReference(q, k, v, { mask });
    const ov = await o.data();
    expect(Array.from(ov.slice(0, 8)).every(Number.isNaN)).toBe(true);
    expectClose(ov, await r.data(), 'out');
    for (const t of [q, k, v, mask, o, r]) t.dispose();
  });

  it('backward: finite differences (fused, with a mask)', async () => {
    const mask = tensor(randomArray(5 * 6, 3, -2, 1), [5, 6]);
    await checkFiniteDifferences(
      (q, k, v) => scaledDotProductAttention(q, k, v, { mask }),
      [{ shape: [1, 2, 5, 16] }, { shape: [1, 2, 6, 16] }, { shape: [1, 2, 6, 8] }],
    );
    mask.dispose();
  });

  it('head dims over 128 and masks that need a gradient take the reference path', async () => {
    const s = qkv(1, 1, 3, 4, 160);
    const [q, k, v] = [s.q, s.k, s.v].map((x, i) => tensor(randomArray(numel(x), i), x));
    const a = scaledDotProductAttention(q, k, v),
      b = attentionReference(q, k, v);
    expectClose(await a.data(), await b.data(), 'D 160');
    const mask = requiresGrad(tensor(randomArray(12, 5), [3, 4]));
    const y = tidy(() => {
      const o = scaledDotProductAttention(q, k, v, { mask });
      backward(sum(o));
      return o;
    });
    expect(mask.grad).not.toBeNull();
    for (const t of [q, k, v, a, b, mask, mask.grad!, y]) t.dispose();
  });

  it('frees every intermediate; no gradient means no saved logsumexp', async () => {
    const s = qkv(1, 2, 9, 11, 16);
    const [q, k, v] = [s.q, s.k, s.v].map((x, i) => requiresGrad(tensor(randomArray(numel(x), i), x)));
    const base = device().liveBuffers;
    tidy(() => backward(sum(scaledDotProductAttention(q, k, v))));
    await device().sync();
    expect(device().liveBuffers).toBe(base + 3); // the three gradients
    const plain = [s.q, s.k, s.v].map((x, i) => tensor(randomArray(numel(x), i), x));
    const before = device().liveBuffers;
    const o = scaledDotProductAttention(plain[0], plain[1], plain[2]);
    expect(device().liveBuffers).toBe(before + 1);
    for (const t of [q, k, v]) {
      t.grad?.dispose();
      t.dispose();
    }
    for (const t of [...plain, o]) t.dispose();
  });

  it('rejects mismatched shapes and masks', () => {
    const q = tensor(randomArray(2 * 16, 1), [1, 1, 2, 16]);
    const k = tensor(randomArray(3 * 8, 2), [1, 1, 3, 8]);
    const v = tensor(randomArray(3 * 16, 3), [1, 1, 3, 16]);
    const k2 = tensor(randomArray(3 * 16, 4), [1, 1, 3, 16]);
    const m = tensor([0, 0], [2]);
    expect(() => scaledDotProductAttention(q, k, v)).toThrow(
      /scaled_dot_product_attention: q \[1, 1, 2, 16\], k \[1, 1, 3, 8\], v \[1, 1, 3, 16\] do not match/,
    );
    expect(() => scaledDotProductAttention(q, k2, v, { mask: m })).toThrow(
      /mask \[2\] does not broadcast to \[B, H, Lq, Lk\] = \[1, 1, 2, 3\]/,
    );
    for (const t of [q, k, v, k2, m]) t.dispose();
  });
});

describe('training path by adapter', () => {
  beforeAll(() => setAttentionTraining('auto'));
  afterAll(() => setAttentionTraining('fused'));

  /** Shaders dispatched by forward + backward (or forward only), and the output and dq. */
  async function trace(train: boolean): Promise<{ shaders: string[]; out: number[]; dq: number[] | null }> {
    const dev = device();
    const original = dev.dispatch;
    const shaders: string[] = [];
    dev.dispatch = (d: Dispatch) => {
      shaders.push(d.shader);
      original.call(dev, d);
    };
    try {
      const s = qkv(2, 3, 17, 17, 16);
      const [q, k, v] = [s.q, s.k, s.v].map((x, i) => requiresGrad(tensor(randomArray(numel(x), 70 + i), x)));
      const o = tidy(() => {
        if (!train) return noGrad(() => scaledDotProductAttention(q, k, v));
        const y = scaledDotProductAttention(q, k, v);
        backward(sum(mul(y, tensor(randomArray(y.size, 80), y.shape))));
        return y;
      });
      const r = { shaders, out: Array.from(await o.data()), dq: q.grad ? Array.from(await q.grad.data()) : null };
      for (const t of [q, k, v, o]) {
        t.grad?.dispose();
        t.dispose();
      }
      return r;
    } finally {
      dev.dispatch = original;
    }
  }

  it(
    'auto: CPU drivers train through the unfused graph, GPUs through the fused kernels; inference ' + 'stays fused',
    async () => {
      const expected = device().isCpuAdapter ? 'unfused' : 'fused';
      expect(attentionTrainingPath(2, 3, 17, 17)).toBe(expected);
      const auto = await trace(true);
      expect(auto.shaders.includes('attention-backward-dq')).toBe(expected === 'fused');
      expect(auto.shaders.includes('attention-forward')).toBe(expected === 'fused');
      expect((await trace(false)).shaders).toContain('attention-forward');
      // Scores too large to materialise keep the fused path on any adapter.
      expect(attentionTrainingPath(64, 16, 4096, 4096)).toBe('fused');
    },
  );

  it('the knob forces either path, and both give the same output and gradients', async () => {
    setAttentionTraining('fused');
    const fused = await trace(true);
    setAttentionTraining('unfused');
    const unfused = await trace(true);
    setAttentionTraining('auto');
    expect(fused.shaders).toContain('attention-backward-dkdv');
    expect(unfused.shaders).not.toContain('attention-backward-dkdv');
    expect(unfused.shaders).not.toContain('attention-forward');
    expectClose(unfused.out, fused.out, 'out', 3e-5, 1e-3);
    expectClose(unfused.dq!, fused.dq!, 'dq', 3e-5, 1e-3);
  });
});
