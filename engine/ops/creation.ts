// Tensor creation and the seeded on-device random generator. A draw of n values consumes n
// counters (2n for normal) of the generator, so the same seed and the same sequence of draws
// reproduce bit for bit, and the state ({seed, counter}) is saved in checkpoints.
import { Tensor, type DType, type Shape } from '../tensor.ts';
import { Params, grid, launch } from './kernel.ts';
import { fill } from './movement.ts';

export function tensor(data: ArrayLike<number>, shape: Shape, dtype: DType = 'f32'): Tensor {
  return Tensor.fromArray(data, shape, dtype);
}
export function scalar(v: number, dtype: DType = 'f32'): Tensor {
  return Tensor.fromArray([v], [], dtype, 'scalar');
}
export function zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
  return fill(shape, 0, dtype, 'zeros');
}
export function ones(shape: Shape, dtype: DType = 'f32'): Tensor {
  return fill(shape, 1, dtype, 'ones');
}
export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  return fill(shape, value, dtype, 'full');
}
export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, t.dtype);
}
export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, t.dtype);
}

export function arange(n: number, dtype: DType = 'f32'): Tensor {
  return Tensor.fromArray(
    Array.from({ length: n }, (_, i) => i),
    [n],
    dtype,
    'arange',
  );
}

export interface GeneratorState {
  seed: number;
  counter: number;
}

export class Generator {
  seed: number;
  counter = 0;
  constructor(seed = 0) {
    this.seed = seed >>> 0;
  }
  manualSeed(seed: number): this {
    this.seed = seed >>> 0;
    this.counter = 0;
    return this;
  }
  getState(): GeneratorState {
    return { seed: this.seed, counter: this.counter };
  }
  setState(s: GeneratorState): void {
    this.seed = s.seed >>> 0;
    this.counter = s.counter >>> 0;
  }

  private draw(op: string, shape: Shape, mode: number, p0: number, p1: number): Tensor {
    const out = Tensor.empty(shape, 'f32', op);
    const n = out.size;
    if (n === 0) return out;
    launch({
      op,
      shader: 'random',
      inputs: [],
      outputs: [out],
      uniforms: new Params().u32({ n, seed: this.seed, counter: this.counter, mode }).f32({ p0, p1 }),
      workgroups: grid(n),
    });
    this.counter = (this.counter + (mode === 1 ? 2 * n : n)) >>> 0;
    return out;
  }

  uniform(shape: Shape, low = 0, high = 1): Tensor {
    return this.draw('rand', shape, 0, low, high);
  }
  normal(shape: Shape, mean = 0, std = 1): Tensor {
    return this.draw('randn', shape, 1, mean, std);
  }
  bernoulli(shape: Shape, p: number): Tensor {
    return this.draw('bernoulli', shape, 2, p, 0);
  }
}

/** The default generator (seed 0 until `manualSeed`). */
export const defaultGenerator = new Generator(0);
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}
export function rand(shape: Shape, low = 0, high = 1, g = defaultGenerator): Tensor {
  return g.uniform(shape, low, high);
}
export function randn(shape: Shape, mean = 0, std = 1, g = defaultGenerator): Tensor {
  return g.normal(shape, mean, std);
}
export function bernoulli(shape: Shape, p: number, g = defaultGenerator): Tensor {
  return g.bernoulli(shape, p);
}
