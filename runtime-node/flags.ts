// Command-line flags for recipes and CLIs, on node:util's parseArgs. Each knob is declared once,
// with its type, default, valid range and a one-line help; `--help` prints the table; a bad value
// is an error naming the flag, what it got and what it accepts. Flags are kebab-case on the command
// line (`--max-minutes`) and camelCase in the parsed record (`maxMinutes`).
//
//   const FLAGS = defineFlags('recipes/endoked/02-mil.ts', 'Attention-MIL over patient bags.', {
//     steps: { type: 'int', default: 200, min: 1, help: 'training steps' },
//     lr: { type: 'number', default: 1e-3, min: 0, exclusiveMin: true, help: 'SGD learning rate' },
//     data: { type: 'string', default: 'synthetic', help: "'synthetic', 'real' or a folder" },
//     out: { type: 'string', help: 'output folder (default runs/endoked/02-mil)' },
//     resume: { type: 'boolean', default: true, help: 'continue from <out>/state.safetensors' },
//   });
//   export async function main(argv: string[]) { const f = FLAGS.parse(argv); if (!f) return; ... }
//   if (isMain(import.meta.url)) runMain(main);
import { parseArgs } from 'node:util';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Common {
  help: string;
}
export interface IntFlag extends Common {
  type: 'int';
  default?: number;
  min?: number;
  max?: number;
}
export interface NumberFlag extends Common {
  type: 'number';
  default?: number;
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
}
export interface StringFlag extends Common {
  type: 'string';
  default?: string;
  choices?: readonly string[];
}
export interface BooleanFlag extends Common {
  type: 'boolean';
  default?: boolean;
}
export interface ListFlag extends Common {
  type: 'numbers';
  default?: readonly number[];
  min?: number;
  max?: number;
}
export type FlagSpec = IntFlag | NumberFlag | StringFlag | BooleanFlag | ListFlag;

type ValueOf<F extends FlagSpec> = F extends IntFlag | NumberFlag
  ? number
  : F extends BooleanFlag
    ? boolean
    : F extends ListFlag
      ? number[]
      : F extends StringFlag
        ? F['choices'] extends readonly (infer C)[]
          ? C
          : string
        : never;
/** The parsed record: flags with a default are always set; flags without one may be undefined. */
export type Flags<S extends Record<string, FlagSpec>> = {
  [K in keyof S as S[K] extends { default: unknown } ? K : never]: ValueOf<S[K]>;
} & { [K in keyof S as S[K] extends { default: unknown } ? never : K]?: ValueOf<S[K]> };

/** A bad command line: the message names the flag and the fix. */
export class FlagError extends Error {
  override name = 'FlagError';
}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

export interface FlagSet<S extends Record<string, FlagSpec>> {
  readonly script: string;
  readonly spec: S;
  /** Parses argv (without node and the script); null after printing --help. Throws FlagError. */
  parse(argv: readonly string[]): Flags<S> | null;
  /** The help table. */
  help(): string;
}

export function defineFlags<const S extends Record<string, FlagSpec>>(
  script: string,
  summary: string,
  spec: S,
): FlagSet<S> {
  const help = (): string => {
    const rows = Object.entries(spec).map(([k, f]) => {
      const name =
        f.type === 'boolean'
          ? `--${kebab(k)} / --no-${kebab(k)}`
          : `--${kebab(k)} ${f.type === 'string' && f.choices ? f.choices.join('|') : f.type.toUpperCase()}`;
      const range = 'min' in f || 'max' in f ? ` (${describeRange(f as IntFlag | NumberFlag)})` : '';
      const def =
        f.default === undefined ? '' : ` [default ${Array.isArray(f.default) ? f.default.join(',') : f.default}]`;
      return `  ${name.padEnd(34)} ${f.help}${range}${def}`;
    });
    return `usage: npx tsx ${script} [flags]\n${summary}\n\n${rows.join('\n')}\n  ${'--help'.padEnd(34)} this text`;
  };
  const parse = (argv: readonly string[]): Flags<S> | null => {
    if (argv.includes('--help') || argv.includes('-h')) {
      console.log(help());
      return null;
    }
    const options: Record<string, { type: 'string' | 'boolean' }> = {};
    for (const [k, f] of Object.entries(spec))
      options[kebab(k)] = { type: f.type === 'boolean' ? 'boolean' : 'string' };
    // `--steps -3` reaches the range check (parseArgs alone would call a leading '-' ambiguous).
    // The camelCase spelling of a flag (`--maxMinutes`, as older command lines write it) is the
    // same flag, and a boolean may be given a value (`--force true`, `--resume=false`).
    const args: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const a = canonical(argv[i]);
      const m = /^--([^=]+)(?:=(.*))?$/s.exec(a);
      let name = m?.[1] ?? '',
        negated = false;
      if (options[name]?.type !== 'boolean' && name.startsWith('no-') && options[name.slice(3)]?.type === 'boolean') {
        name = name.slice(3);
        negated = true;
      }
      if (m && options[name]?.type === 'boolean') {
        const v = m[2] ?? (argv[i + 1] === 'true' || argv[i + 1] === 'false' ? argv[++i] : 'true');
        if (v !== 'true' && v !== 'false')
          throw new FlagError(`${script}: --${name} ${JSON.stringify(v)} is not true or false`);
        args.push((v === 'true') !== negated ? `--${name}` : `--no-${name}`);
        continue;
      }
      const takesValue = a.startsWith('--') && !a.includes('=') && options[a.slice(2)]?.type === 'string';
      if (takesValue && i + 1 < argv.length && /^-\d|^-\.\d/.test(argv[i + 1])) args.push(`${a}=${argv[++i]}`);
      else args.push(a);
    }
    function canonical(a: string): string {
      const m = /^--(no-)?([A-Za-z0-9]+)(=.*)?$/s.exec(a);
      return m && m[2] in spec && kebab(m[2]) !== m[2] ? `--${m[1] ?? ''}${kebab(m[2])}${m[3] ?? ''}` : a;
    }
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({
        args,
        options,
        strict: true,
        allowPositionals: false,
        allowNegative: true,
      } as Parameters<typeof parseArgs>[0]) as { values: Record<string, string | boolean | undefined> });
    } catch (e) {
      const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
      throw new FlagError(`${script}: ${msg} (--help lists the flags)`);
    }
    const out: Record<string, unknown> = {};
    for (const [k, f] of Object.entries(spec)) {
      const raw = values[kebab(k)];
      out[k] =
        raw === undefined ? (Array.isArray(f.default) ? [...f.default] : f.default) : convert(script, kebab(k), f, raw);
    }
    return out as Flags<S>;
  };
  return { script, spec, parse, help };
}

function describeRange(f: IntFlag | NumberFlag | ListFlag): string {
  const lo = f.min === undefined ? '' : `${'exclusiveMin' in f && f.exclusiveMin ? '>' : '≥'} ${f.min}`;
  const hi = f.max === undefined ? '' : `≤ ${f.max}`;
  return [lo, hi].filter(Boolean).join(', ');
}

function convert(script: string, name: string, f: FlagSpec, raw: string | boolean): unknown {
  const bad = (what: string) => new FlagError(`${script}: --${name} ${JSON.stringify(raw)} ${what}`);
  if (f.type === 'boolean') return raw;
  const s = String(raw);
  if (f.type === 'string') {
    if (f.choices && !f.choices.includes(s)) throw bad(`is not one of ${f.choices.join(', ')}`);
    return s;
  }
  const one = (t: string, ff: IntFlag | NumberFlag | ListFlag): number => {
    const v = t.trim() === '' ? NaN : Number(t);
    if (!Number.isFinite(v)) throw bad('is not a number');
    if (ff.type === 'int' && !Number.isInteger(v)) throw bad('is not a whole number');
    const exMin = 'exclusiveMin' in ff && ff.exclusiveMin;
    if (ff.min !== undefined && (exMin ? v <= ff.min : v < ff.min))
      throw bad(`is out of range: it must be ${describeRange(ff)}`);
    if (ff.max !== undefined && v > ff.max) throw bad(`is out of range: it must be ${describeRange(ff)}`);
    return v;
  };
  if (f.type === 'numbers') return s.split(',').map((t) => one(t, f));
  return one(s, f);
}

/** True when the module at `metaUrl` is the script node was started with (not an import). */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

// Errors whose message is the whole story (a bad flag; runtime-node/run-guard.ts: a run that
// cannot start or resume, a non-finite loss): printed as one line, without a stack trace.
const MESSAGE_ONLY = new Set(['FlagError', 'RunGuardError', 'NonFiniteError']);

/**
 * Runs a recipe's `main(argv)` as a command: a FlagError, RunGuardError or NonFiniteError prints
 * one clear line (any other error its stack) and exits 1.
 */
export function runMain(main: (argv: string[]) => Promise<unknown>): void {
  main(process.argv.slice(2)).then(
    () => {
      process.exitCode = process.exitCode ?? 0;
    },
    (e: unknown) => {
      if (e instanceof Error && MESSAGE_ONLY.has(e.name)) console.error(e.message);
      else console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exitCode = 1;
    },
  );
}
