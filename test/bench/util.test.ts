// The peer benches' alternation and table: engines take turns in an order reversed every other
// round, and the table's ratio is the ratio of median wall times, with the machine named.
import { describe, it, expect } from 'vitest';
import { cpus } from 'node:os';
import { alternate, peerTable, roundOrder, spread } from './util.ts';

describe('peer bench helpers', () => {
  it('roundOrder runs the engines forward in even rounds and backward in odd ones', () => {
    expect([0, 1, 2, 3].map((r) => roundOrder(3, r))).toEqual([
      [0, 1, 2],
      [2, 1, 0],
      [0, 1, 2],
      [2, 1, 0],
    ]);
  });

  it('alternate steps every engine once per round, in that order, and keeps times per engine', async () => {
    const calls: string[] = [];
    const engine = (name: string, ms: number) => ({
      name,
      step: async () => {
        calls.push(name);
        return { ms: ms * calls.length, cpuMs: ms };
      },
    });
    const times = await alternate([engine('a', 1), engine('b', 10)], 3);
    expect(calls).toEqual(['a', 'b', 'b', 'a', 'a', 'b']);
    expect(times[0].map((t) => t.ms)).toEqual([1, 4, 5]);
    expect(times[1].map((t) => t.ms)).toEqual([20, 30, 60]);
  });

  it('spread gives the median and range', () => {
    expect(spread([5, 1, 3, 9])).toEqual({ median: 4, min: 1, max: 9 });
  });

  it('the table: ratio of medians with the per-round range, and the machine in the notes', () => {
    const t = (ms: number) => ({ ms, cpuMs: ms / 2 });
    const table = peerTable(
      'step',
      4,
      [
        { name: 'ours', times: [t(1000), t(3000), t(2000)] },
        { name: 'peer', times: [t(5000), t(3000), t(8000)] },
        { name: 'broken', times: [], error: 'exit 1' },
      ],
      { rounds: 3, adapter: 'some adapter', loadStart: '1.0 2.0 3.0' },
    );
    expect(table.rows[0]).toEqual(['ours', '2.00 (1.00-3.00)', '1.00 (0.50-1.50)', '2.00', '1.00x', '']);
    // Medians 5 s vs 2 s; per round 5, 1 and 4 times.
    expect(table.rows[1][4]).toBe('2.50x (rounds 1.00-5.00x)');
    expect(table.rows[2]).toEqual(['broken', '-', '-', '-', '-', 'exit 1']);
    const notes = table.notes!.join(' ');
    expect(notes).toContain(`${cpus()[0].model}, ${cpus().length} cores`);
    expect(notes).toContain('1.0 2.0 3.0 at start');
    expect(notes).toContain('adapter: some adapter');
  });
});
