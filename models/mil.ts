// EndoKED-MIL (Wang et al., arXiv 2310.11173, spec §2.2): a shared frame encoder, two bag-level
// teachers and an instance-level student, distilled into each other each epoch.
// - Teacher 1: attention-based MIL (Ilse et al., "Attention-based Deep Multiple Instance
//   Learning", arXiv 1802.04712), non-gated as EndoKED uses it, or gated (a = wᵀ(tanh(Vh) ⊙ σ(Uh))).
// - Teacher 2: DSMIL (Li et al., "Dual-stream MIL", arXiv 2011.08939): instance classifier,
//   critical instance per class, attention of every instance's query to the critical ones, and a
//   Conv1d(2, 2, kernel L) bag head.
// - Student: an instance classifier MLP with a 2-way head.
// Reference implementations: zwyang6/ENDOKED `EndoKED_MIL/models/resnetv1.py`
// (Bag_Classifier_Attention_Head, Bag_Classifier_DSMIL_Head, Instance_Classifier_Head) and the
// loss wrappers map_abmil / map_dsmil in `train_Endo_BagDistillation_SharedEnc_Similarity_StuFilter.py`;
// AMLab-Amsterdam/AttentionDeepMIL `model.py` (GatedAttention: attention_V, attention_U,
// attention_weights); binli123/dsmil-wsi `dsmil.py`. Field paths are the reference's state_dict
// keys (classifier.N, attention.N, top_layer, fc_dsmil.0, q_dsmil, v_dsmil.1, fcc_dsmil).
// Facts kept from the reference:
// - ABMIL's instance score is the attention logit A_ before the softmax; DSMIL's is softmax(c)[1].
// - ABMIL's loss is the BCE (with +1e-5 inside the logs) of softmax(bag logits)[1].
// - DSMIL's loss is 0.5·CE(bag, y) + 0.5·BCE(max_n softmax(c)[:, 1], y), and the training loop
//   softmaxes the bag output before it, so the CE sees probabilities (a double softmax).
//   `dsmilLoss(..., { doubleSoftmax })` keeps it (default) or applies CE to the logits.
// - DSMIL holds an unused `top_layer` (it is in the reference's state_dict); it gets no gradient.
// - Heads initialise every Linear N(0, 0.01) with zero bias (the reference's _initialize_weights);
//   `headInit: 'pytorch'` keeps PyTorch's defaults instead.
// Deviations:
// - Instance_Classifier_Head.forward returns its 4096-d features instead of the logits (a bug,
//   spec §2.2 ⚠); the student here returns the 2-way logits.
// - The encoder is a small CNN (spec §4 MIL-µ: 16-32-64, GAP), not the ImageNet ResNet-18: stages
//   of [conv3x3 (stride 2 first) + BatchNorm2d (or GroupNorm) + ReLU], then global average pooling, kaiming-normal
//   (fan_out, relu) conv init as torchvision's ResNet. Head widths follow the config
//   (reference: L = 1024, D = 512, student 4096).
import {
  Tensor,
  fmt,
  add,
  sub,
  mul,
  div,
  log,
  neg,
  clamp,
  tanh,
  sigmoid,
  softmax,
  mean,
  max,
  narrow,
  reshape,
  transpose,
  matmul,
  argmax,
  indexSelect,
  crossEntropy,
  tensor,
} from '../engine/index.ts';
import {
  Module,
  Linear,
  Dropout,
  Sequential,
  type Layer,
  ReLU,
  Conv2d,
  Conv1d,
  BatchNorm1d,
  BatchNorm2d,
  GroupNorm,
  init,
} from '../engine/nn/index.ts';

const { normal_, zeros_, kaimingNormal_ } = init;

export interface MilConfig {
  inChans: number;
  /** Frames are resized to imageSize² before the encoder. */
  imageSize: number;
  /** Encoder stage widths; each stage halves the resolution. The feature is the last width. */
  channels: number[];
  /** Conv layers per stage (the first has stride 2). */
  blocksPerStage: number;
  /**
   * Encoder normalisation: 'batch' (BatchNorm2d, as ResNet-18) or 'group' (GroupNorm with 4
   * channels a group): batch statistics over one bag differ from the running ones used in eval.
   */
  encoderNorm: 'batch' | 'group';
  /** ABMIL: MLP width L and attention width D (reference 1024 / 512; gated paper 500 / 128). */
  abmilHidden: number;
  abmilAttn: number;
  /** Teacher 1 uses gated attention (AttentionDeepMIL's GatedAttention) instead of tanh attention. */
  gated: boolean;
  /** DSMIL MLP and query/value width (reference 1024). */
  dsmilHidden: number;
  /** Student MLP width (reference 4096). */
  studentHidden: number;
  /** Dropout in the head MLPs (reference 0.5). */
  dropout: number;
  headInit: 'reference' | 'pytorch';
}

export const MIL: Record<'mu' | 'small', MilConfig> = {
  // spec §4 MIL-µ: 32² frames, CNN 16-32-64 -> GAP 64; ABMIL L 64, D 32; DSMIL 64; student 64.
  mu: {
    inChans: 3,
    imageSize: 32,
    channels: [16, 32, 64],
    blocksPerStage: 1,
    encoderNorm: 'batch',
    abmilHidden: 64,
    abmilAttn: 32,
    gated: false,
    dsmilHidden: 64,
    studentHidden: 64,
    dropout: 0.5,
    headInit: 'reference',
  },
  // Wider, for real frames on a CPU driver: 64², four stages of two convs.
  small: {
    inChans: 3,
    imageSize: 64,
    channels: [16, 32, 64, 128],
    blocksPerStage: 2,
    encoderNorm: 'batch',
    abmilHidden: 128,
    abmilAttn: 64,
    gated: false,
    dsmilHidden: 128,
    studentHidden: 128,
    dropout: 0.5,
    headInit: 'reference',
  },
};

class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}
class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

function initHead(m: Module, how: MilConfig['headInit']): void {
  if (how !== 'reference') return;
  for (const l of m.modules())
    if (l instanceof Linear) {
      normal_(l.weight, 0, 0.01);
      if (l.bias) zeros_(l.bias);
    }
}

/** Small CNN: [n, C, S, S] -> [n, channels.at(-1)] (global average pooling). */
export class MilEncoder extends Module {
  features: Sequential;
  constructor(readonly config: MilConfig) {
    super();
    const layers: Layer[] = [];
    let cin = config.inChans;
    for (const c of config.channels) {
      for (let b = 0; b < config.blocksPerStage; b++) {
        const conv = new Conv2d(cin, c, 3, { stride: b === 0 ? 2 : 1, padding: 1, bias: false });
        kaimingNormal_(conv.weight, { mode: 'fan_out', nonlinearity: 'relu' });
        layers.push(
          conv,
          config.encoderNorm === 'group' ? new GroupNorm(Math.max(1, c / 4), c) : new BatchNorm2d(c),
          new ReLU(),
        );
        cin = c;
      }
    }
    this.features = new Sequential(...layers);
  }

  get outDim(): number {
    return this.config.channels[this.config.channels.length - 1];
  }

  forward(x: Tensor): Tensor {
    const { inChans: c, imageSize: s } = this.config;
    if (x.ndim !== 4 || x.shape[1] !== c || x.shape[2] !== s || x.shape[3] !== s)
      throw new Error(`MilEncoder: input ${fmt(x.shape)} must be [n, ${c}, ${s}, ${s}]`);
    return mean(this.features.forward(x), [2, 3]); // [n, C, s', s'] -> [n, C]
  }
}

export interface AbmilOutput {
  logits: Tensor;
  scores: Tensor;
  attention: Tensor;
}

/** Teacher 1 (Bag_Classifier_Attention_Head; gated: AttentionDeepMIL's GatedAttention pooling). */
export class AbmilHead extends Module {
  classifier: Sequential;
  attention?: Sequential;
  attention_V?: Sequential;
  attention_U?: Sequential;
  attention_weights?: Linear;
  top_layer: Linear;
  constructor(
    inDim: number,
    readonly L: number,
    readonly D: number,
    readonly gated: boolean,
    dropout: number,
    init: MilConfig['headInit'],
  ) {
    super();
    this.classifier = new Sequential(
      new Dropout(dropout),
      new Linear(inDim, L),
      new BatchNorm1d(L),
      new ReLU(),
      new Dropout(dropout),
      new Linear(L, L),
      new BatchNorm1d(L),
      new ReLU(),
    );
    if (gated) {
      this.attention_V = new Sequential(new Linear(L, D), new Tanh());
      this.attention_U = new Sequential(new Linear(L, D), new Sigmoid());
      this.attention_weights = new Linear(D, 1);
    } else {
      this.attention = new Sequential(new Linear(L, D), new Tanh(), new Linear(D, 1));
    }
    this.top_layer = new Linear(L, 2);
    initHead(this, init);
  }

  /** feat [n, F] -> bag logits [1, 2], instance scores A_ [n] (pre-softmax), attention [1, n]. */
  forward(feat: Tensor): AbmilOutput {
    const x = this.classifier.forward(feat); // [n, F] -> [n, L]
    const a = this.gated
      ? this.attention_weights!.forward(mul(this.attention_V!.forward(x), this.attention_U!.forward(x)))
      : this.attention!.forward(x); // [n, 1]
    const scores = reshape(a, [a.shape[0]]);
    const attention = softmax(transpose(a, 0, 1), 1); // softmax over instances: [1, n]
    // [1, n] x [n, L] -> [1, L] -> [1, 2]
    return { logits: this.top_layer.forward(matmul(attention, x)), scores, attention };
  }
}

export interface DsmilOutput {
  logits: Tensor;
  instanceLogits: Tensor;
  scores: Tensor;
  attention: Tensor;
}

/** Teacher 2 (Bag_Classifier_DSMIL_Head with features = None). */
export class DsmilHead extends Module {
  classifier: Sequential;
  fc_dsmil: Sequential;
  q_dsmil: Linear;
  v_dsmil: Sequential;
  fcc_dsmil: Conv1d;
  /** In the reference's state_dict but never used in its forward. */
  top_layer: Linear;
  constructor(
    inDim: number,
    readonly L: number,
    dropout: number,
    init: MilConfig['headInit'],
  ) {
    super();
    this.classifier = new Sequential(
      new Dropout(dropout),
      new Linear(inDim, L),
      new ReLU(),
      new Dropout(dropout),
      new Linear(L, L),
      new ReLU(),
    );
    this.fc_dsmil = new Sequential(new Linear(L, 2));
    this.q_dsmil = new Linear(L, L);
    this.v_dsmil = new Sequential(new Dropout(0), new Linear(L, L));
    this.fcc_dsmil = new Conv1d(2, 2, L);
    this.top_layer = new Linear(L, 2);
    initHead(this, init);
  }

  /** feat [n, F] -> bag logits [1, 2], instance logits c [n, 2], scores softmax(c)[:, 1] [n], attention [n, 2]. */
  forward(feat: Tensor): DsmilOutput {
    const x = this.classifier.forward(feat); // [n, F] -> [n, L]
    const n = x.shape[0];
    const c = this.fc_dsmil.forward(x); // [n, 2]
    const v = this.v_dsmil.forward(x); // [n, L]
    const q = this.q_dsmil.forward(x); // [n, L]
    const critical = argmax(c, 0); // the top instance per class: [2] (i32; torch.sort(..., descending)[0])
    const qMax = this.q_dsmil.forward(indexSelect(x, 0, critical)); // [2, L]
    // [n, 2], softmax over instances
    const attention = softmax(div(matmul(q, qMax, { transB: true }), Math.sqrt(this.L)), 0);
    const b = matmul(attention, v, { transA: true }); // [2, n] x [n, L] -> [2, L]
    // [1, 2, L] -> [1, 2, 1] -> [1, 2]
    const logits = reshape(this.fcc_dsmil.forward(reshape(b, [1, 2, this.L])), [1, 2]);
    const scores = reshape(narrow(softmax(c, 1), 1, 1, 1), [n]);
    return { logits, instanceLogits: c, scores, attention };
  }
}

/** The student (Instance_Classifier_Head), returning the 2-way logits (see the header). */
export class InstanceHead extends Module {
  classifier: Sequential;
  top_layer: Linear;
  constructor(inDim: number, hidden: number, dropout: number, init: MilConfig['headInit']) {
    super();
    this.classifier = new Sequential(
      new Dropout(dropout),
      new Linear(inDim, hidden),
      new ReLU(),
      new Dropout(dropout),
      new Linear(hidden, hidden),
      new ReLU(),
    );
    this.top_layer = new Linear(hidden, 2);
    initHead(this, init);
  }

  /** feat [n, F] -> logits [n, 2]. */
  forward(feat: Tensor): Tensor {
    return this.top_layer.forward(this.classifier.forward(feat));
  }
}

/** Encoder, both teachers and the student in one module (keys encoder.*, teacher1.*, teacher2.*, student.*). */
export class EndoKedMil extends Module {
  encoder: MilEncoder;
  teacher1: AbmilHead;
  teacher2: DsmilHead;
  student: InstanceHead;
  constructor(readonly config: MilConfig) {
    super();
    this.encoder = new MilEncoder(config);
    const f = this.encoder.outDim,
      { dropout, headInit } = config;
    this.teacher1 = new AbmilHead(f, config.abmilHidden, config.abmilAttn, config.gated, dropout, headInit);
    this.teacher2 = new DsmilHead(f, config.dsmilHidden, dropout, headInit);
    this.student = new InstanceHead(f, config.studentHidden, dropout, headInit);
  }
}

export function endoKedMil(variant: keyof typeof MIL | MilConfig, overrides: Partial<MilConfig> = {}): EndoKedMil {
  return new EndoKedMil({ ...(typeof variant === 'string' ? MIL[variant] : variant), ...overrides });
}

// ---- losses and pseudo-labels ------------------------------------------------------------------

const EPS = 1e-5; // inside every log, as the reference

/** -(y log(p + eps) + (1 - y) log(1 - p + eps)) for a scalar probability tensor and a 0/1 label. */
function bceEps(p: Tensor, y: number): Tensor {
  return neg(add(mul(log(add(p, EPS)), y), mul(log(add(sub(1, p), EPS)), 1 - y)));
}

function checkLabel(op: string, y: number): void {
  if (y !== 0 && y !== 1) throw new Error(`${op}: bag label ${y} must be 0 or 1`);
}

/** map_abmil.get_loss: BCE of softmax(bag logits)[1] against the bag label. */
export function abmilLoss(out: AbmilOutput, y: number): Tensor {
  checkLabel('abmilLoss', y);
  return bceEps(reshape(narrow(softmax(out.logits, 1), 1, 1, 1), []), y);
}

/** map_dsmil.get_loss: 0.5 CE(bag) + 0.5 BCE(max instance probability); doubleSoftmax as the reference's loop. */
export function dsmilLoss(out: DsmilOutput, y: number, opts: { doubleSoftmax?: boolean } = {}): Tensor {
  checkLabel('dsmilLoss', y);
  const bag = (opts.doubleSoftmax ?? true) ? softmax(out.logits, 1) : out.logits;
  const target = tensor([y], [1], 'i32');
  const ce = crossEntropy(bag, target); // target stays alive for the backward (the caller's tidy frees it)
  return add(mul(ce, 0.5), mul(bceEps(max(out.scores), y), 0.5));
}

/**
 * The student loss: -mean[λ(1 - p̂) log(s0 + eps) + (1 - λ) p̂ log(s1 + eps)], s = softmax(logits).
 * logits [n, 2], pseudo [n]; λ = stu_loss_weight_neg.
 */
export function studentLoss(logits: Tensor, pseudo: Tensor, lambda: number): Tensor {
  const n = logits.shape[0];
  if (logits.ndim !== 2 || logits.shape[1] !== 2 || pseudo.ndim !== 1 || pseudo.shape[0] !== n) {
    throw new Error(
      `studentLoss: logits ${fmt(logits.shape)} must be [n, 2] and pseudo-labels ${fmt(pseudo.shape)} [n]`,
    );
  }
  const s = softmax(logits, 1);
  const logS0 = log(add(reshape(narrow(s, 1, 0, 1), [n]), EPS)),
    logS1 = log(add(reshape(narrow(s, 1, 1, 1), [n]), EPS));
  return neg(mean(add(mul(mul(sub(1, pseudo), logS0), lambda), mul(mul(pseudo, logS1), 1 - lambda))));
}

/** Min and max of a teacher's instance scores over the last teacher pass (norm_AttnScore2Prob). */
export interface ScoreRange {
  min: number;
  max: number;
}

/**
 * The merged pseudo-label p̂ = Σ_t w_t clamp((s_t - min_t) / (max_t - min_t), 1e-5, 1 - 1e-5),
 * set to 0 where the bag is negative (bagPositive [n]: 1 in positive bags, 0 in negative ones).
 */
export function pseudoLabels(scores: Tensor[], ranges: ScoreRange[], weights: number[], bagPositive: Tensor): Tensor {
  if (scores.length !== ranges.length || scores.length !== weights.length)
    throw new Error(
      `pseudoLabels: ${scores.length} score tensors, ${ranges.length} ranges and ${weights.length} weights must agree`,
    );
  let p: Tensor | null = null;
  scores.forEach((s, t) => {
    const { min: lo, max: hi } = ranges[t];
    const term = mul(clamp(div(sub(s, lo), hi - lo), EPS, 1 - EPS), weights[t]);
    p = p ? add(p, term) : term;
  });
  return mul(p!, bagPositive);
}
