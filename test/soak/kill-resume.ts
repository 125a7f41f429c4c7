// Kill-and-resume soak of the segmenter recipe (recipes/endoked/05-segmenter.ts) on a tiny
// synthetic set: the recipe is killed at random moments (SIGKILL mostly, some of them while a
// checkpoint's temporary file is being written; some SIGTERM/SIGINT, which save and exit) and
// restarted each time, until it finishes. The loss curve in its final state must equal an
// uninterrupted run's exactly, and the output folder must hold no stray file (no partial
// temporary, no lock).
//
//   npx tsx test/soak/kill-resume.ts [--kills 20] [--steps 12] [--seed 1]
// test/recipes/kill-resume.test.ts runs a short version.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { writePolypSet } from '../../runtime-node/synth.ts';
import { defineFlags, isMain, runMain } from '../../runtime-node/flags.ts';

const RECIPE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes', 'endoked', '05-segmenter.ts');

export interface SoakOptions {
  kills: number;
  steps: number;
  seed: number;
  log?: (l: string) => void;
  /** Fixed kinds of kill, in order (then random ones): the short test uses it to cover each kind. */
  plan?: { signal: NodeJS.Signals; when: 'random' | 'during checkpoint write' }[];
}
export interface Kill {
  signal: NodeJS.Signals;
  when: 'random' | 'during checkpoint write';
  code: number | null;
  stepBefore: number;
  stepAfter: number;
  /** Partial temporary files the killed run left (a kill that landed inside a checkpoint write). */
  partialLeft: string[];
}
export interface SoakResult {
  reference: number[];
  resumed: number[];
  kills: Kill[];
  strayFiles: string[];
  restarts: number;
  seconds: number;
}

/** A small deterministic PRNG (mulberry32), so a soak can be replayed by its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const stepOf = (out: string): number => {
  const p = join(out, 'state.safetensors');
  if (!existsSync(p)) return 0;
  return (
    JSON.parse(parseSafetensors(new Uint8Array(readFileSync(p))).metadata!.train_state) as { extra: { step: number } }
  ).extra.step;
};
const lossesOf = (out: string): number[] =>
  (
    JSON.parse(
      parseSafetensors(new Uint8Array(readFileSync(join(out, 'state.safetensors')))).metadata!.train_state,
    ) as { extra: { losses: number[] } }
  ).extra.losses;

/**
 * One invocation; `kill` (if given) decides when to signal it, by progress rather than by time (a
 * shared machine's speed varies tenfold): once training has started and `after` checkpoint writes
 * have completed, either `delayMs` later ('random') or as soon as the next checkpoint's temporary
 * file appears ('during checkpoint write').
 */
function invoke(
  args: string[],
  out: string,
  kill?: { signal: NodeJS.Signals; when: Kill['when']; after: number; delayMs: number },
): Promise<{ code: number | null; killed: boolean; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RECIPE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out_ = '',
      err = '',
      killed = false,
      poll: NodeJS.Timeout | undefined,
      timer: NodeJS.Timeout | undefined;
    let writing = false,
      writes = 0;
    const fire = () => {
      if (!killed && child.exitCode === null) {
        killed = true;
        child.kill(kill!.signal);
      }
    };
    child.stdout.on('data', (d) => {
      out_ += d;
      if (!kill || killed || poll || !/training steps/.test(out_)) return;
      poll = setInterval(() => {
        const tmp = readdirSync(out).some((f) => f.startsWith('.state.safetensors.tmp-'));
        if (writing && !tmp) writes++;
        writing = tmp;
        if (writes < kill.after || killed) return;
        if (kill.when === 'during checkpoint write') {
          if (tmp) fire();
        } else if (!timer) timer = setTimeout(fire, kill.delayMs);
      }, 2);
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve({ code, killed, err });
    });
  });
}

export async function soak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), 'kill-resume-'));
  try {
    const data = join(tmp, 'data');
    await writePolypSet(data, 20, { seed: 3, width: 64, height: 64 });
    const args = (out: string) => [
      '--data',
      data,
      '--size',
      '64',
      '--batch-size',
      '4',
      '--steps',
      String(o.steps),
      '--ckpt-every',
      '1',
      '--check-data',
      'headers',
      '--out',
      out,
    ];
    const refOut = join(tmp, 'reference');
    const ref = await invoke(args(refOut), refOut);
    if (ref.code !== 0) throw new Error(`the uninterrupted run failed (${ref.code}):\n${ref.err.slice(-3000)}`);
    const reference = lossesOf(refOut);
    log(`uninterrupted: ${reference.length} steps, losses ${reference.map((v) => v.toFixed(4)).join(' ')}`);

    const out = join(tmp, 'killed');
    const rnd = prng(o.seed);
    const kills: Kill[] = [];
    let restarts = 0;
    while (true) {
      restarts++;
      if (restarts > o.kills * 3 + 10) throw new Error('the soak does not converge: too many restarts');
      const stepBefore = stepOf(out);
      if (kills.length >= o.kills) {
        // the last invocation runs to the end
        const r = await invoke(args(out), out);
        if (r.code !== 0) throw new Error(`the final resumed run failed (${r.code}):\n${r.err.slice(-3000)}`);
        break;
      }
      const u = rnd();
      const planned = o.plan?.[kills.length];
      const kind = planned?.when ?? (u < 0.35 ? 'during checkpoint write' : 'random');
      const signal: NodeJS.Signals = planned?.signal ?? (u > 0.85 ? (u > 0.93 ? 'SIGINT' : 'SIGTERM') : 'SIGKILL');
      // Each killed run is let through 0 (70%) or 1 completed checkpoint, then killed within
      // 0.5 s (or inside its next checkpoint write): it makes at most a step or two of progress,
      // so the run is still unfinished after all the kills.
      const after = planned ? kills.length % 2 : rnd() < 0.7 ? 0 : 1;
      const r = await invoke(args(out), out, { signal, when: kind, after, delayMs: Math.floor(rnd() * 500) });
      if (!r.killed) {
        // finished before its kill fired: the soak ends with fewer kills
        if (r.code !== 0) throw new Error(`a resumed run failed (${r.code}):\n${r.err.slice(-3000)}`);
        log(`run ${restarts}: finished before its kill; ${kills.length} kills in all`);
        break;
      }
      const k: Kill = {
        signal,
        when: kind,
        code: r.code,
        stepBefore,
        stepAfter: stepOf(out),
        partialLeft: readdirSync(out).filter((f) => f.includes('.tmp-')),
      };
      kills.push(k);
      log(
        `kill ${kills.length}/${o.kills}: ${signal} ${kind}; exit ${r.code ?? 'by signal'}; state ` +
          `step ${stepBefore} -> ${k.stepAfter}` +
          (k.partialLeft.length ? `; left the partial file ${k.partialLeft.join(', ')} (removed by the next run)` : ''),
      );
      if (signal !== 'SIGKILL' && r.code !== (signal === 'SIGINT' ? 130 : 143))
        throw new Error(
          `${signal} should save and exit ${signal === 'SIGINT' ? 130 : 143}, got ${r.code}:\n${r.err.slice(-2000)}`,
        );
    }
    const resumed = lossesOf(out);
    const strayFiles = readdirSync(out).filter((f) => f.startsWith('.'));
    log(`resumed: ${resumed.length} steps, losses ${resumed.map((v) => v.toFixed(4)).join(' ')}`);
    log(
      `identical to the uninterrupted curve: ` +
        `${JSON.stringify(resumed) === JSON.stringify(reference)}; stray files: ` +
        `${strayFiles.length ? strayFiles.join(', ') : 'none'}`,
    );
    return { reference, resumed, kills, strayFiles, restarts, seconds: (performance.now() - t0) / 1000 };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export const FLAGS = defineFlags(
  'test/soak/kill-resume.ts',
  'Kill the segmenter recipe at random moments, resume it, and compare its loss curve with an uninterrupted run.',
  {
    kills: { type: 'int', default: 20, min: 0, help: 'kills before the run may finish' },
    steps: { type: 'int', default: 12, min: 1, help: 'training steps of the recipe' },
    seed: { type: 'int', default: 1, min: 0, help: 'seed of the kill times and kinds' },
  },
);

export async function main(argv: string[]): Promise<boolean | null> {
  const f = FLAGS.parse(argv);
  if (!f) return null;
  const r = await soak({ kills: f.kills, steps: f.steps, seed: f.seed });
  const byKind = r.kills.reduce<Record<string, number>>((m, k) => {
    const key = `${k.signal} ${k.when}`;
    m[key] = (m[key] ?? 0) + 1;
    return m;
  }, {});
  console.log(
    `kills: ${JSON.stringify(byKind)}; ${r.kills.filter((k) => k.partialLeft.length).length} left a ` +
      `partial checkpoint file; restarts ${r.restarts}; ${r.seconds.toFixed(0)} s`,
  );
  const ok = JSON.stringify(r.resumed) === JSON.stringify(r.reference) && r.strayFiles.length === 0;
  console.log(ok ? 'PASS' : 'FAIL');
  process.exitCode = ok ? 0 : 1;
  return ok;
}

if (isMain(import.meta.url)) runMain(main);
