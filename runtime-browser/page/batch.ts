// Batch mode: many images (several files, or a folder) through the loaded classifier or segmenter,
// one at a time, each row of the results table filled as its image finishes, and the table as a
// CSV download. Rows are computed exactly as a single image's result (preprocess.ts, infer.ts) and
// carry the out-of-domain check (domain.ts). A newer request stops a batch between two images.
import { preprocess } from './preprocess.ts';
import { classify, segment, type LoadedModel } from './infer.ts';
import { decode } from './load-io.ts';
import { domainCheck, type InputStats } from './domain.ts';
import { download } from './outputs.ts';

export interface BatchRow {
  file: string;
  width: number;
  height: number;
  ms: number;
  error: string | null;
  /** Classifier: top class and its probability. */
  top?: string;
  p?: number;
  /** Segmenter: share of model-input pixels above the threshold, the mean and the highest probability. */
  maskArea?: number;
  meanProb?: number;
  maxProb?: number;
  outOfDomain: string;
}

export interface BatchState {
  model: string;
  total: number;
  rows: BatchRow[];
  stopped: boolean;
}

const now = () => performance.now();

/** Runs `files` through `m`, calling `onRow` after each; stops early when `current()` turns false. */
export async function runBatch(
  m: LoadedModel,
  files: File[],
  threshold: number,
  stats: InputStats | undefined,
  current: () => boolean,
  onRow: (row: BatchRow) => void,
): Promise<boolean> {
  if (m.kind !== 'eva02' && m.kind !== 'polyp-pvt')
    throw new Error(`batch mode runs EVA-02 classifiers and Polyp-PVT segmenters; this is a ${m.kind} checkpoint`);
  for (const f of files) {
    if (!current()) return false;
    const t0 = now();
    const row: BatchRow = {
      file: f.webkitRelativePath || f.name,
      width: 0,
      height: 0,
      ms: 0,
      error: null,
      outOfDomain: '',
    };
    try {
      const { bitmap, pixels } = await decode(f);
      bitmap.close();
      row.width = pixels.width;
      row.height = pixels.height;
      const [h, w] = m.inputSize,
        { input } = preprocess(pixels, w, h, m.norm);
      let top: number | null = null;
      if (m.kind === 'eva02') {
        const r = await classify(m, input);
        let k = 0;
        for (let i = 1; i < r.probs.length; i++) if (r.probs[i] > r.probs[k]) k = i;
        row.top = m.classes[k];
        row.p = top = r.probs[k];
      } else {
        const r = await segment(m, input);
        let above = 0,
          sum = 0,
          max = 0;
        for (const p of r.prob) {
          if (p > threshold) above++;
          sum += p;
          max = Math.max(max, p);
        }
        row.maskArea = above / r.prob.length;
        row.meanProb = sum / r.prob.length;
        row.maxProb = max;
      }
      const d = domainCheck(pixels, stats, top);
      row.outOfDomain = [...d.far, ...(d.lowConfidence ? ['low confidence'] : [])].join('; ');
    } catch (e) {
      row.error = `cannot read or run this image (${e instanceof Error ? e.message : String(e)})`;
    }
    row.ms = Math.round(now() - t0);
    onRow(row);
  }
  return true;
}

const COLUMNS: [keyof BatchRow, string][] = [
  ['file', 'file'],
  ['width', 'width'],
  ['height', 'height'],
  ['top', 'top class'],
  ['p', 'probability'],
  ['maskArea', 'mask area'],
  ['meanProb', 'mean probability'],
  ['maxProb', 'max probability'],
  ['outOfDomain', 'out-of-domain hint'],
  ['error', 'error'],
  ['ms', 'ms'],
];

const cell = (v: unknown) =>
  typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v == null ? '' : String(v);
/** A fraction as a percentage with one decimal; empty when absent. */
const percent = (v: unknown) => (v === undefined ? '' : `${(100 * (v as number)).toFixed(1)}%`);

/** The table as CSV (RFC 4180 quoting), with the model it came from in the first column. */
export function batchCsv(b: BatchState): string {
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const cols = COLUMNS.filter(([k]) => b.rows.some((r) => r[k] !== undefined));
  return (
    [
      ['model', ...cols.map(([, t]) => t)].map(q).join(','),
      ...b.rows.map((r) => [b.model, ...cols.map(([k]) => cell(r[k]))].map(q).join(',')),
    ].join('\n') + '\n'
  );
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Draws the table and the progress line. */
export function renderBatch(b: BatchState): void {
  const cols = COLUMNS.filter(
    ([k]) => k !== 'width' && k !== 'height' && b.rows.some((r) => r[k] !== undefined && r[k] !== null && r[k] !== ''),
  );
  document.getElementById('batch')!.hidden = false;
  document.getElementById('batch-progress')!.textContent =
    `${b.rows.length} of ${b.total} ` +
    `images${b.stopped ? ' (stopped by a newer request)' : b.rows.length < b.total ? '…' : ''} · ` +
    `${b.model}`;
  document.getElementById('batch-table')!.innerHTML =
    `<thead><tr>${cols.map(([, t]) => `<th>${esc(t)}</th>`).join('')}</tr></thead><tbody>` +
    b.rows
      .map(
        (r) =>
          `<tr${r.error ? ' class="bad"' : ''}>` +
          cols.map(([k]) => `<td>${esc(k === 'maskArea' || k === 'p' ? percent(r[k]) : cell(r[k]))}</td>`).join('') +
          '</tr>',
      )
      .join('') +
    '</tbody>';
}

export function wireBatchCsv(get: () => BatchState | null): void {
  document.getElementById('batch-csv')!.onclick = () => {
    const b = get();
    if (b?.rows.length) download(new Blob([batchCsv(b)], { type: 'text/csv' }), 'batch-results.csv');
  };
}
