// The page's user requests (load a checkpoint, run an image, segment a box), run one at a time
// with the newest winning: while one runs, a newer request of the same lane replaces the waiting
// one (rapid clicks on five samples run the first and the last, not all five), and a request that
// is running learns through `current()` that a newer one has made its result stale, so it can stop
// before drawing it. GPU work cannot be interrupted mid-dispatch; stopping between stages is what
// a running job can do. No DOM: the Node tests drive it directly.

/** Lanes in the order waiting jobs run: a new checkpoint first, then the image, then box prompts. */
export type Lane = 'model' | 'image' | 'box';
const ORDER: Lane[] = ['model', 'image', 'box'];

/**
 * Which newer requests supersede one, waiting or running: a newer one of its lane, and for a box
 * prompt also a new image or model (the box was drawn on what is being replaced). A new model
 * does not supersede an image request: the image still has to be decoded, then runs through the
 * new model (the page checks `pending` to skip a run that a waiting job will redo).
 */
const STALE_AFTER: Record<Lane, Lane[]> = { model: ['model'], image: ['image'], box: ['model', 'image', 'box'] };

export interface Job {
  lane: Lane;
  what: string;
  run: (current: () => boolean) => Promise<void>;
}

export interface RequestEvents {
  /** A job starts (`what` describes it) or the queue empties (null). */
  busy(what: string | null, lane: Lane | null): void;
  /** A job finished, failed or was superseded (waiting, or stale when it stopped). */
  settled(outcome: 'done' | 'failed' | 'superseded', job: Job, error?: unknown): void;
}

export class Requests {
  private waiting = new Map<Lane, { job: Job; seq: number }>();
  private lastSeq: Record<Lane, number> = { model: 0, image: 0, box: 0 };
  private seq = 0;
  private running = false;
  constructor(private readonly events: RequestEvents) {}

  get idle(): boolean {
    return !this.running && this.waiting.size === 0;
  }

  /** Whether a job of `lane` is waiting to run. */
  pending(lane: Lane): boolean {
    return this.waiting.has(lane);
  }

  submit(job: Job): void {
    const seq = ++this.seq;
    this.lastSeq[job.lane] = seq;
    for (const lane of ORDER) {
      const w = this.waiting.get(lane);
      if (w && STALE_AFTER[lane].includes(job.lane)) {
        this.waiting.delete(lane);
        this.events.settled('superseded', w.job);
      }
    }
    this.waiting.set(job.lane, { job, seq });
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    for (;;) {
      const lane = ORDER.find((l) => this.waiting.has(l));
      if (!lane) break;
      const { job, seq } = this.waiting.get(lane)!;
      this.waiting.delete(lane);
      const current = () => STALE_AFTER[lane].every((l) => this.lastSeq[l] <= seq);
      this.events.busy(job.what, lane);
      try {
        await job.run(current);
        this.events.settled(current() ? 'done' : 'superseded', job);
      } catch (e) {
        // a job that stopped because it was stale is superseded, not failed
        this.events.settled(current() ? 'failed' : 'superseded', job, e);
      }
    }
    this.running = false;
    this.events.busy(null, null);
  }
}
