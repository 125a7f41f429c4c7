// runtime-node/run-guard.ts: the guard every training recipe uses (non-finite values, writable
// output folder, lock file, stale temporaries, SIGINT/SIGTERM saving, data identity, state fields).
import { describe, expect, it, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  acquireLock,
  checkDataIdentity,
  checkFinite,
  checkStateFields,
  checkStep,
  cleanStaleTemps,
  dataIdentity,
  ensureWritable,
  NonFiniteError,
  releaseLock,
  RunGuardError,
  startRun,
} from '../../runtime-node/run-guard.ts';

const tmp = mkdtempSync(join(tmpdir(), 'run-guard-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const LOOP = join(__dirname, 'fixtures', 'guarded-loop.ts');
/** A pid that is certainly not running: a child that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

describe('checkFinite / checkStep', () => {
  it('pass finite values and name the quantity and step of a non-finite one', () => {
    expect(checkFinite(1.5, 'loss', 3)).toBe(1.5);
    expect(() => checkFinite(NaN, 'loss at rate 1.25', 7)).toThrow(NonFiniteError);
    expect(() => checkFinite(NaN, 'loss at rate 1.25', 7)).toThrow(
      /loss at rate 1\.25 is NaN at step 7: no checkpoint was written/,
    );
    expect(() => checkFinite(-Infinity, 'grad norm')).toThrow(/grad norm is -Infinity: /);
    expect(() =>
      checkStep(4, { 'loss (rate 1)': 0.3, 'grad norm (rate 1.25)': Infinity, 'loss (rate 1.25)': NaN }),
    ).toThrow(/grad norm \(rate 1\.25\) is Infinity, loss \(rate 1\.25\) is NaN at step 4/);
    expect(() => checkStep(4, { a: 1, b: 2 })).not.toThrow();
  });
});

describe('start of run', () => {
  it('creates --out and refuses a read-only one at once, naming it', () => {
    const d = join(tmp, 'new', 'nested');
    ensureWritable(d);
    expect(existsSync(d)).toBe(true);
    expect(readdirSync(d)).toEqual([]); // the probe is removed
    // A path below a regular file cannot be created, whoever runs the test.
    writeFileSync(join(tmp, 'a-file'), 'x');
    expect(() => ensureWritable(join(tmp, 'a-file', 'out'))).toThrow(
      new RegExp(`--out ".*a-file/out" is not writable \\((ENOTDIR|EEXIST)\\)`),
    );
    if (process.getuid?.() === 0) return; // root writes into read-only folders: the mode check needs another user
    const ro = join(tmp, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    expect(() => ensureWritable(ro)).toThrow(RunGuardError);
    expect(() => ensureWritable(ro)).toThrow(new RegExp(`--out "${ro}" is not writable \\(EACCES\\)`));
    expect(() => ensureWritable(join(ro, 'sub'))).toThrow(/is not writable/);
  });

  it('removes partial temporaries of dead writers only', () => {
    const d = join(tmp, 'temps');
    mkdirSync(join(d, 'mim'), { recursive: true });
    const dead = deadPid();
    const files = [
      `.state.safetensors.tmp-${dead}`,
      `mim/.mim.safetensors.tmp-${dead}`,
      `.weights.safetensors.tmp-${process.pid}`,
    ];
    const keep = [`.state.safetensors.tmp-${process.ppid}`, 'state.safetensors', 'notes.tmp-1'];
    for (const f of [...files, ...keep]) writeFileSync(join(d, f), 'x');
    expect(
      cleanStaleTemps(d)
        .map((p) => p.slice(d.length + 1))
        .sort(),
    ).toEqual([...files].sort());
    for (const f of keep) expect(existsSync(join(d, f)), f).toBe(true);
  });

  it('locks the folder: a live owner is an error naming its pid and the folder; a dead one is taken over', () => {
    const d = join(tmp, 'lock');
    mkdirSync(d);
    const lock = join(d, '.run.lock');
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, script: 'other.ts', started: '2026-01-01T00:00:00Z' }));
    expect(() => acquireLock(d, 'me.ts')).toThrow(
      new RegExp(`"${d}" is in use by another run: pid ${process.ppid} \\(other\\.ts`),
    );
    writeFileSync(lock, JSON.stringify({ pid: deadPid(), script: 'other.ts', started: '2026-01-01T00:00:00Z' }));
    const lines: string[] = [];
    expect(acquireLock(d, 'me.ts', (l) => lines.push(l))).toBe(lock);
    expect(lines[0]).toMatch(/taking over .*\.run\.lock: its owner, pid \d+ \(other\.ts.*is no longer running/);
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid);
    expect(() => acquireLock(d, 'me.ts')).toThrow(/already in use by this process/);
    releaseLock(lock);
    expect(existsSync(lock)).toBe(false);
    writeFileSync(lock, '{"pid": 12'); // torn lock file: stale
    expect(acquireLock(d, 'me.ts', () => undefined)).toBe(lock);
    releaseLock(lock);
  });

  it('startRun does all three and close releases the lock', () => {
    const d = join(tmp, 'start');
    mkdirSync(d);
    writeFileSync(join(d, `.state.safetensors.tmp-${deadPid()}`), 'partial');
    const lines: string[] = [];
    const g = startRun(d, { script: 't.ts', log: (l) => lines.push(l) });
    expect(g.removedTemps).toHaveLength(1);
    expect(lines.join('\n')).toMatch(/removed 1 partial file/);
    expect(readdirSync(d)).toEqual(['.run.lock']);
    expect(() => startRun(d, { script: 't.ts' })).toThrow(/already in use by this process/);
    g.close();
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('signals', () => {
  const launch = (dir: string) => {
    const child = spawn(process.execPath, ['--import', 'tsx', LOOP, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const ready = new Promise<void>((ok) =>
      child.stdout.on('data', () => {
        if (out.includes('ready')) ok();
      }),
    );
    const done = new Promise<number | null>((ok) => child.on('close', (code) => ok(code)));
    return { child, ready, done, out: () => out, err: () => err };
  };

  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal} saves the state after the step in flight, releases the lock and exits ${code}`, async () => {
      const d = join(tmp, `sig-${signal}`);
      const p = launch(d);
      await p.ready;
      await new Promise((r) => setTimeout(r, 300));
      p.child.kill(signal);
      expect(await p.done, p.err()).toBe(code);
      const steps = readFileSync(join(d, 'steps.txt'), 'utf8').trim().split('\n').map(Number);
      // The saved state is that of the last completed step, and no step started after the signal.
      expect(readFileSync(join(d, 'state.txt'), 'utf8')).toBe(`saved after step ${steps[steps.length - 1]}`);
      expect(steps.length).toBeGreaterThan(0);
      expect(existsSync(join(d, '.run.lock'))).toBe(false);
      expect(p.err()).toMatch(new RegExp(`${signal}: saving the training state`));
    }, 30_000);
  }

  it('a second run on a locked folder stops at once naming the owner pid', async () => {
    const d = join(tmp, 'two-runs');
    const a = launch(d);
    await a.ready;
    const b = launch(d);
    expect(await b.done).not.toBe(0);
    expect(b.err()).toMatch(new RegExp(`is in use by another run: pid ${a.child.pid} \\(guarded-loop\\.ts`));
    a.child.kill('SIGTERM');
    expect(await a.done).toBe(143);
  }, 30_000);
});

describe('data identity', () => {
  it('is stable for the same ids and files, and refuses other data naming both', () => {
    const d = join(tmp, 'data');
    mkdirSync(d);
    writeFileSync(join(d, 'a.jpg'), 'aaaa');
    writeFileSync(join(d, 'b.jpg'), 'bb');
    const ids = [
      { id: 'a', files: [join(d, 'a.jpg')] },
      { id: 'b', files: [join(d, 'b.jpg')] },
    ];
    const one = dataIdentity({ data: d }, { train: ids, test: [] });
    expect(dataIdentity({ data: '/moved' }, { train: ids, test: [] }).lists).toEqual(one.lists);
    expect(() =>
      checkDataIdentity(one, dataIdentity({ data: '/moved' }, { train: ids, test: [] }), 's.safetensors'),
    ).not.toThrow();
    // Same number of ids, other ids: refused, naming both folders.
    const other = dataIdentity({ data: '/other' }, { train: [{ id: 'a' }, { id: 'c' }], test: [] });
    expect(other.lists.train.count).toBe(2);
    expect(() => checkDataIdentity(one, other, 's.safetensors')).toThrow(RunGuardError);
    expect(() => checkDataIdentity(one, other, 's.safetensors')).toThrow(
      new RegExp(
        `s\\.safetensors was trained on other data: data ${d} \\(train: 2 ids.*this run has data ` +
          `/other \\(train: 2 ids`,
      ),
    );
    // Same ids, a file changed size: refused too.
    writeFileSync(join(d, 'b.jpg'), 'bbb');
    expect(() => checkDataIdentity(one, dataIdentity({ data: d }, { train: ids, test: [] }), 's')).toThrow(
      /other data/,
    );
    const lines: string[] = [];
    checkDataIdentity(undefined, one, 's', (l) => lines.push(l));
    expect(lines[0]).toMatch(/records no data identity/);
  });
});

describe('checkStateFields', () => {
  it('names the file and every missing or mistyped field', () => {
    const s = { extra: { step: 3, losses: [1, 2] }, data: { epoch: 0 } };
    expect(() =>
      checkStateFields(s, { 'extra.step': 'number', 'extra.losses': 'number[]', data: 'object' }, 'x.safetensors'),
    ).not.toThrow();
    expect(() =>
      checkStateFields(
        { extra: { losses: [1, 'a'] } },
        { 'extra.step': 'number', 'extra.losses': 'number[]', data: 'object' },
        '/r/state.safetensors',
      ),
    ).toThrow(
      new RegExp(
        String.raw`\/r\/state\.safetensors: not a usable training state of this recipe: ` +
          String.raw`extra\.step should be a finite number but is missing; extra\.losses ` +
          String.raw`should be a list of numbers but is \[1,"a"\]; data should be an object ` +
          String.raw`but is missing`,
      ),
    );
  });
});
