import { describe, it, expect, afterEach } from 'vitest';
import { Tensor, tensor, tidy, backward, requiresGrad, sum, mul } from '../../engine/index.ts';
import { packedSelfAttention, packedAttentionReference } from '../../engine/ops/attention-packed.ts';
import { setAttentionTraining } from '../../engine/ops/attention.ts';
import { buildRope2d } from '../../engine/ops/rope.ts';
import { checkFiniteDifferences, expectClose, randomArray, withDispatches } from '../helpers.ts';

afterEach(() => setAttentionTraining('auto'));

type Fn = typeof packedSelfAttention;

/** Output and qkv gradient of `fn` on a [B, N, 3 H D] input, rope on tokens 1.. when asked. */
function run(fn: Fn, b: number, n: number, h: number, d: number, rope: boolean, seed: number): Tensor[] {
  return tidy(() => {
    const qkv = requiresGrad(tensor(randomArray(b * n * 3 * h * d, seed), [b, n, 3 * h * d]));
    // Grid (n - 1) = 1 x (n - 1): the tables only need the right shape.
    const r = rope ? buildRope2d(d, 1, n - 1) : null;
    const o = fn(qkv, { heads: h, rope: r && { ...r, startToken: 1 } });
    backward(sum(mul(o, tensor(randomArray(o.size, seed + 1), o.shape))));
    return [o, qkv.grad!].map((t) => t.keep());
  });
}

async function compare(b: number, n: number, h: number, d: number, rope: boolean, seed = 3): Promise<void> {
  const p = run(packedSelfAttention, b, n, h, d, rope, seed);
  const r = run(packedAttentionReference, b, n, h, d, rope, seed);
  expect(p[0].shape).toEqual([b, n, h * d]);
  expectClose(await p[0].data(), await r[0].data(), 'out', 3e-5, 1e-3);
  expectClose(await p[1].data(), await r[1].data(), 'dqkv', 3e-5, 1e-3);
  [...p, ...r].forEach((t) => t.dispose());
}

/** op:shader of each dispatch of one differentiated call (with its loss). */
async function shadersOf(b: number, n: number, h: number, d: number): Promise<string[]> {
  const { dispatches } = await withDispatches(async () => {
    const t = run(packedSelfAttention, b, n, h, d, true, 5);
    await t[1].data();
    t.forEach((x) => x.dispose());
  });
  return dispatches.map((x) => `${x.op}:${x.shader}`);
}

describe('packed self-attention equals reshape/permute/narrow + rope + attention', () => {
  for (const path of ['fused', 'unfused'] as const) {
    describe(`${path} path`, () => {
      it('rope, odd N, v read in place (H * D = 32)', async () => {
        setAttentionTraining(path);
        await compare(2, 17, 4, 8, true);
      });
      it('rope, v third not bindable in place (H * D = 24)', async () => {
        setAttentionTraining(path);
        await compare(2, 9, 3, 8, true);
      });
      it('no rope, one head, D = 16', async () => {
        setAttentionTraining(path);
        await compare(1, 33, 1, 16, false, 11);
      });
    });
  }
  it('head dim 6 (no fused kernel) takes the unfused kernels', async () => {
    setAttentionTraining('fused');
    await compare(2, 5, 2, 6, false);
  });
  it('head dim 5 falls back to the composition', async () => {
    await compare(1, 4, 2, 5, false);
  });
  it('inference (no graph) equals the reference', async () => {
    const qkv = tensor(randomArray(2 * 10 * 3 * 16, 4), [2, 10, 3 * 16]);
    const { sin, cos } = buildRope2d(8, 3, 3);
    const opts = { heads: 2, rope: { sin, cos, startToken: 1 } };
    const [a, r] = [packedSelfAttention(qkv, opts), packedAttentionReference(qkv, opts)];
    expectClose(await a.data(), await r.data(), 'out', 3e-5, 1e-3);
    [a, r, qkv, sin, cos].forEach((t) => t.dispose());
  });
});

describe('packed self-attention gradients by finite differences', () => {
  for (const path of ['fused', 'unfused'] as const) {
    it(`${path} path, rope`, async () => {
      setAttentionTraining(path);
      const { sin, cos } = buildRope2d(8, 2, 3);
      await checkFiniteDifferences(
        (x) => packedSelfAttention(x, { heads: 2, rope: { sin, cos, startToken: 1 } }),
        [{ shape: [2, 7, 3 * 2 * 8] }],
      );
      sin.dispose();
      cos.dispose();
    });
  }
});

describe('packed self-attention dispatches', () => {
  it('no permute, slice or separate rope kernels, forward or backward', async () => {
    for (const path of ['fused', 'unfused'] as const) {
      setAttentionTraining(path);
      const seen = await shadersOf(2, 9, 2, 16);
      const ops = seen.map((x) => x.split(':')[0]);
      expect(ops.filter((s) => s.startsWith('rope'))).toEqual(['rope-heads', 'rope-heads-backward']);
      for (const copy of ['slice', 'slice-backward', 'narrow', 'add'])
        expect(ops, `${path}: ${seen.join(' ')}`).not.toContain(copy);
      // Both paths write the output token-major in place: no transposing copy.
      expect(ops.filter((s) => s === 'permute')).toEqual([]);
    }
  });

  it('rejects a qkv whose channels are not 3 * heads * head dim', () => {
    const x = tensor(randomArray(2 * 3 * 10, 1), [2, 3, 10]);
    expect(() => packedSelfAttention(x, { heads: 2 })).toThrow(/10 channels .* are not 3 \* heads \(2\)/);
    x.dispose();
  });
});
