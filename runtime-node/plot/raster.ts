// A small RGBA raster for training plots: filled and outlined rectangles, anti-aliased strokes
// (polylines, optionally dashed) and text in a built-in 5x7 bitmap font. Pure: it only fills a
// Uint8ClampedArray; runtime-node/plots.ts encodes it as PNG.
//
// Pixel (x, y) covers [x, x + 1) x [y, y + 1); strokes take fractional coordinates. A stroke's
// coverage at a pixel is clamp(width / 2 + 0.5 - d, 0, 1), d the distance from the pixel centre
// to the path; a path is rasterised as a whole (the maximum over its segments), so joints are
// not painted twice.
//
// The font: 95 printable ASCII glyphs, 5 columns by 7 rows above the baseline ('#' = ink), drawn
// for this project in the style of the classic 5x7 terminal fonts; g j p q y , ; add two
// descender rows below the baseline. A glyph advances 6 columns; a line is 9 rows. Other
// characters draw '?'.

export type RGB = readonly [number, number, number];

const FONT_ROWS: Record<string, string> = {
  ' ': '..... ..... ..... ..... ..... ..... .....',
  '!': '..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..',
  '"': '.#.#. .#.#. .#.#. ..... ..... ..... .....',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.',
  $: '..#.. .#### #.#.. .###. ..#.# ####. ..#..',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  '&': '.##.. #..#. #.#.. .#... #.#.# #..#. .##.#',
  "'": '..#.. ..#.. .#... ..... ..... ..... .....',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '*': '..... ..#.. #.#.# .###. #.#.# ..#.. .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  ',': '..... ..... ..... ..... ..... .##.. .##.. ..#.. .#...',
  '-': '..... ..... ..... ##### ..... ..... .....',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  ';': '..... .##.. .##.. ..... ..... .##.. .##.. ..#.. .#...',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
  '@': '.###. #...# ....# .##.# #.#.# #.#.# .###.',
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  '[': '.###. .#... .#... .#... .#... .#... .###.',
  '\\': '..... #.... .#... ..#.. ...#. ....# .....',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###.',
  '^': '..#.. .#.#. #...# ..... ..... ..... .....',
  _: '..... ..... ..... ..... ..... ..... #####',
  '`': '.#... ..#.. ...#. ..... ..... ..... .....',
  a: '..... ..... .###. ....# .#### #...# .####',
  b: '#.... #.... #.##. ##..# #...# #...# ####.',
  c: '..... ..... .###. #.... #.... #...# .###.',
  d: '....# ....# .##.# #..## #...# #...# .####',
  e: '..... ..... .###. #...# ##### #.... .###.',
  f: '..##. .#..# .#... ###.. .#... .#... .#...',
  g: '..... ..... .#### #...# #...# #...# .#### ....# .###.',
  h: '#.... #.... #.##. ##..# #...# #...# #...#',
  i: '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.',
  j: '...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..',
  k: '#.... #.... #..#. #.#.. ##... #.#.. #..#.',
  l: '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  m: '..... ..... ##.#. #.#.# #.#.# #...# #...#',
  n: '..... ..... #.##. ##..# #...# #...# #...#',
  o: '..... ..... .###. #...# #...# #...# .###.',
  p: '..... ..... ####. #...# #...# #...# ####. #.... #....',
  q: '..... ..... .#### #...# #...# #...# .#### ....# ....#',
  r: '..... ..... #.##. ##..# #.... #.... #....',
  s: '..... ..... .###. #.... .###. ....# ####.',
  t: '.#... .#... ###.. .#... .#... .#..# ..##.',
  u: '..... ..... #...# #...# #...# #..## .##.#',
  v: '..... ..... #...# #...# #...# .#.#. ..#..',
  w: '..... ..... #...# #...# #.#.# #.#.# .#.#.',
  x: '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  y: '..... ..... #...# #...# #...# #...# .#### ....# .###.',
  z: '..... ..... ##### ...#. ..#.. .#... #####',
  '{': '...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.',
  '|': '..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  '}': '.#... ..#.. ..#.. ...#. ..#.. ..#.. .#...',
  '~': '..... ..... .#... #.#.# ...#. ..... .....',
};

/** Glyph bitmaps: 7 rows (9 with descenders) of 5 bits, bit 4 = leftmost column. */
export const FONT: ReadonlyMap<string, Uint8Array> = new Map(
  Object.entries(FONT_ROWS).map(([ch, rows]) => {
    const r = rows.split(' ');
    if ((r.length !== 7 && r.length !== 9) || r.some((row) => !/^[.#]{5}$/.test(row)))
      throw new Error(`font: glyph ${JSON.stringify(ch)} is malformed`);
    return [ch, Uint8Array.from(r, (row) => parseInt(row.replace(/#/g, '1').replace(/\./g, '0'), 2))];
  }),
);
export const GLYPH_W = 5,
  GLYPH_H = 7,
  ADVANCE = 6;

export interface TextOptions {
  /** Integer pixel size of one font pixel. Default 1. */
  scale?: number;
  align?: 'left' | 'center' | 'right';
  baseline?: 'top' | 'middle' | 'bottom';
  /** Rotate 90 degrees counter-clockwise (reads bottom to top), e.g. a y-axis label. */
  vertical?: boolean;
}

/** Width in pixels of one line of text at `scale` (no trailing gap). */
export function textWidth(s: string, scale = 1): number {
  return s.length === 0 ? 0 : (s.length * ADVANCE - 1) * scale;
}

export class Canvas {
  readonly data: Uint8ClampedArray;

  constructor(
    readonly width: number,
    readonly height: number,
    background: RGB = [255, 255, 255],
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
      throw new Error(`Canvas: size must be positive integers, got ${width}x${height}`);
    this.data = new Uint8ClampedArray(width * height * 4);
    this.fillRect(0, 0, width, height, background);
  }

  getPixel(x: number, y: number): [number, number, number, number] {
    const i = (y * this.width + x) * 4;
    return [this.data[i], this.data[i + 1], this.data[i + 2], this.data[i + 3]];
  }

  /** Blends `color` over pixel (x, y) with opacity alpha in [0, 1]; outside pixels are ignored. */
  blend(x: number, y: number, color: RGB, alpha = 1): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || !(alpha > 0)) return;
    const i = (y * this.width + x) * 4,
      a = Math.min(alpha, 1),
      d = this.data;
    d[i] = d[i] + (color[0] - d[i]) * a;
    d[i + 1] = d[i + 1] + (color[1] - d[i + 1]) * a;
    d[i + 2] = d[i + 2] + (color[2] - d[i + 2]) * a;
    d[i + 3] = d[i + 3] + (255 - d[i + 3]) * a;
  }

  /** Fills the pixels [x, x + w) x [y, y + h) (rounded to whole pixels). */
  fillRect(x: number, y: number, w: number, h: number, color: RGB, alpha = 1): void {
    const x0 = Math.max(0, Math.round(x)),
      y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w)),
      y1 = Math.min(this.height, Math.round(y + h));
    for (let py = y0; py < y1; py++) for (let px = x0; px < x1; px++) this.blend(px, py, color, alpha);
  }

  /** A one-pixel outline just inside [x, x + w) x [y, y + h). */
  rect(x: number, y: number, w: number, h: number, color: RGB): void {
    this.fillRect(x, y, w, 1, color);
    this.fillRect(x, y + h - 1, w, 1, color);
    this.fillRect(x, y, 1, h, color);
    this.fillRect(x + w - 1, y, 1, h, color);
  }

  /** An anti-aliased polyline through points [x0, y0, x1, y1, ...]; `dash` = [on, off] lengths. */
  strokePath(points: ArrayLike<number>, color: RGB, width = 1.5, dash?: readonly [number, number], alpha = 1): void {
    const segs = dash ? dashSegments(points, dash) : pathSegments(points);
    if (segs.length === 0) return;
    const r = width / 2 + 0.5;
    let bx0 = Infinity,
      by0 = Infinity,
      bx1 = -Infinity,
      by1 = -Infinity;
    for (const [ax, ay, cx, cy] of segs) {
      bx0 = Math.min(bx0, ax, cx);
      by0 = Math.min(by0, ay, cy);
      bx1 = Math.max(bx1, ax, cx);
      by1 = Math.max(by1, ay, cy);
    }
    const X0 = Math.max(0, Math.floor(bx0 - r)),
      Y0 = Math.max(0, Math.floor(by0 - r));
    const X1 = Math.min(this.width, Math.ceil(bx1 + r) + 1),
      Y1 = Math.min(this.height, Math.ceil(by1 + r) + 1);
    if (X1 <= X0 || Y1 <= Y0) return;
    const bw = X1 - X0,
      cov = new Float32Array(bw * (Y1 - Y0));
    for (const [ax, ay, cx, cy] of segs) {
      const dx = cx - ax,
        dy = cy - ay,
        len2 = dx * dx + dy * dy;
      const sx0 = Math.max(X0, Math.floor(Math.min(ax, cx) - r)),
        sx1 = Math.min(X1, Math.ceil(Math.max(ax, cx) + r) + 1);
      const sy0 = Math.max(Y0, Math.floor(Math.min(ay, cy) - r)),
        sy1 = Math.min(Y1, Math.ceil(Math.max(ay, cy) + r) + 1);
      for (let py = sy0; py < sy1; py++) {
        for (let px = sx0; px < sx1; px++) {
          const qx = px + 0.5 - ax,
            qy = py + 0.5 - ay;
          const t = len2 > 0 ? Math.max(0, Math.min(1, (qx * dx + qy * dy) / len2)) : 0;
          const d = Math.hypot(qx - t * dx, qy - t * dy);
          const c = Math.min(1, r - d);
          const k = (py - Y0) * bw + (px - X0);
          if (c > cov[k]) cov[k] = c;
        }
      }
    }
    for (let k = 0; k < cov.length; k++)
      if (cov[k] > 0) this.blend(X0 + (k % bw), Y0 + Math.floor(k / bw), color, cov[k] * alpha);
  }

  line(
    x0: number,
    y0: number,
    x1: number,
    y1: number,
    color: RGB,
    width = 1.5,
    dash?: readonly [number, number],
  ): void {
    this.strokePath([x0, y0, x1, y1], color, width, dash);
  }

  /** Draws one line of text; returns its box. (x, y) is the anchor given by align/baseline. */
  text(
    s: string,
    x: number,
    y: number,
    color: RGB,
    opts: TextOptions = {},
  ): { x: number; y: number; w: number; h: number } {
    const scale = Math.max(1, Math.round(opts.scale ?? 1));
    const w = textWidth(s, scale),
      h = GLYPH_H * scale;
    const along = opts.align === 'center' ? -w / 2 : opts.align === 'right' ? -w : 0;
    const across = opts.baseline === 'middle' ? -h / 2 : opts.baseline === 'bottom' ? -h : 0;
    // Upright: columns run right, rows down. Vertical: columns run up, rows right.
    const ox = Math.round(opts.vertical ? x + across : x + along),
      oy = Math.round(opts.vertical ? y - along : y + across);
    for (let k = 0; k < s.length; k++) {
      const glyph = FONT.get(s[k]) ?? FONT.get('?')!;
      for (let row = 0; row < glyph.length; row++) {
        for (let col = 0; col < GLYPH_W; col++) {
          if (!(glyph[row] & (16 >> col))) continue;
          const u = (k * ADVANCE + col) * scale,
            v = row * scale;
          if (opts.vertical) this.fillRect(ox + v, oy - u - scale, scale, scale, color);
          else this.fillRect(ox + u, oy + v, scale, scale, color);
        }
      }
    }
    return opts.vertical ? { x: ox, y: oy - w, w: h, h: w } : { x: ox, y: oy, w, h };
  }
}

type Seg = [number, number, number, number];

function pathSegments(p: ArrayLike<number>): Seg[] {
  const out: Seg[] = [];
  for (let i = 0; i + 3 < p.length; i += 2) {
    if ([p[i], p[i + 1], p[i + 2], p[i + 3]].every(Number.isFinite)) out.push([p[i], p[i + 1], p[i + 2], p[i + 3]]);
  }
  if (out.length === 0 && p.length >= 2 && Number.isFinite(p[0]) && Number.isFinite(p[1]))
    out.push([p[0], p[1], p[0], p[1]]);
  return out;
}

/** Cuts the path into dashes of `on` pixels separated by `off` pixels, along its length. */
function dashSegments(p: ArrayLike<number>, [on, off]: readonly [number, number]): Seg[] {
  const out: Seg[] = [];
  let phase = 0; // distance into the current on+off period
  for (const [ax, ay, bx, by] of pathSegments(p)) {
    const len = Math.hypot(bx - ax, by - ay);
    let t = 0;
    while (t < len) {
      const inOn = phase < on,
        left = inOn ? on - phase : on + off - phase;
      const step = Math.min(left, len - t);
      if (inOn)
        out.push([
          ax + ((bx - ax) * t) / len,
          ay + ((by - ay) * t) / len,
          ax + ((bx - ax) * (t + step)) / len,
          ay + ((by - ay) * (t + step)) / len,
        ]);
      t += step;
      phase = (phase + step) % (on + off);
    }
  }
  return out;
}
