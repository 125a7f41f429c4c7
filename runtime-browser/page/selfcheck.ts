// A fixed computation the page runs on load and the Node test runs too: a two-layer MLP with
// softmax on seeded inputs. Equal outputs in Node and in the browser show that the same engine
// and the same kernels run in both.
import { tensor, matmul, add, gelu, sum, exp, max, sub, div, tidy } from '../../engine/index.ts';
import { Rng } from '../../engine/data/index.ts';

export async function selfCheck(): Promise<number[]> {
  const rng = new Rng(42);
  const r = (n: number) => Array.from({ length: n }, () => rng.uniform(-1, 1));
  const y = tidy(() => {
    const x = tensor(r(7 * 33), [7, 33]);
    const w1 = tensor(r(33 * 65), [33, 65]);
    const b1 = tensor(r(65), [65]);
    const w2 = tensor(r(65 * 10), [65, 10]);
    const h = gelu(add(matmul(x, w1), b1));
    const logits = matmul(h, w2);
    const e = exp(sub(logits, max(logits, -1, true)));
    return div(e, sum(e, -1, true));
  });
  const out = Array.from(await y.data());
  y.dispose();
  return out;
}
