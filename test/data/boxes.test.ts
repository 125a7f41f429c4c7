// Connected components and the EndoKED box rule (engine/data/boxes.ts) on crafted masks: one case
// per rule of sam_utils.from_mask2box_singlebox, plus the background-row behaviour it inherits
// from cv2.connectedComponentsWithStats.
import { describe, it, expect } from 'vitest';
import {
  connectedComponents,
  endokedBox,
  boxIou,
  maskBox,
  thresholdMask,
  scaleBox,
  touchesBorder,
  type Box,
} from '../../engine/data/boxes.ts';

/** A mask from rows of '.' and '#'. */
function grid(rows: string[]): { mask: Uint8Array; w: number; h: number } {
  const h = rows.length,
    w = rows[0].length;
  const mask = new Uint8Array(w * h);
  rows.forEach((r, y) => {
    expect(r.length).toBe(w);
    for (let x = 0; x < w; x++) mask[y * w + x] = r[x] === '#' ? 1 : 0;
  });
  return { mask, w, h };
}
/** A w x h mask with filled rectangles [x0, y0, x1, y1) set. */
function rects(w: number, h: number, ...boxes: Box[]): Uint8Array {
  const m = new Uint8Array(w * h);
  for (const [x0, y0, x1, y1] of boxes) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = 1;
  return m;
}

describe('connectedComponents (8-connectivity)', () => {
  it('joins diagonal neighbours and reports area and exclusive boxes in raster order', () => {
    const { mask, w, h } = grid(['#.....', '.#..##', '..#.#.', '......', '.##...']);
    const { labels, components } = connectedComponents(mask, w, h);
    expect(components).toEqual([
      { label: 1, area: 3, box: [0, 0, 3, 3] },
      { label: 2, area: 3, box: [4, 1, 6, 3] },
      { label: 3, area: 2, box: [1, 4, 3, 5] },
    ]);
    expect(labels[2 * w + 2]).toBe(1);
    expect(labels[0 * w + 1]).toBe(0);
  });
  it('does not join pixels that are two apart', () => {
    const { mask, w, h } = grid(['#.#', '...', '#.#']);
    expect(connectedComponents(mask, w, h).components.length).toBe(4);
  });
  it('follows a spiral (the flood fill reaches every pixel of a long component)', () => {
    const { mask, w, h } = grid([
      '#######',
      '......#',
      '#####.#',
      '#...#.#',
      '#.#.#.#',
      '#...#.#',
      '#.....#',
      '#######',
    ]);
    const { components } = connectedComponents(mask, w, h);
    expect(components.length).toBe(2);
    expect(components[0].box).toEqual([0, 0, 7, 8]);
    expect(components[1]).toEqual({ label: 2, area: 1, box: [2, 4, 3, 5] });
  });
  it('rejects a mask of the wrong size', () => {
    expect(() => connectedComponents(new Uint8Array(5), 2, 3)).toThrow(/expected 2x3/);
  });
});

describe('endokedBox: one rule at a time', () => {
  const W = 20,
    H = 20; // image area 400: 0.01 -> 4 px, 0.35 -> 140 px

  it('accepts one interior blob and returns its exclusive box', () => {
    const d = endokedBox(rects(W, H, [5, 6, 12, 11]), W, H); // 7 x 5 = 35 px, 0.0875
    expect(d).toMatchObject({ accepted: true, reason: '', box: [5, 6, 12, 11] });
    expect(d.areaFraction).toBeCloseTo(35 / 400, 12);
  });

  it('no-foreground: an empty mask', () => {
    expect(endokedBox(new Uint8Array(W * H), W, H)).toMatchObject({
      accepted: false,
      reason: 'no-foreground',
      box: null,
    });
  });

  it.each([
    ['left', [0, 8, 3, 11]],
    ['right', [17, 8, 20, 11]],
    ['top', [8, 0, 11, 3]],
    ['bottom', [8, 17, 11, 20]],
  ] as [string, Box][])('touches-border: foreground in the %s column/row', (_, b) => {
    const d = endokedBox(rects(W, H, b), W, H);
    expect(d).toMatchObject({ accepted: false, reason: 'touches-border' });
    expect(d.box).toEqual(b);
  });

  it('touches-border applies to any foreground pixel, not only the chosen component', () => {
    // A big interior blob plus a single pixel on the border.
    const d = endokedBox(rects(W, H, [5, 5, 12, 12], [19, 19, 20, 20]), W, H);
    expect(d.reason).toBe('touches-border');
    expect(d.box).toEqual([5, 5, 12, 12]);
  });

  it('area-too-small: box area / image area must be > 0.01 (strict)', () => {
    expect(endokedBox(rects(W, H, [5, 5, 7, 7]), W, H).reason).toBe('area-too-small'); // exactly 4 px = 0.01
    expect(endokedBox(rects(W, H, [5, 5, 10, 6]), W, H).reason).toBe(''); // 5 px = 0.0125
  });

  it('area-too-large: box area / image area must be < 0.35 (strict)', () => {
    expect(endokedBox(rects(W, H, [2, 2, 16, 12]), W, H).reason).toBe('area-too-large'); // 14 x 10 = 140 = 0.35
    expect(endokedBox(rects(W, H, [2, 2, 15, 12]), W, H).reason).toBe(''); // 130 = 0.325
  });

  it('the area test uses the bounding box, not the pixel count (a thin diagonal)', () => {
    const m = new Uint8Array(W * H);
    for (let i = 2; i < 17; i++) m[i * W + i] = 1; // 15 px, box 15 x 15 = 225 px = 0.56
    expect(endokedBox(m, W, H)).toMatchObject({ reason: 'area-too-large', box: [2, 2, 17, 17] });
  });

  it('too-many-components: three foreground components reject, two do not', () => {
    const two = endokedBox(rects(W, H, [2, 2, 6, 6], [10, 10, 13, 13]), W, H);
    expect(two).toMatchObject({ accepted: true, box: [2, 2, 6, 6] });
    expect(two.kept.length).toBe(2);
    const three = endokedBox(rects(W, H, [2, 2, 6, 6], [10, 10, 13, 13], [15, 2, 17, 4]), W, H);
    expect(three).toMatchObject({ accepted: false, reason: 'too-many-components' });
    expect(three.kept.length).toBe(3);
  });

  it('keeps the component with the largest bounding box (pick largest-box), or the most pixels (released loop)', () => {
    // An L-shaped sparse component with a big box but few pixels, and a compact one with more pixels.
    // L: 15 px, box 8x8=64; square: 25 px, box 25
    const m = rects(W, H, [2, 2, 3, 10], [2, 9, 10, 10], [12, 12, 17, 17]);
    const largest = endokedBox(m, W, H);
    expect(largest).toMatchObject({ accepted: true, box: [2, 2, 10, 10] });
    expect(largest.areaFraction).toBeCloseTo(64 / 400, 12);
    const released = endokedBox(m, W, H, { pick: 'most-pixels' });
    expect(released).toMatchObject({ accepted: true, box: [12, 12, 17, 17] });
    expect(released.areaFraction).toBeCloseTo(64 / 400, 12); // the area test still uses the largest box
  });

  it('drops the row with the most pixels: the background only while it outnumbers every component', () => {
    // An interior square of 12 x 12 = 144 px in a 14 x 14 image: background 52 px < 144, so the
    // square is dropped and the background's row (box = whole image) remains, as in cv2 + argsort.
    const w = 14,
      h = 14;
    const d = endokedBox(rects(w, h, [1, 1, 13, 13]), w, h);
    expect(d.kept.map((c) => c.label)).toEqual([0]);
    expect(d).toMatchObject({ accepted: false, reason: 'area-too-large', box: [0, 0, 14, 14] });
    expect(d.areaFraction).toBe(1);
  });

  it('rule order: border before area before component count', () => {
    // all tiny, 4 components, on the border
    const m = rects(W, H, [0, 0, 1, 1], [5, 5, 6, 6], [8, 8, 9, 9], [11, 11, 12, 12]);
    expect(endokedBox(m, W, H).reason).toBe('touches-border');
    const m2 = rects(W, H, [3, 3, 4, 4], [5, 5, 6, 6], [8, 8, 9, 9]);
    expect(endokedBox(m2, W, H).reason).toBe('area-too-small');
  });

  it('options move the thresholds', () => {
    const m = rects(W, H, [5, 5, 7, 7]);
    expect(endokedBox(m, W, H, { minAreaFraction: 0.005 }).accepted).toBe(true);
    expect(endokedBox(rects(W, H, [2, 2, 6, 6], [10, 10, 13, 13]), W, H, { rejectComponents: 2 }).reason).toBe(
      'too-many-components',
    );
  });
});

describe('box helpers', () => {
  it('boxIou', () => {
    expect(boxIou([0, 0, 4, 4], [0, 0, 4, 4])).toBe(1);
    expect(boxIou([0, 0, 4, 4], [2, 0, 6, 4])).toBeCloseTo(8 / 24, 12);
    expect(boxIou([0, 0, 2, 2], [3, 3, 5, 5])).toBe(0);
    expect(boxIou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });
  it('maskBox is the union box of all foreground', () => {
    expect(maskBox(rects(10, 8, [1, 2, 3, 4], [6, 5, 9, 7]), 10, 8)).toEqual([1, 2, 9, 7]);
    expect(maskBox(new Uint8Array(80), 10, 8)).toBeNull();
  });
  it('thresholdMask is strict', () => {
    expect(Array.from(thresholdMask([0.2, 0.65, 0.66, 1], 0.65))).toEqual([0, 0, 1, 1]);
  });
  it('scaleBox grows outwards and clamps', () => {
    expect(scaleBox([1, 1, 3, 3], 4, 4, 10, 10)).toEqual([2, 2, 8, 8]);
    expect(scaleBox([0, 0, 4, 4], 4, 4, 622, 529)).toEqual([0, 0, 622, 529]);
  });
  it('touchesBorder', () => {
    expect(touchesBorder(rects(5, 5, [1, 1, 4, 4]), 5, 5)).toBe(false);
    expect(touchesBorder(rects(5, 5, [1, 1, 5, 4]), 5, 5)).toBe(true);
  });
});
