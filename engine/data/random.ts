// Seeded host-side randomness for data pipelines (shuffles, augmentation parameters, synthetic
// data): mulberry32, a small 32-bit generator with a one-word state that checkpoints can save.
// Reference: Tommy Ettinger's mulberry32 (public domain).

export class HostRng {
  state: number;
  constructor(seed = 0) { this.state = seed >>> 0; }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo = 0, hi = 1): number { return lo + (hi - lo) * this.next(); }
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  bool(p = 0.5): boolean { return this.next() < p; }
  normal(mean = 0, std = 1): number {
    const u1 = Math.max(this.next(), 1e-12);
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * this.next());
  }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]; }
  /** A derived generator (independent stream) for a sub-task. */
  fork(): HostRng { return new HostRng(Math.floor(this.next() * 4294967296) ^ 0x9e3779b9); }
}
