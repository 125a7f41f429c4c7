// The endoscope's field of view (FOV) and on-screen overlays of colonoscopy frames.
//
// A colonoscopy frame is the optics' round or octagonal view on a dark background; the processor
// draws text, logos and panels around it (and sometimes over it). In PolypGen some polyp-free
// sequences carry a green panel and a blue "printer not connected" box that the polyp frames of
// the same centre lack, the frame shapes differ (16:9 with a side margin vs 4:3), and the black
// level is 0 in some videos and 16 (video range) in others: each is a shortcut a classifier can
// learn instead of the polyp (../shared/data/polypgen-frames/README.md). So frames are prepared:
//   1. overlays: flat rectangles of a processor colour (the blue box, the green panel) found as
//      large, box-filling connected components of that colour, and black boxes drawn over the
//      view (anonymisation, icons) found as dark runs with fixed ends and sharp edges, and lines
//      of white text (character-sized strokes in a row); each is inpainted by interpolating
//      between the view pixels on either side;
//   2. the FOV: the largest 4-connected region brighter than the corners' black level; its box
//      ignores rows/columns that only thin attachments reach (text touching the view);
//   3. crop to the FOV box and set every pixel outside the FOV to 0.
// Pure TypeScript over RgbImage (interleaved RGB bytes), shared by Node and the browser.
import type { MaskImage, RgbImage } from './images.ts';

/** A pixel box, x1 / y1 exclusive. */
export interface PixelBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface FovOptions {
  /** A pixel is in view when its brightest channel exceeds the black level by this (default 24). */
  delta?: number;
  /** Rows/columns with fewer FOV pixels than this fraction of the fullest one are cut (default 0.1). */
  profileFraction?: number;
  /** Black level above which the frame is taken to have no dark border (default 60). */
  maxBlack?: number;
  /** Radius of the opening that detaches thin text from the view, as a fraction of the short side (default 0.01). */
  openRadius?: number;
}

export interface Fov {
  box: PixelBox;
  /** Full-size mask (1 inside the view): each row's span between its outermost FOV pixels. */
  mask: MaskImage;
  /** The black level measured in the corners. */
  black: number;
}

const maxc = (d: Uint8Array, p: number) => Math.max(d[3 * p], d[3 * p + 1], d[3 * p + 2]);

/** Median of the brightest channel over the four corner patches. */
function blackLevel(img: RgbImage): number {
  const { width: w, height: h, data } = img,
    s = Math.max(2, Math.round(0.02 * Math.min(w, h)));
  const v: number[] = [];
  for (const [cx, cy] of [
    [0, 0],
    [w - s, 0],
    [0, h - s],
    [w - s, h - s],
  ]) {
    for (let y = cy; y < cy + s; y++) for (let x = cx; x < cx + s; x++) v.push(maxc(data, y * w + x));
  }
  v.sort((a, b) => a - b);
  return v[v.length >> 1];
}

/** Labels of the 4-connected (or 8-connected) components of `on` (0 = off), their sizes (index = label - 1). */
export function components4(
  on: Uint8Array,
  w: number,
  h: number,
  eight = false,
): { labels: Int32Array; sizes: number[] } {
  const labels = new Int32Array(w * h),
    sizes: number[] = [],
    stack: number[] = [];
  for (let p0 = 0; p0 < w * h; p0++) {
    if (!on[p0] || labels[p0]) continue;
    const id = sizes.length + 1;
    let n = 0;
    labels[p0] = id;
    stack.push(p0);
    while (stack.length) {
      const p = stack.pop()!,
        x = p % w;
      n++;
      if (x > 0 && on[p - 1] && !labels[p - 1]) {
        labels[p - 1] = id;
        stack.push(p - 1);
      }
      if (x < w - 1 && on[p + 1] && !labels[p + 1]) {
        labels[p + 1] = id;
        stack.push(p + 1);
      }
      if (p >= w && on[p - w] && !labels[p - w]) {
        labels[p - w] = id;
        stack.push(p - w);
      }
      if (p < w * (h - 1) && on[p + w] && !labels[p + w]) {
        labels[p + w] = id;
        stack.push(p + w);
      }
      if (eight) {
        for (const q of [p - w - 1, p - w + 1, p + w - 1, p + w + 1]) {
          const qx = q % w;
          if (q >= 0 && q < w * h && Math.abs(qx - x) === 1 && on[q] && !labels[q]) {
            labels[q] = id;
            stack.push(q);
          }
        }
      }
    }
    sizes.push(n);
  }
  return { labels, sizes };
}

/** The processor's overlay colours: saturated dark blue (text boxes) and teal green (panels). */
export function isOverlayColour(r: number, g: number, b: number): boolean {
  const blueBox = b > 90 && r < 60 && g < 60;
  const greenPanel = g > 130 && r < 90 && b > 90 && g - b > 20 && g - r > 80;
  return blueBox || greenPanel;
}

/**
 * Overlay rectangles: connected regions of an overlay colour covering at least `minArea` of the
 * frame (default 0.2%) and at least `minFill` (default 0.5) of their bounding box; dye on tissue
 * (blue-green but irregular and textured) fails the colour or the fill test.
 */
export function findOverlays(img: RgbImage, opts: { minArea?: number; minFill?: number } = {}): PixelBox[] {
  const { width: w, height: h, data } = img,
    on = new Uint8Array(w * h);
  for (let p = 0; p < w * h; p++) on[p] = isOverlayColour(data[3 * p], data[3 * p + 1], data[3 * p + 2]) ? 1 : 0;
  const { labels, sizes } = components4(on, w, h);
  const boxes = sizes.map(() => ({ x0: w, y0: h, x1: 0, y1: 0 }));
  for (let p = 0; p < w * h; p++) {
    const l = labels[p];
    if (!l) continue;
    const b = boxes[l - 1],
      x = p % w,
      y = (p / w) | 0;
    if (x < b.x0) b.x0 = x;
    if (y < b.y0) b.y0 = y;
    if (x + 1 > b.x1) b.x1 = x + 1;
    if (y + 1 > b.y1) b.y1 = y + 1;
  }
  const minArea = (opts.minArea ?? 0.002) * w * h,
    minFill = opts.minFill ?? 0.5;
  return boxes.filter((b, k) => sizes[k] >= minArea && sizes[k] >= minFill * (b.x1 - b.x0) * (b.y1 - b.y0));
}

/** Square erosion / dilation of a binary mask by radius r (separable running counts). */
function morph(on: Uint8Array, w: number, h: number, r: number, erodeIt: boolean): Uint8Array {
  const pass = (src: Uint8Array, n: number, m: number, at: (i: number, j: number) => number): Uint8Array => {
    const out = new Uint8Array(src.length);
    for (let i = 0; i < m; i++) {
      let c = 0;
      for (let j = 0; j < Math.min(r, n); j++) c += src[at(i, j)];
      for (let j = 0; j < n; j++) {
        if (j + r < n) c += src[at(i, j + r)];
        if (j - r - 1 >= 0) c -= src[at(i, j - r - 1)];
        const win = Math.min(n - 1, j + r) - Math.max(0, j - r) + 1;
        out[at(i, j)] = erodeIt ? (c === win ? 1 : 0) : c > 0 ? 1 : 0;
      }
    }
    return out;
  };
  const hz = pass(on, w, h, (y, x) => y * w + x);
  return pass(hz, h, w, (x, y) => y * w + x);
}
const erode = (on: Uint8Array, w: number, h: number, r: number) => morph(on, w, h, r, true);
const dilate = (on: Uint8Array, w: number, h: number, r: number) => morph(on, w, h, r, false);

/**
 * The lower (sign 1) or upper (sign -1) convex envelope of points (t, v) sorted by t, as a
 * function of t (linear between hull vertices, constant beyond them).
 */
function envelope(pts: readonly [number, number][], sign: 1 | -1): (t: number) => number {
  const hull: [number, number][] = [];
  for (const p of pts) {
    while (hull.length >= 2) {
      const [a, b] = [hull[hull.length - 2], hull[hull.length - 1]];
      const cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
      if (sign * cross <= 0) hull.pop();
      else break;
    }
    hull.push(p);
  }
  return (t: number) => {
    if (hull.length === 0) return sign > 0 ? Infinity : -Infinity;
    if (t <= hull[0][0]) return hull[0][1];
    for (let k = 1; k < hull.length; k++) {
      const [a, b] = [hull[k - 1], hull[k]];
      if (t <= b[0]) return a[1] + ((b[1] - a[1]) * (t - a[0])) / (b[0] - a[0]);
    }
    return hull[hull.length - 1][1];
  };
}

/** The field of view: the largest bright 4-connected region, its profile-trimmed box and mask. */
export function detectFov(img: RgbImage, opts: FovOptions = {}): Fov {
  const { width: w, height: h, data } = img;
  const black = blackLevel(img),
    full: PixelBox = { x0: 0, y0: 0, x1: w, y1: h };
  if (black > (opts.maxBlack ?? 60))
    return { box: full, mask: { width: w, height: h, data: new Uint8Array(w * h).fill(1) }, black };
  const thr = black + (opts.delta ?? 24),
    on = new Uint8Array(w * h);
  // Overlay pixels are not view: a panel touching the view would otherwise join it.
  for (let p = 0; p < w * h; p++)
    on[p] = maxc(data, p) > thr && !isOverlayColour(data[3 * p], data[3 * p + 1], data[3 * p + 2]) ? 1 : 0;
  // An opening removes thin strokes (text drawn against the view) before the components.
  const r = Math.max(2, Math.round((opts.openRadius ?? 0.01) * Math.min(w, h)));
  const opened = dilate(erode(on, w, h, r), w, h, r);
  const { labels, sizes } = components4(opened, w, h);
  if (sizes.length === 0)
    return { box: full, mask: { width: w, height: h, data: new Uint8Array(w * h).fill(1) }, black };
  let best = 0;
  for (let k = 1; k < sizes.length; k++) if (sizes[k] > sizes[best]) best = k;
  const id = best + 1,
    rows = new Int32Array(h),
    cols = new Int32Array(w);
  for (let p = 0; p < w * h; p++)
    if (labels[p] === id) {
      rows[(p / w) | 0]++;
      cols[p % w]++;
    }
  const frac = opts.profileFraction ?? 0.1;
  const span = (a: Int32Array) => {
    let m = 0;
    for (const v of a) if (v > m) m = v;
    let lo = 0,
      hi = a.length;
    while (lo < a.length && a[lo] < frac * m) lo++;
    while (hi > lo && a[hi - 1] < frac * m) hi--;
    return [lo, hi];
  };
  const [y0, y1] = span(rows),
    [x0, x1] = span(cols);
  // The view is convex (a circle or an octagon): its left edge x = L(y) is a convex function of
  // y and its right edge a concave one. Their hulls restore what a panel drawn over the view hid.
  const left: [number, number][] = [],
    right: [number, number][] = [];
  for (let y = y0; y < y1; y++) {
    let a = -1,
      b = -1;
    for (let x = x0; x < x1; x++)
      if (labels[y * w + x] === id) {
        if (a < 0) a = x;
        b = x;
      }
    if (a >= 0) {
      left.push([y, a]);
      right.push([y, b]);
    }
  }
  const lo = envelope(left, 1),
    hi = envelope(right, -1),
    mask = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) {
    const a = Math.max(x0, Math.ceil(lo(y) - 1e-9)),
      b = Math.min(x1 - 1, Math.floor(hi(y) + 1e-9));
    if (b >= a) mask.fill(1, y * w + a, y * w + b + 1);
  }
  return { box: { x0, y0, x1, y1 }, mask: { width: w, height: h, data: mask }, black };
}

/**
 * Black rectangles drawn over the view (anonymisation boxes): runs of near-black pixels at least
 * `minWidth` of the frame wide whose ends stay within 1 px of the first run's over at least
 * `minHeight` rows, with at least two sides that are sharp edges against bright view. A dark lumen
 * fails (its edges drift and fade), and so do the dark margins beside the view (they have at most
 * one sharp side: the vignetted edge of the view is soft, the frame border is no edge).
 */
export function findDarkBoxes(
  img: RgbImage,
  fov: Fov,
  opts: { minWidth?: number; minHeight?: number } = {},
): PixelBox[] {
  const { width: w, height: h, data } = img,
    thr = fov.black + 16,
    bright = fov.black + 50;
  const minLen = Math.max(8, Math.round((opts.minWidth ?? 0.02) * w)),
    minH = Math.max(5, Math.round((opts.minHeight ?? 0.015) * h));
  const v = (x: number, y: number) => maxc(data, y * w + x);
  /** Share of a side's pixels that are dark with bright view 1-2 px outside; 0 at the frame border. */
  const sharp = (b: PixelBox, side: 'l' | 'r' | 't' | 'b') => {
    const horizontal = side === 't' || side === 'b';
    const fixed = side === 'l' ? b.x0 : side === 'r' ? b.x1 - 1 : side === 't' ? b.y0 : b.y1 - 1;
    const step = side === 'l' || side === 't' ? -1 : 1;
    const out1 = fixed + step,
      out2 = fixed + 2 * step;
    if (out2 < 0 || out2 >= (horizontal ? h : w)) return 0;
    let n = 0,
      ok = 0;
    for (let t = horizontal ? b.x0 : b.y0; t < (horizontal ? b.x1 : b.y1); t++, n++) {
      const [xi, yi, xo1, yo1, xo2, yo2] = horizontal ? [t, fixed, t, out1, t, out2] : [fixed, t, out1, t, out2, t];
      if (v(xi, yi) <= thr && Math.max(v(xo1, yo1), v(xo2, yo2)) >= bright) ok++;
    }
    return n ? ok / n : 0;
  };
  const out: PixelBox[] = [];
  let open: { x0: number; x1: number; y0: number }[] = [];
  const close = (g: { x0: number; x1: number; y0: number }, y1: number) => {
    if (y1 - g.y0 < minH) return;
    const box = { x0: g.x0, y0: g.y0, x1: g.x1, y1 };
    const sides = (['l', 'r', 't', 'b'] as const).filter((sd) => sharp(box, sd) >= 0.6).length;
    if (sides < 2) return;
    let inside = 0;
    for (let y = box.y0; y < box.y1; y++) for (let x = box.x0; x < box.x1; x++) inside += fov.mask.data[y * w + x];
    if (inside >= 0.5 * (box.x1 - box.x0) * (box.y1 - box.y0)) out.push(box); // over the view, not in the margin
  };
  for (let y = 0; y <= h; y++) {
    const runs: [number, number][] = [];
    for (let x = 0; y < h && x < w;) {
      if (v(x, y) > thr) {
        x++;
        continue;
      }
      let e = x;
      while (e < w && v(e, y) <= thr) e++;
      if (e - x >= minLen) runs.push([x, e]);
      x = e;
    }
    const next: typeof open = [];
    for (const g of open) {
      const k = runs.findIndex(([a, b]) => Math.abs(a - g.x0) <= 1 && Math.abs(b - g.x1) <= 1);
      if (k >= 0) {
        next.push(g);
        runs.splice(k, 1);
      } else close(g, y);
    }
    for (const [a, b] of runs) next.push({ x0: a, x1: b, y0: y });
    open = next;
  }
  return out;
}

/**
 * Lines of on-screen text: small white, grey-ish components shaped like characters (height 1.2-5%
 * of the frame, strokes rather than filled blobs) in rows of at least three on one baseline with
 * gaps under 1.5 character heights. Glints are filled blobs or stand alone; a row of glints that
 * passes is inpainted, which does no harm.
 */
export function findTextLines(img: RgbImage, opts: { minChars?: number } = {}): PixelBox[] {
  const { width: w, height: h, data } = img,
    on = new Uint8Array(w * h);
  for (let p = 0; p < w * h; p++) {
    const r = data[3 * p],
      g = data[3 * p + 1],
      b = data[3 * p + 2];
    on[p] = Math.min(r, g, b) >= 140 && Math.max(r, g, b) - Math.min(r, g, b) <= 45 ? 1 : 0;
  }
  const { labels, sizes } = components4(on, w, h, true);
  const bb = sizes.map(() => ({ x0: w, y0: h, x1: 0, y1: 0 }));
  for (let p = 0; p < w * h; p++) {
    const l = labels[p];
    if (!l) continue;
    const b = bb[l - 1],
      x = p % w,
      y = (p / w) | 0;
    if (x < b.x0) b.x0 = x;
    if (y < b.y0) b.y0 = y;
    if (x + 1 > b.x1) b.x1 = x + 1;
    if (y + 1 > b.y1) b.y1 = y + 1;
  }
  const minH = Math.max(4, 0.012 * h),
    maxH = 0.05 * h;
  const chars = bb
    .filter((b, k) => {
      const bh = b.y1 - b.y0,
        bw = b.x1 - b.x0;
      const blob = sizes[k] > 0.75 * bh * bw && bw > 0.4 * bh; // a filled blob, not a stroke or a thin bar
      return bh >= minH && bh <= maxH && bw <= 1.5 * bh && !blob;
    })
    .sort((a, b) => a.x0 - b.x0);
  // Union characters that sit on one line next to each other.
  const parent = chars.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let i = 0; i < chars.length; i++) {
    for (let j = i + 1; j < chars.length; j++) {
      const a = chars[i],
        b = chars[j],
        ha = a.y1 - a.y0,
        hb = b.y1 - b.y0;
      if (b.x0 - a.x1 > 1.5 * Math.max(ha, hb)) continue;
      const overlap = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
      if (overlap >= 0.5 * Math.min(ha, hb) && Math.abs(ha - hb) <= 0.5 * Math.max(ha, hb)) parent[find(j)] = find(i);
    }
  }
  const groups = new Map<number, PixelBox[]>();
  chars.forEach((c, i) => groups.set(find(i), [...(groups.get(find(i)) ?? []), c]));
  const out: PixelBox[] = [];
  for (const g of groups.values()) {
    if (g.length < (opts.minChars ?? 3)) continue;
    out.push({
      x0: Math.min(...g.map((c) => c.x0)),
      y0: Math.min(...g.map((c) => c.y0)),
      x1: Math.max(...g.map((c) => c.x1)),
      y1: Math.max(...g.map((c) => c.y1)),
    });
  }
  return out;
}

/**
 * A copy with each box (grown by `pad` px) inpainted: every column (for a wide box; rows for a tall
 * one) is interpolated linearly between the view pixels just outside the box on either side, so
 * the patch continues the tissue's shading instead of leaving a flat rectangle.
 */
export function fillOverlays(img: RgbImage, boxes: readonly PixelBox[], fovMask?: MaskImage, pad = 2): RgbImage {
  const { width: w, height: h } = img,
    data = Uint8Array.from(img.data);
  const usable = (x: number, y: number) =>
    x >= 0 &&
    y >= 0 &&
    x < w &&
    y < h &&
    (!fovMask || fovMask.data[y * w + x] === 1) &&
    !isOverlayColour(img.data[3 * (y * w + x)], img.data[3 * (y * w + x) + 1], img.data[3 * (y * w + x) + 2]);
  for (const b0 of boxes) {
    const b = {
      x0: Math.max(0, b0.x0 - pad),
      y0: Math.max(0, b0.y0 - pad),
      x1: Math.min(w, b0.x1 + pad),
      y1: Math.min(h, b0.y1 + pad),
    };
    const wide = b.x1 - b.x0 >= b.y1 - b.y0;
    // Along each line across the box's short side: the two outside ends (when in view).
    const [n, len] = wide ? [b.x1 - b.x0, b.y1 - b.y0] : [b.y1 - b.y0, b.x1 - b.x0];
    for (let i = 0; i < n; i++) {
      const at = (t: number): [number, number] => (wide ? [b.x0 + i, b.y0 + t] : [b.x0 + t, b.y0 + i]);
      const ends: { t: number; c: number[] }[] = [];
      for (const t of [-1, len]) {
        const [x, y] = at(t);
        if (usable(x, y)) {
          const p = 3 * (y * w + x);
          ends.push({ t, c: [img.data[p], img.data[p + 1], img.data[p + 2]] });
        }
      }
      for (let t = 0; t < len; t++) {
        const [x, y] = at(t),
          p = 3 * (y * w + x);
        const c =
          ends.length === 2
            ? ends[0].c.map((v, k) => v + ((ends[1].c[k] - v) * (t + 1)) / (len + 1))
            : ends.length === 1
              ? ends[0].c
              : [0, 0, 0];
        data[p] = Math.round(c[0]);
        data[p + 1] = Math.round(c[1]);
        data[p + 2] = Math.round(c[2]);
      }
    }
  }
  return { width: w, height: h, data };
}

export interface PreparedFrame {
  /** Cropped to the FOV box, overlays filled, pixels outside the view set to 0. */
  image: RgbImage;
  /** The crop box in the original frame (to map results back: x + box.x0). */
  box: PixelBox;
  /** Overlay boxes found (coloured panels, then black boxes over the view), in original coordinates. */
  overlays: PixelBox[];
}

/** Overlays filled, cropped to the field of view, outside-view pixels zeroed. */
export function prepareFrame(img: RgbImage, opts: FovOptions = {}): PreparedFrame {
  const fov = detectFov(img, opts);
  const overlays = [...findOverlays(img), ...findDarkBoxes(img, fov), ...findTextLines(img)];
  const filled = overlays.length ? fillOverlays(img, overlays, fov.mask) : img;
  const { x0, y0, x1, y1 } = fov.box,
    cw = x1 - x0,
    ch = y1 - y0,
    out = new Uint8Array(cw * ch * 3);
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const p = (y + y0) * img.width + (x + x0),
        q = y * cw + x;
      if (!fov.mask.data[p]) continue;
      out[3 * q] = filled.data[3 * p];
      out[3 * q + 1] = filled.data[3 * p + 1];
      out[3 * q + 2] = filled.data[3 * p + 2];
    }
  }
  return { image: { width: cw, height: ch, data: out }, box: fov.box, overlays };
}
