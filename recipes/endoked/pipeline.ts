// What the EndoKED driver scripts (06-refine.ts, run-all.ts) share: running one stage script and
// deciding whether a stage's outputs can be reused.
//
// - runStage: every stage is a script with its own flags. A script that exports
//   `main(argv)` (runtime-node/flags.ts convention) is imported and called in this process; one
//   that still parses process.argv at top level runs as a child process with the same arguments.
//   Either way the caller gets the same outputs on disk and a thrown error naming the stage.
// - withStamp: a stage folder is reused when a stamp file in it records the same key (a hash of
//   the stage's code (codeHash: its script and the recipe modules it imports), its flags and its
//   input files). A different key wipes the folder before
//   the stage runs again; a stage that was interrupted under the same key resumes from its own
//   checkpoints (a pending stamp records the key it was started with).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

/** True when the script follows the flags.ts convention (so importing it runs nothing). */
export function exportsMain(script: string): boolean {
  const src = readFileSync(script, 'utf8');
  return /export\s+async\s+function\s+main\s*\(/.test(src) && /\bisMain\s*\(\s*import\.meta\.url\s*\)/.test(src);
}

export interface StageOptions {
  /** Extra environment for a child process (ignored in process). */
  env?: Record<string, string>;
  /** Run as a child process even when the script exports main (isolates its GPU memory). */
  child?: boolean;
}

/** Runs a stage script with `argv`: through its exported main, else as `node --import tsx script argv`. */
export async function runStage(script: string, argv: string[], opts: StageOptions = {}): Promise<void> {
  if (!existsSync(script)) throw new Error(`stage script "${script}" does not exist`);
  const name = basename(script);
  console.log(`\n== ${name} ${argv.join(' ')}`);
  if (!opts.child && exportsMain(script)) {
    const mod = (await import(pathToFileURL(script).href)) as { main: (argv: string[]) => Promise<unknown> };
    try {
      await mod.main(argv);
    } catch (e) {
      throw new Error(`${name} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    return;
  }
  const code = await new Promise<number | null>((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...argv], {
      stdio: 'inherit',
      env: { ...process.env, ...opts.env },
    });
    child.on('error', fail);
    child.on('close', done);
  });
  if (code !== 0)
    throw new Error(
      `${name} exited with code ${code} (rerun: npx tsx ${relative(process.cwd(), script)} ${argv.join(' ')})`,
    );
}

export const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Content hash of a file ('missing' when absent): used for the small CSV/TXT files stages exchange. */
export function fileHash(path: string): string {
  return existsSync(path) && statSync(path).isFile() ? sha256(readFileSync(path)) : 'missing';
}

/**
 * Hash of a stage's own code: the script and, transitively, every module it imports from its own
 * folder (a split recipe's stages live in sibling files such as cam-train.ts). Engine and model
 * code is left out on purpose: an edit there does not silently redo hours of stages; start a new
 * --out to rerun on changed engine code.
 */
export function codeHash(script: string): string {
  const dir = dirname(resolve(script));
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/\bfrom\s+'\.\/([\w.-]+\.ts)'/g)) visit(join(dir, m[1]));
  };
  visit(resolve(script));
  return sha256(
    [...seen]
      .sort()
      .map((f) => `${basename(f)}\t${fileHash(f)}`)
      .join('\n'),
  );
}

/** A cheap identity for a folder of many files: every file's relative name and size (not contents). */
export function folderListingHash(dir: string): string {
  if (!existsSync(dir)) return 'missing';
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.')) continue; // stamps and temporaries
      const p = join(d, name),
        s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out.push(`${relative(dir, p)}\t${s.size}`);
    }
  };
  walk(dir);
  return sha256(out.join('\n'));
}

interface Stamp {
  hash: string;
  key: unknown;
  finished?: string;
}
const readStamp = (path: string): Stamp | null => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Stamp;
  } catch {
    return null;
  }
};

/** The hash a stage folder was completed with, or null. */
export function stampOf(dir: string): string | null {
  return readStamp(join(dir, '.stamp.json'))?.hash ?? null;
}

/**
 * Runs `run` for the stage folder `dir` unless it already holds outputs made with the same `key`.
 * Returns 'reused' or 'ran', and the key's hash (downstream stages put it in their keys).
 */
export async function withStamp(
  dir: string,
  key: unknown,
  run: () => Promise<void>,
  opts: { within: string },
): Promise<{ status: 'reused' | 'ran'; hash: string }> {
  const hash = sha256(JSON.stringify(key));
  const done = join(dir, '.stamp.json'),
    pending = join(dir, '.stamp-pending.json');
  if (readStamp(done)?.hash === hash) {
    console.log(`reusing ${dir} (its inputs and flags have not changed)`);
    return { status: 'reused', hash };
  }
  const started = readStamp(pending);
  if (existsSync(dir) && readdirSync(dir).length > 0 && started?.hash !== hash) {
    // Outputs of other inputs (or of unknown origin): never let a stage resume from them.
    const root = resolve(opts.within) + sep;
    if (!resolve(dir).startsWith(root)) throw new Error(`refusing to clear "${dir}": it is outside "${opts.within}"`);
    console.log(`clearing ${dir}: its inputs or flags changed since it was written`);
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(pending, JSON.stringify({ hash, key }, null, 2) + '\n');
  await run();
  writeFileSync(done, JSON.stringify({ hash, key, finished: new Date().toISOString() }, null, 2) + '\n');
  rmSync(pending, { force: true });
  return { status: 'ran', hash };
}

/** Ids unique within a pool: the file stem, prefixed by the parent folder where stems collide (centre_A/img1). */
export function uniqueIds(paths: readonly string[]): string[] {
  const stemOf = (p: string) => basename(p, extname(p));
  const count = new Map<string, number>();
  for (const p of paths) count.set(stemOf(p), (count.get(stemOf(p)) ?? 0) + 1);
  const ids = paths.map((p) => (count.get(stemOf(p))! > 1 ? `${basename(dirname(p))}_${stemOf(p)}` : stemOf(p)));
  const seen = new Map<string, number>();
  return ids.map((id) => {
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    return n ? `${id}_${n}` : id;
  });
}
