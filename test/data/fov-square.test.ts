// Field-of-view normalisation on a drawn frame with the cues PolypGen's README warns about: wide
// black margins, a green panel and text in the margin, a saturated blue status bar inside the
// image. The output must be the square of the lit field, the bar replaced by tissue, the corners
// black; and group-wise splits must keep every group in one split.
import { describe, it, expect } from 'vitest';
import { fovCrop, fillBlueOverlay } from '../../engine/data/fov-square.ts';
import { assignGroupSplits } from '../../engine/data/layouts.ts';

function frame(): { width: number; height: number; data: Uint8Array } {
  const w = 160,
    h = 90,
    data = new Uint8Array(w * h * 3);
  const set = (x: number, y: number, rgb: [number, number, number]) => data.set(rgb, 3 * (y * w + x));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (x >= 40 && x < 130 && y >= 5 && y < 85)
        set(x, y, [200, 110, 90]); // the lit field: 90 x 80
      else if (x < 30 && y >= 50 && y < 80)
        set(x, y, [40, 190, 150]); // green panel in the margin
      else if (x < 20 && y < 4) set(x, y, [255, 255, 255]); // margin text
    }
  for (let y = 15; y < 22; y++) for (let x = 50; x < 90; x++) set(x, y, [10, 20, 200]); // blue bar
  return { width: w, height: h, data };
}

describe('fovCrop', () => {
  it('keeps the square of the lit field, fills the blue bar, blacks out the corners', () => {
    const img = frame();
    const r = fovCrop(img);
    expect(r.crop).toEqual({ x: 45, y: 5, size: 80 });
    expect(r.overlay).not.toBeNull();
    const px = (x: number, y: number) => Array.from(r.image.data.subarray(3 * (y * 80 + x), 3 * (y * 80 + x) + 3));
    expect(px(40, 40)).toEqual([200, 110, 90]);
    expect(px(20, 13)).toEqual([200, 110, 90]); // where the bar was (input x 65, y 18)
    expect(px(0, 0)).toEqual([0, 0, 0]); // a corner outside the circle
    expect(px(79, 79)).toEqual([0, 0, 0]);
    let blue = 0;
    for (let i = 0; i < r.image.data.length; i += 3) if (r.image.data[i + 2] > 150) blue++;
    expect(blue).toBe(0);
    expect(img.data[3 * (18 * 160 + 65) + 2]).toBe(200); // the input is left alone
  });

  it('leaves frames without a compact blue block alone', () => {
    const img = frame();
    for (let y = 15; y < 22; y++) for (let x = 50; x < 90; x++) img.data.set([200, 110, 90], 3 * (y * 160 + x));
    img.data.set([0, 0, 255], 3 * (40 * 160 + 60)); // one stray blue pixel
    const before = img.data.slice();
    expect(fillBlueOverlay(img)).toBeNull();
    expect(img.data).toEqual(before);
  });
});

describe('assignGroupSplits', () => {
  it('keeps groups whole, splits each stratum by its fractions, and is seeded', () => {
    const items: { group: string; stratum: string }[] = [];
    for (let s = 0; s < 10; s++) for (let k = 0; k < 20 + s; k++) items.push({ group: `seq${s}`, stratum: 'neg' });
    for (let i = 0; i < 200; i++) items.push({ group: `img${i}`, stratum: 'pos' });
    const split = assignGroupSplits(items, { test: 0.2, val: 0.1 }, 3);
    expect(split.size).toBe(210);
    const frames = (stratum: string, name: string) =>
      items.filter((it) => it.stratum === stratum && split.get(it.group) === name).length;
    expect(frames('pos', 'test')).toBe(40);
    expect(frames('pos', 'val')).toBe(20);
    expect(frames('neg', 'test')).toBeGreaterThanOrEqual(0.2 * 245);
    expect(frames('neg', 'test')).toBeLessThan(0.2 * 245 + 30);
    expect(frames('neg', 'val')).toBeGreaterThan(0);
    expect(assignGroupSplits(items, { test: 0.2, val: 0.1 }, 3)).toEqual(split);
    expect([...assignGroupSplits(items, { test: 0.2, val: 0.1 }, 4)]).not.toEqual([...split]);
    expect(() =>
      assignGroupSplits(
        [
          { group: 'a', stratum: 'x' },
          { group: 'a', stratum: 'y' },
        ],
        { test: 0.2, val: 0.1 },
      ),
    ).toThrow(/group "a" is in strata/);
  });
});
