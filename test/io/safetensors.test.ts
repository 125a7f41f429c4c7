// safetensors reader/writer against files written by test/golden/gen_safetensors.py.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../../engine/io/safetensors.ts';

const FIX = join(__dirname, '..', 'golden', 'fixtures');
type Value = number | string;
interface Expected {
  metadata: Record<string, string> | null;
  tensors: Record<string, { dtype: string; shape: number[]; values: Value[]; bits?: number[] }>;
  order?: string[];
}
const expected = JSON.parse(readFileSync(join(FIX, 'safetensors.json'), 'utf8')).files as Record<string, Expected>;
const file = (name: string) => new Uint8Array(readFileSync(join(FIX, `${name}.safetensors`)));
const num = (v: Value) =>
  v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === '-0' ? -0 : Number(v);

/** A file from a header object and raw data bytes, for corrupt-input tests. */
function build(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const h = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('parseSafetensors', () => {
  it('reads a Node Buffer (readFileSync) like a Uint8Array (regression: Buffer.slice is a view)', () => {
    const fromBuffer = parseSafetensors(readFileSync(join(FIX, 'basic.safetensors')));
    const fromArray = parseSafetensors(file('basic'));
    for (const [k, t] of Object.entries(fromArray.tensors)) {
      expect(fromBuffer.tensors[k].data.length, k).toBe(t.data.length);
      expect(Array.from(fromBuffer.tensors[k].data as ArrayLike<number>), k).toEqual(
        Array.from(t.data as ArrayLike<number>),
      );
    }
  });

  for (const name of ['basic', 'names', 'legacy_order']) {
    it(`${name}: exact values, dtypes, shapes and metadata`, () => {
      const exp = expected[name];
      const parsed = parseSafetensors(file(name));
      expect(parsed.metadata ?? null).toEqual(exp.metadata);
      expect(Object.keys(parsed.tensors).sort()).toEqual(Object.keys(exp.tensors).sort());
      for (const [tname, t] of Object.entries(exp.tensors)) {
        const got = parsed.tensors[tname];
        expect(got.dtype, tname).toBe(t.dtype);
        expect(got.shape, tname).toEqual(t.shape);
        if (t.dtype === 'I64') {
          expect(got.data).toBeInstanceOf(Int32Array);
          expect(Array.from(got.data as Int32Array), tname).toEqual(t.values.map(Number));
        } else {
          // Object.is: exact equality, NaN equals NaN, -0 differs from 0.
          const vals = Array.from(got.data as ArrayLike<number>);
          t.values.forEach((v, i) =>
            expect(Object.is(vals[i], num(v)), `${tname}[${i}] = ${vals[i]}, expected ${v}`).toBe(true),
          );
          expect(vals.length).toBe(t.values.length);
        }
      }
    });
  }

  it('keeps raw F16/BF16 bits with {half: "bits"} and int64 as BigInt64Array with {int64: "bigint"}', () => {
    const parsed = parseSafetensors(file('basic'), { half: 'bits', int64: 'bigint' });
    expect(Array.from(parsed.tensors.half.data as Uint16Array)).toEqual(expected.basic.tensors.half.bits);
    expect(Array.from(parsed.tensors.bf.data as Uint16Array)).toEqual(expected.basic.tensors.bf.bits);
    expect(Array.from(parsed.tensors.pos.data as BigInt64Array, String)).toEqual(expected.basic.tensors.pos.values);
    const big = parseSafetensors(file('int64_big'), { int64: 'bigint' });
    expect(Array.from(big.tensors.big.data as BigInt64Array, String)).toEqual(expected.int64_big.tensors.big.values);
  });

  it('refuses int64 values that do not fit in int32 unless asked for BigInt', () => {
    expect(() => parseSafetensors(file('int64_big'))).toThrow(
      /tensor 'big': I64 value 1099511627776 at index 0 does not fit in int32/,
    );
  });
});

describe('serializeSafetensors', () => {
  for (const name of ['basic', 'names', 'int64_big']) {
    it(`${name}: serialize(parse(x)) is byte-identical to the reference-written file`, () => {
      const bytes = file(name);
      for (const opts of [{}, { half: 'bits' as const, int64: 'bigint' as const }]) {
        if (name === 'int64_big' && !opts.int64) continue;
        const p = parseSafetensors(bytes, opts);
        const out = serializeSafetensors(p.tensors, p.metadata);
        expect(out.length, JSON.stringify(opts)).toBe(bytes.length);
        expect(Buffer.from(out).equals(Buffer.from(bytes)), `bytes differ (${JSON.stringify(opts)})`).toBe(true);
      }
    });
  }

  it('orders tensors by dtype (largest first) then by UTF-8 bytes of the name', () => {
    const p = parseSafetensors(file('names'));
    const out = serializeSafetensors(p.tensors);
    const header = JSON.parse(
      new TextDecoder().decode(out.subarray(8, 8 + new DataView(out.buffer).getUint32(0, true))),
    );
    expect(Object.keys(header)).toEqual(expected.names.order);
    const legacy = parseSafetensors(file('legacy_order'));
    const re = parseSafetensors(serializeSafetensors(legacy.tensors));
    expect(Object.keys(re.header)).toEqual(['b', 'a']); // F32 before F16, as the reference writes it
    expect(Array.from(re.tensors.a.data as Float32Array)).toEqual([1.5, -2]);
  });

  it('pads the header with spaces to 8 bytes and writes plain arrays', () => {
    const out = serializeSafetensors(
      { w: { dtype: 'F32', shape: [2], data: [1, 2] }, m: { dtype: 'BOOL', shape: [1], data: [1] } },
      { a: 'b' },
    );
    const n = new DataView(out.buffer).getUint32(0, true);
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(out.subarray(8, 8 + n));
    expect(text.trimEnd()).toBe(
      '{"__metadata__":{"a":"b"},' +
        '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
        '"m":{"dtype":"BOOL","shape":[1],"data_offsets":[8,9]}}',
    );
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    expect(Array.from(parseSafetensors(out).tensors.w.data as Float32Array)).toEqual([1, 2]);
  });

  it('F64 keeps every double exactly and sorts between I64 and F32', () => {
    const xs = [0.1, -1 / 3, 1e-300, Number.MAX_VALUE, -0, NaN, Infinity, 2 ** 53 - 1];
    const out = serializeSafetensors({
      f: { dtype: 'F32', shape: [1], data: [1] },
      d: { dtype: 'F64', shape: [xs.length], data: xs },
      i: { dtype: 'I64', shape: [1], data: [3] },
    });
    const p = parseSafetensors(out);
    expect(Object.keys(p.header)).toEqual(['i', 'd', 'f']);
    expect(p.tensors.d.data).toBeInstanceOf(Float64Array);
    expect(Array.from(p.tensors.d.data as Float64Array)).toEqual(xs);
    expect(Object.is((p.tensors.d.data as Float64Array)[4], -0)).toBe(true);
  });

  it('F16 and BF16: every one of the 65536 bit patterns survives float32 and back', () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const dtype of ['F16', 'BF16'] as const) {
      const floats = parseSafetensors(serializeSafetensors({ x: { dtype, shape: [65536], data: bits } })).tensors.x
        .data as Float32Array;
      const again = parseSafetensors(serializeSafetensors({ x: { dtype, shape: [65536], data: floats } }), {
        half: 'bits',
      }).tensors.x.data as Uint16Array;
      let bad = -1;
      for (let i = 0; i < 65536; i++)
        if (again[i] !== i) {
          bad = i;
          break;
        }
      expect(bad, `${dtype}: 0x${bad.toString(16)} came back as 0x${again[bad]?.toString(16)}`).toBe(-1);
    }
  });

  it('F16 and BF16 round floats to nearest even', () => {
    const data = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 2 ** -25, 3 * 2 ** -26, 1e-10];
    const h = parseSafetensors(serializeSafetensors({ x: { dtype: 'F16', shape: [6], data } })).tensors.x
      .data as Float32Array;
    expect(Array.from(h)).toEqual([1, 1 + 2 ** -9, Infinity, 0, 2 ** -24, 0]);
    const b = parseSafetensors(
      serializeSafetensors({ x: { dtype: 'BF16', shape: [2], data: [1 + 2 ** -8, 1 + 3 * 2 ** -8] } }),
    ).tensors.x.data as Float32Array;
    expect(Array.from(b)).toEqual([1, 1 + 2 ** -6]);
  });

  it('rejects bad input with the tensor named', () => {
    expect(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: [1, 2, 3] } })).toThrow(
      /tensor 'w': shape \[2,2\] has 4 elements but data has 3/,
    );
    expect(() =>
      serializeSafetensors({ w: { dtype: 'U64', shape: [1], data: [1] } as unknown as SafetensorsInput }),
    ).toThrow(/tensor 'w': unsupported dtype "U64"/);
    expect(() => serializeSafetensors({ i: { dtype: 'I32', shape: [1], data: [2 ** 31] } })).toThrow(
      /tensor 'i': I32 value 2147483648 at index 0 is not an integer/,
    );
    expect(() => serializeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: [] } })).toThrow(/__metadata__/);
  });
});

describe('corrupt files', () => {
  const good = file('basic');
  const entry = (b: number, e: number, dtype = 'F32', shape = [(e - b) / 4]) => ({
    dtype,
    shape,
    data_offsets: [b, e],
  });
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than the length field', good.subarray(0, 5), /file is 5 bytes, too short for the 8-byte header length/],
    [
      'header cut short',
      good.subarray(0, 100),
      /header length 664 runs past the end of the 100-byte file \(truncated\?\)/,
    ],
    [
      'data cut short',
      good.subarray(0, good.length - 2),
      /tensor 'flags': data_offsets \[162, 165\] are out of range: the data section has 163 bytes \(truncated\?\)/,
    ],
    ['bad JSON', build(null, new Uint8Array(0), '{"a": {"dtype": "F32",'), /the header is not valid JSON/],
    ['header not an object', build([1, 2], new Uint8Array(0)), /the header is not a JSON object/],
    ['bad UTF-8', build(null, new Uint8Array(0), '{}').map((v, i) => (i === 9 ? 0xff : v)), /not valid UTF-8/],
    [
      'offsets out of range',
      build({ a: entry(0, 8) }, new Uint8Array(4)),
      /tensor 'a': data_offsets \[0, 8\] are out of range: the data section has 4 bytes/,
    ],
    [
      'offsets reversed',
      build({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)),
      /tensor 'a': data_offsets \[4, 0\] end before they begin/,
    ],
    [
      'overlapping offsets',
      build({ a: entry(0, 8), b: entry(4, 12) }, new Uint8Array(12)),
      /tensor 'b': data_offsets \[4, 12\] overlap tensor 'a' \[0, 8\]/,
    ],
    [
      'gap between tensors',
      build({ a: entry(0, 4), b: entry(8, 12) }, new Uint8Array(12)),
      /tensor 'b': data_offsets begin at 8 but the previous tensor ends at 4: offsets must be contiguous/,
    ],
    [
      'trailing bytes',
      build({ a: entry(0, 4) }, new Uint8Array(12)),
      /the data section has 12 bytes but the tensors cover 4: 8 unexpected trailing bytes/,
    ],
    [
      'size does not match the shape',
      build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /tensor 'a': shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/,
    ],
    [
      'unsupported dtype',
      build({ a: { dtype: 'U64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /tensor 'a': unsupported dtype "U64"/,
    ],
    [
      'bad shape',
      build({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /tensor 'a': shape \[-1\] must be a list of non-negative integers/,
    ],
    [
      'missing offsets',
      build({ a: { dtype: 'F32', shape: [1] } }, new Uint8Array(4)),
      /tensor 'a': data_offsets undefined must be two non-negative integers/,
    ],
    ['bad metadata', build({ __metadata__: { a: 1 } }, new Uint8Array(0)), /__metadata__ must map strings to strings/],
  ];
  it.each(cases)('%s', (_, bytes, message) => {
    expect(() => parseSafetensors(bytes)).toThrow(message);
  });

  it('a huge header length is refused before reading it', () => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setUint32(4, 1, true); // 2^32
    expect(() => parseSafetensors(b)).toThrow(/header length 4294967296 exceeds the 100 MB limit/);
  });
});
