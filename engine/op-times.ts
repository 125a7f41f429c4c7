// GPU time per op, summed from the timestamp queries the device writes around each kernel at
// DEBUG>=1 (device.ts), for `device().timingReport()`.
export class OpTimes {
  private readonly byOp = new Map<string, { n: number; ns: number }>();

  add(op: string, ns: number): void {
    const s = this.byOp.get(op) ?? { n: 0, ns: 0 };
    s.n++;
    s.ns += ns;
    this.byOp.set(op, s);
  }

  /** One line per op, most expensive first: calls x mean = total. */
  report(): string {
    return [...this.byOp]
      .sort((a, b) => b[1].ns - a[1].ns)
      .map(
        ([op, s]) =>
          `${op.padEnd(28)} ${String(s.n).padStart(6)} x ` +
          `${(s.ns / s.n / 1e3).toFixed(1).padStart(9)} us = ${(s.ns / 1e6).toFixed(2)} ms`,
      )
      .join('\n');
  }
}
