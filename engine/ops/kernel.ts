// The one way ops launch kernels: validate inputs, pack uniforms, size the grid, dispatch.
// Uniform layout convention (shared by every .wgsl): `vec4<u32>`-array fields first (shapes,
// strides; rank <= 8 as array<vec4<u32>, 2>), then 4-byte scalars, so no padding is ever needed.
import { device, Tensor, type DType } from '../tensor.ts';
import type { UniformWord } from '../uniforms.ts';

export const MAX_RANK = 8;

/** Named scalars of one kind, in the order of the shader's struct U: `.u32({ rows, len })`. */
type Named = Record<string, number>;

/**
 * Builds the uniform block of a dispatch. Fields are named after the shader's `struct U`
 * (`.u32({ n: size }).f32({ decay })`, `.dims('shape', x.shape)`): the device checks the names,
 * offsets and kinds against the struct once per pipeline. There is no positional form: a field
 * without a name could not be checked.
 */
export class Params {
  private readonly view = new DataView(new ArrayBuffer(512));
  private n = 0;
  private scalars = false;
  /** The kind of each packed word, checked once per pipeline against the shader's struct U. */
  readonly words: UniformWord[] = [];
  /** The struct field each word was packed as. */
  readonly names: string[] = [];

  private put(kind: UniformWord, value: number, name: string): void {
    if (kind === 'u') this.view.setUint32(this.n, value >>> 0, true);
    else if (kind === 'i') this.view.setInt32(this.n, value, true);
    else this.view.setFloat32(this.n, value, true);
    this.n += 4;
    this.words.push(kind);
    this.names.push(name);
  }

  /** An array<vec4<u32 or i32>, 2> field (8 slots): a shape or strides, right-aligned is the caller's choice. */
  dims(name: string, values: readonly number[], signed = false): this {
    if (this.scalars) throw new Error('Params: dims() fields must come before scalar fields');
    if (values.length > MAX_RANK) throw new Error(`Params: rank ${values.length} exceeds ${MAX_RANK}`);
    for (let i = 0; i < MAX_RANK; i++) this.put(signed ? 'i' : 'u', values[i] ?? 0, name);
    return this;
  }

  /** A vec4<u32> field (up to 4 values). */
  vec4(name: string, values: readonly number[]): this {
    if (this.scalars) throw new Error('Params: vec4() fields must come before scalar fields');
    for (let i = 0; i < 4; i++) this.put('u', values[i] ?? 0, name);
    return this;
  }

  private scalar(kind: UniformWord, fields: Named): this {
    this.scalars = true;
    for (const name in fields) this.put(kind, fields[name], name);
    return this;
  }

  u32(fields: Named): this {
    return this.scalar('u', fields);
  }

  i32(fields: Named): this {
    return this.scalar('i', fields);
  }

  f32(fields: Named): this {
    return this.scalar('f', fields);
  }

  bytes(): ArrayBuffer {
    return this.view.buffer.slice(0, Math.ceil(Math.max(this.n, 16) / 16) * 16);
  }
}

/** Workgroup counts for `threads` invocations of `wg` each, spilling into y past 65535. */
export function grid(threads: number, wg = 64): [number, number] {
  const groups = Math.max(1, Math.ceil(threads / wg));
  if (groups <= 65535) return [groups, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

export interface Launch {
  /** Op name: labels the pipeline and bind group, and prefixes every error. */
  op: string;
  shader: string;
  params?: Record<string, string | number>;
  inputs: Tensor[];
  outputs: Tensor[];
  uniforms: Params;
  workgroups: [number, number?, number?];
}

export function launch(l: Launch): void {
  const buffers = [...l.inputs.map((t) => t.binding(l.op)), ...l.outputs.map((t) => t.binding(l.op))];
  device().dispatch({
    op: l.op,
    shader: l.shader,
    params: l.params,
    buffers,
    uniforms: l.uniforms.bytes(),
    words: l.uniforms.words,
    names: l.uniforms.names,
    workgroups: l.workgroups,
  });
}

export const WGSL_TYPE: Record<DType, string> = { f32: 'f32', i32: 'i32', u32: 'u32', f16: 'f16' };

export function assertDType(op: string, t: Tensor, allowed: readonly DType[], what = 'input'): void {
  if (!allowed.includes(t.dtype))
    throw new Error(`${op}: ${what} has dtype ${t.dtype}, expected ${allowed.join(' or ')}`);
}
