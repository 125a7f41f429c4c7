// One guard for every training recipe, so that a run loses nothing and never finishes silently
// wrong. What it covers, and why each part is here rather than in the recipes:
// - Non-finite values: `checkFinite` / `checkStep` throw a NonFiniteError naming the step and the
//   quantity (loss, gradient norm, per multi-scale rate...). Recipes call them on every value
//   they read back BEFORE writing any checkpoint, so the last good checkpoint stays on disk.
// - Start of run (`startRun`): the output folder is created and probed with a real file (a
//   read-only --out fails at once, not at the first checkpoint 200 steps in); a lock file holds
//   the owner's pid (a second run on the same folder stops naming that pid and the folder; a lock
//   left by a killed run is taken over with a message); then temporary files left by writers that
//   were killed mid-write (runtime-node/checkpoint.ts writeAtomic names them `.<name>.tmp-<pid>`)
//   are removed, but only those whose pid is no longer running.
// - SIGINT / SIGTERM: the recipe registers how to save its state (`onStop`) and wraps each
//   training step in `guard.step(...)`. A signal waits for the step in flight to finish (so the
//   state saved is that of a whole step, never half of one), saves, releases the lock and exits
//   with 130 / 143. A second signal exits at once (the last checkpoint on disk stays intact:
//   writes are atomic).
// - Data identity: `dataIdentity` records the data's paths and a content hash of its id lists (and
//   of the listed files' sizes) in the state; `checkDataIdentity` refuses to resume on other data,
//   naming both.
// - Saved state: `checkStateFields` turns a missing or mistyped field of a restored state into an
//   error naming the file and the field (instead of a TypeError deep in the recipe).
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';

/** A value that must be finite was not: the message names the quantity and the step. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

/** A run cannot start or resume (folder, lock, data or state problem): the message names the fix. */
export class RunGuardError extends Error {
  override name = 'RunGuardError';
}

const NO_CHECKPOINT = 'no checkpoint was written for this step, so the last good one is kept';

/**
 * Throws a NonFiniteError when `value` is NaN or ±Infinity. `what` names the quantity ("loss at
 * rate 1.25"), `step` the training step it belongs to.
 */
export function checkFinite(
  value: number,
  what: string,
  step?: number,
  hint = 'lower the learning rate or check the data',
): number {
  if (Number.isFinite(value)) return value;
  throw new NonFiniteError(
    `${what} is ${value}${step === undefined ? '' : ` at step ${step}`}: ${NO_CHECKPOINT}; ${hint}`,
  );
}

/** checkFinite over several named values read back for one step (all are reported at once). */
export function checkStep(step: number, values: Record<string, number>, hint?: string): void {
  const bad = Object.entries(values).filter(([, v]) => !Number.isFinite(v));
  if (bad.length === 0) return;
  throw new NonFiniteError(
    `${bad.map(([k, v]) => `${k} is ${v}`).join(', ')} at step ${step}: ${NO_CHECKPOINT}; ` +
      `${hint ?? 'lower the learning rate or check the data'}`,
  );
}

// ---- start of run: writable folder, lock, stale temporary files ----------------------------------

export interface StartOptions {
  /** The script, for messages and the lock file (e.g. 'recipes/endoked/05-segmenter.ts'). */
  script: string;
  /** Where messages go (default console.log). */
  log?: (line: string) => void;
}

interface LockInfo {
  pid: number;
  script: string;
  started: string;
  host?: string;
}

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const LOCK = '.run.lock';
const held = new Set<string>(); // lock files this process holds (a pid reused from a killed run is not ours)
const TMP_RE = /^\..+\.tmp-(\d+)$/;

/** Creates `dir` and writes + removes a probe file: a read-only or unusable folder fails now. */
export function ensureWritable(dir: string, flag = '--out'): void {
  const probe = join(dir, `.write-probe-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, 'probe');
    unlinkSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new RunGuardError(
      `${flag} "${dir}" is not writable (${code || (e as Error).message}): checkpoints could not be ` +
        `saved there; pass another ${flag} or fix its permissions`,
    );
  }
}

/**
 * Removes `.<name>.tmp-<pid>` files (partial atomic writes) under `dir`, 3 levels deep, whose
 * writer is gone. Returns the paths removed.
 */
export function cleanStaleTemps(dir: string, depth = 3): string[] {
  const removed: string[] = [];
  if (!existsSync(dir)) return removed;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && depth > 0 && e.name !== 'node_modules') removed.push(...cleanStaleTemps(p, depth - 1));
    const m = e.isFile() ? TMP_RE.exec(e.name) : null;
    // Our own pid: left by an earlier process that had it (writeAtomic is synchronous, so no write
    // of this process is in progress while this runs).
    if (m && (Number(m[1]) === process.pid || !pidAlive(Number(m[1])))) {
      rmSync(p, { force: true });
      removed.push(p);
    }
  }
  return removed;
}

function readLock(path: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    return typeof v.pid === 'number' ? v : null;
  } catch {
    return null;
  } // torn or foreign: treat as stale
}

/** Takes `<dir>/.run.lock` for this process; throws naming the other live owner. */
export function acquireLock(dir: string, script: string, log: (l: string) => void = console.log): string {
  const path = join(dir, LOCK);
  const info: LockInfo = { pid: process.pid, script, started: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx'); // exclusive create: two starting runs cannot both win
      try {
        writeSync(fd, JSON.stringify(info) + '\n');
      } finally {
        closeSync(fd);
      }
      held.add(path);
      return path;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new RunGuardError(`cannot create the lock file ${path}: ${(e as Error).message}`);
    }
    const other = readLock(path);
    if (other && other.pid !== process.pid && pidAlive(other.pid)) {
      throw new RunGuardError(
        `"${dir}" is in use by another run: pid ${other.pid} (${other.script}, started ` +
          `${other.started}) holds ${path}. ` +
          `Wait for it or stop it (kill ${other.pid}), or pass another --out.`,
      );
    }
    if (other && other.pid === process.pid && held.has(path))
      throw new RunGuardError(`"${dir}" is already in use by this process (${other.script})`);
    const why = other
      ? `its owner, pid ${other.pid} (${other.script}, started ${other.started}), is no longer running`
      : 'the lock file is unreadable';
    log(`taking over ${path}: ${why}`);
    rmSync(path, { force: true });
  }
  throw new RunGuardError(`cannot take the lock ${path}: another run keeps re-creating it`);
}

/** Removes the lock when this process holds it. */
export function releaseLock(path: string): void {
  if (!held.delete(path)) return;
  const cur = readLock(path);
  if (!cur || cur.pid === process.pid) rmSync(path, { force: true });
}

// Whatever way the process ends (error, process.exit), its locks go with it; a SIGKILL leaves the
// lock file, which the next run takes over because its pid is gone.
process.on('exit', () => {
  for (const p of [...held]) releaseLock(p);
});

// ---- the guard ----------------------------------------------------------------------------------

export interface RunGuard {
  /** The output folder (absolute). */
  readonly dir: string;
  /** Temporary files removed at start. */
  readonly removedTemps: readonly string[];
  /** True once SIGINT/SIGTERM arrived. */
  readonly stopping: boolean;
  /**
   * What to do on SIGINT/SIGTERM: save the training state (null: nothing to save, e.g. after the
   * final checkpoint). Called between steps, never during one.
   */
  onStop(save: (() => Promise<void>) | null): void;
  /** Runs one training step; a signal during it is handled when it ends. */
  step<T>(fn: () => Promise<T>): Promise<T>;
  /** Releases the lock and the signal handlers (at the end of the recipe). */
  close(): void;
}

/**
 * The start-of-run checks for `dir`: writable, locked for this process, stale temporaries
 * removed; SIGINT/SIGTERM handlers installed. Call before any long work.
 */
export function startRun(dir: string, opts: StartOptions): RunGuard {
  const log = opts.log ?? ((l: string) => console.log(l));
  const abs = resolve(dir);
  ensureWritable(abs);
  const lock = acquireLock(abs, opts.script, log);
  const removedTemps = cleanStaleTemps(abs);
  if (removedTemps.length)
    log(
      `removed ${removedTemps.length} partial file(s) left by killed writers: ` +
        `${removedTemps.map((p) => basename(p)).join(', ')}`,
    );

  let save: (() => Promise<void>) | null = null;
  let inFlight: Promise<unknown> | null = null;
  let stopping = false;
  let closed = false;
  const handler = (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (stopping) {
      // second signal: leave now; the checkpoint on disk is whole (atomic writes)
      process.stderr.write(`\n${signal} again: exiting without saving\n`);
      process.exit(code);
    }
    stopping = true;
    const what = save
      ? 'saving the training state after the current step, then exiting (again to exit at once)'
      : 'exiting';
    process.stderr.write(`\n${signal}: ${what}\n`);
    void (async () => {
      try {
        if (inFlight) await inFlight.catch(() => undefined);
        if (save) {
          await save();
          process.stderr.write(`saved; run the same command again to continue\n`);
        }
      } catch (e) {
        process.stderr.write(`could not save on ${signal}: ${e instanceof Error ? e.message : String(e)}\n`);
      } finally {
        releaseLock(lock);
        process.exit(code);
      }
    })();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    dir: abs,
    removedTemps,
    get stopping() {
      return stopping;
    },
    onStop(s) {
      save = s;
    },
    async step<T>(fn: () => Promise<T>): Promise<T> {
      // After a signal no new step starts: the handler is saving and will exit.
      if (stopping) await new Promise<never>(() => undefined);
      const p = fn();
      inFlight = p;
      try {
        return await p;
      } finally {
        inFlight = null;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      releaseLock(lock);
    },
  };
}

// ---- data identity ------------------------------------------------------------------------------

export interface DataIdentity {
  /** Where the data came from (informative: moving a data set does not change its identity). */
  paths: Record<string, string>;
  /** Per list: how many ids, and sha256 over "id\tbytes of each listed file" lines. */
  lists: Record<string, { count: number; sha256: string }>;
}

/** The identity of the data a run trains on: named id lists, each with the files behind its ids. */
export function dataIdentity(
  paths: Record<string, string>,
  lists: Record<string, readonly { id: string; files?: readonly (string | undefined)[] }[]>,
): DataIdentity {
  const out: DataIdentity = { paths: { ...paths }, lists: {} };
  for (const [name, items] of Object.entries(lists)) {
    const h = createHash('sha256');
    for (const it of items) {
      const sizes = (it.files ?? []).map((f) => {
        try {
          return f ? statSync(f).size : -1;
        } catch {
          return -1;
        }
      });
      h.update(`${it.id}\t${sizes.join('\t')}\n`);
    }
    out.lists[name] = { count: items.length, sha256: h.digest('hex') };
  }
  return out;
}

/**
 * Refuses to resume a state trained on other data. A state written before identities were
 * recorded (`saved` undefined) is accepted with a note.
 */
export function checkDataIdentity(
  saved: DataIdentity | undefined,
  current: DataIdentity,
  statePath: string,
  log: (l: string) => void = console.log,
): void {
  if (!saved) {
    log(
      `${statePath} records no data identity (written by an older version); resuming on ` +
        `${Object.values(current.paths).join(', ')}`,
    );
    return;
  }
  const differ = Object.keys({ ...saved.lists, ...current.lists }).filter(
    (k) => saved.lists[k]?.sha256 !== current.lists[k]?.sha256,
  );
  if (differ.length === 0) return;
  const desc = (d: DataIdentity) => {
    const paths = Object.entries(d.paths).map(([k, v]) => `${k} ${v}`);
    const lists = differ.map(
      (k) => `${k}: ${d.lists[k]?.count ?? 0} ids, sha256 ${d.lists[k]?.sha256.slice(0, 12) ?? 'none'}`,
    );
    return `${paths.join(', ')} (${lists.join('; ')})`;
  };
  throw new RunGuardError(
    `${statePath} was trained on other data: ${desc(saved)}; this run has ${desc(current)}. ` +
      'Pass the same data to continue, or another --out (or --no-resume) to start over.',
  );
}

// ---- restored state fields ----------------------------------------------------------------------

export type FieldType = 'number' | 'string' | 'boolean' | 'object' | 'number[]' | 'array';

/** What a state field of `type` must hold, in words ("a finite number", "an object"). */
function expected(type: FieldType): string {
  if (type === 'number') return 'a finite number';
  if (type === 'number[]') return 'a list of numbers';
  return `a${/^[aeiou]/.test(type) ? 'n' : ''} ${type}`;
}

/**
 * Checks dotted paths of a restored state (`{ 'extra.step': 'number', data: 'object' }`); throws
 * naming the file, the field and what it holds.
 */
export function checkStateFields(state: unknown, fields: Record<string, FieldType>, source: string): void {
  const problems: string[] = [];
  for (const [path, type] of Object.entries(fields)) {
    let v: unknown = state;
    for (const k of path.split('.'))
      v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    const ok =
      type === 'number'
        ? typeof v === 'number' && Number.isFinite(v)
        : type === 'number[]'
          ? Array.isArray(v) && v.every((x) => typeof x === 'number')
          : type === 'array'
            ? Array.isArray(v)
            : type === 'object'
              ? v !== null && typeof v === 'object' && !Array.isArray(v)
              : typeof v === type;
    if (!ok)
      problems.push(
        `${path} should be ${expected(type)} ` +
          `but is ${v === undefined ? 'missing' : JSON.stringify(v).slice(0, 60)}`,
      );
  }
  if (problems.length)
    throw new RunGuardError(
      `${source}: not a usable training state of this recipe: ${problems.join('; ')}. Delete it or ` +
        `pass another --out (or --no-resume) to start over.`,
    );
}
