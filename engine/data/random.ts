// Seeded host-side randomness for data pipelines (shuffles, samplers, augmentation parameters,
// synthetic data): xoshiro128** seeded through SplitMix32, with a four-word state that
// checkpoints save and restore. The helpers follow Python's `random` (uniform, randint), so
// reference scripts can reproduce a stream exactly.
// References: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (xoshiro128**);
// Steele et al., SplitMix.

export interface RngState {
  s: [number, number, number, number];
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

export class Rng {
  private s = new Uint32Array(4);

  constructor(seed = 0) {
    this.manualSeed(seed);
  }

  manualSeed(seed: number): this {
    if (!Number.isInteger(seed)) throw new Error(`Rng.manualSeed: seed must be an integer, got ${seed}`);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // the all-zero state is a fixed point
    return this;
  }

  /** The next 32-bit output, an integer in [0, 2^32). */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A double in [0, 1) with 53 random bits (two outputs). */
  random(): number {
    const a = this.nextU32() >>> 5,
      b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** An integer in [0, n), uniformly, for 1 <= n <= 2^32. */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296)
      throw new Error(`Rng.below: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n); // largest multiple of n that fits
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Python's random.uniform(a, b): a + (b - a) * random() (also when a > b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.random();
  }

  /** Python's random.randint(a, b): an integer in [a, b], both ends included. */
  randint(a: number, b: number): number {
    return a + this.below(b - a + 1);
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.random() < p;
  }

  /** A normal sample (Box-Muller). */
  normal(mean = 0, std = 1): number {
    const u1 = Math.max(this.random(), 1e-300);
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * this.random());
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)];
  }

  /** An independent generator for a sub-task, seeded from this stream. */
  fork(): Rng {
    return new Rng(this.nextU32());
  }

  getState(): RngState {
    return { s: [this.s[0], this.s[1], this.s[2], this.s[3]] };
  }

  setState(state: RngState): this {
    if (
      !state ||
      !Array.isArray(state.s) ||
      state.s.length !== 4 ||
      !state.s.every((v) => Number.isInteger(v) && v >= 0 && v < 4294967296)
    ) {
      throw new Error(`Rng.setState: expected {s: [four uint32]}, got ${JSON.stringify(state)}`);
    }
    this.s.set(state.s);
    return this;
  }
}
