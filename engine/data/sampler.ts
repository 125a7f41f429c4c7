// Data order: a seeded CPU generator, Fisher-Yates shuffling, PyTorch-style samplers
// (sequential, random permutation, weighted with replacement) and a resumable batch order.
//
// Generator: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c;
// 128-bit state, period 2^128 - 1). A 32-bit seed is expanded into the four state words by
// SplitMix32: a Weyl sequence (step 0x9e3779b9) passed through MurmurHash3's fmix32 finalizer.
// random() builds a 53-bit double from two outputs as Mersenne Twister's genrand_res53 does;
// below(n) rejects the top partial range so every index is equally likely (no modulo bias).
// test/golden/gen_mim_mask.py ports this generator to Python bit for bit.
//
// Samplers follow torch.utils.data (RandomSampler, WeightedRandomSampler with replacement,
// BatchSampler's drop_last). Class imbalance in Work 1 is handled by a WeightedRandomSampler
// with per-sample weight 1 / count(class of the sample), num_samples = len(train), drop_last
// ([R1] src/data/datamodule.py::calculate_inverse_weights): `inverseFrequencyWeights` below.
//
// Resuming: `DataOrder.stateDict()` stores the generator state taken at the start of the current
// epoch plus the epoch and the batch cursor; loading regenerates that epoch's order from it and
// continues exactly where the saved run would have.
import { Rng, type RngState } from './random.ts';

export { Rng, type RngState };

/** Shuffles `a` in place (Durstenfeld's Fisher-Yates, from the end) and returns it. */
export function shuffle<T extends { length: number; [i: number]: unknown }>(a: T, rng: Rng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** A random permutation of 0..n-1. */
export function randperm(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffle(p, rng);
}

/** Splits an index list into batches (views); the last partial batch is dropped if dropLast. */
export function batches(indices: Int32Array, batchSize: number, dropLast = false): Int32Array[] {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`batches: batchSize must be a positive integer, got ${batchSize}`);
  const out: Int32Array[] = [];
  const end = dropLast ? indices.length - (indices.length % batchSize) : indices.length;
  for (let i = 0; i < end; i += batchSize) out.push(indices.subarray(i, Math.min(i + batchSize, end)));
  return out;
}

/** Per-sample weights 1 / count(class of the sample) ([R1] calculate_inverse_weights). */
export function inverseFrequencyWeights(labels: ArrayLike<number>): Float64Array {
  const counts = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) counts.set(labels[i], (counts.get(labels[i]) ?? 0) + 1);
  const w = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i++) w[i] = 1 / counts.get(labels[i])!;
  return w;
}

/** One epoch of indices per call; all randomness comes from the generator passed in. */
export interface Sampler {
  /** Indices per epoch. */
  readonly numSamples: number;
  sample(rng: Rng): Int32Array;
}

/** 0, 1, ..., n-1 every epoch (torch SequentialSampler). */
export class SequentialSampler implements Sampler {
  constructor(readonly numSamples: number) {}
  sample(): Int32Array {
    const p = new Int32Array(this.numSamples);
    for (let i = 0; i < p.length; i++) p[i] = i;
    return p;
  }
}

/** A fresh random permutation of 0..n-1 every epoch (torch RandomSampler, no replacement). */
export class RandomSampler implements Sampler {
  constructor(readonly numSamples: number) {}
  sample(rng: Rng): Int32Array {
    return randperm(this.numSamples, rng);
  }
}

/**
 * torch WeightedRandomSampler(weights, num_samples, replacement=True): each draw picks index i
 * with probability weights[i] / sum(weights), independently (inverse-CDF over the cumulative
 * weights, binary search). Only sampling with replacement is provided, as Work 1 uses.
 */
export class WeightedRandomSampler implements Sampler {
  private readonly cumulative: Float64Array;
  readonly numSamples: number;

  constructor(weights: ArrayLike<number>, numSamples?: number) {
    if (weights.length === 0) throw new Error('WeightedRandomSampler: weights are empty');
    this.cumulative = new Float64Array(weights.length);
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i];
      if (!(w >= 0) || !Number.isFinite(w))
        throw new Error(`WeightedRandomSampler: weights[${i}] = ${w}; weights must be finite and >= 0`);
      total += w;
      this.cumulative[i] = total;
    }
    if (!(total > 0)) throw new Error('WeightedRandomSampler: the weights sum to 0');
    this.numSamples = numSamples ?? weights.length;
    if (!Number.isInteger(this.numSamples) || this.numSamples < 0)
      throw new Error(`WeightedRandomSampler: numSamples must be a non-negative integer, got ${numSamples}`);
  }

  sample(rng: Rng): Int32Array {
    const cum = this.cumulative,
      n = cum.length,
      total = cum[n - 1];
    const out = new Int32Array(this.numSamples);
    for (let k = 0; k < out.length; k++) {
      const u = rng.random() * total;
      let lo = 0,
        hi = n - 1; // first index with cum > u: zero-weight entries are never picked
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cum[mid] > u) hi = mid;
        else lo = mid + 1;
      }
      out[k] = lo;
    }
    return out;
  }
}

export interface DataOrderState {
  seed: number;
  epoch: number;
  /** Batches already handed out in `epoch`. */
  batch: number;
  /** Generator state at the start of `epoch`, before its indices were drawn. */
  epochRng: RngState;
  numSamples: number;
  batchSize: number;
  dropLast: boolean;
}

export interface Batch {
  epoch: number;
  step: number;
  indices: Int32Array;
}

/**
 * Endless batches over epochs: the sampler draws each epoch's indices from one seeded generator;
 * `step` counts batches over all epochs. stateDict()/loadStateDict() resume mid-epoch exactly.
 */
export class DataOrder {
  readonly batchSize: number;
  readonly dropLast: boolean;
  readonly seed: number;
  private rng: Rng;
  private epochRng!: RngState;
  private order: Int32Array[] = [];
  private _epoch = -1;
  private cursor = 0;
  private _step = 0;

  constructor(
    readonly sampler: Sampler,
    opts: { batchSize: number; dropLast?: boolean; seed?: number },
  ) {
    this.batchSize = opts.batchSize;
    this.dropLast = opts.dropLast ?? false;
    this.seed = opts.seed ?? 0;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new Error(`DataOrder: batchSize must be a positive integer, got ${opts.batchSize}`);
    if (this.batchesPerEpoch === 0)
      throw new Error(`DataOrder: ${sampler.numSamples} samples make no batch of ${this.batchSize} with dropLast`);
    this.rng = new Rng(this.seed);
  }

  get batchesPerEpoch(): number {
    const n = this.sampler.numSamples;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch of the last batch handed out (-1 before the first). */
  get epoch(): number {
    return this._epoch;
  }
  /** Batches handed out so far, over all epochs. */
  get step(): number {
    return this._step;
  }

  private startEpoch(): void {
    this._epoch++;
    this.epochRng = this.rng.getState();
    this.order = batches(this.sampler.sample(this.rng), this.batchSize, this.dropLast);
    this.cursor = 0;
  }

  nextBatch(): Batch {
    if (this._epoch < 0 || this.cursor >= this.order.length) this.startEpoch();
    const indices = this.order[this.cursor++];
    return { epoch: this._epoch, step: this._step++, indices };
  }

  /** The batches left in the current epoch (all of the next epoch at an epoch boundary). */
  *epochBatches(): Generator<Batch> {
    if (this._epoch < 0 || this.cursor >= this.order.length) this.startEpoch();
    while (this.cursor < this.order.length) yield this.nextBatch();
  }

  stateDict(): DataOrderState {
    const started = this._epoch >= 0;
    return {
      seed: this.seed,
      epoch: this._epoch,
      batch: this.cursor,
      epochRng: started ? this.epochRng : this.rng.getState(),
      numSamples: this.sampler.numSamples,
      batchSize: this.batchSize,
      dropLast: this.dropLast,
    };
  }

  loadStateDict(s: DataOrderState): void {
    if (s.numSamples !== this.sampler.numSamples || s.batchSize !== this.batchSize || s.dropLast !== this.dropLast) {
      throw new Error(
        `DataOrder.loadStateDict: saved numSamples=${s.numSamples}, batchSize=${s.batchSize}, ` +
          `dropLast=${s.dropLast} but this order has numSamples=${this.sampler.numSamples}, ` +
          `batchSize=${this.batchSize}, dropLast=${this.dropLast}`,
      );
    }
    this.rng.setState(s.epochRng);
    this._epoch = s.epoch;
    if (s.epoch < 0) {
      this.order = [];
      this.cursor = 0;
      this._step = 0;
      return;
    }
    this._epoch = s.epoch - 1;
    this.startEpoch(); // regenerates the saved epoch's order from its starting generator state
    if (!Number.isInteger(s.batch) || s.batch < 0 || s.batch > this.order.length)
      throw new Error(`DataOrder.loadStateDict: batch ${s.batch} is outside [0, ${this.order.length}]`);
    this.cursor = s.batch;
    this._step = s.epoch * this.batchesPerEpoch + s.batch;
  }
}
