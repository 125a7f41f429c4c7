// safetensors reader and writer (pure: bytes in, bytes out).
//
// Format (huggingface/safetensors, README "Format" and safetensors/src/tensor.rs):
//   8 bytes   N, the header length, unsigned 64-bit little-endian
//   N bytes   JSON: {"__metadata__": {string: string}?, name: {"dtype", "shape", "data_offsets": [begin, end]}}
//   rest      the tensors' bytes, little-endian, row-major; offsets are relative to the data start.
// The reference writer (tensor.rs::prepare) orders tensors by dtype, largest first in its Dtype
// enum order (I64 > F64 > F32 > I32 > BF16 > F16 > U8 > BOOL here), then by name (byte order of
// UTF-8); writes "__metadata__" first, then the tensors in that order, as compact JSON
// (serde_json); and pads the header with spaces to a multiple of 8 bytes. serializeSafetensors
// does the same, so serialize(parse(file)) reproduces a reference-written file byte for byte.
// Metadata keys keep their insertion order (the reference keeps them in a HashMap, so its order
// is unspecified when there are several); integer-like keys would be reordered by JavaScript.
// The reader checks what the reference checks: offsets contiguous from 0 to the end of the file,
// each span equal to the tensor's size, a header under 100 MB.
//
// Types: F32 -> Float32Array; F64 -> Float64Array (test fixtures keep float64 values exactly); F16
// and BF16 -> Float32Array (exact widening; {half: 'bits'} keeps the raw Uint16Array bits); I32 ->
// Int32Array; I64 -> Int32Array after checking that every value fits (the engine has no 64-bit
// integers), or BigInt64Array with {int64: 'bigint'}; U8 and BOOL -> Uint8Array. The writer accepts
// those arrays (or plain number arrays) back; F16/BF16 from floats round to nearest even, and
// values that came from F16/BF16 (NaN payloads included) come back with the same bits.

import { halfToFloatBits, floatBitsToHalf, floatBitsToBf16 } from '../f16.ts';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'BOOL';
export type SafetensorsData = Float64Array | Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;
export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData;
}
export interface SafetensorsInput {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData | ArrayLike<number>;
}
export interface ParsedSafetensors {
  /** The parsed JSON header as written. */
  header: Record<string, unknown>;
  metadata?: Record<string, string>;
  tensors: Record<string, SafetensorsTensor>;
}
export interface ParseOptions {
  int64?: 'int32' | 'bigint';
  half?: 'f32' | 'bits';
}

/** Bytes per element, and the rank in the reference's Dtype enum (the writer sorts by it). */
const DTYPES: Record<SafetensorsDType, { bytes: number; rank: number }> = {
  BOOL: { bytes: 1, rank: 0 },
  U8: { bytes: 1, rank: 4 },
  F16: { bytes: 2, rank: 13 },
  BF16: { bytes: 2, rank: 14 },
  I32: { bytes: 4, rank: 15 },
  F32: { bytes: 4, rank: 17 },
  F64: { bytes: 8, rank: 19 },
  I64: { bytes: 8, rank: 21 },
};
const MAX_HEADER = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(msg: string): never {
  throw new Error(`safetensors: ${msg}`);
}
const fmt = (a: unknown) => JSON.stringify(a);

// ---- reading ---------------------------------------------------------------------------------

function checkShape(name: string, shape: unknown): number {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    fail(`tensor '${name}': shape ${fmt(shape)} must be a list of non-negative integers`);
  return (shape as number[]).reduce((a, b) => a * b, 1);
}

export function parseSafetensors(bytes: Uint8Array, opts: ParseOptions = {}): ParsedSafetensors {
  if (!LITTLE_ENDIAN) fail('this reader needs a little-endian host');
  if (bytes.length < 8) fail(`the file is ${bytes.length} bytes, too short for the 8-byte header length (truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 4294967296;
  if (n > MAX_HEADER) fail(`the header length ${n} exceeds the 100 MB limit (corrupt file?)`);
  if (8 + n > bytes.length)
    fail(`the header length ${n} runs past the end of the ${bytes.length}-byte file (truncated?)`);
  let text: string, header: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail('the header is not valid UTF-8');
  }
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object');
  const h = header as Record<string, unknown>;
  const dataStart = 8 + n,
    dataLength = bytes.length - dataStart;

  let metadata: Record<string, string> | undefined;
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(h)) {
    if (name === '__metadata__') {
      if (
        typeof entry !== 'object' ||
        entry === null ||
        Array.isArray(entry) ||
        !Object.values(entry).every((v) => typeof v === 'string')
      ) {
        fail(`__metadata__ must map strings to strings, got ${fmt(entry)}`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) fail(`tensor '${name}': entry ${fmt(entry)} is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPES))
      fail(`tensor '${name}': unsupported dtype ${fmt(e.dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
    const numel = checkShape(name, e.shape);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((v) => Number.isSafeInteger(v) && v >= 0)) {
      fail(`tensor '${name}': data_offsets ${fmt(off)} must be two non-negative integers`);
    }
    const [begin, end] = off as number[];
    if (end < begin) fail(`tensor '${name}': data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength)
      fail(
        `tensor '${name}': data_offsets [${begin}, ${end}] are out of range: the data section has ` +
          `${dataLength} bytes (truncated?)`,
      );
    const size = numel * DTYPES[e.dtype as SafetensorsDType].bytes;
    if (end - begin !== size)
      fail(
        `tensor '${name}': shape ${fmt(e.shape)} of ${e.dtype} needs ${size} bytes but data_offsets ` +
          `[${begin}, ${end}] span ${end - begin}`,
      );
    spans.push({ name, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i];
    if (s.begin < at)
      fail(
        `tensor '${s.name}': data_offsets [${s.begin}, ${s.end}] overlap tensor ` +
          `'${spans[i - 1].name}' [${spans[i - 1].begin}, ${spans[i - 1].end}]`,
      );
    if (s.begin > at)
      fail(
        `tensor '${s.name}': data_offsets begin at ${s.begin} but the previous tensor ends at ${at}: ` +
          `offsets must be contiguous`,
      );
    at = s.end;
  }
  if (at !== dataLength)
    fail(
      `the data section has ${dataLength} bytes but the tensors cover ${at}: ${dataLength - at} ` +
        `unexpected trailing bytes`,
    );

  const tensors: Record<string, SafetensorsTensor> = {};
  for (const { name, begin, end } of spans) {
    const e = h[name] as { dtype: SafetensorsDType; shape: number[] };
    // A copy (aligned for the typed array). Uint8Array's own slice: a Node Buffer's slice() is a view.
    const buf = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end).buffer;
    tensors[name] = { dtype: e.dtype, shape: [...e.shape], data: decode(name, e.dtype, buf, opts) };
  }
  return { header: h, metadata, tensors };
}

function decode(name: string, dtype: SafetensorsDType, buf: ArrayBuffer, opts: ParseOptions): SafetensorsData {
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return new Float64Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf);
    case 'F16':
    case 'BF16': {
      const h = new Uint16Array(buf);
      if (opts.half === 'bits') return h;
      const out = new Float32Array(h.length),
        bits = new Uint32Array(out.buffer);
      for (let i = 0; i < h.length; i++) bits[i] = dtype === 'F16' ? halfToFloatBits(h[i]) : h[i] << 16;
      return out;
    }
    case 'I64': {
      if (opts.int64 === 'bigint') return new BigInt64Array(buf);
      const words = new Uint32Array(buf),
        out = new Int32Array(words.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = words[2 * i],
          hi = words[2 * i + 1];
        if (!((hi === 0 && lo < 0x80000000) || (hi === 0xffffffff && lo >= 0x80000000))) {
          fail(
            `tensor '${name}': I64 value ${new BigInt64Array(buf)[i]} at index ${i} does not fit in ` +
              `int32; parse with {int64: 'bigint'}`,
          );
        }
        out[i] = lo | 0;
      }
      return out;
    }
  }
}

// ---- writing ---------------------------------------------------------------------------------

function encode(name: string, t: SafetensorsInput): Uint8Array {
  const { dtype, data } = t;
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const ints = (lo: number, hi: number) => {
    for (let i = 0; i < data.length; i++) {
      const v = Number(data[i]);
      if (!Number.isInteger(v) || v < lo || v > hi)
        fail(`tensor '${name}': ${dtype} value ${data[i]} at index ${i} is not an integer in [${lo}, ${hi}]`);
    }
  };
  switch (dtype) {
    case 'F32':
      return asBytes(data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>));
    case 'F64':
      return asBytes(data instanceof Float64Array ? data : Float64Array.from(data as ArrayLike<number>));
    case 'I32':
      if (data instanceof Int32Array) return asBytes(data);
      ints(-2147483648, 2147483647);
      return asBytes(Int32Array.from(data as ArrayLike<number>));
    case 'U8':
    case 'BOOL':
      if (data instanceof Uint8Array && dtype === 'U8') return data;
      ints(0, dtype === 'BOOL' ? 1 : 255);
      return Uint8Array.from(data as ArrayLike<number>);
    case 'F16':
    case 'BF16': {
      if (data instanceof Uint16Array) return asBytes(data);
      const f = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
      const bits = new Uint32Array(f.buffer, f.byteOffset, f.length),
        out = new Uint16Array(f.length);
      for (let i = 0; i < f.length; i++) out[i] = dtype === 'F16' ? floatBitsToHalf(bits[i]) : floatBitsToBf16(bits[i]);
      return asBytes(out);
    }
    case 'I64': {
      if (data instanceof BigInt64Array) return asBytes(data);
      ints(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      return asBytes(BigInt64Array.from(data as ArrayLike<number>, (v) => BigInt(v)));
    }
  }
}

function compareUtf8(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** The file's bytes, laid out as the reference writer lays them out. */
export function serializeSafetensors(
  tensors: Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  if (!LITTLE_ENDIAN) fail('this writer needs a little-endian host');
  const utf8 = new TextEncoder();
  const entries = Object.entries(tensors).map(([name, t]) => {
    if (name === '__metadata__') fail('a tensor cannot be named __metadata__');
    if (!(t.dtype in DTYPES))
      fail(`tensor '${name}': unsupported dtype ${fmt(t.dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
    const numel = checkShape(name, t.shape);
    if (t.data.length !== numel)
      fail(`tensor '${name}': shape ${fmt(t.shape)} has ${numel} elements but data has ${t.data.length}`);
    return { name, key: utf8.encode(name), t };
  });
  entries.sort((a, b) => DTYPES[b.t.dtype].rank - DTYPES[a.t.dtype].rank || compareUtf8(a.key, b.key));

  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') fail(`metadata '${k}' must be a string, got ${fmt(v)}`);
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const { name, t } of entries) {
    const b = encode(name, t);
    blobs.push(b);
    const span = `[${offset},${offset + b.length}]`;
    const fields = `"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":${span}`;
    parts.push(`${JSON.stringify(name)}:{${fields}}`);
    offset += b.length;
  }
  let head = utf8.encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(head.length / 8) * 8;
  if (padded !== head.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(head);
    head = p;
  }
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, head.length % 4294967296, true);
  view.setUint32(4, Math.floor(head.length / 4294967296), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}
