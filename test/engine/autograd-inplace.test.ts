// In-place gradient accumulation in the backward walk (engine/autograd.ts): a tensor with several
// consumers sums its gradients with addInPlace into a gradient the walk alone owns, and never into
// one that another tensor can still see (add's pass-through dy, a reshape view, the caller's
// cotangent, a .grad someone holds a view of). Finite differences check the sums on graphs built
// to trip each case; the allocation log checks that the sums really are in place.
import { describe, it, expect } from 'vitest';
import {
  add,
  addInPlace,
  mul,
  exp,
  sin,
  cos,
  sum,
  reshape,
  tensor,
  backward,
  requiresGrad,
  tidy,
  device,
  type Tensor,
} from '../../engine/index.ts';
import { record } from '../../engine/graph.ts';
import { checkFiniteDifferences, expectClose } from '../helpers.ts';

/** Labels of the buffers acquired while `fn` runs. */
function acquiredDuring(fn: () => void): string[] {
  const dev = device();
  const orig = dev.acquire.bind(dev);
  const ops: string[] = [];
  dev.acquire = (bytes: number, op: string) => {
    ops.push(op);
    return orig(bytes, op);
  };
  try {
    fn();
  } finally {
    dev.acquire = orig;
  }
  return ops;
}

describe('in-place gradient accumulation', () => {
  it('addInPlace adds into its first operand and returns it', async () => {
    for (const n of [1, 7, 8, 33]) {
      const a = tensor(
        Array.from({ length: n }, (_, i) => i),
        [n],
      );
      const b = tensor(
        Array.from({ length: n }, (_, i) => 0.5 - i * i),
        [n],
      );
      expect(addInPlace(a, b)).toBe(a);
      expectClose(
        await a.data(),
        Array.from({ length: n }, (_, i) => i + 0.5 - i * i),
        `addInPlace n=${n}`,
        0,
        0,
      );
      a.dispose();
      b.dispose();
    }
  });

  it('addInPlace refuses broadcasting, graph tensors and a shared buffer', () => {
    const a = tensor([1, 2, 3, 4], [2, 2]);
    const b = tensor([1, 2], [2]);
    expect(() => addInPlace(a, b)).toThrow(/shapes differ/);
    expect(() => addInPlace(a, a.view([2, 2]))).toThrow(/share a buffer/);
    const p = requiresGrad(tensor([1, 2, 3, 4], [2, 2]));
    expect(() => addInPlace(p, a)).toThrow(/requires grad/);
    for (const t of [a, b, p]) t.dispose();
  });

  it('three consumers: gradients summed correctly (finite differences)', async () => {
    await checkFiniteDifferences((x) => add(add(exp(x), mul(x, x)), add(sin(x), x)), [{ shape: [3, 5] }]);
  });

  it('pass-through and view gradients are never overwritten (finite differences)', async () => {
    // add(x, x) hands the same dy to both inputs; reshape hands a view of it on; y then reaches
    // three consumers, one of them through a view.
    await checkFiniteDifferences(
      (x) => {
        const y = add(x, x);
        const z = add(y, reshape(reshape(y, [15]), [3, 5]));
        return mul(add(z, y), cos(y));
      },
      [{ shape: [3, 5] }],
    );
    // A broadcast operand: its gradient comes back through sumTo (a fresh tensor) twice.
    await checkFiniteDifferences((x, w) => add(mul(x, w), mul(add(x, w), x)), [{ shape: [3, 1] }, { shape: [3, 4] }]);
  });

  it('a gradient a later input of the same node receives is not overwritten', async () => {
    // A node whose backward gives input 0 a fresh tensor and input 1 its dy unchanged, where x's
    // pending gradient is that same dy (root = add(x, t) hands dy to x and to t).
    const x = requiresGrad(tensor([1, 2, 3], [3]));
    const z = requiresGrad(tensor([4, 5, 6], [3]));
    tidy(() => {
      const t = record(add(x, z), 'test', [x, z], (dy) => [mul(dy, 2), dy]);
      backward(sum(mul(add(x, t), tensor([1, 10, 100], [3]))));
    });
    expectClose(await x.grad!.data(), [3, 30, 300], 'x.grad', 0, 0);
    expectClose(await z.grad!.data(), [1, 10, 100], 'z.grad', 0, 0);
    for (const t of [x.grad!, z.grad!, x, z]) t.dispose();
  });

  it("the caller's cotangent is read, not written", async () => {
    const x = requiresGrad(tensor([1, 2, 3, 4], [4]));
    const c = tensor([0.5, -1, 2, 3], [4]);
    tidy(() => backward(add(add(x, x), x), c));
    expectClose(await c.data(), [0.5, -1, 2, 3], 'cotangent', 0, 0);
    expectClose(await x.grad!.data(), [1.5, -3, 6, 9], 'x.grad', 0, 0);
    x.grad!.dispose();
    for (const t of [x, c]) t.dispose();
  });

  it('sums of gradients the walk owns allocate no new buffer', () => {
    const x = requiresGrad(tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [8]));
    const ops = tidy(() => {
      const y = add(add(exp(x), sin(x)), add(cos(x), mul(x, x)));
      return acquiredDuring(() => backward(sum(y)));
    });
    // Four consumers of x, three sums: before in-place accumulation each was an 'add' buffer.
    expect(ops.filter((o) => o === 'add')).toEqual([]);
    x.grad!.dispose();
    x.dispose();
  });

  it('a leaf .grad accumulates across backward calls in place, unless a view of it is alive', async () => {
    const x = requiresGrad(tensor([1, 2, 3], [3]));
    const f = () => tidy(() => backward(sum(mul(x, x))));
    f();
    const g1 = x.grad!;
    f();
    expect(x.grad, 'the same .grad tensor, written in place').toBe(g1);
    expectClose(await x.grad!.data(), [4, 8, 12], 'x.grad after two calls', 0, 0);
    const held: Tensor = x.grad!.view([3]);
    f();
    expect(x.grad, 'a held view forces a new sum').not.toBe(g1);
    expectClose(await held.data(), [4, 8, 12], 'the held view keeps its values', 0, 0);
    expectClose(await x.grad!.data(), [6, 12, 18], 'x.grad after three calls', 0, 0);
    for (const t of [held, x.grad!, x]) t.dispose();
  });
});
