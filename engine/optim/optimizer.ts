// Optimizer base: parameter groups (PyTorch's param_groups) and one fused update kernel over all
// parameters at once.
//
// Layout: every parameter lives in a 256-byte-aligned window of a flat f32 "slab" (at most
// maxStorageBufferBindingSize each). Parameters re-homed by Module.flattenParameters() already
// do, and are updated in place with no copies; any other parameter gets a window in a slab the
// optimizer owns and is copied in before and out after each update (correct, but slower: call
// flattenParameters() first). For each slab the optimizer keeps a flat gradient buffer and its
// flat state buffers (Adam's m and v...) with the same layout, plus an owner table: one u32 per
// 64-element chunk naming the parameter it belongs to (windows start on chunk boundaries, so a
// chunk never straddles two parameters).
//
// A step: copy each .grad into the gradient slab (encoder copies, not dispatches), upload one row
// per parameter (the shader's `struct Hyper`: group lr, weight decay, betas, bias corrections for
// that parameter's own step count; `has_grad` 0 when it has no grad: skipped, as PyTorch skips
// grad-less parameters), then one dispatch per slab updates every parameter of every group. Each
// optimizer names its row fields (hyper() returns them by name); the first step lays them out by
// the shader's struct and fails naming the optimizer, shader and field if the two disagree. The rows change
// each step, the pipeline never does (no per-step shader or uniform specialisation).
// References: PyTorch torch/optim/optimizer.py (param groups, per-parameter state and step),
// Apex FusedAdam / multi-tensor apply (one kernel for all parameters), timm
// optim_factory.param_groups_weight_decay and param_groups_layer_decay, BEiT
// (Bao et al. 2021, github.com/microsoft/unilm beit/optim_factory.py: get_layer_id_for_vit).
import { Tensor, device, fmt, noGrad } from '../tensor.ts';
import { optimizerUpdate } from '../ops/fused-update.ts';
import { FLAT_CHUNK, copy_, flatHomeOf, packFlat } from '../flat.ts';
import { zeros } from '../ops/creation.ts';
import { rowLayout } from '../uniforms.ts';

export interface OptimizerOptions {
  lr: number;
  weightDecay: number;
}

/** A group as given: its params and any option overriding the defaults. */
export type ParamGroupSpec<O extends OptimizerOptions = OptimizerOptions> = Partial<O> & {
  params: readonly Tensor[];
  /** Multiplies the group's lr (layer-wise lr decay; timm's lr_scale). */
  lrScale?: number;
  name?: string;
};

/** A group as held: options resolved. The step uses lr * lrScale. */
export type ParamGroup<O extends OptimizerOptions = OptimizerOptions> = O & {
  params: Tensor[];
  lrScale: number;
  /** lr at construction; scaleLr(f) sets lr = initialLr * f. */
  initialLr: number;
  name?: string;
};

/** One parameter's row of the shader's `struct Hyper`, by field name (`has_grad` is the base's). */
export type HyperRow = Record<string, number>;

/** Where each named field goes in a row of struct Hyper (in f32 words). */
interface HyperLayout {
  offsets: [string, number][];
  hasGrad: number;
  words: number;
}

interface Entry {
  param: Tensor;
  group: number;
  slab: number;
  step: number;
  grad: Tensor;
  local: Tensor | null;
  states: Tensor[];
}
interface Slab {
  params: Tensor;
  grads: Tensor;
  states: Tensor[];
  owner: Tensor;
  size: number;
}

export interface OptimizerKernel {
  name: string;
  shader: string;
  states: readonly string[];
  params?: Record<string, string>;
}

export interface OptimizerState {
  stepCount: number;
  steps: number[];
  groups: Record<string, unknown>[];
  /** `${paramIndex}.${stateName}` -> a window of the optimizer's state (the caller disposes it). */
  state: Map<string, Tensor>;
}

export abstract class Optimizer<O extends OptimizerOptions> {
  readonly paramGroups: ParamGroup<O>[];
  /** step() calls so far. */
  stepCount = 0;
  private readonly kernel: OptimizerKernel;
  private readonly entries: Entry[] = [];
  private readonly slabs: Slab[] = [];
  private readonly owned: Tensor[] = [];
  private layout: HyperLayout | null = null;

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<O>[], defaults: O, kernel: OptimizerKernel) {
    this.kernel = kernel;
    const specs: ParamGroupSpec<O>[] =
      params.length > 0 && params[0] instanceof Tensor
        ? [{ params: params as readonly Tensor[] } as ParamGroupSpec<O>]
        : [...(params as readonly ParamGroupSpec<O>[])];
    this.paramGroups = specs.map((s) => {
      const g = { ...defaults, ...s, params: [...s.params], lrScale: s.lrScale ?? 1 } as ParamGroup<O>;
      g.initialLr = g.lr;
      return g;
    });
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (seen.has(p))
          throw new Error(`${kernel.name}: a parameter ${fmt(p.shape)} appears in more than one parameter group`);
        if (p.dtype !== 'f32')
          throw new Error(
            `${kernel.name}: parameter ${fmt(p.shape)} has dtype ${p.dtype}; only f32 parameters are supported`,
          );
        if (p.disposed) throw new Error(`${kernel.name}: parameter ${fmt(p.shape)} was already disposed`);
        seen.add(p);
      }
    }
    if (seen.size === 0) throw new Error(`${kernel.name}: got an empty parameter list`);
    noGrad(() => this.build());
  }

  /** A parameter's hyperparameters for its `step`-th update (1-based), named as the shader's struct Hyper. */
  protected abstract hyper(group: ParamGroup<O>, step: number): HyperRow;

  /** Field offsets of struct Hyper for the names hyper() writes, checked once. */
  private rowLayout(sample: HyperRow): HyperLayout {
    if (this.layout) return this.layout;
    const { name, shader, params } = this.kernel;
    const names = [...Object.keys(sample), 'has_grad'];
    const { offsets, words } = rowLayout(name, shader, device().source(shader, params), 'Hyper', names);
    this.layout = {
      offsets: [...offsets].filter(([n]) => n !== 'has_grad'),
      hasGrad: offsets.get('has_grad')!,
      words,
    };
    return this.layout;
  }

  private build(): void {
    const all = this.paramGroups.flatMap((g, gi) => g.params.map((p) => [p, gi] as const));
    const loose = all.filter(([p]) => !flatHomeOf(p)).map(([p]) => p);
    const pack = loose.length ? packFlat(loose, `${this.kernel.name}-params`, true) : null;
    if (pack) this.owned.push(...pack.slabs, ...pack.windows.map((w) => w.keep()));
    const looseIndex = new Map(loose.map((p, i) => [p, i]));
    const slabIndex = new Map<Tensor, number>();
    const homes = all.map(([p]) => {
      const h = flatHomeOf(p) ?? flatHomeOf(pack!.windows[looseIndex.get(p)!])!;
      if (!slabIndex.has(h.slab)) slabIndex.set(h.slab, slabIndex.size);
      return h;
    });
    const slabTensors = [...slabIndex.keys()];
    const owners = slabTensors.map((s) => new Uint32Array(s.size / FLAT_CHUNK).fill(0xffffffff));
    all.forEach(([p], k) => {
      const first = homes[k].offset / FLAT_CHUNK;
      owners[slabIndex.get(homes[k].slab)!].fill(k, first, first + Math.ceil(p.size / FLAT_CHUNK));
    });
    slabTensors.forEach((s, i) =>
      this.slabs.push({
        params: s,
        size: s.size,
        grads: zeros([s.size]).keep(),
        states: this.kernel.states.map(() => zeros([s.size]).keep()),
        owner: Tensor.fromArray(owners[i], [owners[i].length], 'u32', `${this.kernel.name}-owner`).keep(),
      }),
    );
    all.forEach(([p, gi], k) => {
      const h = homes[k];
      const si = slabIndex.get(h.slab)!;
      const win = (t: Tensor) => Tensor.window(t, h.offset * 4, p.shape, 'f32', this.kernel.name).keep();
      const li = looseIndex.get(p);
      this.entries.push({
        param: p,
        group: gi,
        slab: si,
        step: 0,
        grad: win(this.slabs[si].grads),
        local: li !== undefined ? pack!.windows[li] : null,
        states: this.slabs[si].states.map(win),
      });
    });
  }

  /** One update of every parameter that has a .grad. */
  step(): void {
    const name = this.kernel.name;
    noGrad(() => {
      for (const { param: p } of this.entries) {
        if (p.grad && (p.grad.size !== p.size || p.grad.dtype !== 'f32')) {
          throw new Error(
            `${name}: gradient ${fmt(p.grad.shape)} ${p.grad.dtype} does not match its parameter ${fmt(p.shape)} f32`,
          );
        }
      }
      let rows = new Float32Array(0);
      let active = 0;
      this.entries.forEach((e, k) => {
        const g = e.param.grad;
        if (!g) return;
        copy_(e.grad, g, name);
        if (e.local) copy_(e.local, e.param, name);
        e.step++;
        const values = this.hyper(this.paramGroups[e.group], e.step);
        const l = this.rowLayout(values);
        if (rows.length === 0) rows = new Float32Array(this.entries.length * l.words);
        const at = k * l.words;
        for (const [field, off] of l.offsets) rows[at + off] = values[field];
        rows[at + l.hasGrad] = 1;
        active++;
      });
      if (active > 0) {
        const hyper = Tensor.fromArray(rows, [rows.length], 'f32', `${name}-hyper`);
        for (const s of this.slabs) {
          optimizerUpdate(
            name,
            this.kernel.shader,
            this.kernel.params,
            s.owner,
            hyper,
            s.grads,
            s.params,
            s.states,
            s.size,
          );
        }
        hyper.dispose();
        for (const e of this.entries) if (e.local && e.param.grad) copy_(e.param, e.local, name);
      }
    });
    this.stepCount++;
  }

  /** Drops the gradients of every parameter (PyTorch zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const g of this.paramGroups)
      for (const p of g.params) {
        p.grad?.dispose();
        p.grad = null;
      }
  }

  /** Sets every group's lr (a schedule giving absolute lrs; lrScale still applies). */
  setLr(lr: number): void {
    for (const g of this.paramGroups) g.lr = lr;
  }

  /** Sets every group's lr to its initial lr times `factor` (LambdaLR-style schedules). */
  scaleLr(factor: number): void {
    for (const g of this.paramGroups) g.lr = g.initialLr * factor;
  }

  /** Step counts, group options and state tensors (windows, for checkpoints; the caller disposes them). */
  stateDict(): OptimizerState {
    const state = new Map<string, Tensor>();
    this.entries.forEach((e, k) =>
      e.states.forEach((s, i) => state.set(`${k}.${this.kernel.states[i]}`, s.view(s.shape, 'stateDict'))),
    );
    const groups = this.paramGroups.map(({ params: _p, ...rest }) => ({ ...rest }));
    return { stepCount: this.stepCount, steps: this.entries.map((e) => e.step), groups, state };
  }

  loadStateDict(sd: OptimizerState): void {
    if (sd.steps.length !== this.entries.length || sd.groups.length !== this.paramGroups.length) {
      throw new Error(
        `${this.kernel.name}.loadStateDict: state has ${sd.steps.length} parameters in ` +
          `${sd.groups.length} groups, the optimizer ${this.entries.length} in ` +
          `${this.paramGroups.length}`,
      );
    }
    noGrad(() =>
      this.entries.forEach((e, k) =>
        e.states.forEach((s, i) => {
          const key = `${k}.${this.kernel.states[i]}`;
          const src = sd.state.get(key);
          if (!src) throw new Error(`${this.kernel.name}.loadStateDict: missing state '${key}'`);
          if (src.size !== s.size)
            throw new Error(
              `${this.kernel.name}.loadStateDict: state '${key}' is ${fmt(src.shape)}, expected ${fmt(s.shape)}`,
            );
          copy_(s, src, 'loadStateDict');
        }),
      ),
    );
    this.entries.forEach((e, k) => {
      e.step = sd.steps[k];
    });
    sd.groups.forEach((g, i) => Object.assign(this.paramGroups[i], g));
    this.stepCount = sd.stepCount;
  }

  /** Frees the optimizer's buffers (not the parameters). */
  dispose(): void {
    for (const e of this.entries) {
      e.grad.dispose();
      for (const s of e.states) s.dispose();
    }
    for (const s of this.slabs) {
      s.grads.dispose();
      s.owner.dispose();
      for (const t of s.states) t.dispose();
    }
    for (const t of this.owned) t.dispose();
    this.entries.length = 0;
    this.slabs.length = 0;
    this.owned.length = 0;
  }
}

// ---- parameter-group helpers ----------------------------------------------------------------

/** timm's rule: no weight decay for 1-d parameters (norms, biases), biases, and listed names. */
export function skipsWeightDecay(name: string, p: Tensor, noWeightDecayList: readonly string[] = []): boolean {
  return p.ndim <= 1 || name.endsWith('.bias') || noWeightDecayList.includes(name);
}

/** Two groups as timm's param_groups_weight_decay: [no decay, decay]; frozen parameters are left out. */
export function paramGroupsWeightDecay(
  named: readonly [string, Tensor][],
  weightDecay: number,
  noWeightDecayList: readonly string[] = [],
): ParamGroupSpec[] {
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [n, p] of named) {
    if (!p.requiresGrad) continue;
    (skipsWeightDecay(n, p, noWeightDecayList) ? noDecay : decay).push(p);
  }
  return [
    { params: noDecay, weightDecay: 0, name: 'no_decay' },
    { params: decay, weightDecay, name: 'decay' },
  ].filter((g) => g.params.length > 0);
}

/**
 * BEiT/EVA layer ids for a ViT with `numLayers` blocks: cls_token, mask_token, pos_embed and
 * patch_embed.* are layer 0, blocks.i.* is layer i + 1, everything else (head, final norm) is
 * layer numLayers + 1.
 */
export function vitLayerId(numLayers: number): (name: string) => number {
  return (name) => {
    if (name === 'cls_token' || name === 'mask_token' || name === 'pos_embed' || name.startsWith('patch_embed'))
      return 0;
    const m = /^blocks\.(\d+)\./.exec(name);
    return m ? Number(m[1]) + 1 : numLayers + 1;
  };
}

export interface LayerDecayOptions {
  weightDecay?: number;
  noWeightDecayList?: readonly string[];
}

/**
 * Layer-wise lr decay groups (BEiT convention): layer id l gets lrScale = decay^(numLayers+1-l),
 * split into decay / no-decay groups by timm's rule. Groups come out ordered by first appearance.
 */
export function layerDecayGroups(
  named: readonly [string, Tensor][],
  numLayers: number,
  decay: number,
  layerIdOf: (name: string) => number = vitLayerId(numLayers),
  opts: LayerDecayOptions = {},
): ParamGroupSpec[] {
  const { weightDecay = 0, noWeightDecayList = [] } = opts;
  const groups = new Map<string, ParamGroupSpec & { params: Tensor[] }>();
  for (const [n, p] of named) {
    if (!p.requiresGrad) continue;
    const id = layerIdOf(n);
    if (!Number.isInteger(id) || id < 0 || id > numLayers + 1)
      throw new Error(`layerDecayGroups: layer id ${id} of '${n}' is outside [0, ${numLayers + 1}]`);
    const skip = skipsWeightDecay(n, p, noWeightDecayList);
    const key = `layer_${id}_${skip ? 'no_decay' : 'decay'}`;
    let g = groups.get(key);
    if (!g) {
      g = { params: [], name: key, weightDecay: skip ? 0 : weightDecay, lrScale: decay ** (numLayers + 1 - id) };
      groups.set(key, g);
    }
    g.params.push(p);
  }
  return [...groups.values()];
}
