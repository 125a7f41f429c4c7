// Training charts on the raster: loss curves (several series, legend, ticked axes, optional
// log scale), ROC curves per class with the AUC in the legend, and a confusion-matrix heatmap.
// Each returns the canvas plus the mapping from data to pixels, so tests can probe the image.
// Conventions follow matplotlib's defaults: the tab10 palette, "nice" ticks at 1, 2 or 5 times a
// power of ten (Heckbert, "Nice numbers for graph labels", Graphics Gems, 1990), and for the
// confusion matrix sklearn's ConfusionMatrixDisplay layout (true label down, predicted across)
// with cells shaded by the fraction of their row, so rare classes stay visible.
import { Canvas, textWidth, GLYPH_H, type RGB } from './raster.ts';

export const TAB10: readonly RGB[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];
const INK: RGB = [34, 34, 34],
  GRID: RGB = [228, 228, 228],
  WHITE: RGB = [255, 255, 255];

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}
export interface Chart {
  canvas: Canvas;
  plot: Rect;
  xToPx(v: number): number;
  yToPx(v: number): number;
}
export type LegendPlace = 'auto' | 'top-right' | 'bottom-right' | 'top-left' | 'bottom-left' | 'none';

/** Ticks at 1, 2 or 5 x 10^k covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6): { ticks: number[]; step: number } {
  if (!(hi > lo)) {
    const d = Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / target,
    mag = 10 ** Math.floor(Math.log10(raw)),
    norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(k * step);
  return { ticks, step };
}

/** Fewest decimals that show v exactly (to 1e-9 relative); exponent form for tiny or huge values. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    for (let d = 0; d < 6; d++)
      if (Math.abs(Number(v.toExponential(d)) - v) <= 1e-9 * a) return v.toExponential(d).replace('e+', 'e');
    return v.toExponential(3).replace('e+', 'e');
  }
  for (let d = 0; d < 8; d++) if (Math.abs(Number(v.toFixed(d)) - v) <= 1e-9 * a) return v.toFixed(d);
  return v.toPrecision(4);
}

interface Frame {
  canvas: Canvas;
  plot: Rect;
  scale: number;
}

/** Canvas, title, and the plot rectangle left after the margins the labels need. */
function frame(
  width: number,
  height: number,
  s: number,
  title: string | undefined,
  leftText: number,
  bottomRows: number,
  yLabel: boolean,
): Frame {
  const canvas = new Canvas(width, height);
  const pad = 6 * s,
    th = GLYPH_H * s;
  const top = title ? pad * 2 + th : pad * 2;
  if (title) canvas.text(title, width / 2, pad, INK, { scale: s, align: 'center' });
  const left = pad + (yLabel ? th + pad : 0) + leftText + pad;
  const bottom = pad + bottomRows * (th + pad);
  return { canvas, scale: s, plot: { x: left, y: top, w: width - left - pad * 2, h: height - top - bottom } };
}

function axes(
  f: Frame,
  xt: number[],
  yt: number[],
  xpx: (v: number) => number,
  ypx: (v: number) => number,
  xLabel?: string,
  yLabel?: string,
): void {
  const { canvas: c, plot: p, scale: s } = f,
    pad = 6 * s,
    th = GLYPH_H * s;
  for (const t of yt) {
    const y = Math.round(ypx(t));
    if (y > p.y && y < p.y + p.h - 1) c.fillRect(p.x + 1, y, p.w - 2, 1, GRID);
  }
  for (const t of xt) {
    const x = Math.round(xpx(t));
    if (x > p.x && x < p.x + p.w - 1) c.fillRect(x, p.y + 1, 1, p.h - 2, GRID);
  }
  c.rect(p.x, p.y, p.w, p.h, INK);
  for (const t of yt) {
    const y = Math.round(ypx(t));
    c.fillRect(p.x - 2 * s, y, 2 * s, 1, INK);
    c.text(formatTick(t), p.x - 4 * s, y, INK, { scale: s, align: 'right', baseline: 'middle' });
  }
  for (const t of xt) {
    const x = Math.round(xpx(t));
    c.fillRect(x, p.y + p.h, 1, 2 * s, INK);
    c.text(formatTick(t), x, p.y + p.h + pad, INK, { scale: s, align: 'center' });
  }
  if (xLabel) c.text(xLabel, p.x + p.w / 2, p.y + p.h + 2 * pad + th, INK, { scale: s, align: 'center' });
  if (yLabel) c.text(yLabel, pad, p.y + p.h / 2, INK, { scale: s, align: 'center', vertical: true });
}

interface LegendItem {
  label: string;
  color: RGB;
  dash?: boolean;
}

/** A boxed legend in a corner of the plot; 'auto' takes the corner covering the fewest points. */
function legend(f: Frame, items: LegendItem[], place: LegendPlace, points: number[]): void {
  if (place === 'none' || items.length === 0) return;
  const { canvas: c, plot: p, scale: s } = f,
    pad = 4 * s,
    row = (GLYPH_H + 4) * s,
    swatch = 14 * s;
  const w = swatch + 3 * pad + Math.max(...items.map((i) => textWidth(i.label, s))),
    h = items.length * row + pad;
  const at = (pl: LegendPlace): Rect => ({
    x: pl.endsWith('right') ? p.x + p.w - w - pad : p.x + pad,
    y: pl.startsWith('top') ? p.y + pad : p.y + p.h - h - pad,
    w,
    h,
  });
  let box = at(place === 'auto' ? 'top-right' : place);
  if (place === 'auto') {
    let best = Infinity;
    for (const pl of ['top-right', 'bottom-right', 'top-left', 'bottom-left'] as const) {
      const r = at(pl);
      let n = 0;
      for (let i = 0; i + 1 < points.length; i += 2)
        if (points[i] >= r.x && points[i] <= r.x + r.w && points[i + 1] >= r.y && points[i + 1] <= r.y + r.h) n++;
      if (n < best) {
        best = n;
        box = r;
      }
    }
  }
  c.fillRect(box.x, box.y, box.w, box.h, WHITE, 0.9);
  c.rect(box.x, box.y, box.w, box.h, [170, 170, 170]);
  items.forEach((it, k) => {
    const cy = box.y + pad + k * row + (GLYPH_H * s) / 2;
    c.line(box.x + pad, cy, box.x + pad + swatch, cy, it.color, 2 * s, it.dash ? [4 * s, 3 * s] : undefined);
    c.text(it.label, box.x + 2 * pad + swatch, cy, INK, { scale: s, baseline: 'middle' });
  });
}

export interface Series {
  name: string;
  y: ArrayLike<number>;
  x?: ArrayLike<number>;
  color?: RGB;
  dash?: boolean;
}
export interface LineChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** Logarithmic y axis (non-positive values are left out). */
  logY?: boolean;
  yMin?: number;
  yMax?: number;
  legend?: LegendPlace;
  /** Integer text scale. Default 2. */
  fontScale?: number;
  lineWidth?: number;
}

/** Curves such as train/val loss per step; x defaults to 0, 1, 2, ...; NaN values leave gaps. */
export function lineChart(series: Series[], opts: LineChartOptions = {}): Chart {
  const s = opts.fontScale ?? 2,
    log = opts.logY ?? false;
  const xs = series.map((se) => Float64Array.from({ length: se.y.length }, (_, i) => (se.x ? se.x[i] : i)));
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  series.forEach((se, k) => {
    for (let i = 0; i < se.y.length; i++) {
      const v = se.y[i];
      if (!Number.isFinite(v) || (log && v <= 0)) continue;
      x0 = Math.min(x0, xs[k][i]);
      x1 = Math.max(x1, xs[k][i]);
      y0 = Math.min(y0, v);
      y1 = Math.max(y1, v);
    }
  });
  if (!Number.isFinite(x0)) {
    x0 = 0;
    x1 = 1;
    y0 = log ? 0.1 : 0;
    y1 = 1;
  }
  if (x1 === x0) x1 = x0 + 1;
  y0 = opts.yMin ?? y0;
  y1 = opts.yMax ?? y1;
  const fy = log ? Math.log10 : (v: number) => v;
  let yt: number[], ly0: number, ly1: number;
  if (log) {
    ly0 = Math.log10(y0);
    ly1 = Math.log10(y1);
    if (ly1 - ly0 < 1e-9) {
      ly0 -= 0.5;
      ly1 += 0.5;
    }
    const span = ly1 - ly0,
      padLog = span * 0.05;
    ly0 -= padLog;
    ly1 += padLog;
    const mant = span >= 3 ? [1] : span >= 1 ? [1, 2, 5] : [1, 2, 3, 4, 5, 6, 7, 8, 9];
    yt = [];
    for (let e = Math.floor(ly0); e <= Math.ceil(ly1); e++)
      for (const m of mant) {
        const v = m * 10 ** e;
        if (Math.log10(v) >= ly0 && Math.log10(v) <= ly1) yt.push(Number(v.toPrecision(6)));
      }
    if (yt.length < 2)
      yt = niceTicks(10 ** ly0, 10 ** ly1).ticks.filter((t) => t > 0 && Math.log10(t) >= ly0 && Math.log10(t) <= ly1);
  } else {
    const { step } = niceTicks(y0, y1);
    ly0 = opts.yMin ?? Math.floor(y0 / step + 1e-9) * step;
    ly1 = opts.yMax ?? Math.ceil(y1 / step - 1e-9) * step;
    if (ly1 <= ly0) ly1 = ly0 + step;
    yt = niceTicks(ly0, ly1).ticks.filter((t) => t >= ly0 - 1e-12 && t <= ly1 + 1e-12);
  }
  const xt = niceTicks(x0, x1, 8).ticks.filter((t) => t >= x0 && t <= x1);
  const leftText = Math.max(0, ...yt.map((t) => textWidth(formatTick(t), s)));
  const f = frame(opts.width ?? 800, opts.height ?? 500, s, opts.title, leftText, opts.xLabel ? 2 : 1, !!opts.yLabel);
  const p = f.plot;
  const xToPx = (v: number) => p.x + 0.5 + ((v - x0) / (x1 - x0)) * (p.w - 1);
  const yToPx = (v: number) => p.y + 0.5 + (1 - (fy(v) - ly0) / (ly1 - ly0)) * (p.h - 1);
  axes(f, xt, yt, xToPx, yToPx, opts.xLabel, opts.yLabel);
  const pts: number[] = [];
  series.forEach((se, k) => {
    const color = se.color ?? TAB10[k % TAB10.length],
      path: number[] = [];
    const flush = () => {
      if (path.length) f.canvas.strokePath(path, color, opts.lineWidth ?? 2, se.dash ? [8, 5] : undefined);
      path.length = 0;
    };
    for (let i = 0; i < se.y.length; i++) {
      const v = se.y[i];
      if (!Number.isFinite(v) || (log && v <= 0)) {
        flush();
        continue;
      }
      const px = xToPx(xs[k][i]),
        py = Math.min(p.y + p.h, Math.max(p.y, yToPx(v)));
      path.push(px, py);
      pts.push(px, py);
    }
    flush();
  });
  legend(
    f,
    series.map((se, k) => ({ label: se.name, color: se.color ?? TAB10[k % TAB10.length], dash: se.dash })),
    opts.legend ?? 'auto',
    pts,
  );
  return { canvas: f.canvas, plot: p, xToPx, yToPx };
}

export interface RocSeries {
  name: string;
  fpr: ArrayLike<number>;
  tpr: ArrayLike<number>;
  auc?: number;
  color?: RGB;
}

/** ROC curves on the unit square with the chance diagonal; the legend shows each AUC. */
export function rocChart(
  curves: RocSeries[],
  opts: { title?: string; size?: number; fontScale?: number; legend?: LegendPlace } = {},
): Chart {
  const s = opts.fontScale ?? 2,
    size = opts.size ?? 640;
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const f = frame(size, size, s, opts.title ?? 'ROC', textWidth('0.8', s), 2, true);
  const p = f.plot;
  const xToPx = (v: number) => p.x + 0.5 + v * (p.w - 1),
    yToPx = (v: number) => p.y + 0.5 + (1 - v) * (p.h - 1);
  axes(f, ticks, ticks, xToPx, yToPx, 'False positive rate', 'True positive rate');
  f.canvas.line(xToPx(0), yToPx(0), xToPx(1), yToPx(1), [150, 150, 150], 1.5, [6, 5]);
  curves.forEach((c, k) => {
    const path: number[] = [];
    for (let i = 0; i < c.fpr.length; i++)
      if (Number.isFinite(c.fpr[i]) && Number.isFinite(c.tpr[i])) path.push(xToPx(c.fpr[i]), yToPx(c.tpr[i]));
    f.canvas.strokePath(path, c.color ?? TAB10[k % TAB10.length], 2);
  });
  const items = curves.map((c, k) => ({
    label: c.auc === undefined ? c.name : `${c.name} (AUC ${Number.isNaN(c.auc) ? 'n/a' : c.auc.toFixed(3)})`,
    color: c.color ?? TAB10[k % TAB10.length],
  }));
  legend(f, items, opts.legend ?? 'bottom-right', []);
  return { canvas: f.canvas, plot: p, xToPx, yToPx };
}

/** matplotlib's "Blues" from 0 (white) to 1 (dark blue), piecewise linear. */
function blues(t: number): RGB {
  const stops: RGB[] = [
    [247, 251, 255],
    [198, 219, 239],
    [107, 174, 214],
    [33, 113, 181],
    [8, 48, 107],
  ];
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1),
    i = Math.min(stops.length - 2, Math.floor(u)),
    a = u - i;
  return [0, 1, 2].map((c) => Math.round(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * a)) as unknown as RGB;
}

export interface ConfusionChart {
  canvas: Canvas;
  plot: Rect;
  cell(trueClass: number, predClass: number): Rect;
}

/** counts[true][pred] as a heatmap with the count in each cell, shaded by row fraction. */
export function confusionMatrixChart(
  counts: number[][],
  classNames: string[],
  opts: { title?: string; fontScale?: number; cellSize?: number } = {},
): ConfusionChart {
  const C = classNames.length,
    s = opts.fontScale ?? 2;
  if (counts.length !== C || counts.some((r) => r.length !== C))
    throw new Error(`confusionMatrixChart: counts must be ${C}x${C} for ${C} class names`);
  const pad = 6 * s,
    th = GLYPH_H * s;
  const maxCount = Math.max(0, ...counts.flat());
  const cs = opts.cellSize ?? Math.max(textWidth(String(maxCount), s) + 2 * pad, th * 4);
  const names = Math.max(...classNames.map((n) => textWidth(n, s)));
  const barW = 4 * pad,
    barText = textWidth('1.0', s);
  const left = pad + th + pad + names + pad,
    top = pad * 2 + th;
  const width = Math.ceil(left + C * cs + 2 * pad + barW + pad + barText + 2 * pad);
  const height = Math.ceil(top + C * cs + pad + names + pad + th + 2 * pad);
  const canvas = new Canvas(width, height);
  const plot = { x: left, y: top, w: C * cs, h: C * cs };
  const cell = (i: number, j: number): Rect => ({
    x: Math.round(left + j * cs),
    y: Math.round(top + i * cs),
    w: Math.round(left + (j + 1) * cs) - Math.round(left + j * cs),
    h: Math.round(top + (i + 1) * cs) - Math.round(top + i * cs),
  });
  canvas.text(opts.title ?? 'Confusion matrix', width / 2, pad, INK, { scale: s, align: 'center' });
  for (let i = 0; i < C; i++) {
    const rowSum = counts[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < C; j++) {
      const frac = rowSum > 0 ? counts[i][j] / rowSum : 0,
        r = cell(i, j);
      canvas.fillRect(r.x, r.y, r.w, r.h, blues(frac));
      canvas.text(String(counts[i][j]), r.x + r.w / 2, r.y + r.h / 2, frac > 0.5 ? WHITE : INK, {
        scale: s,
        align: 'center',
        baseline: 'middle',
      });
    }
    canvas.text(classNames[i], left - pad, top + (i + 0.5) * cs, INK, { scale: s, align: 'right', baseline: 'middle' });
    canvas.text(classNames[i], left + (i + 0.5) * cs, top + C * cs + pad, INK, {
      scale: s,
      align: 'right',
      baseline: 'middle',
      vertical: true,
    });
  }
  canvas.rect(plot.x, plot.y, plot.w, plot.h, INK);
  canvas.text('Predicted label', left + (C * cs) / 2, top + C * cs + pad + names + pad, INK, {
    scale: s,
    align: 'center',
  });
  canvas.text('True label', pad, top + (C * cs) / 2, INK, { scale: s, align: 'center', vertical: true });
  // Colour bar: fraction of the true class's samples.
  const bx = left + C * cs + 2 * pad,
    bh = C * cs;
  for (let y = 0; y < bh; y++) canvas.fillRect(bx, top + y, barW, 1, blues(1 - y / (bh - 1)));
  canvas.rect(bx, top, barW, bh, INK);
  for (const t of [0, 0.5, 1])
    canvas.text(t.toFixed(1), bx + barW + pad / 2, top + (1 - t) * (bh - 1), INK, { scale: s, baseline: 'middle' });
  return { canvas, plot, cell };
}
