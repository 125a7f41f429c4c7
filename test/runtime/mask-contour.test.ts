// runtime-node/image.ts maskContour: the outline of a binary mask through sharp's erode, checked
// against the definition (a foreground pixel with a background or outside pixel within Chebyshev
// distance `width`) on seeded random blobs, including blobs cut by the image border.
import { describe, it, expect } from 'vitest';
import { maskContour } from '../../runtime-node/image.ts';

function byDefinition(data: Uint8Array, w: number, h: number, t: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (!data[y * w + x]) continue;
      let edge = false;
      for (let dy = -t; dy <= t && !edge; dy++)
        for (let dx = -t; dx <= t && !edge; dx++) {
          const u = x + dx,
            v = y + dy;
          edge = u < 0 || v < 0 || u >= w || v >= h || !data[v * w + u];
        }
      out[y * w + x] = edge ? 1 : 0;
    }
  return out;
}

describe('maskContour', () => {
  it('matches the definition on random blobs, at widths 1-3, at the border too', async () => {
    let s = 7;
    const r = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
    let borderCases = 0;
    for (let k = 0; k < 12; k++) {
      const w = 17 + (k % 5) * 3,
        h = 13 + (k % 4) * 4,
        data = new Uint8Array(w * h);
      for (let b = 0; b < 3; b++) {
        const cx = r() * w,
          cy = r() * h,
          rad = 2 + r() * 7;
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) if ((x - cx) ** 2 + (y - cy) ** 2 < rad * rad) data[y * w + x] = 1;
      }
      if (data.some((v, p) => v && (p % w === 0 || p < w))) borderCases++;
      for (const t of [1, 2, 3])
        expect(Array.from(await maskContour({ width: w, height: h, data }, t)), `blob ${k}, width ${t}`).toEqual(
          Array.from(byDefinition(data, w, h, t)),
        );
    }
    expect(borderCases).toBeGreaterThan(0);
  });

  it('a filled square gives a ring; an empty mask gives nothing', async () => {
    const w = 8,
      h = 8,
      data = new Uint8Array(w * h);
    for (let y = 2; y < 6; y++) for (let x = 2; x < 6; x++) data[y * w + x] = 1;
    const c = await maskContour({ width: w, height: h, data }, 1);
    expect(c.reduce((a, v) => a + v, 0)).toBe(12); // 16 pixels minus the 2x2 inside
    expect((await maskContour({ width: w, height: h, data: new Uint8Array(w * h) }, 1)).every((v) => v === 0)).toBe(
      true,
    );
  });
});
