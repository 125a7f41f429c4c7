// Atomic checkpoint files: bytes go to a temporary file in the same folder, are flushed to disk,
// then renamed over the target (rename is atomic on POSIX file systems), and the folder entry is
// flushed too. A process killed at any moment leaves the old checkpoint or the new one.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export function writeAtomic(path: string, bytes: Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
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
  try { fsyncSync(dfd); } catch { /* some file systems cannot fsync a folder */ } finally { closeSync(dfd); }
}

/** The checkpoint's bytes, or null when there is none yet. */
export function readIfExists(path: string): Uint8Array | null {
  return existsSync(path) ? new Uint8Array(readFileSync(path)) : null;
}
