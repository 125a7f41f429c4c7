// Inverted dropout (Srivastava et al. 2014, "Dropout: A Simple Way to Prevent Neural Networks
// from Overfitting"; PyTorch's torch.nn.functional.dropout): at train time each element is kept
// with probability 1 - p and scaled by 1 / (1 - p), so eval is the identity. The keep mask comes
// from the seeded on-device generator (creation.ts), so a seed reproduces it bit for bit; the
// backward is mul's, through the same scaled mask.
import { Tensor, noGrad, fmt } from '../tensor.ts';
import { mul } from './math.ts';
import { defaultGenerator, type Generator } from './creation.ts';

export function dropout(x: Tensor, p: number, training: boolean, generator: Generator = defaultGenerator): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: probability p must lie in [0, 1], got ${p}`);
  if (x.dtype !== 'f32') throw new Error(`dropout: input ${fmt(x.shape)} has dtype ${x.dtype}, expected f32`);
  if (!training || p === 0) return x;
  if (p === 1) return mul(x, 0);
  const mask = noGrad(() => {
    const keep = generator.bernoulli(x.shape, 1 - p);
    const scaled = mul(keep, 1 / (1 - p));
    keep.dispose();
    return scaled;
  });
  return mul(x, mask);
}
