// EVA-02 masked-image-modelling (MIM) pre-training model: the classifier's trunk (eva02.ts) with a
// learned mask token and an lm_head regressing a frozen teacher's patch features, plus the key
// mapping from EVA's original and MIM checkpoints to timm's layout.
// Paper: Fang et al., "EVA-02: A Visual Representation for Neon Genesis", arXiv 2303.11331.
// Reference: baaivision/EVA EVA-02/asuka modeling_pretrain.py, engine_for_pretraining.py; timm
// timm/models/eva.py checkpoint_filter_fn (key renaming).
import {
  Tensor,
  fmt,
  add,
  sub,
  mul,
  neg,
  mean,
  reshape,
  narrow,
  indexSelect,
  cosineSimilarity,
  tensor,
  zeros,
  defaultGenerator,
  type Generator,
} from '../engine/index.ts';
import { Module, parameter, Linear, LayerNorm, Dropout, ModuleList, init } from '../engine/nn/index.ts';
import {
  type Eva02Config,
  EvaBlock,
  PatchEmbed,
  RotaryEmbedding,
  makeBlocks,
  runTrunk,
  initTrunk,
  validate,
  gridSize,
} from './eva02.ts';

// ---- masked image modelling -------------------------------------------------------------------------

/** Which patches are masked: `weight` [B, L] f32 (1 = masked) and `index` [M] i32 of b * L + l. */
export interface MimMask {
  weight: Tensor;
  index: Tensor;
}

/**
 * Builds a MimMask from one 0/1 array per sample (e.g. MaskingGenerator.generate()). `index` is
 * in row-major order, as PyTorch's x[bool_masked_pos]; samples may mask different counts.
 */
export function mimMask(masks: readonly ArrayLike<number>[]): MimMask {
  const l = masks[0]?.length ?? 0;
  const w: number[] = [],
    idx: number[] = [];
  masks.forEach((m, b) => {
    if (m.length !== l) throw new Error(`mimMask: sample ${b} has ${m.length} patches, sample 0 has ${l}`);
    for (let i = 0; i < l; i++) {
      w.push(m[i] ? 1 : 0);
      if (m[i]) idx.push(b * l + i);
    }
  });
  if (idx.length === 0) throw new Error('mimMask: no patch is masked');
  return { weight: tensor(w, [masks.length, l]), index: tensor(idx, [idx.length], 'i32') };
}

/**
 * EVA-02 MIM model: masked patch embeddings are replaced by the learned mask_token
 * (x (1 - w) + m w), then cls, pos_embed, blocks, the final norm, and lm_head Linear(D, teacherDim)
 * on the masked positions only. Keys as EVA's pre-training checkpoints after timm's renaming.
 */
export class Eva02Mim extends Module {
  declare cls_token: Tensor;
  declare mask_token: Tensor;
  declare pos_embed: Tensor;
  declare patch_embed: PatchEmbed;
  declare pos_drop: Dropout;
  declare rope: RotaryEmbedding;
  declare blocks: ModuleList<EvaBlock>;
  declare norm: LayerNorm;
  declare lm_head: Linear;
  readonly cfg: Eva02Config;

  constructor(
    config: Eva02Config,
    readonly teacherDim: number,
    opts: { generator?: Generator } = {},
  ) {
    super();
    const cfg = (this.cfg = { ...config, numClasses: 0 });
    validate(cfg);
    const generator = opts.generator ?? defaultGenerator;
    const [gh, gw] = gridSize(cfg);
    const d = cfg.embedDim;
    this.cls_token = parameter(zeros([1, 1, d]));
    this.mask_token = parameter(init.truncNormal([1, 1, d], { std: 0.02, generator }));
    this.pos_embed = parameter(zeros([1, gh * gw + 1, d]));
    this.patch_embed = new PatchEmbed(cfg, generator);
    this.pos_drop = new Dropout(cfg.posDropRate, generator);
    this.rope = new RotaryEmbedding(cfg);
    this.blocks = makeBlocks(cfg, generator);
    this.norm = new LayerNorm(d, { eps: cfg.normEps });
    this.lm_head = new Linear(d, teacherDim, { generator });
    initTrunk(this, generator);
  }

  /** Images [B, C, H, W] and the mask -> predictions [M, teacherDim] for the masked patches. */
  forward(x: Tensor, mask: MimMask): Tensor {
    const t = this.patch_embed.forward(x); // -> [B, L, D]
    const [b, l, d] = t.shape;
    if (mask.weight.shape[0] !== b || mask.weight.shape[1] !== l) {
      throw new Error(`Eva02Mim: mask ${fmt(mask.weight.shape)} must be [B, L] = [${b}, ${l}]`);
    }
    const w = reshape(mask.weight, [b, l, 1]);
    const mixed = add(mul(t, sub(1, w)), mul(this.mask_token, w)); // [B, L, D]
    const y = this.norm.forward(runTrunk(this, mixed)); // -> [B, 1 + L, D]
    const patches = reshape(narrow(y, 1, 1, l), [b * l, d]); // -> [B L, D]
    return this.lm_head.forward(indexSelect(patches, 0, mask.index)); // -> [M, D] -> [M, T]
  }

  /** -mean cos(pred, target); teacher is [M, T] or the full [B, L, T] (masked rows are taken). */
  loss(pred: Tensor, teacher: Tensor, mask: MimMask): Tensor {
    const target = teacher.ndim === 3 ? indexSelect(reshape(teacher, [-1, teacher.shape[2]]), 0, mask.index) : teacher;
    return neg(mean(cosineSimilarity(pred, target, -1)));
  }
}

// ---- checkpoints ------------------------------------------------------------------------------------

/**
 * Maps a key of an original EVA-02 checkpoint (baaivision/EVA) to this model's (= timm's) key, as
 * timm's checkpoint_filter_fn; null for keys to drop (rope tables). timm checkpoints need no
 * mapping. With `toClassifier`, MIM keys become fine-tuning keys (norm -> fc_norm, mask_token and
 * lm_head dropped). Conv patch weights and pos_embed are not resampled.
 */
export function timmKeyMap(key: string, opts: { qkvFused: boolean; toClassifier?: boolean }): string | null {
  let k = key;
  for (const p of ['visual.trunk.', 'visual.']) if (k.startsWith(p)) k = k.slice(p.length);
  if (k.includes('rope')) return null;
  k = k
    .replace('mlp.ffn_ln', 'mlp.norm')
    .replace('attn.inner_attn_ln', 'attn.norm')
    .replace('mlp.w12', 'mlp.fc1')
    .replace('mlp.w1', 'mlp.fc1_g')
    .replace('mlp.w2', 'mlp.fc1_x')
    .replace('mlp.w3', 'mlp.fc2');
  if (!opts.qkvFused) k = k.replace('q_bias', 'q_proj.bias').replace('v_bias', 'v_proj.bias');
  if (opts.toClassifier) {
    if (k === 'mask_token' || k.startsWith('lm_head.')) return null;
    if (k === 'norm.weight' || k === 'norm.bias') k = `fc_${k}`;
  }
  return k;
}
