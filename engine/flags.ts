// The engine's knobs, declared once: name, type, default, allowed values and a line of help. The
// engine reads them from `knobs` (a plain object: one property read on hot paths such as a
// dispatch); only setFlag/setFlags write them, so every value is checked, and an unknown knob or a
// bad value is an error naming it. The engine never reads the environment itself: runtime-node
// sets knobs from environment variables (`ENGINE_<NAME>`, and `DEBUG`), the browser page from URL
// parameters (`?engine.<name>=value`), both through `setFlags`.
// Reference: tfjs-core's environment flags (one registry, typed, settable from the URL).

interface IntKnob {
  type: 'int';
  default: number;
  min: number;
  max: number;
  help: string;
}
interface EnumKnob<V extends string> {
  type: 'enum';
  default: V;
  values: readonly V[];
  help: string;
}
interface BoolKnob {
  type: 'bool';
  default: boolean;
  help: string;
}

const int = (d: number, min: number, max: number, help: string): IntKnob => ({
  type: 'int',
  default: d,
  min,
  max,
  help,
});
const oneOf = <V extends string>(values: readonly V[], d: V, help: string): EnumKnob<V> => ({
  type: 'enum',
  default: d,
  values,
  help,
});
const bool = (d: boolean, help: string): BoolKnob => ({ type: 'bool', default: d, help });

export const MATMUL_CHOICES = ['auto', 'naive', 'blocked', 'tiled', 'auto-measure'] as const;
export const ATTENTION_TRAINING_CHOICES = ['auto', 'fused', 'unfused'] as const;

export const KNOBS = {
  debug: int(
    0,
    0,
    3,
    '1: a line per flush (its dispatches by op) and, with timestamp queries, each kernel GPU time; ' +
      '2: adds the WGSL of every new pipeline; 3: adds buffer allocations',
  ),
  flushEvery: int(256, 1, 1 << 20, 'dispatches recorded into one command buffer before it is submitted'),
  matmul: oneOf(
    MATMUL_CHOICES,
    'auto',
    'matmul kernel: auto (blocked on CPU drivers, tiled on GPUs), naive / blocked / tiled, ' +
      'or auto-measure (time each once per shape class on this device, keep the fastest)',
  ),
  attentionTraining: oneOf(
    ATTENTION_TRAINING_CHOICES,
    'auto',
    'differentiated attention: auto (unfused on CPU drivers while the scores fit, else fused), fused or unfused',
  ),
  pollingBackoff: bool(
    true,
    "Node: back Dawn's event polling off to a 1 ms timer after 2 ms of spinning (runtime-node/polling.ts)",
  ),
};

export type KnobName = keyof typeof KNOBS;
type ValueOf<K> = K extends IntKnob ? number : K extends BoolKnob ? boolean : K extends EnumKnob<infer V> ? V : never;
export type KnobValues = { [K in KnobName]: ValueOf<(typeof KNOBS)[K]> };

/** The current value of every knob. Read-only outside this file: write through setFlag. */
export const knobs: Readonly<KnobValues> = Object.fromEntries(
  Object.entries(KNOBS).map(([k, s]) => [k, s.default]),
) as KnobValues;

function spec(name: string): IntKnob | EnumKnob<string> | BoolKnob {
  if (!Object.hasOwn(KNOBS, name))
    throw new Error(`unknown engine knob '${name}' (known: ${Object.keys(KNOBS).join(', ')})`);
  return KNOBS[name as KnobName];
}

/** Checks a value (or parses a string: "3", "tiled", "true"/"false"/"1"/"0") for a knob. */
function coerce(name: string, value: unknown): number | string | boolean {
  const s = spec(name);
  const bad = (want: string) =>
    new Error(`engine knob '${name}': ${JSON.stringify(value)} is not ${want} (${s.help.split(';')[0]})`);
  if (s.type === 'int') {
    const v = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < s.min || v > s.max)
      throw bad(`an integer in [${s.min}, ${s.max}]`);
    return v;
  }
  if (s.type === 'bool') {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    throw bad('true or false');
  }
  if (typeof value !== 'string' || !s.values.includes(value)) throw bad(`one of ${s.values.join(', ')}`);
  return value;
}

export function setFlag<K extends KnobName>(name: K, value: KnobValues[K] | string): void {
  (knobs as Record<string, unknown>)[name] = coerce(name, value);
}

/** Sets several knobs at once, all checked before any is set. */
export function setFlags(values: Partial<Record<string, unknown>>): void {
  const checked = Object.entries(values).map(([k, v]) => [k, coerce(k, v)] as const);
  for (const [k, v] of checked) (knobs as Record<string, unknown>)[k] = v;
}

/** Every knob back to its default (tests). */
export function resetFlags(): void {
  for (const [k, s] of Object.entries(KNOBS)) (knobs as Record<string, unknown>)[k] = s.default;
}

/** `flushEvery` -> `ENGINE_FLUSH_EVERY`: the environment variable runtime-node reads for a knob. */
export const envName = (name: string): string =>
  name === 'debug' ? 'DEBUG' : `ENGINE_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/**
 * The knobs set in an environment (`DEBUG`, `ENGINE_*`), by knob name, for setFlags; an
 * `ENGINE_*` variable that names no knob is an error naming it.
 */
export function flagsFromEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const byEnv = new Map(Object.keys(KNOBS).map((k) => [envName(k), k]));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    const knob = byEnv.get(k);
    if (knob) out[knob] = v;
    else if (k.startsWith('ENGINE_'))
      throw new Error(`${k}: no engine knob by that name (known: ${[...byEnv.keys()].join(', ')})`);
  }
  return out;
}

/** The knobs given as `engine.<name>` URL parameters (the page's other parameters are left alone). */
export function flagsFromQuery(params: Iterable<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) if (k.startsWith('engine.')) out[k.slice('engine.'.length)] = v;
  return out;
}

/** One line per knob: name, environment variable, allowed values, default, help. */
export function flagsHelp(): string {
  return Object.entries(KNOBS)
    .map(([k, s]) => {
      const range = s.type === 'int' ? `${s.min}..${s.max}` : s.type === 'bool' ? 'true|false' : s.values.join('|');
      return `${k} (${envName(k)}) ${range}, default ${String(s.default)}: ${s.help}`;
    })
    .join('\n');
}
