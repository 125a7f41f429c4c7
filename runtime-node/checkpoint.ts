// Atomic checkpoint files: bytes go to a temporary file in the same folder, are flushed to disk,
// then renamed over the target (rename is atomic on POSIX file systems), and the folder entry is
// flushed too. A process killed at any moment leaves the old checkpoint or the new one, plus
// perhaps its partial temporary file, which the next write of the same target removes (and
// runtime-node/run-guard.ts removes at the start of a run).
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, basename, join } from 'node:path';

export function writeAtomic(path: string, bytes: Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  removeStaleTemps(dir, basename(path));
  const fd = openSync(tmp, 'w');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } catch {
    /* some file systems cannot fsync a folder */
  } finally {
    closeSync(dfd);
  }
}

/** The checkpoint's bytes, or null when there is none yet. */
export function readIfExists(path: string): Uint8Array | null {
  return existsSync(path) ? new Uint8Array(readFileSync(path)) : null;
}

/** Removes `.<name>.tmp-<pid>` files of `name` in `dir` whose writer is no longer running. */
function removeStaleTemps(dir: string, name: string): void {
  const prefix = `.${name}.tmp-`;
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(prefix)) continue;
    const pid = Number(f.slice(prefix.length));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (pid === process.pid || !alive(pid)) rmSync(join(dir, f), { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
