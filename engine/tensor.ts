// Tensor: a shape, a dtype and a reference-counted GPU storage. Storage is always contiguous
// (row-major); reshape shares it, every other movement op copies. `await t.data()` is the only
// readback. Ownership is deterministic: `tidy()` scopes dispose what they created, `keep()`
// exempts a tensor, and the device counts live buffers so a test can see a leak.
import type { Device } from './device.ts';
import type { GradNode } from './graph.ts';
import { toHalf, fromHalf } from './f16.ts';

export type DType = 'f32' | 'i32' | 'u32' | 'f16';
export const BYTES: Record<DType, number> = { f32: 4, i32: 4, u32: 4, f16: 2 };
export type Shape = readonly number[];
export type TypedArray = Float32Array | Int32Array | Uint32Array;

// ---- engine state: the device, scopes, grad mode -----------------------------------------------

let current: Device | null = null;

export function setDevice(d: Device | null): void {
  current = d;
}

export function device(): Device {
  if (!current)
    throw new Error('no WebGPU device: call initNode() (runtime-node) or initBrowser() (runtime-browser) first');
  return current;
}

const scopes: Set<Tensor>[] = [];

/** Runs `fn`, then disposes every tensor created inside it except those it returns or kept. */
export function tidy<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
  } finally {
    const scope = scopes.pop()!;
    const spare = new Set<Tensor>();
    collect(result!, spare);
    for (const t of scope) {
      if (spare.has(t)) {
        scopes.at(-1)?.add(t);
        continue;
      }
      if (!t.kept) t.dispose();
    }
  }
  return result;
}

function collect(x: unknown, into: Set<Tensor>): void {
  if (x instanceof Tensor) into.add(x);
  else if (Array.isArray(x)) for (const v of x) collect(v, into);
  else if (x && typeof x === 'object' && !(x instanceof Promise)) for (const v of Object.values(x)) collect(v, into);
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording the graph. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs `fn` recording the graph even inside noGrad (activation checkpointing's recompute). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** A GPU buffer, or a 256-byte-aligned window of one owned by a parent storage. */
class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
    readonly offset = 0,
    readonly parent: Storage | null = null,
  ) {}
  release(): void {
    if (--this.refs > 0) return;
    if (this.parent) this.parent.release();
    else device().release(this.buffer);
  }
}

let nextId = 1;

/** The id the next tensor will get (ids only grow): tensors with an id at or above it are newer. */
export function nextTensorId(): number {
  return nextId;
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: Shape;
  readonly dtype: DType;
  private storage: Storage | null;
  /** The op that made it (errors and DEBUG name it). */
  readonly op: string;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: GradNode | null = null;
  kept = false;

  private constructor(shape: Shape, dtype: DType, storage: Storage, op: string) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.storage = storage;
    this.op = op;
    scopes.at(-1)?.add(this);
  }

  /** An uninitialised tensor (kernels write it). */
  static empty(shape: Shape, dtype: DType, op: string): Tensor {
    validateShape(shape, op);
    const bytes = numel(shape) * BYTES[dtype];
    return new Tensor(shape, dtype, new Storage(device().acquire(bytes, op), bytes), op);
  }

  static fromArray(data: ArrayLike<number>, shape: Shape, dtype: DType = 'f32', op = 'tensor'): Tensor {
    validateShape(shape, op);
    if (data.length !== numel(shape)) {
      throw new Error(`${op}: ${data.length} values do not fill shape ${fmt(shape)} (${numel(shape)} elements)`);
    }
    const host =
      dtype === 'f32'
        ? Float32Array.from(data)
        : dtype === 'i32'
          ? Int32Array.from(data)
          : dtype === 'u32'
            ? Uint32Array.from(data)
            : toHalf(data);
    return new Tensor(shape, dtype, new Storage(device().upload(host, op), host.byteLength), op);
  }

  get size(): number {
    return numel(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.storage === null;
  }

  /** The GPU buffer (ops use it); a disposed tensor is an error naming the op that wanted it. */
  buffer(op = 'op'): GPUBuffer {
    if (!this.storage)
      throw new Error(
        `${op}: input tensor ${fmt(this.shape)} (${this.dtype}, made by ${this.op}) was already disposed`,
      );
    return this.storage.buffer;
  }

  /** WebGPU binding of this tensor's bytes (size padded to 4 as WebGPU requires). */
  binding(op = 'op'): GPUBufferBinding {
    const s = this.storage;
    if (!s) this.buffer(op);
    return { buffer: s!.buffer, offset: s!.offset, size: Math.max(4, Math.ceil(s!.bytes / 4) * 4) };
  }

  /**
   * True when no other live tensor shares these bytes (no views of them, not a window of a larger
   * buffer, not a buffer with windows): an in-place write is then visible through this tensor only.
   */
  get soleOwner(): boolean {
    const s = this.storage;
    return s !== null && s.refs === 1 && s.parent === null;
  }

  /** Byte offset of this tensor inside its GPU buffer (0 unless it is a window of a flat buffer). */
  get byteOffset(): number {
    return this.storage?.offset ?? 0;
  }

  /**
   * A tensor living in bytes [byteOffset, byteOffset + size) of `parent`'s storage (which stays
   * alive while the window does). byteOffset must be a multiple of 256 (WebGPU's binding
   * alignment). Optimizers use this to keep all parameters in one flat buffer.
   */
  static window(parent: Tensor, byteOffset: number, shape: Shape, dtype: DType = parent.dtype, op = 'window'): Tensor {
    const s = parent.storage;
    if (!s) parent.buffer(op);
    const align = device().limits.minStorageBufferOffsetAlignment;
    const bytes = numel(shape) * BYTES[dtype];
    if (byteOffset % align !== 0)
      throw new Error(`${op}: window offset ${byteOffset} is not a multiple of ${align} bytes`);
    if (byteOffset + bytes > s!.bytes)
      throw new Error(`${op}: window [${byteOffset}, ${byteOffset + bytes}) overruns its ${s!.bytes}-byte parent`);
    s!.refs++;
    return new Tensor(shape, dtype, new Storage(s!.buffer, bytes, s!.offset + byteOffset, s!), op);
  }

  /** A view with another shape over the same storage (no copy). */
  view(shape: Shape, op = 'reshape'): Tensor {
    const s = this.storage;
    if (!s) this.buffer(op);
    if (numel(shape) !== this.size)
      throw new Error(`${op}: a view of shape ${fmt(shape)} cannot cover ${fmt(this.shape)}`);
    s!.refs++;
    return new Tensor(shape, this.dtype, s!, op);
  }

  /** Reads the values back (waits for the GPU). f16 comes back widened to f32. */
  async data(): Promise<TypedArray> {
    const s = this.storage;
    if (!s) this.buffer('data');
    const raw = await device().read(s!.buffer, s!.bytes, s!.offset);
    if (this.dtype === 'f32') return new Float32Array(raw);
    if (this.dtype === 'i32') return new Int32Array(raw);
    if (this.dtype === 'u32') return new Uint32Array(raw);
    return fromHalf(new Uint16Array(raw));
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor has shape ${fmt(this.shape)}, not a single element`);
    return (await this.data())[0];
  }

  /** Values as nested arrays, for printing and tests. */
  async array(): Promise<unknown> {
    const d = Array.from(await this.data());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return d[off];
      const stride = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  /** Exempts this tensor from the enclosing tidy() scopes (parameters, running stats, state). */
  keep(): this {
    this.kept = true;
    return this;
  }

  dispose(): void {
    const s = this.storage;
    if (!s) return;
    this.storage = null;
    this.gradFn = null;
    s.release();
  }

  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

function validateShape(shape: Shape, op: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new Error(`${op}: invalid shape ${fmt(shape)} (dimensions must be non-negative integers)`);
  }
}
