// Shared by the model benchmarks: a peer engine in its own process (each engine gets its own
// device and its own memory), driven step by step over the protocol of peers/README.md, so that
// the bench can alternate it with this engine's steps.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { device } from '../../engine/index.ts';
import { alternate, machine, peerTable, type BenchTable, type Contender, type PeerRun, type StepTime } from './util.ts';

type Line = Record<string, unknown>;

/** A peer CLI started with --serve: warmed up once, then one timed step per `step()`. */
export class PeerSession {
  private lines: Line[] = [];
  private waiting: ((l: Line) => void) | null = null;
  private stderr = '';

  private constructor(
    readonly name: string,
    private child: ChildProcessWithoutNullStreams,
  ) {
    child.stderr.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-2000);
    });
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (!l.startsWith('{')) return;
      this.push(JSON.parse(l) as Line);
    });
    child.on('close', (code) => this.push({ error: `exit ${code}: ${this.stderr.slice(-300)}` }));
  }

  private push(l: Line) {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(l);
    } else this.lines.push(l);
  }

  private next(): Promise<Line> {
    const l = this.lines.shift();
    return l ? Promise.resolve(l) : new Promise((r) => (this.waiting = r));
  }

  /** Spawns `cmd args` (which must include --serve) and waits for its warm-up to end. */
  static async start(name: string, cmd: string, args: string[]): Promise<{ peer?: PeerSession; ready: Line }> {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new PeerSession(name, child);
    const ready = await peer.next();
    if (ready.ready) return { peer, ready };
    child.kill();
    return { ready };
  }

  async step(): Promise<StepTime> {
    this.child.stdin.write('step\n');
    const l = await this.next();
    if (typeof l.ms !== 'number') throw new Error(`${this.name}: ${String(l.error ?? JSON.stringify(l))}`);
    return { ms: l.ms, cpuMs: Number(l.cpuMs) };
  }

  /** Ends the process (it disposes its model and device first). */
  async close(): Promise<void> {
    this.child.stdin.end('quit\n');
    await new Promise((r) => (this.child.exitCode === null ? this.child.on('close', r) : r(null)));
  }
}

export const PEERS = join(dirname(fileURLToPath(import.meta.url)), 'peers');

export function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

export interface PeerSpec {
  /** Short name for BENCH_PEERS (e.g. tfjs, torch). */
  key: string;
  name: string;
  cmd: string;
  args: string[];
}

/**
 * One peer benchmark: starts the peers picked by BENCH_PEERS (comma-separated keys; default all)
 * one after the other (each warms up alone), warms up this engine's step, alternates one step of
 * every engine per round over BENCH_ROUNDS rounds (default 5), ends the peers, and tabulates.
 * `ourStep` must leave the GPU idle when it resolves.
 */
export async function benchAgainstPeers(opts: {
  title: string;
  batch: number;
  peers: PeerSpec[];
  ourStep: () => Promise<void>;
  extra?: string[];
}): Promise<BenchTable> {
  const rounds = envInt('BENCH_ROUNDS', 5);
  const want = process.env.BENCH_PEERS?.split(',').map((s) => s.trim());
  const loadStart = machine().load;
  const started: { spec: PeerSpec; peer?: PeerSession; ready: Record<string, unknown> }[] = [];
  for (const spec of opts.peers.filter((p) => !want || want.includes(p.key)))
    started.push({ spec, ...(await PeerSession.start(spec.name, spec.cmd, spec.args)) });
  await opts.ourStep(); // warm-up: pipeline compilation
  const ours: Contender = {
    name: 'this engine (WebGPU)',
    step: async () => {
      const t0 = performance.now(),
        c0 = process.cpuUsage();
      await opts.ourStep();
      const c = process.cpuUsage(c0);
      return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
    },
  };
  const live = started.flatMap((s) => (s.peer ? [s.peer] : []));
  const times = await alternate([ours, ...live], rounds, (m) => console.error(m));
  for (const p of live) await p.close();
  const runs: PeerRun[] = [
    { name: ours.name, times: times[0] },
    ...started.map((s) =>
      s.peer
        ? { name: s.spec.name, times: times[1 + live.indexOf(s.peer)] }
        : { name: s.spec.name, times: [], error: String(s.ready.error) },
    ),
  ];
  return peerTable(opts.title, opts.batch, runs, {
    rounds,
    adapter: device().adapterName,
    loadStart,
    extra: opts.extra,
  });
}
