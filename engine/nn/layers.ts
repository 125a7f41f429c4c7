// Basic layers with PyTorch's parameter names, shapes and default initialisation
// (torch/nn/modules/linear.py, normalization.py, sparse.py, dropout.py, container.py):
// Linear: weight [out, in] and bias [out] ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with
// a = sqrt(5) for the weight); LayerNorm: weight ones, bias zeros; Embedding: weight ~ N(0, 1).
// Every layer computes `forward(x)`.
import { Tensor, fmt } from '../tensor.ts';
import { linear } from '../ops/index.ts';
import { defaultGenerator, type Generator } from '../ops/creation.ts';
import { layerNorm } from '../ops/layer-norm.ts';
import { embedding } from '../ops/indexing.ts';
import { dropout } from '../ops/dropout.ts';
import { Module, parameter } from './module.ts';
import { kaimingUniform, uniform, normal, ones, zeros } from './init.ts';

/** A module mapping one tensor to one tensor (what Sequential chains). */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
}

export interface LinearOptions {
  bias?: boolean;
  generator?: Generator;
}

export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    const { bias = true, generator = defaultGenerator } = opts;
    this.weight = parameter(kaimingUniform([outFeatures, inFeatures], { a: Math.sqrt(5), generator }));
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.bias = bias ? parameter(uniform([outFeatures], -bound, bound, { generator })) : null;
  }

  forward(x: Tensor): Tensor {
    if (x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new Error(
        `Linear: input ${fmt(x.shape)} has last dim ${x.shape[x.ndim - 1]}, expected in_features ${this.inFeatures}`,
      );
    }
    return linear(x, this.weight, this.bias); // [..., in] -> [..., out], the bias fused into the matmul
  }
}

export interface LayerNormOptions {
  eps?: number;
  elementwiseAffine?: boolean;
  bias?: boolean;
}

export class LayerNorm extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly normalizedShape: number[];
  readonly eps: number;
  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    const { eps = 1e-5, elementwiseAffine = true, bias = true } = opts;
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.eps = eps;
    this.weight = elementwiseAffine ? parameter(ones(this.normalizedShape)) : null;
    this.bias = elementwiseAffine && bias ? parameter(zeros(this.normalizedShape)) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight ?? undefined, this.bias ?? undefined, this.eps);
  }
}

export class Embedding extends Module {
  weight: Tensor;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: { generator?: Generator } = {},
  ) {
    super();
    this.weight = parameter(normal([numEmbeddings, embeddingDim], 0, 1, opts));
  }

  /** ids: i32 of any shape -> [...ids.shape, embeddingDim]. */
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}

export class Dropout extends Module {
  constructor(
    readonly p = 0.5,
    readonly generator: Generator = defaultGenerator,
  ) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout: probability has to be between 0 and 1, but got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.generator);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Modules held as children `0`, `1`, ... (keys `0.weight`, ...), without a forward of its own. */
export class ModuleList<M extends Module = Module> extends Module {
  constructor(modules: readonly M[] = []) {
    super();
    for (const m of modules) this.push(m);
  }

  get length(): number {
    return this.namedChildren().length;
  }

  at(i: number): M {
    const n = this.length;
    const m = (this as unknown as Record<string, M>)[String(i < 0 ? i + n : i)];
    if (!(m instanceof Module)) throw new Error(`ModuleList: index ${i} is out of range for ${n} modules`);
    return m;
  }

  push(m: M): this {
    (this as unknown as Record<string, M>)[String(this.length)] = m;
    return this;
  }

  *[Symbol.iterator](): Iterator<M> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }
}

/** Chains layers: forward(x) = layers[n-1](...layers[0](x)). */
export class Sequential extends ModuleList<Layer> {
  constructor(...layers: Layer[]) {
    super(layers);
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this) y = m.forward(y);
    return y;
  }
}
