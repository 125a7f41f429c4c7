import { describe, it, expect } from 'vitest';
import { tensor } from '../../engine/index.ts';
import { buildRope2d, applyRope } from '../../engine/ops/rope.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, expectClose, randomArray } from '../helpers.ts';

const cases = loadGolden('attention_norm');
const get = (name: string) => cases.find((c) => c.name === name)!;

describe('2-D RoPE against a float64 re-implementation of timm RotaryEmbeddingCat', () => {
  it('tables, head dim 16, 3 x 4 grid', async () => {
    const c = get('rope_tables_16_3x4');
    const { sin, cos } = buildRope2d(16, 3, 4);
    expect([...sin.shape]).toEqual(c.outputs[0].shape);
    expectClose(await sin.data(), c.outputs[0].data, 'sin', 1e-6, 1e-5);
    expectClose(await cos.data(), c.outputs[1].data, 'cos', 1e-6, 1e-5);
    sin.dispose();
    cos.dispose();
  });

  it('tables rescaled to a reference grid (ref 4 x 6 on a 2 x 3 grid), theta 100', async () => {
    const c = get('rope_tables_8_2x3_ref4x6_theta100');
    const { sin, cos } = buildRope2d(8, 2, 3, { refH: 4, refW: 6, theta: 100 });
    expectClose(await sin.data(), c.outputs[0].data, 'sin', 1e-6, 1e-5);
    expectClose(await cos.data(), c.outputs[1].data, 'cos', 1e-6, 1e-5);
    sin.dispose();
    cos.dispose();
    // timm's name for the reference grid gives the same tables.
    const t = buildRope2d(8, 2, 3, { refFeatShape: [4, 6], theta: 100 });
    expectClose(await t.sin.data(), c.outputs[0].data, 'sin (refFeatShape)', 1e-6, 1e-5);
    t.sin.dispose();
    t.cos.dispose();
  });

  for (const name of ['rope_apply_cls', 'rope_apply_nocls']) {
    it(`${name}: forward and backward`, async () => {
      const c = get(name);
      const a = c.args as { hd: number; gh: number; gw: number; start: number };
      await checkGolden(c, ([x]) => {
        const { sin, cos } = buildRope2d(a.hd, a.gh, a.gw);
        return applyRope(x, sin, cos, a.start);
      });
    });
  }

  it('backward: finite differences', async () => {
    const { sin, cos } = buildRope2d(8, 2, 2);
    await checkFiniteDifferences((x) => applyRope(x, sin, cos, 1), [{ shape: [2, 3, 5, 8] }]);
    sin.dispose();
    cos.dispose();
  });

  it('leaves tokens before startToken untouched', async () => {
    const { sin, cos } = buildRope2d(4, 1, 2);
    const xs = randomArray(3 * 4, 9);
    const y = applyRope(tensor(xs, [1, 1, 3, 4]), sin, cos, 1);
    expect(Array.from(await y.data()).slice(0, 4)).toEqual(Array.from(Float32Array.from(xs.slice(0, 4))));
    y.dispose();
    sin.dispose();
    cos.dispose();
  });

  it('rejects tables that do not match the tokens', () => {
    const { sin, cos } = buildRope2d(8, 2, 2);
    const x = tensor(randomArray(5 * 8, 1), [1, 1, 5, 8]);
    expect(() => applyRope(x, sin, cos, 0)).toThrow(
      /rope: sin must be f32 \[5, 8\] for x \[1, 1, 5, 8\] with startToken 0, got \[4, 8\]/,
    );
    expect(() => buildRope2d(6, 2, 2)).toThrow(/multiple of 4/);
    x.dispose();
    sin.dispose();
    cos.dispose();
  });
});
