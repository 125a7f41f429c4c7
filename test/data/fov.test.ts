// Field of view and on-screen overlays (engine/data/fov.ts) on crafted frames: an octagonal view
// on a black or video-range (16) background, a green panel beside it, text touching it, a blue
// box over it, a panel that covers part of it; and, when ../shared/data is present, real
// PolypGen frames with a green panel and a blue box.
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  detectFov,
  findOverlays,
  findDarkBoxes,
  findTextLines,
  prepareFrame,
  fillOverlays,
  components4,
  type PixelBox,
} from '../../engine/data/fov.ts';
import type { RgbImage } from '../../engine/data/index.ts';
import { decodeImage } from '../../runtime-node/image.ts';

const POLYPGEN = resolve(__dirname, '..', '..', '../shared/data/polypgen-frames');

function frame(w: number, h: number, black = 0): RgbImage {
  const data = new Uint8Array(w * h * 3).fill(black);
  return { width: w, height: h, data };
}
const set = (img: RgbImage, x: number, y: number, c: readonly number[]) => {
  const p = 3 * (y * img.width + x);
  img.data[p] = c[0];
  img.data[p + 1] = c[1];
  img.data[p + 2] = c[2];
};
const get = (img: RgbImage, x: number, y: number) =>
  Array.from(img.data.subarray(3 * (y * img.width + x), 3 * (y * img.width + x) + 3));
/** Tissue inside an octagon with box b and corner cut c: a smooth gradient, pinkish. */
function octagon(img: RgbImage, b: PixelBox, cut: number): void {
  for (let y = b.y0; y < b.y1; y++) {
    for (let x = b.x0; x < b.x1; x++) {
      const dx = Math.min(x - b.x0, b.x1 - 1 - x),
        dy = Math.min(y - b.y0, b.y1 - 1 - y);
      if (dx + dy < cut) continue;
      set(img, x, y, [150 + ((x * 3) % 60), 80 + (y % 40), 70]);
    }
  }
}
const rect = (img: RgbImage, b: PixelBox, c: readonly number[]) => {
  for (let y = b.y0; y < b.y1; y++) for (let x = b.x0; x < b.x1; x++) set(img, x, y, c);
};

describe('field of view', () => {
  it('finds the octagonal view beside a green panel and text, on black and video-range black', () => {
    for (const black of [0, 16]) {
      const img = frame(200, 120, black),
        view = { x0: 70, y0: 6, x1: 190, y1: 114 };
      octagon(img, view, 20);
      rect(img, { x0: 4, y0: 70, x1: 50, y1: 110 }, [44, 183, 142]); // green panel, apart from the view
      for (let x = 40; x < 80; x++) set(img, x, 60, [230, 230, 230]); // a text stroke touching the view
      rect(img, { x0: 8, y0: 10, x1: 30, y1: 18 }, [200, 200, 200]); // text block in the margin
      const fov = detectFov(img);
      expect(fov.black).toBe(black);
      expect(fov.box).toEqual(view);
      // The mask is the octagon: corners out, centre and edge midpoints in, the text stroke out.
      const m = (x: number, y: number) => fov.mask.data[y * 200 + x];
      expect([m(71, 7), m(188, 112), m(130, 60), m(71, 60), m(188, 60), m(130, 7), m(60, 60)]).toEqual([
        0, 0, 1, 1, 1, 1, 0,
      ]);
      expect(findOverlays(img)).toEqual([{ x0: 4, y0: 70, x1: 50, y1: 110 }]);
      const p = prepareFrame(img);
      expect(p.box).toEqual(view);
      expect([p.image.width, p.image.height]).toEqual([120, 108]);
      expect(get(p.image, 0, 0)).toEqual([0, 0, 0]); // outside the view: 0 whatever the black level
      expect(get(p.image, 60, 54)).toEqual(get(img, 130, 60));
    }
  });

  it('a frame without a dark border is all view', () => {
    const img = frame(40, 30, 120);
    const fov = detectFov(img);
    expect(fov.box).toEqual({ x0: 0, y0: 0, x1: 40, y1: 30 });
    expect(fov.mask.data.every((v) => v === 1)).toBe(true);
  });

  it('a blue box over the view is inpainted from the tissue above and below it', () => {
    const img = frame(160, 120);
    octagon(img, { x0: 10, y0: 5, x1: 150, y1: 115 }, 15);
    const box = { x0: 30, y0: 60, x1: 100, y1: 70 };
    rect(img, box, [7, 4, 155]);
    for (let x = 40; x < 90; x += 4) rect(img, { x0: x, y0: 63, x1: x + 2, y1: 67 }, [255, 255, 255]); // its text
    const found = findOverlays(img);
    expect(found.length).toBe(1);
    expect(found[0].x0).toBe(30);
    expect(found[0].x1).toBe(100); // the white text lies inside the box
    const p = prepareFrame(img);
    expect(p.overlays).toEqual(found);
    // Each column of the patch runs linearly from the pixel above to the pixel below it.
    for (const x of [35, 60, 95]) {
      const above = get(img, x, 57),
        below = get(img, x, 72),
        mid = get(p.image, x - p.box.x0, 65 - p.box.y0);
      for (let k = 0; k < 3; k++) expect(Math.abs(mid[k] - (above[k] + below[k]) / 2)).toBeLessThanOrEqual(2);
    }
    let blue = 0;
    for (let q = 0; q < p.image.width * p.image.height; q++) if (p.image.data[3 * q + 2] > 140) blue++;
    expect(blue).toBe(0);
  });

  it('a panel drawn over the side of the view: the view stays convex and the panel is filled', () => {
    const img = frame(160, 120);
    const view = { x0: 20, y0: 5, x1: 150, y1: 115 };
    octagon(img, view, 15);
    rect(img, { x0: 0, y0: 80, x1: 40, y1: 120 }, [44, 183, 142]);
    const fov = detectFov(img);
    expect(fov.box.x0).toBe(20);
    expect(fov.box.x1).toBe(150);
    // Under the panel, inside the octagon: the convex edge interpolates from the last visible rows.
    expect(fov.mask.data[84 * 160 + 28]).toBe(1);
    expect(fov.mask.data[84 * 160 + 21]).toBe(0);
    const p = prepareFrame(img);
    const c = get(p.image, 28 - p.box.x0, 84 - p.box.y0);
    expect(c[1]).toBeLessThan(130); // no longer panel green
  });

  it('dye on tissue (irregular, textured) is not an overlay', () => {
    const img = frame(100, 100);
    octagon(img, { x0: 0, y0: 0, x1: 100, y1: 100 }, 10);
    for (let y = 30; y < 70; y++)
      for (let x = 30; x < 70; x++)
        if ((x - 50) ** 2 + (y - 50) ** 2 < 400 && (x * y) % 3 !== 0) set(img, x, y, [40, 150, 200]);
    expect(findOverlays(img)).toEqual([]);
    expect(fillOverlays(img, []).data).toEqual(img.data);
  });

  it('a black box over the view is found and inpainted; a dark lumen and the dark margin are not boxes', () => {
    const img = frame(200, 160);
    octagon(img, { x0: 20, y0: 5, x1: 190, y1: 155 }, 25);
    // A dark lumen: a disc of near-black, soft-edged.
    for (let y = 0; y < 160; y++)
      for (let x = 0; x < 200; x++) {
        const d = Math.hypot(x - 120, y - 90);
        if (d < 30) set(img, x, y, [d < 24 ? 8 : 8 + (d - 24) * 20, 6, 4]);
      }
    rect(img, { x0: 40, y0: 30, x1: 80, y1: 45 }, [0, 0, 0]); // anonymisation box
    const fov = detectFov(img);
    expect(findDarkBoxes(img, fov)).toEqual([{ x0: 40, y0: 30, x1: 80, y1: 45 }]);
    const p = prepareFrame(img);
    expect(p.overlays).toContainEqual({ x0: 40, y0: 30, x1: 80, y1: 45 });
    const c = get(p.image, 60 - p.box.x0, 37 - p.box.y0);
    expect(Math.max(...c)).toBeGreaterThan(60); // tissue-coloured now
    expect(get(p.image, 120 - p.box.x0, 90 - p.box.y0)).toEqual(get(img, 120, 90)); // the lumen is untouched
  });

  it('a line of white text is found; lone glints and filled blobs are not text', () => {
    const img = frame(200, 160);
    octagon(img, { x0: 0, y0: 0, x1: 200, y1: 160 }, 20);
    // Four 5x8 characters ("C", "t", "N"-like strokes and an "L") on one baseline.
    const W = [230, 230, 230];
    const glyphs: [number, number][][] = [
      [
        [0, 0],
        [1, 0],
        [2, 0],
        [3, 0],
        [0, 1],
        [0, 2],
        [0, 3],
        [0, 4],
        [0, 5],
        [0, 6],
        [0, 7],
        [1, 7],
        [2, 7],
        [3, 7],
      ],
      [
        [2, 0],
        [2, 1],
        [0, 2],
        [1, 2],
        [2, 2],
        [3, 2],
        [4, 2],
        [2, 3],
        [2, 4],
        [2, 5],
        [2, 6],
        [3, 7],
        [4, 7],
      ],
      [
        [0, 0],
        [0, 1],
        [0, 2],
        [0, 3],
        [0, 4],
        [0, 5],
        [0, 6],
        [0, 7],
        [1, 1],
        [2, 3],
        [3, 5],
        [4, 0],
        [4, 1],
        [4, 2],
        [4, 3],
        [4, 4],
        [4, 5],
        [4, 6],
        [4, 7],
      ],
      [
        [0, 0],
        [0, 1],
        [0, 2],
        [0, 3],
        [0, 4],
        [0, 5],
        [0, 6],
        [0, 7],
        [1, 7],
        [2, 7],
        [3, 7],
        [4, 7],
      ],
    ];
    glyphs.forEach((g, k) => {
      for (const [dx, dy] of g) set(img, 50 + 8 * k + dx, 60 + dy, W);
    });
    rect(img, { x0: 120, y0: 100, x1: 126, y1: 108 }, [250, 250, 250]); // a filled glint
    rect(img, { x0: 130, y0: 100, x1: 136, y1: 108 }, [250, 250, 250]);
    rect(img, { x0: 140, y0: 100, x1: 146, y1: 108 }, [250, 250, 250]);
    expect(findTextLines(img)).toEqual([{ x0: 50, y0: 60, x1: 79, y1: 68 }]);
    const p = prepareFrame(img);
    let white = 0;
    for (let y = 60; y < 68; y++)
      for (let x = 50; x < 79; x++) if (Math.min(...get(p.image, x - p.box.x0, y - p.box.y0)) > 200) white++;
    expect(white).toBe(0);
  });

  it('components4 counts 4-connected regions', () => {
    const on = Uint8Array.from([1, 1, 0, 0, 0, 1, 0, 1, 1]); // 3x3: the diagonal touch at (1,0)-(2,1) does not join
    const { sizes } = components4(on, 3, 3);
    expect(sizes).toEqual([2, 3]);
    expect(components4(on, 3, 3, true).sizes).toEqual([5]); // 8-connected: one region
  });
});

describe.skipIf(!existsSync(POLYPGEN))('field of view on real PolypGen frames', () => {
  it('a 16:9 frame with a green panel: cropped right of the panel, panel gone', async () => {
    const img = await decodeImage(resolve(POLYPGEN, 'negative/centre_A/seq1/seq1_img31.jpg'));
    const p = prepareFrame(img);
    expect(p.box.x0).toBeGreaterThan(120); // the panel and the time stamp lie left of the view
    expect(p.image.width / p.image.height).toBeGreaterThan(1.1);
    expect(p.image.width / p.image.height).toBeLessThan(1.4);
    expect(findOverlays(p.image)).toEqual([]);
  });

  it('a 4:3 frame with the blue printer box: the box is found and inpainted', async () => {
    const img = await decodeImage(resolve(POLYPGEN, 'negative/centre_A/seq4/seq4_img26.jpg'));
    const p = prepareFrame(img);
    expect(p.overlays.length).toBe(2); // the blue box and the black inside of an icon
    expect(p.overlays[0].x1 - p.overlays[0].x0).toBeGreaterThan(200);
    expect(p.overlays[1]).toEqual({ x0: 453, y0: 322, x1: 464, y1: 330 });
    expect(findOverlays(p.image)).toEqual([]);
  });

  it('centre-B polyp frames: an anonymisation box over the view, a text line', async () => {
    const img = await decodeImage(resolve(POLYPGEN, 'positive/centre_B/img138.jpg'));
    const fov = detectFov(img);
    expect(findDarkBoxes(img, fov)).toContainEqual({ x0: 0, y0: 102, x1: 83, y1: 136 });
    const text = await decodeImage(resolve(POLYPGEN, 'positive/centre_B/img100.jpg'));
    expect(findTextLines(text).length).toBeGreaterThan(0);
  });
});
