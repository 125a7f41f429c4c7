// Raster and charts: PNGs written to /tmp/plots-test and probed pixel by pixel.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { decode } from 'fast-png';
import {
  Canvas,
  FONT,
  lineChart,
  rocChart,
  confusionMatrixChart,
  niceTicks,
  formatTick,
  TAB10,
  type RGB,
} from '../../runtime-node/plots.ts';
import { writePng } from '../../runtime-node/plots.ts';

const OUT = '/tmp/plots-test';
const WHITE: RGB = [255, 255, 255];
const rgb = (c: Canvas, x: number, y: number) => c.getPixel(Math.floor(x), Math.floor(y)).slice(0, 3);
const dist = (a: readonly number[], b: readonly number[]) => Math.max(...[0, 1, 2].map((i) => Math.abs(a[i] - b[i])));
/** Pixels in a rectangle whose colour is far from `bg`. */
function inkIn(c: Canvas, x0: number, y0: number, w: number, h: number, bg: RGB = WHITE, tol = 60): number {
  let n = 0;
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(c.height, y0 + h); y++) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(c.width, x0 + w); x++) if (dist(rgb(c, x, y), bg) > tol) n++;
  }
  return n;
}
/** Writes the PNG, reads it back and checks it holds exactly the canvas. */
function roundTrip(path: string, c: Canvas): void {
  writePng(path, c);
  const png = decode(readFileSync(path));
  expect([png.width, png.height, png.channels, png.depth]).toEqual([c.width, c.height, 4, 8]);
  expect(Buffer.from(png.data as Uint8Array).equals(Buffer.from(c.data))).toBe(true);
}

describe('Canvas', () => {
  it('text draws the font bitmap, upright and rotated', () => {
    const c = new Canvas(20, 20);
    c.text('A', 2, 3, [0, 0, 0]);
    c.text('F', 10, 18, [0, 0, 0], { vertical: true });
    const A = FONT.get('A')!,
      F = FONT.get('F')!;
    for (let row = 0; row < 7; row++) {
      for (let col = 0; col < 5; col++) {
        const on = (A[row] >> (4 - col)) & 1;
        expect(c.getPixel(2 + col, 3 + row)[0], `A row ${row} col ${col}`).toBe(on ? 0 : 255);
        // Rotated 90 degrees counter-clockwise: columns run up from y = 17, rows run right from x = 10.
        const onF = (F[row] >> (4 - col)) & 1;
        expect(c.getPixel(10 + row, 17 - col)[0], `F row ${row} col ${col}`).toBe(onF ? 0 : 255);
      }
    }
    expect(FONT.size).toBe(95);
  });

  it(
    'strokes: an axis-aligned line covers exactly its pixels, a diagonal one is anti-aliased, dashes ' + 'leave gaps',
    () => {
      const c = new Canvas(40, 40);
      c.line(2, 10.5, 30, 10.5, [255, 0, 0], 1);
      expect(rgb(c, 15, 10)).toEqual([255, 0, 0]);
      expect(rgb(c, 15, 9)).toEqual([255, 255, 255]);
      expect(rgb(c, 15, 11)).toEqual([255, 255, 255]);
      c.line(0, 20, 39, 39, [0, 0, 255], 1.5);
      let partial = 0;
      for (let y = 20; y < 40; y++)
        for (let x = 0; x < 40; x++) {
          const r = c.getPixel(x, y)[0];
          if (r > 0 && r < 255) partial++;
        }
      expect(partial).toBeGreaterThan(10);
      const d = new Canvas(60, 5);
      d.line(0, 2.5, 60, 2.5, [0, 0, 0], 1, [6, 4]);
      const row = Array.from({ length: 60 }, (_, x) => (d.getPixel(x, 2)[0] < 128 ? 1 : 0)).join('');
      expect(row.startsWith('111111' + '0000' + '111111')).toBe(true);
    },
  );

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
});

describe('charts', () => {
  it('loss curves: curve pixels where the data say, a gap at NaN, legend off the data, labelled axes', () => {
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
    const c = chart.canvas,
      p = chart.plot;
    roundTrip(`${OUT}/loss.png`, c);
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
    expect(inkIn(c, 0, 0, c.width, p.y - 12)).toBeGreaterThan(40);
    expect(inkIn(c, 0, 0, c.width / 2 - 40, p.y - 12)).toBe(0);
    expect(inkIn(c, c.width / 2 + 40, 0, c.width / 2 - 40, p.y - 12)).toBe(0);
    expect(inkIn(c, p.x - 50, chart.yToPx(1) - 8, 45, 16), 'tick label "1"').toBeGreaterThan(5);
    expect(inkIn(c, 0, p.y, 20, p.h), 'vertical y label').toBeGreaterThan(20);
    expect(inkIn(c, p.x, p.y + p.h + 30, p.w, c.height - p.y - p.h - 30), 'x label').toBeGreaterThan(20);
  });

  it('log scale spaces decades equally', () => {
    const chart = lineChart([{ name: 'lr', y: [1, 10, 100, 1000] }], { logY: true });
    const d1 = chart.yToPx(1) - chart.yToPx(10),
      d2 = chart.yToPx(10) - chart.yToPx(100);
    expect(d1).toBeGreaterThan(20);
    expect(Math.abs(d1 - d2)).toBeLessThan(1e-9);
    roundTrip(`${OUT}/loss_log.png`, chart.canvas);
    // Less than a decade still gets ticks, and the labels sit left of the axis.
    const narrow = lineChart([{ name: 'loss', y: [1.1, 1.3, 1.5] }], { logY: true });
    expect(narrow.plot.x).toBeGreaterThan(30);
    expect(inkIn(narrow.canvas, 0, narrow.plot.y, narrow.plot.x - 4, narrow.plot.h)).toBeGreaterThan(30);
  });

  it('ROC: curves and the chance diagonal where they belong, AUC in the legend', () => {
    const chart = rocChart(
      [
        { name: 'polyp', fpr: [0, 0.2, 1], tpr: [0, 0.8, 1], auc: 0.88 },
        { name: 'ulcer', fpr: [0, 0.5, 1], tpr: [0, 0.6, 1], auc: 0.55 },
      ],
      { title: 'ROC' },
    );
    const c = chart.canvas,
      p = chart.plot;
    roundTrip(`${OUT}/roc.png`, c);
    expect([c.width, c.height]).toEqual([640, 640]);
    expect(dist(rgb(c, chart.xToPx(0.1), chart.yToPx(0.4)), TAB10[0])).toBeLessThan(40);
    expect(dist(rgb(c, chart.xToPx(0.6), chart.yToPx(0.9)), TAB10[0])).toBeLessThan(40);
    expect(dist(rgb(c, chart.xToPx(0.25), chart.yToPx(0.3)), TAB10[1])).toBeLessThan(40);
    let grey = 0; // the dashed diagonal: grey pixels along y = x (outside the legend)
    for (let t = 0.05; t < 0.4; t += 0.01)
      if (dist(rgb(c, chart.xToPx(t), chart.yToPx(t)), [150, 150, 150]) < 40) grey++;
    expect(grey).toBeGreaterThan(10);
    expect(grey).toBeLessThan(35);
    // Legend in the bottom-right corner with text ("polyp (AUC 0.880)").
    expect(inkIn(c, p.x + p.w / 2, p.y + p.h - 60, p.w / 2 - 4, 56)).toBeGreaterThan(150);
  });

  it('confusion matrix: shading by row fraction, counts drawn in every cell, names on both axes', () => {
    const names = ['Normal', 'Polyp', 'Worms'];
    const counts = [
      [90, 8, 2],
      [3, 15, 2],
      [0, 1, 4],
    ];
    const chart = confusionMatrixChart(counts, names);
    const c = chart.canvas;
    roundTrip(`${OUT}/confusion.png`, c);
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
});
