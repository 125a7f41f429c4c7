// Named random streams for the synthetic data generators, on the project's host generator
// (engine/data/random.ts). A stream's seed is a hash of the dataset seed and a path of labels
// (`rng(seed, 'polyp-set', 17)`), so item 17 renders the same whatever was drawn before it,
// items can be made in any order, and removing one layer of a scene (its polyps) leaves every
// other layer's draws untouched. Seeds are mixed with MurmurHash3's 32-bit finaliser (public
// domain). Also two draws the generators need beyond Rng's: log-uniform and weighted choice.
import { Rng } from './random.ts';

export { Rng };

/** MurmurHash3's fmix32: a bijective avalanche on 32 bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 32-bit seed from a seed and a path of labels (numbers or strings). */
export function hashSeed(seed: number, ...labels: (number | string)[]): number {
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9);
  for (const l of labels) {
    if (typeof l === 'number') h = fmix32(h ^ fmix32((l >>> 0) + 0x7f4a7c15));
    else for (let i = 0; i < l.length; i++) h = fmix32(h ^ (l.charCodeAt(i) + 0x632be5ab));
    h = fmix32(h + 0x165667b1);
  }
  return h;
}

/** The generator of the stream named by (seed, labels). */
export function rng(seed: number, ...labels: (number | string)[]): Rng {
  return new Rng(hashSeed(seed, ...labels));
}

/** Log-uniform in [lo, hi] (lo > 0): sizes spread evenly over scales. */
export function logUniform(r: Rng, lo: number, hi: number): number {
  return lo * Math.exp(Math.log(hi / lo) * r.random());
}

/** An index drawn with probability proportional to weights[i]. */
export function weighted(r: Rng, weights: readonly number[]): number {
  let total = 0;
  for (const w of weights) total += w;
  let x = r.random() * total;
  for (let i = 0; i < weights.length; i++) {
    x -= weights[i];
    if (x < 0) return i;
  }
  return weights.length - 1;
}
