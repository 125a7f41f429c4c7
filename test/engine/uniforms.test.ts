// The uniform contract: struct U read at WGSL offsets, and a packed layout that does not match
// it is an error naming the op, the shader and the field, before anything is dispatched.
import { describe, it, expect } from 'vitest';
import { device } from '../../engine/index.ts';
import { uniformWords, checkUniforms } from '../../engine/uniforms.ts';

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
});
