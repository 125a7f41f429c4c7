// A progress bar with rate and ETA for long work. On a terminal it redraws one line; elsewhere
// (CI logs, files) it prints a plain line at most every `logEveryMs` and at the end.
export interface ProgressOptions {
  total: number;
  label: string;
  unit?: string;
  logEveryMs?: number;
  stream?: NodeJS.WriteStream;
}

export class Progress {
  private readonly start = performance.now();
  private lastLog = 0;
  private done = 0;
  private info = '';
  private readonly tty: boolean;
  private readonly stream: NodeJS.WriteStream;

  constructor(private readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
  }

  /** Advances by `n` and sets the trailing text (e.g. `loss 0.412`). */
  tick(n = 1, info?: string): void {
    this.done += n;
    if (info !== undefined) this.info = info;
    const now = performance.now();
    const final = this.done >= this.o.total;
    if (this.tty || final || now - this.lastLog >= (this.o.logEveryMs ?? 10_000)) {
      this.lastLog = now;
      this.draw(final);
    }
  }

  /** Sets the position (e.g. after resuming) without counting it towards the rate. */
  set(done: number): void {
    this.done = done;
    this.resumedAt = done;
  }
  private resumedAt = 0;

  private draw(final: boolean): void {
    const { total, label, unit = 'it' } = this.o;
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = (this.done - this.resumedAt) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (total - this.done) / rate : Infinity;
    const frac = total > 0 ? Math.min(1, this.done / total) : 1;
    const width = 24;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '·');
    const line =
      `${label} ${bar} ${this.done}/${total} ${(frac * 100).toFixed(0)}% ` +
      `${rate >= 1 ? rate.toFixed(1) + ` ${unit}/s` : (1 / Math.max(rate, 1e-9)).toFixed(1) + ` s/${unit}`} ` +
      `elapsed ${clock(elapsed)} eta ${clock(eta)}${this.info ? '  ' + this.info : ''}`;
    if (this.tty) this.stream.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else this.stream.write(line + '\n');
  }
}

export function clock(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = Math.floor(s % 60);
  return h > 0
    ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`
    : `${m}:${String(sec).padStart(2, '0')}`;
}
