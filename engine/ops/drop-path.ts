// Stochastic depth (Huang et al. 2016, arXiv 1603.09382) as timm's drop_path
// (timm/layers/drop.py): in training each sample (dim 0) keeps its residual branch with
// probability 1 - p and a kept branch is scaled by 1 / (1 - p); identity in eval or when p = 0.
import { Tensor, noGrad } from '../tensor.ts';
import { mul } from './math.ts';
import { bernoulli, defaultGenerator, type Generator } from './creation.ts';

export function dropPath(x: Tensor, p: number, training: boolean, generator: Generator = defaultGenerator): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`drop_path: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  const keep = 1 - p;
  const mask = noGrad(() => {
    const m = bernoulli([x.shape[0], ...x.shape.slice(1).map(() => 1)], keep, generator); // [B, 1, ..., 1]
    if (keep === 0) return m; // timm leaves an all-zero mask unscaled
    const scaled = mul(m, 1 / keep);
    m.dispose();
    return scaled;
  });
  return mul(x, mask); // the mask lives on in the graph (mul's backward reads it)
}
