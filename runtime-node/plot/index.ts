// Charts as SVG documents (pure strings); ../plots.ts renders them to PNG with sharp.
export { textWidth, escapeXml, FONT_FAMILY, type RGB } from './svg.ts';
export {
  lineChart,
  movingAverage,
  rocChart,
  confusionMatrixChart,
  niceTicks,
  formatTick,
  TAB10,
  type Chart,
  type ConfusionChart,
  type Figure,
  type Rect,
  type Series,
  type RocSeries,
  type LineChartOptions,
  type LegendPlace,
} from './charts.ts';
