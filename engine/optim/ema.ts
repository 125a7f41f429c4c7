// Exponential moving average of a model's weights (timm ModelEmaV2; Polyak & Juditsky 1992):
// after each optimizer step, ema = decay·ema + (1 - decay)·value for every f32 entry of the
// model's state_dict (parameters and float buffers alike, as ModelEmaV2), integer buffers copied.
// The averages live in flat slabs; an update gathers the model's values into a scratch slab with
// the same layout (encoder copies) and runs one dispatch per slab (shaders/optim-ema.wgsl).
// Evaluate with the averaged weights by loading them into a second instance of the model:
// `evalModel.loadStateDict(ema.stateDict())`.
import { Tensor, noGrad } from '../tensor.ts';
import { emaUpdate } from '../ops/fused-update.ts';
import { clone } from '../ops/movement.ts';
import type { Module } from '../nn/module.ts';
import { copy_, packFlat } from '../flat.ts';

export class ModelEma {
  decay: number;
  /** Updates so far. */
  updates = 0;
  private readonly names: string[];
  private readonly floats: { name: string; ema: Tensor }[] = [];
  private readonly others: { name: string; ema: Tensor }[] = [];
  private readonly slabs: Tensor[];

  constructor(model: Module, opts: { decay?: number } = {}) {
    this.decay = opts.decay ?? 0.9999;
    const sd = model.stateDict();
    this.names = [...sd.keys()];
    const floats = [...sd].filter(([, t]) => t.dtype === 'f32');
    const pack = noGrad(() =>
      packFlat(
        floats.map(([, t]) => t),
        'ModelEma',
        true,
      ),
    );
    this.slabs = pack.slabs;
    floats.forEach(([name], i) => this.floats.push({ name, ema: pack.windows[i].keep() }));
    for (const [name, t] of sd) if (t.dtype !== 'f32') this.others.push({ name, ema: noGrad(() => clone(t)).keep() });
  }

  /** ema = decay·ema + (1 - decay)·model (call after optimizer.step()). */
  update(model: Module, decay = this.decay): void {
    const sd = model.stateDict();
    if (sd.size !== this.names.length || this.names.some((n) => !sd.has(n))) {
      throw new Error(
        `ModelEma.update: the model's state_dict keys differ from the averaged model's (${sd.size} ` +
          `vs ${this.names.length} entries)`,
      );
    }
    noGrad(() => {
      const scratch = packFlat(
        this.floats.map(({ name }) => sd.get(name)!),
        'ModelEma',
        true,
      );
      this.slabs.forEach((slab, i) => emaUpdate(scratch.slabs[i], slab, decay));
      for (const t of [...scratch.windows, ...scratch.slabs]) t.dispose();
      for (const { name, ema } of this.others) copy_(ema, sd.get(name)!, 'ModelEma');
    });
    this.updates++;
  }

  /** The averaged state by PyTorch key (the EMA's own tensors: do not dispose them). */
  stateDict(): Map<string, Tensor> {
    const byName = new Map([...this.floats, ...this.others].map(({ name, ema }) => [name, ema]));
    return new Map(this.names.map((n) => [n, byName.get(n)!]));
  }

  /** Copies the averaged weights into `module` (an instance of the same architecture). */
  copyTo(module: Module): void {
    module.loadStateDict(this.stateDict());
  }

  dispose(): void {
    for (const { ema } of [...this.floats, ...this.others]) ema.dispose();
    for (const s of this.slabs) s.dispose();
  }
}
