// The uniform contract: struct U read at WGSL offsets, and a packed layout that does not match
// it is an error naming the op, the shader and the field, before anything is dispatched.
import { describe, it, expect } from 'vitest';
import { device, requiresGrad, tensor } from '../../engine/index.ts';
import { uniformWords, checkUniforms, rowLayout } from '../../engine/uniforms.ts';
import { Params } from '../../engine/ops/kernel.ts';
import { SGD, type HyperRow, type ParamGroup, type SGDOptions } from '../../engine/optim/index.ts';

describe('uniform contract', () => {
  it('reads struct U with WGSL alignment: arrays of vec4 first, then scalars', () => {
    const w = uniformWords(
      '// a comment { }\nstruct U { shape: array<vec4<u32>, 2>, off: vec4<i32>, n: u32, scale: f32 }\nfn main() {}',
    )!;
    expect(w.length).toBe(8 + 4 + 2);
    expect(w[0]).toEqual({ field: 'shape', offset: 0, kind: 'u' });
    expect(w[8]).toEqual({ field: 'off', offset: 32, kind: 'i' });
    expect(w[13]).toEqual({ field: 'scale', offset: 52, kind: 'f' });
    // A vec4 after a scalar starts on the next 16-byte boundary.
    expect(uniformWords('struct U { n: u32, v: vec4<f32> }')!.map((x) => x.offset)).toEqual([0, 16, 20, 24, 28]);
    expect(uniformWords('struct U { n: u32, v: vec2<u32> }')!.map((x) => x.offset)).toEqual([0, 8, 12]);
    // A type the check does not model leaves the shader unchecked rather than failing it.
    expect(uniformWords('struct U { m: mat2x2<f32> }')).toBeNull();
  });

  it('names the op, shader and field on a float/integer mismatch, a missing field or a word past the end', () => {
    const code = 'struct U { rows: u32, len: u32, eps: f32 }';
    expect(() => checkUniforms('layerNorm', 'layer-norm', code, ['u', 'u', 'f'])).not.toThrow();
    expect(() => checkUniforms('layerNorm', 'layer-norm', code, ['u', 'i', 'f'])).not.toThrow(); // same bits for sizes
    expect(() => checkUniforms('layerNorm', 'layer-norm', code, ['u', 'f', 'f'])).toThrow(
      "layerNorm (layer-norm.wgsl): uniform field 'len' (byte 4) is u32 in the shader, but the op packs a f32",
    );
    expect(() => checkUniforms('layerNorm', 'layer-norm', code, ['u', 'u'])).toThrow(
      "layerNorm (layer-norm.wgsl): uniform field 'eps' (byte 8) is not packed by the op (2 words given)",
    );
    expect(() => checkUniforms('layerNorm', 'layer-norm', code, ['u', 'u', 'f', 'u'])).toThrow(
      /uniform word 3 \(byte 12, u32\) falls on no field of struct U/,
    );
  });

  it('the device checks a new pipeline before dispatching it', () => {
    expect(() =>
      device().dispatch({
        op: 'softmax-misuse',
        shader: 'softmax',
        params: { FINISH: '1.0 / ps[0]', Y: 'exp(x[i] - mx) * k * 1.0' }, // a pipeline no op has made yet
        buffers: [],
        uniforms: new ArrayBuffer(16),
        words: ['u', 'f', 'u'],
        workgroups: [1],
      }),
    ).toThrow(
      "softmax-misuse (softmax.wgsl): uniform field 'len' (byte 4) is u32 in the shader, but the op packs a f32",
    );
  });

  it('checks the names an op gives its uniforms: a wrong name, a field out of order, a missing field', () => {
    const code = 'struct U { rows: u32, len: u32, eps: f32 }';
    const named = (p: Params) => () => checkUniforms('layerNorm', 'layer-norm', code, p.words, p.names);
    expect(named(new Params().u32({ rows: 2, len: 3 }).f32({ eps: 1e-5 }))).not.toThrow();
    expect(named(new Params().u32({ rows: 2, lenght: 3 }).f32({ eps: 1e-5 }))).toThrow(
      "layerNorm (layer-norm.wgsl): the op packs uniform 'lenght', which struct U has no field for",
    );
    expect(named(new Params().u32({ len: 3, rows: 2 }).f32({ eps: 1e-5 }))).toThrow(
      "layerNorm (layer-norm.wgsl): the op packs uniform 'len' at byte 0, " +
        "where struct U has field 'rows' (fields out of order)",
    );
    expect(named(new Params().u32({ rows: 2, len: 3 }))).toThrow(
      "layerNorm (layer-norm.wgsl): uniform field 'eps' (byte 8) is not packed by the op (2 words given)",
    );
    const dims = 'struct U { shape: array<vec4<u32>, 2>, n: u32 }';
    const p = new Params().dims('shape', [2, 3]).u32({ n: 6 });
    expect(p.names.slice(0, 9)).toEqual([...Array(8).fill('shape'), 'n']);
    expect(() => checkUniforms('copy', 'strided-copy', dims, p.words, p.names)).not.toThrow();
    const q = new Params().dims('strides', [2, 3]).u32({ n: 6 });
    expect(() => checkUniforms('copy', 'strided-copy', dims, q.words, q.names)).toThrow(
      "copy (strided-copy.wgsl): the op packs uniform 'strides', which struct U has no field for",
    );
  });

  it('lays out a named storage row (struct Hyper) and names the op, shader and field on a mismatch', () => {
    const code = 'struct Hyper { lr: f32, wd: f32, has_grad: f32 }';
    const l = rowLayout('SGD', 'optim-sgd', code, 'Hyper', ['wd', 'lr', 'has_grad']);
    expect([...l.offsets]).toEqual([
      ['lr', 0],
      ['wd', 1],
      ['has_grad', 2],
    ]);
    expect(l.words).toBe(3);
    expect(() => rowLayout('SGD', 'optim-sgd', code, 'Hyper', ['lr', 'has_grad'])).toThrow(
      "SGD (optim-sgd.wgsl): field 'wd' of struct Hyper is not written by the op",
    );
    expect(() => rowLayout('SGD', 'optim-sgd', code, 'Hyper', ['lr', 'wd', 'decay', 'has_grad'])).toThrow(
      "SGD (optim-sgd.wgsl): the op writes 'decay', which struct Hyper has no field for",
    );
    expect(() => rowLayout('SGD', 'optim-sgd', 'struct Hyper { n: u32 }', 'Hyper', ['n'])).toThrow(
      "SGD (optim-sgd.wgsl): field 'n' of struct Hyper is u32, not f32",
    );
  });

  it('an optimizer whose row names disagree with the shader fails on its first step, before dispatching', () => {
    class Misnamed extends SGD {
      protected override hyper(g: ParamGroup<SGDOptions>, step: number): HyperRow {
        const { momentum, ...rest } = super.hyper(g, step);
        return { ...rest, momentun: momentum };
      }
    }
    const p = requiresGrad(tensor([1, 2], [2])).keep();
    p.grad = tensor([0.5, 0.5], [2]).keep();
    const opt = new Misnamed([p], { lr: 0.1, momentum: 0.9 });
    expect(() => opt.step()).toThrow(
      "SGD (optim-sgd.wgsl): the op writes 'momentun', which struct Hyper has no field for",
    );
    opt.dispose();
    p.grad.dispose();
    p.dispose();
  });
});
