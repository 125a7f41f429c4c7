// The one weight loader (engine/train/checkpoint.ts loadWeights): strict and partial loading with
// a report of missing and unexpected keys, shape mismatches naming the key and both shapes, key
// prefixes and renaming, heads kept as built, and the structured report on the error.
import { describe, it, expect } from 'vitest';
import { loadWeights, weightsBytes, WeightsMismatchError } from '../../engine/train/checkpoint.ts';
import { serializeSafetensors, type SafetensorsInput } from '../../engine/io/safetensors.ts';
import { Module } from '../../engine/nn/module.ts';
import { Linear } from '../../engine/nn/layers.ts';

/** body.weight [3, 2], body.bias [3], head.weight [k, 3], head.bias [k]. */
class Net extends Module {
  readonly body = new Linear(2, 3);
  readonly head: Linear;
  constructor(classes = 2) {
    super();
    this.head = new Linear(3, classes);
  }
}

const f32 = (shape: number[], v = 0.5): SafetensorsInput => ({
  dtype: 'F32',
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v),
});
const file = (t: Record<string, SafetensorsInput>) => serializeSafetensors(t);
const thrown = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

describe('loadWeights', () => {
  it('strict: a round trip loads every key; missing and unexpected keys are errors naming them', async () => {
    const a = new Net(),
      b = new Net();
    const r = loadWeights(b, await weightsBytes(a), { source: 'net.safetensors' });
    expect(r).toMatchObject({ loaded: 4, missingKeys: [], unexpectedKeys: [], kept: [] });
    expect(Array.from(await b.head.weight.data())).toEqual(Array.from(await a.head.weight.data()));

    const e = thrown(() =>
      loadWeights(new Net(), file({ 'body.weight': f32([3, 2]), 'body.bias': f32([3]), 'tail.bias': f32([1]) }), {
        source: 'partial.safetensors',
      }),
    );
    expect(e).toBeInstanceOf(WeightsMismatchError);
    expect(e.message).toMatch(/^partial\.safetensors: loadStateDict: Error\(s\) in loading state_dict for Net:/);
    expect(e.message).toContain('Missing key(s) in state_dict: "head.weight", "head.bias".');
    expect(e.message).toContain('Unexpected key(s) in state_dict: "tail.bias".');
    expect((e as WeightsMismatchError).report).toEqual({
      missingKeys: ['head.weight', 'head.bias'],
      unexpectedKeys: ['tail.bias'],
      mismatched: [],
    });
  });

  it('a shape mismatch names the key and both shapes, strict or not, and loads nothing', async () => {
    const seven = await weightsBytes(new Net(7));
    const m = new Net(2),
      before = Array.from(await m.body.weight.data());
    for (const strict of [true, false]) {
      const e = thrown(() => loadWeights(m, seven, { source: 'seven', strict }));
      expect(e.message).toContain(
        'size mismatch for head.weight: copying a param with shape [7, 3] from checkpoint, ' +
          'the shape in current model is [2, 3].',
      );
      expect(e.message).toContain('size mismatch for head.bias');
      expect((e as WeightsMismatchError).report.mismatched).toEqual([
        { key: 'head.weight', file: [7, 3], model: [2, 3] },
        { key: 'head.bias', file: [7], model: [2] },
      ]);
    }
    expect(Array.from(await m.body.weight.data())).toEqual(before);
  });

  it('partial: loads what fits and reports the rest', async () => {
    const m = new Net();
    const r = loadWeights(m, file({ 'body.weight': f32([3, 2], 0.25), 'extra.scale': f32([1]) }), { strict: false });
    expect(r.loaded).toBe(1);
    expect(r.missingKeys).toEqual(['body.bias', 'head.weight', 'head.bias']);
    expect(r.unexpectedKeys).toEqual(['extra.scale']);
    expect(Array.from(await m.body.weight.data())).toEqual(new Array(6).fill(0.25));
  });

  it('keep: a head of another size or missing stays as built; everything else must load', async () => {
    const m = new Net(2),
      head = Array.from(await m.head.weight.data());
    const r = loadWeights(m, await weightsBytes(new Net(7)), { keep: (k) => k.startsWith('head.') });
    expect(r.loaded).toBe(2);
    expect(r.kept).toEqual([
      { key: 'head.weight', reason: { key: 'head.weight', file: [7, 3], model: [2, 3] } },
      { key: 'head.bias', reason: { key: 'head.bias', file: [7], model: [2] } },
    ]);
    expect(Array.from(await m.head.weight.data())).toEqual(head);
    const bodyOnly = file({ 'body.weight': f32([3, 2]), 'body.bias': f32([3]) });
    expect(loadWeights(new Net(), bodyOnly, { keep: (k) => k.startsWith('head.') }).kept.map((k) => k.reason)).toEqual([
      'missing',
      'missing',
    ]);
    // Keeping the head does not excuse a missing body weight.
    expect(() =>
      loadWeights(new Net(), file({ 'body.weight': f32([3, 2]) }), { keep: (k) => k.startsWith('head.'), source: 's' }),
    ).toThrow(/^s: [\s\S]*Missing key\(s\) in state_dict: "body\.bias"\.$/);
  });

  it('prefix and mapKey select and rename file keys; allowUnexpected tolerates extras under strict', async () => {
    const src = new Net();
    const bytes = file({
      'student.body.weight': f32([3, 2], 1),
      'student.body.bias': f32([3], 2),
      'student.fc.weight': f32([2, 3], 3),
      'student.fc.bias': f32([2], 4),
      'student.mask_token': f32([3]),
      'teacher.body.weight': f32([3, 2], 9),
    });
    const mapKey = (k: string) => (k === 'mask_token' ? null : k.replace(/^fc\./, 'head.'));
    const r = loadWeights(src, bytes, { prefix: 'student.', mapKey });
    expect(r).toMatchObject({ loaded: 4, missingKeys: [], unexpectedKeys: [] });
    expect(Array.from(await src.head.bias!.data())).toEqual([4, 4]);
    // Without the renaming, fc.* are unexpected: an error under strict, reported with allowUnexpected.
    const e = thrown(() => loadWeights(new Net(), bytes, { prefix: 'student.', keep: (k) => k.startsWith('head.') }));
    expect(e.message).toContain('Unexpected key(s) in state_dict: "fc.bias", "fc.weight", "mask_token".');
    const ok = loadWeights(new Net(), bytes, {
      prefix: 'student.',
      keep: (k) => k.startsWith('head.'),
      allowUnexpected: true,
    });
    expect(ok.unexpectedKeys).toEqual(['fc.bias', 'fc.weight', 'mask_token']);
    // A prefix no key has: said so in the error.
    expect(() => loadWeights(new Net(), bytes, { prefix: 'encoder.', source: 'enc' })).toThrow(
      /^enc: [\s\S]*Missing key\(s\)[\s\S]* \(the file has no keys starting with "encoder\."\)$/,
    );
    // Two file keys landing on one model key.
    expect(() =>
      loadWeights(new Net(), file({ 'a.w': f32([1]), 'b.w': f32([1]) }), { mapKey: () => 'body.bias', source: 'dup' }),
    ).toThrow('dup: two tensors load into body.bias (b.w is the second)');
  });

  it('reshape accepts a tensor of the same size in another shape, not of another size', async () => {
    const m = new Net();
    const flat = file({
      'body.weight': f32([6], 0.5),
      'body.bias': f32([3]),
      'head.weight': f32([6]),
      'head.bias': f32([2]),
    });
    expect(loadWeights(m, flat, { reshape: true }).loaded).toBe(4);
    expect(m.body.weight.shape).toEqual([3, 2]);
    expect(() => loadWeights(new Net(), flat, { source: 'flat' })).toThrow(
      new RegExp(
        String.raw`size mismatch for body\.weight: copying a param with shape \[6\] from checkpoint, ` +
          String.raw`the shape in current model is \[3, 2\]`,
      ),
    );
    const wrong = file({
      'body.weight': f32([5]),
      'body.bias': f32([3]),
      'head.weight': f32([6]),
      'head.bias': f32([2]),
    });
    expect(() => loadWeights(new Net(), wrong, { reshape: true })).toThrow(/size mismatch for body\.weight.*\[5\]/);
  });
});
