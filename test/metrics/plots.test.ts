// Charts: SVG documents rendered by sharp, written as PNG (+ SVG) to /tmp/plots-test and probed
// pixel by pixel in the rendered image.
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { decode } from 'fast-png';
import {
  lineChart,
  rocChart,
  confusionMatrixChart,
  niceTicks,
  formatTick,
  textWidth,
  svgToRgba,
  writePng,
  TAB10,
  type Figure,
  type RGB,
} from '../../runtime-node/plots.ts';
import { movingAverage } from '../../runtime-node/plot/index.ts';

const OUT = '/tmp/plots-test';
const WHITE: RGB = [255, 255, 255];
interface Image {
  data: Uint8Array;
  width: number;
  height: number;
}
const rgb = (c: Image, x: number, y: number) => {
  const i = 4 * (Math.floor(y) * c.width + Math.floor(x));
  return [c.data[i], c.data[i + 1], c.data[i + 2]];
};
const dist = (a: readonly number[], b: readonly number[]) => Math.max(...[0, 1, 2].map((i) => Math.abs(a[i] - b[i])));
/** Pixels in a rectangle whose colour is far from `bg`. */
function inkIn(c: Image, x0: number, y0: number, w: number, h: number, bg: RGB = WHITE, tol = 60): number {
  let n = 0;
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(c.height, y0 + h); y++) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(c.width, x0 + w); x++) if (dist(rgb(c, x, y), bg) > tol) n++;
  }
  return n;
}
/** Writes the PNG (and SVG), reads the PNG back, checks its size and returns its pixels. */
async function render(name: string, f: Figure): Promise<Image> {
  const path = await writePng(`${OUT}/${name}.png`, f);
  const png = decode(readFileSync(path));
  expect([png.width, png.height, png.depth]).toEqual([f.width, f.height, 8]);
  expect(readFileSync(`${OUT}/${name}.svg`, 'utf8')).toBe(f.svg);
  const img = await svgToRgba(f.svg);
  // The PNG on disk holds the same pixels as the direct rendering.
  const ch = png.channels;
  for (const [x, y] of [
    [f.width >> 1, f.height >> 1],
    [10, 10],
    [f.width - 20, f.height - 20],
  ])
    expect([0, 1, 2].map((k) => png.data[ch * (y * f.width + x) + k])).toEqual(rgb(img, x, y));
  return img;
}

describe('movingAverage', () => {
  it('is the trailing mean of the last k values, over fewer at the start', () => {
    expect(movingAverage([4, 2, 6, 8, 10], 3)).toEqual([4, 3, 4, 16 / 3, 8]);
    expect(movingAverage([5], 20)).toEqual([5]);
    expect(movingAverage([], 20)).toEqual([]);
  });
});

describe('chart text and ticks', () => {
  it('ticks are 1, 2 or 5 times a power of ten and print short', () => {
    expect(niceTicks(0, 1).ticks.map((t) => formatTick(t))).toEqual(['0', '0.2', '0.4', '0.6', '0.8', '1']);
    expect(niceTicks(0.25, 2.6).ticks.map((t) => formatTick(t))).toEqual(['0.5', '1', '1.5', '2', '2.5']);
    expect([
      formatTick(5e-5),
      formatTick(2.5e-4),
      formatTick(200000),
      formatTick(0.30000000000000004),
      formatTick(1.5),
    ]).toEqual(['5e-5', '2.5e-4', '2e5', '0.3', '1.5']);
  });

  it('text widths follow the font metrics, and the rendered text spans about that width', async () => {
    expect(textWidth('0', 1000)).toBeCloseTo(636, 0);
    expect(textWidth('iii', 10)).toBeLessThan(textWidth('mmm', 10));
    const word = 'Wide label 0123';
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="300" height="40" font-family="DejaVu Sans, sans-serif">` +
      `<rect width="300" height="40" fill="white"/><text x="10" y="28" font-size="20">${word}</text></svg>`;
    const img = await svgToRgba(svg);
    let x0 = Infinity,
      x1 = -Infinity;
    for (let y = 0; y < 40; y++)
      for (let x = 0; x < 300; x++)
        if (dist(rgb(img, x, y), WHITE) > 60) {
          x0 = Math.min(x0, x);
          x1 = Math.max(x1, x);
        }
    expect(x0).toBeLessThan(14);
    expect(Math.abs(x1 + 1 - 10 - textWidth(word, 20))).toBeLessThan(6);
  });
});

describe('charts', () => {
  it('loss curves: curve pixels where the data say, a gap at NaN, legend off the data, labelled axes', async () => {
    const n = 101;
    const train = Array.from({ length: n }, (_, i) => 2 - 1.5 * (i / 100)); // straight line 2 -> 0.5
    const val = Array.from({ length: n }, (_, i) => (i >= 40 && i < 60 ? NaN : 1.2)); // flat with a gap
    const chart = lineChart(
      [
        { name: 'train loss', y: train },
        { name: 'val loss', y: val },
      ],
      { title: 'Loss', xLabel: 'step', yLabel: 'loss', width: 640, height: 400 },
    );
    const c = await render('loss', chart),
      p = chart.plot;
    expect([c.width, c.height]).toEqual([640, 400]);
    for (const i of [5, 30, 70, 95]) {
      expect(dist(rgb(c, chart.xToPx(i), chart.yToPx(train[i])), TAB10[0]), `train at step ${i}`).toBeLessThan(40);
    }
    // Between samples too: the segment from step 10 to 11 passes through the midpoint.
    expect(dist(rgb(c, chart.xToPx(10.5), chart.yToPx(2 - 1.5 * 0.105)), TAB10[0])).toBeLessThan(40);
    expect(dist(rgb(c, chart.xToPx(20), chart.yToPx(1.2)), TAB10[1])).toBeLessThan(40);
    expect(dist(rgb(c, chart.xToPx(50), chart.yToPx(1.2)), TAB10[1]), 'no line across the NaN gap').toBeGreaterThan(
      100,
    );
    // The curves run from top-left to bottom-right: the legend must not sit on the data.
    expect(dist(rgb(c, chart.xToPx(2), chart.yToPx(train[2])), TAB10[0])).toBeLessThan(40);
    expect(dist(rgb(c, chart.xToPx(98), chart.yToPx(train[98])), TAB10[0])).toBeLessThan(40);
    expect(
      inkIn(c, p.x + p.w - 200, p.y + 2, 198, 40) + inkIn(c, p.x + 2, p.y + p.h - 40, 198, 38),
      'legend text in a free corner',
    ).toBeGreaterThan(100);
    // Title above the plot, centred; y tick labels left of the axis; axis labels present.
    expect(inkIn(c, 0, 0, c.width, p.y - 6)).toBeGreaterThan(40);
    expect(inkIn(c, 0, 0, c.width / 2 - 40, p.y - 6)).toBe(0);
    expect(inkIn(c, c.width / 2 + 40, 0, c.width / 2 - 40, p.y - 6)).toBe(0);
    expect(inkIn(c, p.x - 50, chart.yToPx(1) - 8, 45, 16), 'tick label "1"').toBeGreaterThan(5);
    expect(inkIn(c, p.x - 50, chart.yToPx(1.1) - 3, 45, 6), 'no tick label at 1.1').toBe(0);
    expect(inkIn(c, 0, p.y, 24, p.h), 'vertical y label').toBeGreaterThan(20);
    expect(inkIn(c, p.x, p.y + p.h + 30, p.w, c.height - p.y - p.h - 30), 'x label').toBeGreaterThan(20);
  });

  it('log scale spaces decades equally', async () => {
    const chart = lineChart([{ name: 'lr', y: [1, 10, 100, 1000] }], { logY: true });
    const d1 = chart.yToPx(1) - chart.yToPx(10),
      d2 = chart.yToPx(10) - chart.yToPx(100);
    expect(d1).toBeGreaterThan(20);
    expect(Math.abs(d1 - d2)).toBeLessThan(1e-9);
    const c = await render('loss_log', chart);
    expect(dist(rgb(c, chart.xToPx(1), chart.yToPx(10)), TAB10[0])).toBeLessThan(40);
    // Less than a decade still gets ticks, and the labels sit left of the axis.
    const narrow = lineChart([{ name: 'loss', y: [1.1, 1.3, 1.5] }], { logY: true });
    expect(narrow.plot.x).toBeGreaterThan(30);
    const n = await svgToRgba(narrow.svg);
    expect(inkIn(n, 0, narrow.plot.y, narrow.plot.x - 4, narrow.plot.h)).toBeGreaterThan(30);
  });

  it('ROC: curves and the chance diagonal where they belong, AUC in the legend', async () => {
    const chart = rocChart(
      [
        { name: 'polyp', fpr: [0, 0.2, 1], tpr: [0, 0.8, 1], auc: 0.88 },
        { name: 'ulcer', fpr: [0, 0.5, 1], tpr: [0, 0.6, 1], auc: 0.55 },
      ],
      { title: 'ROC' },
    );
    const c = await render('roc', chart),
      p = chart.plot;
    expect([c.width, c.height]).toEqual([640, 640]);
    expect(dist(rgb(c, chart.xToPx(0.1), chart.yToPx(0.4)), TAB10[0])).toBeLessThan(40);
    expect(dist(rgb(c, chart.xToPx(0.6), chart.yToPx(0.9)), TAB10[0])).toBeLessThan(40);
    expect(dist(rgb(c, chart.xToPx(0.25), chart.yToPx(0.3)), TAB10[1])).toBeLessThan(40);
    let grey = 0; // the dashed diagonal: grey pixels along y = x (outside the legend)
    for (let t = 0.05; t < 0.4; t += 0.01)
      if (dist(rgb(c, chart.xToPx(t), chart.yToPx(t)), [150, 150, 150]) < 50) grey++;
    expect(grey).toBeGreaterThan(10);
    expect(grey).toBeLessThan(35);
    // Legend in the bottom-right corner with text ("polyp (AUC 0.880)").
    expect(inkIn(c, p.x + p.w / 2, p.y + p.h - 60, p.w / 2 - 4, 56)).toBeGreaterThan(150);
  });

  it('confusion matrix: shading by row fraction, counts drawn in every cell, names on both axes', async () => {
    const names = ['Normal', 'Polyp', 'Worms'];
    const counts = [
      [90, 8, 2],
      [3, 15, 2],
      [0, 1, 4],
    ];
    const chart = confusionMatrixChart(counts, names);
    const c = await render('confusion', chart);
    const fill = (i: number, j: number) => {
      const r = chart.cell(i, j);
      return rgb(c, r.x + 2, r.y + 2);
    };
    const lum = (v: number[]) => v[0] + v[1] + v[2];
    expect(lum(fill(0, 0))).toBeLessThan(lum(fill(1, 1))); // 0.90 darker than 0.75
    expect(lum(fill(2, 2))).toBeLessThan(lum(fill(1, 1))); // 0.80 darker than 0.75
    expect(lum(fill(1, 1))).toBeLessThan(lum(fill(0, 1))); // 0.75 darker than 0.08
    expect(fill(2, 0)).toEqual([247, 251, 255]); // 0 is the palette's white end
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const r = chart.cell(i, j),
          bg = fill(i, j) as unknown as RGB;
        expect(inkIn(c, r.x + 1, r.y + 1, r.w - 2, r.h - 2, bg), `count in cell ${i},${j}`).toBeGreaterThan(8);
      }
    }
    // Text on dark cells is white: the brightest pixel of cell (0, 0) is near white.
    const r00 = chart.cell(0, 0);
    let brightest = 0;
    for (let y = r00.y; y < r00.y + r00.h; y++)
      for (let x = r00.x; x < r00.x + r00.w; x++) brightest = Math.max(brightest, lum(rgb(c, x, y)));
    expect(brightest).toBeGreaterThan(700);
    const p = chart.plot;
    expect(inkIn(c, 0, p.y, p.x - 4, p.h), 'row names').toBeGreaterThan(60);
    expect(inkIn(c, p.x, p.y + p.h + 4, p.w, 80), 'column names').toBeGreaterThan(60);
    expect(() => confusionMatrixChart([[1]], ['a', 'b'])).toThrow(/counts must be 2x2/);
  });

  it('writePng can leave the SVG out', async () => {
    const path = await writePng(`${OUT}/nosvg/chart.png`, lineChart([{ name: 'a', y: [1, 2] }]), { svg: false });
    expect(existsSync(path)).toBe(true);
    expect(existsSync(`${OUT}/nosvg/chart.svg`)).toBe(false);
  });
});
