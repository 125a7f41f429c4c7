// IEEE 754 half (f16) and bfloat16 conversion on the CPU, round to nearest even, for f16 tensor
// storage (Float16Array is not in every runtime yet) and safetensors F16/BF16 tensors. Float32
// values travel as their bits (Uint32) so NaN payloads survive a round trip.

/** f16 bits -> f32 bits (exact: every half is a float). */
export function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16,
    exp = (h >> 10) & 0x1f;
  let man = h & 0x3ff;
  if (exp === 31) return (sign | 0x7f800000 | (man << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (man << 13)) >>> 0;
  if (man === 0) return sign >>> 0;
  let e = 0;
  while (!(man & 0x400)) {
    man <<= 1;
    e++;
  }
  return (sign | ((113 - e) << 23) | ((man & 0x3ff) << 13)) >>> 0;
}

/** f32 bits -> f16 bits, round to nearest even; overflow to infinity, NaN stays NaN. */
export function floatBitsToHalf(f: number): number {
  const sign = (f >>> 16) & 0x8000,
    exp = (f >>> 23) & 0xff,
    man = f & 0x7fffff;
  if (exp === 255) return man === 0 ? sign | 0x7c00 : sign | 0x7c00 | (man >>> 13 || 0x200);
  const e = exp - 112;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = man | 0x800000,
      shift = 14 - e;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1),
      half = 1 << (shift - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = sign | (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return r;
}

/** f32 bits -> bfloat16 bits, round to nearest even; a NaN stays a (quiet) NaN. */
export function floatBitsToBf16(f: number): number {
  if ((f & 0x7f800000) === 0x7f800000 && (f & 0x7fffff) !== 0) return (f >>> 16) & 0x7f ? f >>> 16 : (f >>> 16) | 0x40;
  return ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Numbers -> f16 bits. */
export function toHalf(data: ArrayLike<number>): Uint16Array {
  const f = Float32Array.from(data);
  const bits = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = floatBitsToHalf(bits[i]);
  return out;
}

/** f16 bits -> floats. */
export function fromHalf(h: Uint16Array): Float32Array {
  const bits = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) bits[i] = halfToFloatBits(h[i]);
  return new Float32Array(bits.buffer);
}
