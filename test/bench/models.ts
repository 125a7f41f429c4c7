// Shared by the model benchmarks: run a peer CLI in its own process (each engine gets its own
// device), and time one of our training steps.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PeerResult {
  msPerStep: number;
  imagesPerSec: number;
  stepsMs?: number[];
  warmupMs?: number;
  error?: string;
}

/** Runs `cmd args` and parses the one JSON line it prints (an {error} result if it fails). */
export function runPeer(cmd: string, args: string[]): Promise<PeerResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => {
      const line = out
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      try {
        resolve(
          line ? JSON.parse(line) : { msPerStep: NaN, imagesPerSec: NaN, error: `exit ${code}: ${err.slice(-300)}` },
        );
      } catch {
        resolve({ msPerStep: NaN, imagesPerSec: NaN, error: `unparsable output: ${line}` });
      }
    });
  });
}

export const PEERS = join(dirname(fileURLToPath(import.meta.url)), 'peers');

export function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
}
