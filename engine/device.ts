// The device layer: the only code in the engine that calls WebGPU.
//
// - Ops record dispatches into one shared command encoder (one compute pass per window); the
//   window is submitted on readback, on an explicit flush, or every `flushEvery` dispatches (a
//   knob, engine/flags.ts, like `debug`).
// - Uniforms of a window are packed into one arena buffer, written once just before submit.
// - Buffers come from a pool with size classes; a released buffer is reused only after the
//   submit that last used it has completed (queue.writeBuffer runs ahead of recorded work, so an
//   early reuse would overwrite data a pending dispatch still reads).
// - Pipelines are cached by kernel name + template parameters and labelled with their op
//   (pipelines.ts: synchronous compile on first dispatch, or asynchronous ahead of time through
//   precompile/warm-up); validation and WGSL errors are collected per window with error scopes
//   and rethrown as JS errors naming the op.
// References: tfjs-backend-webgpu (buffer manager, release after submit), jax-js (pipeline cache).
import type { UniformWord } from './uniforms.ts';
import { knobs, setFlag } from './flags.ts';
import { PipelineCache, kernelKey, type KernelSpec } from './pipelines.ts';
import { OpTimes } from './op-times.ts';

export type Debug = 0 | 1 | 2 | 3;

export interface DeviceOptions {
  device: GPUDevice;
  /** WGSL source of every kernel, keyed by file name without `.wgsl`. */
  shaders: Record<string, string>;
  /** `adapter.info.architecture === 'software'` etc.: used to choose kernels. */
  isCpuAdapter: boolean;
  /** Sets the `debug` knob (engine/flags.ts) when given. */
  debug?: Debug;
  log?: (line: string) => void;
  /** Wraps every wait on the GPU (lets a runtime throttle its event polling). */
  awaitGpu?: <T>(p: Promise<T>) => Promise<T>;
  /** Sets the `flushEvery` knob (engine/flags.ts) when given. */
  flushEvery?: number;
}

export interface Dispatch {
  op: string;
  shader: string;
  params?: Record<string, string | number>;
  /** Bound read-only or read-write as the shader declares them, at bindings 1..n. */
  buffers: GPUBufferBinding[];
  /** Packed uniform words bound at binding 0 (the shader's `u`). */
  uniforms: ArrayBuffer;
  /** Each packed word's kind: checked against the shader's struct U when the pipeline is made. */
  words?: readonly UniformWord[];
  /** The struct U field each word was packed as (undefined where packed positionally). */
  names?: readonly (string | undefined)[];
  workgroups: [number, number?, number?];
}

const UNIFORM_ALIGN = 256;
const ARENA_BYTES = 64 * 1024;
const STORAGE_USAGE = 0x80 | 0x08 | 0x04; // STORAGE | COPY_DST | COPY_SRC

/** Size class: multiples of 256 B up to 4 KiB, then 8 classes per octave (at most 12.5% waste). */
export function sizeClass(bytes: number): number {
  const b = Math.max(bytes, 16);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

interface Window {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder | null;
  arena: GPUBuffer;
  arenaBytes: Uint8Array<ArrayBuffer>;
  arenaUsed: number;
  dispatches: number;
  ops: string[];
  released: GPUBuffer[];
}

export class Device {
  readonly gpu: GPUDevice;
  readonly isCpuAdapter: boolean;
  readonly hasF16: boolean;
  readonly hasTimestamps: boolean;
  readonly limits: GPUSupportedLimits;
  /** The `debug` knob (engine/flags.ts): setting it here sets the knob. */
  get debug(): Debug {
    return knobs.debug as Debug;
  }
  set debug(level: Debug) {
    setFlag('debug', level);
  }
  /** A human-readable adapter name for logs and benchmark tables. */
  adapterName = 'unknown adapter';
  private readonly log: (line: string) => void;
  private readonly awaitGpu: <T>(p: Promise<T>) => Promise<T>;
  private readonly pipelines: PipelineCache;
  /** While precompile() runs its dry forward: the kernels it dispatches, by key. */
  private dry: Map<string, KernelSpec> | null = null;
  /** While timeRegions() records: dispatches go into its timed pass, and nothing flushes. */
  private timing = false;
  private readonly free = new Map<string, GPUBuffer[]>();
  private win: Window | null = null;
  private submitted = 0;
  private completed = 0;
  private readonly waiting = new Map<number, GPUBuffer[]>();
  private readonly errors: Promise<GPUError | null>[] = [];
  private lost: string | null = null;
  /** Buffers handed out and not yet released: the leak check reads this. */
  liveBuffers = 0;
  allocatedBytes = 0;
  peakLiveBytes = 0;
  private liveBytes = 0;
  private readonly opTimes = new OpTimes();

  constructor(o: DeviceOptions) {
    this.gpu = o.device;
    this.isCpuAdapter = o.isCpuAdapter;
    this.hasF16 = o.device.features.has('shader-f16');
    this.hasTimestamps = o.device.features.has('timestamp-query');
    this.limits = o.device.limits;
    if (o.debug !== undefined) setFlag('debug', o.debug);
    if (o.flushEvery !== undefined) setFlag('flushEvery', o.flushEvery);
    this.log = o.log ?? ((l) => console.log(l));
    this.awaitGpu = o.awaitGpu ?? ((p) => p);
    this.pipelines = new PipelineCache(
      o.device,
      o.shaders,
      (l) => this.log(l),
      () => this.debug,
    );
    void o.device.lost.then((info) => {
      if (info.reason !== 'destroyed') this.lost = `WebGPU device lost: ${info.message}`;
    });
  }

  // ---- buffers -------------------------------------------------------------------------------

  /** A storage buffer of at least `bytes` bytes from the pool, labelled with its op. */
  acquire(bytes: number, op: string): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.limits.maxStorageBufferBindingSize) {
      throw new Error(
        `${op}: a tensor of ${bytes} bytes exceeds this adapter's ` +
          `maxStorageBufferBindingSize (${this.limits.maxStorageBufferBindingSize})`,
      );
    }
    const key = `s${size}`;
    let buf = this.free.get(key)?.pop();
    if (!buf) {
      buf = this.gpu.createBuffer({ label: op, size, usage: STORAGE_USAGE });
      this.allocatedBytes += size;
      if (this.debug >= 3) this.log(`[alloc] ${op} ${size} B (pool total ${this.allocatedBytes} B)`);
    } else {
      buf.label = op;
    }
    this.liveBuffers++;
    this.liveBytes += size;
    this.peakLiveBytes = Math.max(this.peakLiveBytes, this.liveBytes);
    return buf;
  }

  /** Gives a buffer back; it becomes reusable once the work recorded so far has completed. */
  release(buf: GPUBuffer): void {
    this.liveBuffers--;
    this.liveBytes -= buf.size;
    if (this.debug >= 3) this.log(`[free] ${buf.label} ${buf.size} B`);
    if (this.win) this.win.released.push(buf);
    else this.retire(this.submitted, [buf]);
  }

  private retire(submit: number, bufs: GPUBuffer[]): void {
    if (submit <= this.completed) {
      for (const b of bufs) this.pushFree(b);
      return;
    }
    const list = this.waiting.get(submit);
    if (list) list.push(...bufs);
    else this.waiting.set(submit, bufs);
  }

  private pushFree(b: GPUBuffer): void {
    const key = b.usage === STORAGE_USAGE ? `s${b.size}` : `u${b.usage}:${b.size}`;
    const list = this.free.get(key);
    if (list) list.push(b);
    else this.free.set(key, [b]);
  }

  private markCompleted(n: number): void {
    if (n <= this.completed) return;
    for (let s = this.completed + 1; s <= n; s++) {
      for (const b of this.waiting.get(s) ?? []) this.pushFree(b);
      this.waiting.delete(s);
    }
    this.completed = n;
  }

  /** Uploads host data into a fresh pooled buffer. */
  upload(data: ArrayBufferView, op: string): GPUBuffer {
    const buf = this.acquire(data.byteLength, op);
    // Padding to a multiple of 4 bytes, as writeBuffer requires.
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    const n = Math.ceil(bytes.byteLength / 4) * 4;
    let src = bytes;
    if (n !== bytes.byteLength) (src = new Uint8Array(n)).set(bytes);
    if (n > 0) this.gpu.queue.writeBuffer(buf, 0, src);
    return buf;
  }

  // ---- dispatch ------------------------------------------------------------------------------

  /** The WGSL of a kernel after template filling (tests and DEBUG use it). */
  source(shader: string, params?: Record<string, string | number>): string {
    return this.pipelines.source(shader, params);
  }

  /**
   * The pipeline of a kernel, cached by its name and template parameters (a short key: filling
   * the template and hashing the whole WGSL on every dispatch cost more than the dispatch). A new
   * pipeline's uniform layout is checked against the words the op packs.
   */
  pipeline(k: KernelSpec): GPUComputePipeline {
    const key = kernelKey(k.shader, k.params);
    if (!this.pipelines.has(key)) this.openWindow(); // its compile errors land in the window's error scope
    return this.pipelines.get(key, k);
  }

  /**
   * Compiles ahead of time, with createComputePipelineAsync, every kernel `work` dispatches (or
   * the listed kernels): `work` runs in a dry mode where dispatches and copies are not recorded,
   * so its outputs hold garbage and it must not read tensors back. Returns how many pipelines it
   * compiled. See pipelines.ts for how this meets the synchronous dispatch path.
   */
  async precompile(work: (() => void) | readonly KernelSpec[]): Promise<number> {
    if (this.dry) throw new Error('precompile: already running (warm-ups do not nest)');
    let kernels: Iterable<KernelSpec>;
    if (typeof work === 'function') {
      this.flush();
      const seen = new Map<string, KernelSpec>();
      this.dry = seen;
      try {
        work();
      } finally {
        this.dry = null;
      }
      kernels = seen.values();
    } else kernels = work;
    const n = await this.pipelines.compile(kernels, this.awaitGpu);
    if (this.debug >= 1) this.log(`[warmup] ${n} pipelines compiled ahead of time`);
    return n;
  }

  dispatch(d: Dispatch): void {
    if (this.lost) throw new Error(this.lost);
    if (this.dry) {
      const key = kernelKey(d.shader, d.params);
      if (!this.pipelines.has(key) && !this.dry.has(key)) this.dry.set(key, d);
      return;
    }
    const pipe = this.pipeline(d);
    const w = this.openWindow();
    if (w.arenaUsed + d.uniforms.byteLength > ARENA_BYTES) {
      this.flush();
      return this.dispatch(d);
    }
    const uOff = w.arenaUsed;
    w.arenaBytes.set(new Uint8Array(d.uniforms), uOff);
    w.arenaUsed += Math.ceil(Math.max(d.uniforms.byteLength, 16) / UNIFORM_ALIGN) * UNIFORM_ALIGN;
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: w.arena, offset: uOff, size: Math.max(d.uniforms.byteLength, 16) } },
    ];
    d.buffers.forEach((resource, i) => entries.push({ binding: i + 1, resource }));
    const group = this.gpu.createBindGroup({ label: d.op, layout: pipe.getBindGroupLayout(0), entries });
    const [x, y = 1, z = 1] = d.workgroups;
    const timed = this.debug >= 1 && this.hasTimestamps && !this.timing;
    if (timed) {
      this.endPass(w);
      const qs = this.gpu.createQuerySet({ label: d.op, type: 'timestamp', count: 2 });
      const pass = w.encoder.beginComputePass({
        label: d.op,
        timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
      });
      pass.setPipeline(pipe);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
      this.pendingTimings.push({ op: d.op, read: this.timestamps(w, qs, 2, `${d.op}:ts`) });
    } else {
      w.pass ??= w.encoder.beginComputePass({ label: 'window' });
      w.pass.setPipeline(pipe);
      w.pass.setBindGroup(0, group);
      w.pass.dispatchWorkgroups(x, y, z);
    }
    w.dispatches++;
    if (this.debug >= 1) w.ops.push(d.op);
    if (w.dispatches >= knobs.flushEvery && !this.timing) this.flush();
  }

  /** True while precompile() runs its dry forward (dispatches are not recorded). */
  get dryRun(): boolean {
    return this.dry !== null;
  }

  /** Logs a line when the `debug` knob is at least `level`. */
  note(level: Debug, line: string): void {
    if (this.debug >= level) this.log(line);
  }

  /**
   * GPU time in ns of each region (the dispatches one callback records), recorded back to back
   * now, after the work recorded so far: each region is a compute pass with timestamp writes, or
   * without timestamp queries its own submit, timed from the previous submit's completion to its
   * own (onSubmittedWorkDone). Regions must only dispatch (no copies or readbacks), a few
   * kernels each (their uniforms share one window's arena).
   */
  timeRegions(regions: readonly (() => void)[]): Promise<number[]> {
    this.flush();
    if (!this.hasTimestamps) {
      const done = (): Promise<number> => this.gpu.queue.onSubmittedWorkDone().then(() => performance.now());
      const marks = [done()];
      for (const run of regions) {
        run();
        this.flush();
        marks.push(done());
      }
      return this.awaitGpu(Promise.all(marks)).then((t) => regions.map((_, i) => (t[i + 1] - t[i]) * 1e6));
    }
    const n = regions.length;
    const qs = this.gpu.createQuerySet({ label: 'measure', type: 'timestamp', count: 2 * n });
    const w = this.openWindow();
    this.timing = true;
    try {
      regions.forEach((run, i) => {
        this.endPass(w);
        w.pass = w.encoder.beginComputePass({
          label: 'measure',
          timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
        });
        run();
      });
    } finally {
      this.timing = false;
    }
    this.endPass(w);
    const read = this.timestamps(w, qs, 2 * n, 'measure');
    this.flush();
    return read().then((t) => regions.map((_, i) => Number(t[2 * i + 1] - t[2 * i])));
  }

  /** Copies `bytes` bytes between storage buffers inside the current window. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (this.dry) return;
    const w = this.openWindow();
    this.endPass(w);
    w.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  private openWindow(): Window {
    if (this.win) return this.win;
    this.gpu.pushErrorScope('validation');
    this.gpu.pushErrorScope('out-of-memory');
    const arena = this.takeBuffer(ARENA_BYTES, 0x40 | 0x08, 'uniforms'); // UNIFORM | COPY_DST
    this.win = {
      encoder: this.gpu.createCommandEncoder({ label: 'window' }),
      pass: null,
      arena,
      arenaBytes: new Uint8Array(ARENA_BYTES),
      arenaUsed: 0,
      dispatches: 0,
      ops: [],
      released: [arena],
    };
    return this.win;
  }

  private takeBuffer(size: number, usage: number, label: string): GPUBuffer {
    const buf = this.free.get(`u${usage}:${size}`)?.pop();
    if (buf) return buf;
    this.allocatedBytes += size;
    return this.gpu.createBuffer({ label, size, usage });
  }

  private endPass(w: Window): void {
    if (w.pass) {
      w.pass.end();
      w.pass = null;
    }
  }

  private pendingTimings: { op: string; read: () => Promise<bigint[]> }[] = [];

  /** Resolves `count` timestamps of `qs` at the end of the window; the reader maps them once submitted. */
  private timestamps(w: Window, qs: GPUQuerySet, count: number, label: string): () => Promise<bigint[]> {
    const resolve = this.gpu.createBuffer({ label, size: 8 * count, usage: 0x200 | 0x04 }); // QUERY_RESOLVE | COPY_SRC
    const read = this.gpu.createBuffer({ label, size: 8 * count, usage: 0x01 | 0x08 }); // MAP_READ | COPY_DST
    w.encoder.resolveQuerySet(qs, 0, count, resolve, 0);
    w.encoder.copyBufferToBuffer(resolve, 0, read, 0, 8 * count);
    return async () => {
      await this.awaitGpu(read.mapAsync(1));
      const t = [...new BigUint64Array(read.getMappedRange().slice(0))];
      for (const b of [read, resolve, qs]) b.destroy();
      return t;
    };
  }

  /** Submits the recorded window. Cheap when nothing is recorded. */
  flush(): void {
    const w = this.win;
    if (!w) return;
    this.win = null;
    this.endPass(w);
    if (w.arenaUsed > 0) this.gpu.queue.writeBuffer(w.arena, 0, w.arenaBytes, 0, w.arenaUsed);
    this.gpu.queue.submit([w.encoder.finish()]);
    const n = ++this.submitted;
    this.errors.push(this.gpu.popErrorScope(), this.gpu.popErrorScope());
    this.retire(n, w.released);
    void this.gpu.queue.onSubmittedWorkDone().then(() => this.markCompleted(n));
    if (this.debug >= 1) {
      const counts = new Map<string, number>();
      for (const op of w.ops) counts.set(op, (counts.get(op) ?? 0) + 1);
      this.log(
        `[flush] submit ${n}: ${w.dispatches} dispatches (${[...counts].map(([op, k]) => `${op} x${k}`).join(', ')})`,
      );
      const timings = this.pendingTimings;
      this.pendingTimings = [];
      for (const t of timings) void this.collectTiming(t);
    }
  }

  private async collectTiming(t: { op: string; read: () => Promise<bigint[]> }): Promise<void> {
    const [b, e] = await t.read();
    this.opTimes.add(t.op, Number(e - b));
    if (this.debug >= 1) this.log(`[gpu] ${t.op} ${(Number(e - b) / 1e3).toFixed(1)} us`);
  }

  /** Per-op GPU time (DEBUG>=1 with timestamp queries), most expensive first. */
  timingReport(): string {
    return this.opTimes.report();
  }

  /** Throws the first validation/WGSL/out-of-memory error seen so far, naming the op. */
  async checkErrors(): Promise<void> {
    const pending = this.errors.splice(0);
    const errs = (await this.awaitGpu(Promise.all(pending))).filter((e): e is GPUError => e !== null);
    if (this.lost) throw new Error(this.lost);
    if (errs.length > 0) throw new Error(`WebGPU error: ${errs[0].message}`);
  }

  /** Reads a storage buffer back. The only sync point in the engine. */
  async read(buf: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    if (this.lost) throw new Error(this.lost);
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.takeBuffer(sizeClass(size), 0x01 | 0x08, 'readback'); // MAP_READ | COPY_DST
    const w = this.openWindow();
    this.endPass(w);
    if (size > 0) w.encoder.copyBufferToBuffer(buf, offset, staging, 0, size);
    this.flush();
    const upTo = this.submitted;
    try {
      await this.awaitGpu(staging.mapAsync(1, 0, size));
    } catch (e) {
      await this.checkErrors();
      throw e;
    }
    this.markCompleted(upTo);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.pushFree(staging);
    await this.checkErrors();
    return out;
  }

  /** Waits for all submitted work (benchmarks use it). */
  async sync(): Promise<void> {
    this.flush();
    const n = this.submitted;
    await this.awaitGpu(this.gpu.queue.onSubmittedWorkDone());
    this.markCompleted(n);
    await this.checkErrors();
  }

  /** Destroys pooled buffers that are not in use (after a big model is dropped, say). */
  trim(): void {
    for (const list of this.free.values())
      for (const b of list) {
        this.allocatedBytes -= b.size;
        b.destroy();
      }
    this.free.clear();
  }

  /** Buffer and pipeline counts (tests and benchmarks read them). */
  stats() {
    const { liveBuffers, liveBytes, peakLiveBytes, allocatedBytes } = this;
    const compiles = { ...this.pipelines.compiles };
    return { liveBuffers, liveBytes, peakLiveBytes, allocatedBytes, pipelines: this.pipelines.size, compiles };
  }

  resetPeak(): void {
    this.peakLiveBytes = this.liveBytes;
  }
}
