// Overlays the page draws over the input image, as RGBA pixel arrays (no DOM, so Node tests can
// check them): a class-activation heat map and a segmentation mask with its contour. Maps live on
// the model's input grid and cover the whole image (the image is resized to the input without
// keeping its aspect ratio), so they are stretched to the displayed image's size.

/** Bilinear resize of a one-channel map [h, w] -> [H, W] (pixel centres, edges clamped; align_corners=False). */
export function upsampleBilinear(
  map: ArrayLike<number>,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Float32Array {
  if (map.length !== h * w) throw new Error(`upsampleBilinear: map has ${map.length} values, expected ${h}x${w}`);
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * (h / outH) - 0.5, 0), h - 1);
    const y0 = Math.floor(fy),
      y1 = Math.min(y0 + 1, h - 1),
      ty = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.min(Math.max((x + 0.5) * (w / outW) - 0.5, 0), w - 1);
      const x0 = Math.floor(fx),
        x1 = Math.min(x0 + 1, w - 1),
        tx = fx - x0;
      const top = map[y0 * w + x0] * (1 - tx) + map[y0 * w + x1] * tx;
      const bottom = map[y1 * w + x0] * (1 - tx) + map[y1 * w + x1] * tx;
      out[y * outW + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

// A perceptual blue -> cyan -> green -> yellow -> red ramp (stops in sRGB).
const STOPS: [number, number, number][] = [
  [48, 18, 59],
  [40, 120, 240],
  [30, 200, 200],
  [120, 230, 80],
  [250, 200, 40],
  [230, 60, 20],
  [122, 4, 3],
];

export function heatColor(t: number): [number, number, number] {
  const s = Math.min(Math.max(t, 0), 1) * (STOPS.length - 1);
  const i = Math.min(Math.floor(s), STOPS.length - 2),
    f = s - i,
    a = STOPS[i],
    b = STOPS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Heat-map layer of a score grid [gh, gw]: min-max scaled, coloured, more opaque where higher. */
export function heatLayer(
  grid: ArrayLike<number>,
  gh: number,
  gw: number,
  outW: number,
  outH: number,
): Uint8ClampedArray {
  let lo = Infinity,
    hi = -Infinity;
  for (let i = 0; i < grid.length; i++) {
    lo = Math.min(lo, grid[i]);
    hi = Math.max(hi, grid[i]);
  }
  const up = upsampleBilinear(grid, gh, gw, outH, outW),
    span = hi - lo || 1;
  const out = new Uint8ClampedArray(outW * outH * 4);
  for (let p = 0; p < up.length; p++) {
    const t = (up[p] - lo) / span,
      [r, g, b] = heatColor(t);
    out.set([r, g, b, 255 * (0.12 + 0.43 * t)], 4 * p);
  }
  return out;
}

/**
 * Mask layer: the probability map [h, w] upsampled to the display, thresholded, tinted inside,
 * with a solid contour (mask pixels that touch a background pixel or the border, 2 px wide).
 */
export function maskLayer(
  prob: ArrayLike<number>,
  h: number,
  w: number,
  outW: number,
  outH: number,
  threshold = 0.5,
): { rgba: Uint8ClampedArray; area: number } {
  const up = upsampleBilinear(prob, h, w, outH, outW);
  const inside = new Uint8Array(up.length);
  let n = 0;
  for (let p = 0; p < up.length; p++)
    if (up[p] > threshold) {
      inside[p] = 1;
      n++;
    }
  const out = new Uint8ClampedArray(up.length * 4);
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= outW || y >= outH ? 0 : inside[y * outW + x]);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      if (!inside[y * outW + x]) continue;
      let edge = false;
      for (let dy = -2; dy <= 2 && !edge; dy++)
        for (let dx = -2; dx <= 2; dx++)
          if (Math.abs(dx) + Math.abs(dy) <= 2 && !at(x + dx, y + dy)) {
            edge = true;
            break;
          }
      out.set(edge ? [255, 236, 61, 255] : [0, 214, 170, 100], 4 * (y * outW + x));
    }
  }
  return { rgba: out, area: n / up.length };
}

/** Index of the k largest values, largest first. */
export function topK(values: ArrayLike<number>, k: number): number[] {
  return Array.from(values, (v, i) => [v, i])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}

/** Column `c` of a row-major [n, numCols] array. */
export function column(a: ArrayLike<number>, numCols: number, c: number): Float32Array {
  const out = new Float32Array(a.length / numCols);
  for (let i = 0; i < out.length; i++) out[i] = a[i * numCols + c];
  return out;
}
