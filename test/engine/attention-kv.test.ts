// kvAttention (token-major q [B, Lq, H D] and packed kv [B, Lk, 2 H D], PVTv2's attention) against
// its composition (split, reshape, permute, scaledDotProductAttention, permute back) on both
// training paths, forward and gradients, by finite differences, and by the dispatches it makes:
// no permute, slice or cat copies on either path.
import { describe, it, expect, afterEach } from 'vitest';
import { Tensor, tensor, tidy, backward, requiresGrad, sum, mul, autocast } from '../../engine/index.ts';
import { kvAttention, kvAttentionReference } from '../../engine/ops/attention-kv.ts';
import { setAttentionTraining } from '../../engine/ops/attention.ts';
import { checkFiniteDifferences, expectClose, randomArray, withDispatches } from '../helpers.ts';

afterEach(() => setAttentionTraining('auto'));

type Fn = typeof kvAttention;

/** Output and the gradients of q and kv (those asked for) of `fn`. */
function run(fn: Fn, s: number[], grads: { q: boolean; kv: boolean }, seed: number): Tensor[] {
  const [b, lq, lk, h, d] = s;
  return tidy(() => {
    let q = tensor(randomArray(b * lq * h * d, seed), [b, lq, h * d]);
    let kv = tensor(randomArray(b * lk * 2 * h * d, seed + 1), [b, lk, 2 * h * d]);
    if (grads.q) q = requiresGrad(q);
    if (grads.kv) kv = requiresGrad(kv);
    const o = fn(q, kv, { heads: h });
    backward(sum(mul(o, tensor(randomArray(o.size, seed + 2), o.shape))));
    return [o, ...(grads.q ? [q.grad!] : []), ...(grads.kv ? [kv.grad!] : [])].map((t) => t.keep());
  });
}

async function compare(s: number[], grads = { q: true, kv: true }, seed = 3): Promise<void> {
  const got = run(kvAttention, s, grads, seed);
  const want = run(kvAttentionReference, s, grads, seed);
  expect(got[0].shape).toEqual([s[0], s[1], s[3] * s[4]]);
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++)
    expectClose(await got[i].data(), await want[i].data(), ['out', 'grad 1', 'grad 2'][i], 3e-5, 1e-3);
  [...got, ...want].forEach((t) => t.dispose());
}

/** op names of each dispatch of one differentiated call (with its loss). */
async function opsOf(s: number[]): Promise<string[]> {
  const { dispatches } = await withDispatches(async () => {
    const t = run(kvAttention, s, { q: true, kv: true }, 5);
    await t[2].data();
    t.forEach((x) => x.dispose());
  });
  return dispatches.map((d) => d.op);
}

describe('kvAttention equals split/reshape/permute + attention + permute back', () => {
  for (const path of ['fused', 'unfused'] as const) {
    describe(`${path} path`, () => {
      it('B 2, Lq 17, Lk 5 (spatial reduction), 4 heads of 8', async () => {
        setAttentionTraining(path);
        await compare([2, 17, 5, 4, 8]);
      });
      it('one head of 16, Lk > Lq', async () => {
        setAttentionTraining(path);
        await compare([1, 7, 33, 1, 16], undefined, 11);
      });
      it('gradient of q only, then of kv only', async () => {
        setAttentionTraining(path);
        await compare([2, 9, 4, 2, 8], { q: true, kv: false });
        await compare([2, 9, 4, 2, 8], { q: false, kv: true });
      });
    });
  }
  it('head dim 6 (no fused kernel) takes the unfused path', async () => {
    setAttentionTraining('fused');
    await compare([2, 5, 3, 2, 6]);
  });
  it('inference (no graph) and autocast equal the reference', async () => {
    const q = tensor(randomArray(2 * 10 * 16, 4), [2, 10, 16]);
    const kv = tensor(randomArray(2 * 4 * 32, 5), [2, 4, 32]);
    const r = kvAttentionReference(q, kv, { heads: 2 });
    const a = kvAttention(q, kv, { heads: 2 });
    expectClose(await a.data(), await r.data(), 'out', 3e-5, 1e-3);
    const h = autocast(() => kvAttention(q, kv, { heads: 2 }));
    const hr = autocast(() => kvAttentionReference(q, kv, { heads: 2 }));
    expect(await h.data()).toEqual(await hr.data()); // autocast takes the composition itself
    [a, r, h, hr, q, kv].forEach((t) => t.dispose());
  });
});

describe('kvAttention gradients by finite differences', () => {
  for (const path of ['fused', 'unfused'] as const) {
    it(`${path} path`, async () => {
      setAttentionTraining(path);
      await checkFiniteDifferences(
        (q, kv) => kvAttention(q, kv, { heads: 2 }),
        [{ shape: [2, 5, 2 * 4] }, { shape: [2, 3, 2 * 2 * 4] }],
      );
    });
  }
});

describe('kvAttention dispatches', () => {
  it('no permute, slice or cat copies on the unfused path; one half-gradient move on the fused', async () => {
    for (const path of ['fused', 'unfused'] as const) {
      setAttentionTraining(path);
      const ops = await opsOf([2, 9, 3, 2, 16]);
      for (const copy of ['permute', 'slice', 'slice-backward', 'narrow', 'cat', 'add'])
        expect(ops, `${path}: ${ops.join(' ')}`).not.toContain(copy);
      const moves = ops.filter((o) => o === 'kv_attention-backward');
      expect(moves.length, `${path}: ${ops.join(' ')}`).toBe(path === 'fused' ? 2 : 0);
    }
  });

  it('rejects mismatched shapes, naming both', () => {
    const q = tensor(randomArray(2 * 3 * 8, 1), [2, 3, 8]);
    const kv = tensor(randomArray(2 * 4 * 12, 2), [2, 4, 12]);
    expect(() => kvAttention(q, kv, { heads: 2 })).toThrow(/kv \[2, 4, 12\] does not match q \[2, 3, 8\]/);
    expect(() => kvAttention(q, q, { heads: 3 })).toThrow(/8 channels of q .* are not heads \(3\)/);
    [q, kv].forEach((t) => t.dispose());
  });
});
