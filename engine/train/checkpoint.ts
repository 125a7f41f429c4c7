// Checkpoints as safetensors files. A weights file holds a module's state_dict under its own
// keys (PyTorch/timm-compatible, so it loads in either direction). A training-state file adds
// everything a run needs to continue exactly where it stopped: optimizer moments and step
// counts, the device RNG, the data order, and the recipe's own counters (epoch, step, best
// metric, history), the non-tensor parts as JSON in the safetensors metadata.
// The bytes are built here (pure); writing them atomically is the runtime's job
// (runtime-node/checkpoint.ts: temp file, fsync, rename), so a run killed at any moment leaves
// either the previous checkpoint or the new one, never a torn file.
import { Tensor, noGrad } from '../tensor.ts';
import { tensor } from '../ops/creation.ts';
import type { Module } from '../nn/module.ts';
import type { Optimizer, OptimizerOptions, OptimizerState } from '../optim/optimizer.ts';
import type { Generator, GeneratorState } from '../ops/creation.ts';
import type { DataOrderState } from '../data/sampler.ts';
import type { RngState } from '../data/random.ts';
import {
  parseSafetensors,
  serializeSafetensors,
  type SafetensorsInput,
  type SafetensorsTensor,
} from '../io/safetensors.ts';

const FORMAT = 'webgpu-endo-train-state/1';

async function tensorEntry(t: Tensor): Promise<SafetensorsInput> {
  const data = await t.data();
  const dtype = t.dtype === 'i32' ? 'I32' : t.dtype === 'f32' || t.dtype === 'f16' ? 'F32' : 'I32';
  return { dtype, shape: [...t.shape], data: dtype === 'F32' ? Float32Array.from(data) : Int32Array.from(data) };
}

/** A module's state_dict as safetensors bytes (metadata optional, e.g. the model config). */
export async function weightsBytes(model: Module, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const out: Record<string, SafetensorsInput> = {};
  for (const [k, t] of model.stateDict()) out[k] = await tensorEntry(t);
  return serializeSafetensors(out, metadata);
}

const isFloat = (d: SafetensorsTensor['dtype']) => d === 'F32' || d === 'F16' || d === 'BF16';

/**
 * The float tensors holding NaN or ±Infinity, as "name (n of N values)": such weights come from a
 * run that diverged and would only spread NaN, so the loaders refuse them unless asked not to.
 */
export function nonFiniteTensors(tensors: Record<string, SafetensorsTensor>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(tensors)) {
    if (!isFloat(v.dtype)) continue;
    let bad = 0;
    for (const x of v.data as Float32Array) if (!Number.isFinite(x)) bad++;
    if (bad) out.push(`${k} (${bad} of ${v.data.length} values)`);
  }
  return out;
}

function refuseNonFinite(tensors: Record<string, SafetensorsTensor>, source: string, allow: boolean | undefined): void {
  if (allow) return;
  const bad = nonFiniteTensors(tensors);
  if (bad.length) {
    throw new Error(
      `${source}: the checkpoint is broken: NaN/Infinity in ${bad.length} tensor(s): ` +
        `${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ', ...' : ''}. ` +
        'It was written by a run that diverged; use an earlier checkpoint or retrain (allowNonFinite loads it anyway)',
    );
  }
}

export interface LoadOptions {
  /** Every model key must be loaded (or kept, see `keep`) and every file key used (default true). */
  strict?: boolean;
  /** With strict: file keys the model lacks are reported, not refused (e.g. a pre-training head). */
  allowUnexpected?: boolean;
  /** Only file keys under this prefix are read, with it stripped (e.g. 'encoder.'); others are ignored. */
  prefix?: string;
  /** Renames a file key (after the prefix) to the model's key; null ignores it (e.g. timm's names). */
  mapKey?: (key: string) => string | null;
  /**
   * Model keys that keep their built values when the file has none, or one of another shape
   * (e.g. a classifier head for another number of classes); reported in `kept`.
   */
  keep?: (key: string) => boolean;
  /** A file tensor with as many values as the model's is reshaped to it (layouts that differ only in shape). */
  reshape?: boolean;
  /** Names the file in errors. */
  source?: string;
  /** Load weights holding NaN/Infinity instead of refusing them. */
  allowNonFinite?: boolean;
}

export interface ShapeMismatch {
  key: string;
  file: number[];
  model: number[];
}

export interface LoadReport {
  /** Model keys loaded from the file. */
  loaded: number;
  /** Model keys the file has no tensor for (kept ones included). */
  missingKeys: string[];
  /** File keys (after prefix and mapping) the model does not have. */
  unexpectedKeys: string[];
  /** Model keys kept as built (`keep`), with why. */
  kept: { key: string; reason: 'missing' | ShapeMismatch }[];
  metadata: Record<string, string>;
}

/** A file that does not fit the model; `report` holds what did not match. */
export class WeightsMismatchError extends Error {
  constructor(
    message: string,
    readonly report: { missingKeys: string[]; unexpectedKeys: string[]; mismatched: ShapeMismatch[] },
  ) {
    super(message);
    this.name = 'WeightsMismatchError';
  }
}

const sameDims = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Loads safetensors weights into `model`: the one weight loader of the project. Keys can be
 * filtered by a prefix and renamed; strict (default) refuses missing and unexpected keys, partial
 * reports them; a shape mismatch is always an error naming the key and both shapes (unless
 * `keep` keeps that key as built). Errors start with `source` and use PyTorch's wording.
 */
export function loadWeights(model: Module, bytes: Uint8Array, opts: LoadOptions = {}): LoadReport {
  const source = opts.source ?? 'checkpoint',
    strict = opts.strict ?? true;
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes);
  } catch (e) {
    throw new Error(`${source}: ${e instanceof Error ? e.message : String(e)}`);
  }
  refuseNonFinite(parsed.tensors, source, opts.allowNonFinite);
  const own = model.stateDict();
  const file = new Map<string, SafetensorsTensor>(); // model key -> file tensor
  for (const [k, v] of Object.entries(parsed.tensors)) {
    if (opts.prefix !== undefined && !k.startsWith(opts.prefix)) continue;
    const stripped = opts.prefix ? k.slice(opts.prefix.length) : k;
    const key = opts.mapKey ? opts.mapKey(stripped) : stripped;
    if (key === null) continue;
    if (file.has(key)) throw new Error(`${source}: two tensors load into ${key} (${k} is the second)`);
    file.set(key, v);
  }
  const keep = opts.keep ?? (() => false);
  const kept: LoadReport['kept'] = [],
    mismatched: ShapeMismatch[] = [];
  const unexpectedKeys = [...file.keys()].filter((k) => !own.has(k));
  const missingKeys = [...own.keys()].filter((k) => !file.has(k));
  const state = new Map<string, Tensor>();
  const made: Tensor[] = [];
  let loaded = 0;
  try {
    for (const [key, dst] of own) {
      const v = file.get(key);
      if (!v) {
        if (keep(key)) {
          kept.push({ key, reason: 'missing' });
          state.set(key, dst); // the model's own tensor: left as it is
        }
        continue;
      }
      let shape: readonly number[] = v.shape;
      if (!sameDims(shape, dst.shape)) {
        const m = { key, file: [...v.shape], model: [...dst.shape] };
        if (opts.reshape && numel(v.shape) === dst.size) shape = dst.shape;
        else if (keep(key)) {
          kept.push({ key, reason: m });
          state.set(key, dst);
          continue;
        } else mismatched.push(m);
      }
      const t = tensor(v.data as ArrayLike<number>, shape, isFloat(v.dtype) ? 'f32' : 'i32');
      made.push(t);
      state.set(key, t);
      loaded++;
    }
    const refuseUnexpected = strict && !opts.allowUnexpected;
    if (refuseUnexpected)
      for (const k of unexpectedKeys) {
        const v = file.get(k)!,
          t = tensor(v.data as ArrayLike<number>, v.shape, isFloat(v.dtype) ? 'f32' : 'i32');
        made.push(t);
        state.set(k, t);
      }
    try {
      noGrad(() => model.loadStateDict(state, { strict }));
    } catch (e) {
      const report = { missingKeys: missingKeys.filter((k) => !keep(k)), unexpectedKeys, mismatched };
      const text = e instanceof Error ? e.message : String(e);
      const hint =
        opts.prefix !== undefined && file.size === 0 ? ` (the file has no keys starting with "${opts.prefix}")` : '';
      throw new WeightsMismatchError(`${source}: ${text}${hint}`, report);
    }
    return {
      loaded,
      missingKeys,
      unexpectedKeys,
      kept,
      metadata: parsed.metadata ?? {},
    };
  } finally {
    for (const t of made) t.dispose();
  }
}

export interface TrainState<Extra> {
  model: Module;
  optimizer?: Optimizer<OptimizerOptions>;
  /** The device RNG (dropout, drop path, on-device augmentation draws). */
  generator?: Generator;
  /** The data order after the last consumed batch (Loader.stateDict()). */
  data?: DataOrderState;
  /** Host RNG states (augmentation parameters...). */
  rngs?: Record<string, RngState>;
  /** The recipe's counters: epoch, step, best metric, loss history... (JSON). */
  extra: Extra;
}

interface Meta<Extra> {
  format: string;
  optimizer?: Omit<OptimizerState, 'state'>;
  generator?: GeneratorState;
  data?: DataOrderState;
  rngs?: Record<string, RngState>;
  extra: Extra;
}

/** The whole training state as safetensors bytes (reads every tensor back once). */
export async function trainStateBytes<Extra>(s: TrainState<Extra>): Promise<Uint8Array> {
  const out: Record<string, SafetensorsInput> = {};
  for (const [k, t] of s.model.stateDict()) out[`model.${k}`] = await tensorEntry(t);
  let optimizer: Meta<Extra>['optimizer'];
  if (s.optimizer) {
    const sd = s.optimizer.stateDict();
    for (const [k, t] of sd.state) {
      out[`optimizer.${k}`] = await tensorEntry(t);
      t.dispose();
    }
    optimizer = { stepCount: sd.stepCount, steps: sd.steps, groups: sd.groups };
  }
  const meta: Meta<Extra> = {
    format: FORMAT,
    optimizer,
    generator: s.generator?.getState(),
    data: s.data,
    rngs: s.rngs,
    extra: s.extra,
  };
  return serializeSafetensors(out, { train_state: JSON.stringify(meta) });
}

/**
 * Restores a training state written by trainStateBytes into freshly built objects (same model
 * config, same optimizer construction). Returns what the caller restores itself: the data order,
 * host RNG states and the recipe's counters.
 */
export function restoreTrainState<Extra>(
  bytes: Uint8Array,
  s: Omit<TrainState<Extra>, 'extra' | 'data' | 'rngs'>,
  source = 'checkpoint',
  opts: { allowNonFinite?: boolean } = {},
): { data?: DataOrderState; rngs?: Record<string, RngState>; extra: Extra } {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes);
  } catch (e) {
    throw new Error(`${source}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const metaText = parsed.metadata?.train_state;
  if (!metaText)
    throw new Error(
      `${source}: not a training-state checkpoint (no train_state metadata); a weights-only file ` +
        `loads with loadWeights()`,
    );
  let meta: Meta<Extra>;
  try {
    meta = JSON.parse(metaText) as Meta<Extra>;
  } catch (e) {
    throw new Error(
      `${source}: the train_state metadata is not valid JSON ` +
        `(${e instanceof Error ? e.message : String(e)}); the file is corrupt: delete it or start over ` +
        `with another --out`,
    );
  }
  if (meta === null || typeof meta !== 'object')
    throw new Error(
      `${source}: the train_state metadata is ${JSON.stringify(meta)}, not an object; the file is corrupt`,
    );
  if (meta.format !== FORMAT) throw new Error(`${source}: checkpoint format '${meta.format}', expected '${FORMAT}'`);
  if (meta.extra === null || typeof meta.extra !== 'object')
    throw new Error(
      `${source}: the train_state metadata has no 'extra' object (the recipe's counters); the file is corrupt`,
    );
  refuseNonFinite(parsed.tensors, source, opts.allowNonFinite);
  const model = new Map<string, Tensor>();
  const optim = new Map<string, Tensor>();
  try {
    for (const [k, v] of Object.entries(parsed.tensors)) {
      // Float tensors of any width restore as f32 (F16/BF16 widen exactly); only integer types are i32.
      const t = tensor(v.data as ArrayLike<number>, v.shape, isFloat(v.dtype) ? 'f32' : 'i32');
      if (k.startsWith('model.')) model.set(k.slice(6), t);
      else if (k.startsWith('optimizer.')) optim.set(k.slice(10), t);
      else t.dispose();
    }
    noGrad(() => s.model.loadStateDict(model, { strict: true }));
    if (s.optimizer) {
      if (!meta.optimizer) throw new Error('the checkpoint has no optimizer state');
      s.optimizer.loadStateDict({ ...meta.optimizer, state: optim });
    }
    if (s.generator && meta.generator) s.generator.setState(meta.generator);
  } catch (e) {
    throw new Error(`${source}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    for (const t of [...model.values(), ...optim.values()]) t.dispose();
  }
  return { data: meta.data, rngs: meta.rngs, extra: meta.extra };
}
