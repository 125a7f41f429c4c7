// Bad input fails fast with an Error naming the op, the shapes/dtypes and what was expected,
// before anything reaches the GPU: afterwards there is no pending device error, nothing leaked,
// and the next op works.
import { describe, it, expect } from 'vitest';
import { tensor, add, matmul, tanh, sum, tidy, device } from '../../engine/index.ts';
import { checkIndexRange, embedding } from '../../engine/ops/indexing.ts';
import { crossEntropy, validateIndices } from '../../engine/ops/losses.ts';
import { layerNorm } from '../../engine/ops/layer-norm.ts';
import { Linear } from '../../engine/nn/layers.ts';

describe('errors', () => {
  it('name the op and the shapes, leave no device error behind, and the next op still works', async () => {
    const base = device().liveBuffers;
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tensor([1, 2, 3, 4], [4]);
    const w = tensor(new Array(20).fill(1), [4, 5]);
    const ids = tensor([1, 0, 2], [3], 'i32');
    const run = (fn: () => unknown) => () => tidy(fn);

    // Mismatched shapes.
    expect(run(() => add(a, b))).toThrow(/^add: shapes \[2, 3\] and \[4\] cannot be broadcast together/);
    expect(run(() => matmul(a, w))).toThrow(/^matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\] \(3 vs 4\)/);
    expect(run(() => layerNorm(a, [4]))).toThrow(/layerNorm.*\[2, 3\].*\[4\]/);
    expect(run(() => crossEntropy(a, tensor([0, 1, 2], [3], 'i32')))).toThrow(
      /^crossEntropy: target \[3\] \(i32 class indices\) must have shape \[2\] for logits \[2, 3\]/,
    );
    const lin = new Linear(4, 2);
    expect(run(() => lin.forward(a))).toThrow(/^Linear: input \[2, 3\] has last dim 3, expected in_features 4/);

    // Wrong dtypes.
    expect(run(() => add(a, tensor([1, 2, 3], [3], 'i32')))).toThrow(
      /^add: dtypes differ \(\[2, 3\] f32 vs \[3\] i32\)/,
    );
    expect(run(() => matmul(ids, ids))).toThrow(/^matmul: expected f32 inputs, got i32 and i32/);
    expect(run(() => tanh(ids))).toThrow(/^tanh: input \[3\] has dtype i32, expected f32/);
    expect(run(() => embedding(w, a))).toThrow(/^embedding: index \[2, 3\] has dtype f32, expected i32/);

    // Out-of-range indices (checked by an explicit readback, not inside the op).
    const bad = tensor([1, 12, 0], [3], 'i32');
    await expect(checkIndexRange('embedding', bad, 10)).rejects.toThrow(
      /^embedding: index 12 at flat position 1 of index \[3\] is out of range \[0, 10\)/,
    );
    const target = tensor([0, 3], [2], 'i32');
    await expect(validateIndices(target, 3)).rejects.toThrow(/crossEntropy.*3.*\[2\]/);

    // A disposed tensor.
    const gone = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    gone.dispose();
    expect(run(() => add(gone, a))).toThrow(/^add: input tensor \[2, 3\] \(f32, made by tensor\) was already disposed/);
    expect(run(() => matmul(tensor([1, 2, 3, 4, 5, 6], [3, 2]), gone))).toThrow(
      /^matmul: input tensor \[2, 3\] \(f32, made by tensor\) was already disposed/,
    );
    await expect(gone.data()).rejects.toThrow(
      /^data: input tensor \[2, 3\] \(f32, made by tensor\) was already disposed/,
    );

    // Nothing reached the device: no pending error, and the next op works.
    await device().checkErrors();
    const s = tidy(() => sum(add(a, 1)));
    expect(await s.item()).toBe(27);
    await device().checkErrors();
    for (const t of [a, b, w, ids, bad, target, s]) t.dispose();
    lin.dispose();
    expect(device().liveBuffers).toBe(base);
  });
});
