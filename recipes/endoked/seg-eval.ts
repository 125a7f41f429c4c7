// Evaluation helper of the segmenter recipe (05-segmenter.ts) for test images too large for one
// device buffer: a probability map of a mask over maxStorageBufferBindingSize / 4 pixels (about
// 33.5 Mpx on most adapters) cannot be one f32 tensor, so the map at the training size is
// upsampled on the CPU instead, with the same bilinear interpolation as the device path
// (PyTorch's F.interpolate, mode 'bilinear', align_corners=False: source coordinate
// (x + 0.5) * in / out - 0.5, clamped at 0).

/** The largest map (in pixels) the device path may produce, from the adapter's limits. */
export function maxDevicePixels(limits: { maxStorageBufferBindingSize: number }): number {
  return Math.floor(limits.maxStorageBufferBindingSize / 4);
}

/** Bilinear resize (align_corners=False) of one [inH, inW] map to [outH, outW]. */
export function upsampleBilinear(
  src: Float32Array,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
): Float32Array {
  if (src.length !== inH * inW)
    throw new Error(`upsampleBilinear: ${inH}x${inW} needs ${inH * inW} values, got ${src.length}`);
  const axis = (outN: number, inN: number) => {
    const i0 = new Int32Array(outN),
      i1 = new Int32Array(outN),
      t = new Float32Array(outN);
    for (let o = 0; o < outN; o++) {
      const s = Math.max(0, ((o + 0.5) * inN) / outN - 0.5);
      i0[o] = Math.min(inN - 1, Math.floor(s));
      i1[o] = Math.min(inN - 1, i0[o] + 1);
      t[o] = s - i0[o];
    }
    return { i0, i1, t };
  };
  const ys = axis(outH, inH),
    xs = axis(outW, inW);
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y] * inW,
      r1 = ys.i1[y] * inW,
      ty = ys.t[y];
    for (let x = 0; x < outW; x++) {
      const a = xs.i0[x],
        b = xs.i1[x],
        tx = xs.t[x];
      const top = src[r0 + a] + (src[r0 + b] - src[r0 + a]) * tx;
      const bottom = src[r1 + a] + (src[r1 + b] - src[r1 + a]) * tx;
      out[y * outW + x] = top + (bottom - top) * ty;
    }
  }
  return out;
}
