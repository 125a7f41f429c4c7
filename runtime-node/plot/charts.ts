// Training charts as SVG documents: loss curves (several series, legend, ticked axes, optional
// log scale), ROC curves per class with the AUC in the legend, and a confusion-matrix heatmap.
// Each returns the SVG text plus the mapping from data to pixels, so tests can probe the rendered
// image (../plots.ts renders it to PNG with sharp).
// Conventions follow matplotlib's defaults: the tab10 palette, "nice" ticks at 1, 2 or 5 times a
// power of ten (Heckbert, "Nice numbers for graph labels", Graphics Gems, 1990), and for the
// confusion matrix sklearn's ConfusionMatrixDisplay layout (true label down, predicted across)
// with cells shaded by the fraction of their row, so rare classes stay visible.
import { frameRect, line, polyline, rect, svgDocument, text, textWidth, type RGB } from './svg.ts';

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
/** An SVG document of `width` x `height` pixels. */
export interface Figure {
  svg: string;
  width: number;
  height: number;
}
export interface Chart extends Figure {
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
  body: string[];
  width: number;
  height: number;
  plot: Rect;
  /** Font size (pixels) and the padding derived from it. */
  fs: number;
  pad: number;
}

/** Title, and the plot rectangle left after the margins the labels need. */
function frame(
  width: number,
  height: number,
  fs: number,
  title: string | undefined,
  leftText: number,
  bottomRows: number,
  yLabel: boolean,
): Frame {
  const body: string[] = [];
  const pad = Math.round(fs * 0.85);
  const top = title ? pad * 2 + fs : pad * 2;
  if (title) body.push(text(title, width / 2, pad, { size: fs, align: 'center' }));
  const left = pad + (yLabel ? fs + pad : 0) + leftText + pad;
  const bottom = pad + bottomRows * (fs + pad);
  const plot = { x: Math.round(left), y: top, w: Math.round(width - left - pad * 2), h: height - top - bottom };
  return { body, width, height, fs, pad, plot };
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
  const { body, plot: p, fs, pad } = f;
  const tick = Math.round(fs / 4);
  for (const t of yt) {
    const y = Math.round(ypx(t) - 0.5) + 0.5;
    if (y > p.y + 1 && y < p.y + p.h - 1) body.push(line(p.x + 1, y, p.x + p.w - 1, y, GRID, { crisp: true }));
  }
  for (const t of xt) {
    const x = Math.round(xpx(t) - 0.5) + 0.5;
    if (x > p.x + 1 && x < p.x + p.w - 1) body.push(line(x, p.y + 1, x, p.y + p.h - 1, GRID, { crisp: true }));
  }
  body.push(frameRect(p.x, p.y, p.w, p.h, INK));
  for (const t of yt) {
    const y = Math.round(ypx(t) - 0.5) + 0.5;
    body.push(line(p.x - tick, y, p.x, y, INK, { crisp: true }));
    body.push(text(formatTick(t), p.x - tick - 3, y, { size: fs, align: 'right', baseline: 'middle' }));
  }
  for (const t of xt) {
    const x = Math.round(xpx(t) - 0.5) + 0.5;
    body.push(line(x, p.y + p.h, x, p.y + p.h + tick, INK, { crisp: true }));
    body.push(text(formatTick(t), x, p.y + p.h + pad, { size: fs, align: 'center' }));
  }
  if (xLabel) body.push(text(xLabel, p.x + p.w / 2, p.y + p.h + 2 * pad + fs, { size: fs, align: 'center' }));
  if (yLabel) body.push(text(yLabel, pad, p.y + p.h / 2, { size: fs, align: 'center', vertical: true }));
}

interface LegendItem {
  label: string;
  color: RGB;
  dash?: boolean;
}

/** A boxed legend in a corner of the plot; 'auto' takes the corner covering the fewest points. */
function legend(f: Frame, items: LegendItem[], place: LegendPlace, points: number[]): void {
  if (place === 'none' || items.length === 0) return;
  const { body, plot: p, fs } = f,
    pad = Math.round(fs / 2),
    row = Math.round(fs * 1.4),
    swatch = 2 * fs;
  const w = swatch + 3 * pad + Math.max(...items.map((i) => textWidth(i.label, fs))),
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
  body.push(rect(box.x, box.y, box.w, box.h, WHITE, 0.9), frameRect(box.x, box.y, box.w, box.h, [170, 170, 170]));
  items.forEach((it, k) => {
    const cy = box.y + pad + k * row + row / 2 - pad / 2;
    const dash = it.dash ? [fs / 2, fs / 3] : undefined;
    body.push(line(box.x + pad, cy, box.x + pad + swatch, cy, it.color, { width: 3, dash }));
    body.push(text(it.label, box.x + 2 * pad + swatch, cy, { size: fs, baseline: 'middle' }));
  });
}

function done(f: Frame): Figure {
  return { svg: svgDocument(f.width, f.height, f.body), width: f.width, height: f.height };
}

/** Trailing mean over the last k values (fewer at the start): the smoothed line beside a noisy loss curve. */
export function movingAverage(xs: readonly number[], k: number): number[] {
  return xs.map((_, i) => {
    const w = xs.slice(Math.max(0, i - k + 1), i + 1);
    return w.reduce((a, b) => a + b, 0) / w.length;
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
  /** Text size in pixels. Default 14. */
  fontSize?: number;
  lineWidth?: number;
}

/** Curves such as train/val loss per step; x defaults to 0, 1, 2, ...; NaN values leave gaps. */
export function lineChart(series: Series[], opts: LineChartOptions = {}): Chart {
  const fs = opts.fontSize ?? 14,
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
  const leftText = Math.max(0, ...yt.map((t) => textWidth(formatTick(t), fs))) + fs / 4;
  const f = frame(opts.width ?? 800, opts.height ?? 500, fs, opts.title, leftText, opts.xLabel ? 2 : 1, !!opts.yLabel);
  const p = f.plot;
  const xToPx = (v: number) => p.x + 0.5 + ((v - x0) / (x1 - x0)) * (p.w - 1);
  const yToPx = (v: number) => p.y + 0.5 + (1 - (fy(v) - ly0) / (ly1 - ly0)) * (p.h - 1);
  axes(f, xt, yt, xToPx, yToPx, opts.xLabel, opts.yLabel);
  const pts: number[] = [];
  series.forEach((se, k) => {
    const color = se.color ?? TAB10[k % TAB10.length],
      path: number[] = [];
    const flush = () => {
      if (path.length)
        f.body.push(polyline(path, color, { width: opts.lineWidth ?? 2, dash: se.dash ? [8, 5] : undefined }));
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
  return { ...done(f), plot: p, xToPx, yToPx };
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
  opts: { title?: string; size?: number; fontSize?: number; legend?: LegendPlace } = {},
): Chart {
  const fs = opts.fontSize ?? 14,
    size = opts.size ?? 640;
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const f = frame(size, size, fs, opts.title ?? 'ROC', textWidth('0.8', fs) + fs / 4, 2, true);
  const p = f.plot;
  const xToPx = (v: number) => p.x + 0.5 + v * (p.w - 1),
    yToPx = (v: number) => p.y + 0.5 + (1 - v) * (p.h - 1);
  axes(f, ticks, ticks, xToPx, yToPx, 'False positive rate', 'True positive rate');
  f.body.push(line(xToPx(0), yToPx(0), xToPx(1), yToPx(1), [150, 150, 150], { width: 1.5, dash: [6, 5] }));
  curves.forEach((c, k) => {
    const path: number[] = [];
    for (let i = 0; i < c.fpr.length; i++)
      if (Number.isFinite(c.fpr[i]) && Number.isFinite(c.tpr[i])) path.push(xToPx(c.fpr[i]), yToPx(c.tpr[i]));
    f.body.push(polyline(path, c.color ?? TAB10[k % TAB10.length], { width: 2 }));
  });
  const items = curves.map((c, k) => ({
    label: c.auc === undefined ? c.name : `${c.name} (AUC ${Number.isNaN(c.auc) ? 'n/a' : c.auc.toFixed(3)})`,
    color: c.color ?? TAB10[k % TAB10.length],
  }));
  legend(f, items, opts.legend ?? 'bottom-right', []);
  return { ...done(f), plot: p, xToPx, yToPx };
}

/** matplotlib's "Blues" from 0 (white) to 1 (dark blue), piecewise linear. */
const BLUES: readonly RGB[] = [
  [247, 251, 255],
  [198, 219, 239],
  [107, 174, 214],
  [33, 113, 181],
  [8, 48, 107],
];
function blues(t: number): RGB {
  const stops = BLUES;
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1),
    i = Math.min(stops.length - 2, Math.floor(u)),
    a = u - i;
  return [0, 1, 2].map((c) => Math.round(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * a)) as unknown as RGB;
}

export interface ConfusionChart extends Figure {
  plot: Rect;
  cell(trueClass: number, predClass: number): Rect;
}

/** counts[true][pred] as a heatmap with the count in each cell, shaded by row fraction. */
export function confusionMatrixChart(
  counts: number[][],
  classNames: string[],
  opts: { title?: string; fontSize?: number; cellSize?: number } = {},
): ConfusionChart {
  const C = classNames.length,
    fs = opts.fontSize ?? 14;
  if (counts.length !== C || counts.some((r) => r.length !== C))
    throw new Error(`confusionMatrixChart: counts must be ${C}x${C} for ${C} class names`);
  const pad = Math.round(fs * 0.85);
  const maxCount = Math.max(0, ...counts.flat());
  const cs = opts.cellSize ?? Math.round(Math.max(textWidth(String(maxCount), fs) + 2 * pad, fs * 4));
  const names = Math.ceil(Math.max(...classNames.map((n) => textWidth(n, fs))));
  const barW = 4 * pad,
    barText = textWidth('1.0', fs);
  const left = pad + fs + pad + names + pad,
    top = pad * 2 + fs;
  const width = Math.ceil(left + C * cs + 2 * pad + barW + pad + barText + 2 * pad);
  const height = Math.ceil(top + C * cs + pad + names + pad + fs + 2 * pad);
  const body: string[] = [];
  const plot = { x: left, y: top, w: C * cs, h: C * cs };
  const cell = (i: number, j: number): Rect => ({ x: left + j * cs, y: top + i * cs, w: cs, h: cs });
  body.push(text(opts.title ?? 'Confusion matrix', width / 2, pad, { size: fs, align: 'center' }));
  for (let i = 0; i < C; i++) {
    const rowSum = counts[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < C; j++) {
      const frac = rowSum > 0 ? counts[i][j] / rowSum : 0,
        r = cell(i, j);
      body.push(rect(r.x, r.y, r.w, r.h, blues(frac)));
      const fill = frac > 0.5 ? WHITE : INK;
      body.push(
        text(String(counts[i][j]), r.x + r.w / 2, r.y + r.h / 2, {
          size: fs,
          align: 'center',
          baseline: 'middle',
          fill,
        }),
      );
    }
    body.push(text(classNames[i], left - pad, top + (i + 0.5) * cs, { size: fs, align: 'right', baseline: 'middle' }));
    const under = { size: fs, align: 'right', baseline: 'middle', vertical: true } as const;
    body.push(text(classNames[i], left + (i + 0.5) * cs, top + C * cs + pad, under));
  }
  body.push(frameRect(plot.x, plot.y, plot.w, plot.h, INK));
  const xLabelY = top + C * cs + pad + names + pad;
  body.push(text('Predicted label', left + (C * cs) / 2, xLabelY, { size: fs, align: 'center' }));
  body.push(text('True label', pad, top + (C * cs) / 2, { size: fs, align: 'center', vertical: true }));
  // Colour bar: fraction of the true class's samples, as a vertical gradient through the stops.
  const bx = left + C * cs + 2 * pad,
    bh = C * cs;
  const stops = BLUES.map((c, k) => `<stop offset="${k / (BLUES.length - 1)}" stop-color="rgb(${c.join(',')})"/>`);
  body.push(
    `<defs><linearGradient id="cbar" x1="0" y1="1" x2="0" y2="0">${stops.join('')}</linearGradient></defs>`,
    `<rect x="${bx}" y="${top}" width="${barW}" height="${bh}" fill="url(#cbar)"/>`,
    frameRect(bx, top, barW, bh, INK),
  );
  for (const t of [0, 0.5, 1])
    body.push(text(t.toFixed(1), bx + barW + pad / 2, top + (1 - t) * (bh - 1), { size: fs, baseline: 'middle' }));
  return { svg: svgDocument(width, height, body), width, height, plot, cell };
}
