// Plots drawn into an RGBA raster (pure); ../plots.ts encodes and writes them.
export { Canvas, textWidth, FONT, GLYPH_W, GLYPH_H, ADVANCE, type RGB, type TextOptions } from './raster.ts';
export {
  lineChart,
  rocChart,
  confusionMatrixChart,
  niceTicks,
  formatTick,
  TAB10,
  type Chart,
  type ConfusionChart,
  type Rect,
  type Series,
  type RocSeries,
  type LineChartOptions,
  type LegendPlace,
} from './charts.ts';
