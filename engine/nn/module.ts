// Module: the base of every layer and model, timm/candle style: a module's field paths ARE its
// PyTorch state_dict keys. Parameters and submodules are discovered from the instance's own
// fields in insertion order (PyTorch's registration order): `this.fc1 = new Linear(...)` yields
// `fc1.weight`, `fc1.bias`; ModuleList/Sequential children are fields `0`, `1`, .... A tensor
// field is a parameter only if it was made by `parameter()`; buffers (running statistics) are
// registered by name with `registerBuffer()`; any other tensor field is a constant, not state.
// Order of state_dict keys as in PyTorch's Module._save_to_state_dict: own parameters, own
// buffers, then each child's keys, depth first.
//
// Flat parameter storage: `flattenParameters()` re-homes every f32 parameter into 256-byte-aligned
// windows of a few flat buffers (Tensor.window) and points the module fields at the windows, so
// an optimizer updates all of them with one dispatch per flat buffer (the layout: ../flat.ts).
// References: PyTorch torch/nn/modules/module.py (state_dict, load_state_dict, named_parameters),
// timm (field paths as keys).
import { Tensor, fmt, noGrad } from '../tensor.ts';
import { cast } from '../ops/math.ts';
import { sameShape } from '../shape.ts';
import { copy_, flatHomeOf, packFlat } from '../flat.ts';

// ---- parameters ----------------------------------------------------------------------------

const PARAMS = new WeakSet<Tensor>();

/** Marks `t` as a parameter: it requires grad (unless frozen) and survives tidy(). */
export function parameter(t: Tensor, requiresGrad = true): Tensor {
  if (t.dtype !== 'f32' && t.dtype !== 'f16')
    throw new Error(`parameter: parameters must be float tensors, got ${fmt(t.shape)} ${t.dtype}`);
  PARAMS.add(t);
  t.requiresGrad = requiresGrad;
  return t.keep();
}

export function isParameter(t: unknown): t is Tensor {
  return t instanceof Tensor && PARAMS.has(t);
}

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

type Fields = Record<string, unknown>;

// ---- Module --------------------------------------------------------------------------------

export class Module {
  /** Train mode (dropout active, batch statistics); `eval()` clears it in the whole tree. */
  training = true;
  // Private (#) fields are not enumerable, so they never show up as state.
  readonly #buffers = new Map<string, boolean>();
  #flat: Tensor[] = [];

  /** Registers `t` as buffer `name` (a field of that name): in stateDict (if persistent), not a parameter. */
  registerBuffer(name: string, t: Tensor | null, persistent = true): void {
    if (name.includes('.') || name === '') throw new Error(`registerBuffer: invalid buffer name '${name}'`);
    (this as unknown as Fields)[name] = t?.keep() ?? null;
    this.#buffers.set(name, persistent);
  }

  // ---- discovery ---------------------------------------------------------------------------

  private fields(): [string, unknown][] {
    const out: [string, unknown][] = [];
    for (const [k, v] of Object.entries(this)) {
      // Modules hidden in a plain array or object would silently drop out of the state.
      if (Array.isArray(v) && v.some((x) => x instanceof Module)) {
        throw new Error(
          `${this.constructor.name}: field '${k}' is an array of modules; use ModuleList so their ` +
            `parameters are registered`,
        );
      }
      if (
        v &&
        Object.getPrototypeOf(v) === Object.prototype &&
        Object.values(v).some((x) => x instanceof Module || isParameter(x))
      ) {
        throw new Error(
          `${this.constructor.name}: field '${k}' is a plain object holding modules or parameters; ` +
            `make it a Module so they are registered`,
        );
      }
      out.push([k, v]);
    }
    return out;
  }

  /** Direct submodules in field order. */
  namedChildren(): [string, Module][] {
    return this.fields().filter((e): e is [string, Module] => e[1] instanceof Module);
  }

  children(): Module[] {
    return this.namedChildren().map((e) => e[1]);
  }

  /** This module and every descendant, pre-order, each once (PyTorch named_modules). */
  namedModules(prefix = '', seen = new Set<Module>()): [string, Module][] {
    if (seen.has(this)) return [];
    seen.add(this);
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.namedChildren()) out.push(...m.namedModules(join(prefix, n), seen));
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map((e) => e[1]);
  }

  /** Own parameters (not the children's), in field order. */
  ownParameters(): [string, Tensor][] {
    return this.fields().filter((e): e is [string, Tensor] => isParameter(e[1]) && !this.#buffers.has(e[0]));
  }

  /** Own buffers in registration order: [name, tensor, persistent]. */
  ownBuffers(): [string, Tensor, boolean][] {
    const self = this as unknown as Fields;
    const out: [string, Tensor, boolean][] = [];
    for (const [n, persistent] of this.#buffers) {
      const t = self[n];
      if (t instanceof Tensor) out.push([n, t, persistent]);
    }
    return out;
  }

  /** Every parameter once, named by its first path (PyTorch named_parameters). */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, t] of m.ownParameters()) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([join(prefix, n), t]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map((e) => e[1]);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) for (const [n, t] of m.ownBuffers()) out.push([join(prefix, n), t]);
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map((e) => e[1]);
  }

  /** The state: parameters and persistent buffers by PyTorch key (the tensors themselves, not copies). */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, t] of this.ownParameters()) out.set(join(prefix, n), t);
    for (const [n, t, persistent] of this.ownBuffers()) if (persistent) out.set(join(prefix, n), t);
    for (const [n, m] of this.namedChildren()) for (const [k, t] of m.stateDict(join(prefix, n))) out.set(k, t);
    return out;
  }

  /**
   * Copies values into the existing tensors (so flat parameter windows stay where they are).
   * Shape mismatches are always errors; missing and unexpected keys are errors when `strict`.
   * Nothing is copied unless everything checks out; the error names every offending key.
   */
  loadStateDict(state: StateDict, opts: { strict?: boolean } = {}): LoadResult {
    const { strict = true } = opts;
    const given = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict && missingKeys.length)
      problems.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length)
      problems.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    for (const [k, dst] of own) {
      const src = given.get(k);
      if (!src) continue;
      if (!sameShape(src.shape, dst.shape)) {
        problems.push(
          `size mismatch for ${k}: copying a param with shape ${fmt(src.shape)} from checkpoint, the ` +
            `shape in current model is ${fmt(dst.shape)}.`,
        );
      } else if (src.dtype !== dst.dtype && (src.dtype === 'f16' || dst.dtype === 'f16')) {
        problems.push(`dtype mismatch for ${k}: checkpoint has ${src.dtype}, the model has ${dst.dtype}.`);
      }
    }
    if (problems.length)
      throw new Error(
        `loadStateDict: Error(s) in loading state_dict for ${this.constructor.name}:\n  ${problems.join('\n  ')}`,
      );
    noGrad(() => {
      for (const [k, dst] of own) {
        const src = given.get(k);
        if (!src || src === dst) continue;
        if (src.dtype === dst.dtype) {
          copy_(dst, src, 'loadStateDict');
          continue;
        }
        const c = cast(src, dst.dtype as 'f32' | 'i32' | 'u32');
        copy_(dst, c, 'loadStateDict');
        c.dispose();
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  // ---- modes and housekeeping ----------------------------------------------------------------

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Sets requiresGrad on every parameter (freezing a backbone, say). */
  requiresGrad_(on = true): this {
    for (const p of this.parameters()) p.requiresGrad = on;
    return this;
  }

  numParameters(opts: { trainableOnly?: boolean } = {}): number {
    return this.parameters()
      .filter((p) => !opts.trainableOnly || p.requiresGrad)
      .reduce((n, p) => n + p.size, 0);
  }

  /** Frees every parameter, gradient and buffer of the tree, and the flat storage behind them. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const [, t] of m.ownParameters()) {
        t.grad?.dispose();
        t.grad = null;
        t.dispose();
      }
      for (const [, t] of m.ownBuffers()) t.dispose();
      for (const s of m.#flat) s.dispose();
      m.#flat = [];
    }
  }

  /**
   * Moves every f32 parameter into windows of flat buffers (one per maxStorageBufferBindingSize)
   * and points the fields at the windows; values and gradients carry over. Call it before making
   * the optimizer: then one optimizer step is one dispatch per flat buffer, with no copies.
   */
  flattenParameters(): this {
    const owners = new Map<Tensor, [Module, string][]>();
    for (const m of this.modules()) {
      for (const [n, t] of m.ownParameters()) {
        if (t.dtype !== 'f32' || flatHomeOf(t)) continue;
        const list = owners.get(t);
        if (list) list.push([m, n]);
        else owners.set(t, [[m, n]]);
      }
    }
    const olds = [...owners.keys()];
    if (olds.length === 0) return this;
    const pack = packFlat(olds, 'flat-parameters', true);
    olds.forEach((old, i) => {
      const w = pack.windows[i];
      PARAMS.add(w);
      w.requiresGrad = old.requiresGrad;
      w.keep();
      w.grad = old.grad;
      old.grad = null;
      for (const [m, n] of owners.get(old)!) (m as unknown as Fields)[n] = w;
      old.dispose();
    });
    this.#flat.push(...pack.slabs);
    return this;
  }
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}
