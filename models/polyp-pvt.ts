// Polyp-PVT (Dong et al., "Polyp-PVT: Polyp Segmentation with Pyramid Vision Transformers",
// arXiv 2108.06932), the segmenter of EndoKED-SEG (spec §2.5). A PVTv2 backbone (pvtv2.ts) and
// three modules:
// - CIM (camouflage identification) on the stride-4 map x1: x1 = CA(x1)·x1, then SA(x1)·x1.
// - CFM (cascaded fusion) of the 1x1-reduced x4, x3, x2 -> a [channel, H/8, W/8] map; P1 from it.
// - SAM (similarity aggregation): a graph-convolution module over mids² nodes that attends from
//   the CFM map to the (halved) CIM feature; P2 from it.
// P1 and P2 are 1x1 convs to one channel, upsampled x8 (bilinear, align_corners False).
// Loss: structure_loss(P1) + structure_loss(P2) (polypPvtLoss below).
// Reference implementation: DengPingFan/Polyp-PVT `lib/pvt.py` (EndoKED-SEG's copy: zwyang6/ENDOKED
// `EndoKED_SEG/lib/pvt.py`). Field names and their order are its state_dict keys: backbone.*,
// Translayer2_0, Translayer2_1, Translayer3_1, Translayer4_1, CFM, ca, sa, SAM, out_SAM, out_CFM.
// Facts from the reference worth knowing: BasicConv2d is conv (no bias) + BN and does NOT apply
// its ReLU; CFM upsamples bilinearly x2 with align_corners=True and down05 halves with
// align_corners=True; SAM resizes the edge map with nearest (F.upsample's default), takes
// softmax over its channels and keeps channel 1; its anchors are AdaptiveAvgPool(mids + 2) with
// the border cells cropped; the node softmax runs over the node axis (dim 1).
// Deviations: the reference hard-codes ChannelAttention(64) and SAM(32, 16, mids 4); here they
// follow the config (embedDims[0], channel, samPlaneMid, samMids) so the tiny `mu` config works.
// For mu (spec §4: channel 16, mids 2 with AdaptiveAvgPool 4): the pool is mids + 2 = 4, as in
// the reference's structure, giving 2 x 2 = 4 nodes; the SAM state width is channel / 2 = 8 (the
// reference's 32 -> 16 ratio). The reference loads ImageNet PVTv2 weights in its constructor;
// here weights are loaded separately (loadStateDict), as everywhere in this project.
import {
  Tensor,
  fmt,
  add,
  sub,
  mul,
  relu,
  sigmoid,
  softmax,
  mean,
  max,
  cat,
  matmul,
  reshape,
  slice,
  narrow,
  transpose,
  interpolate,
  adaptiveAvgPool2d,
  adaptiveMaxPool2d,
  structureLoss,
  noGrad,
  tidy,
} from '../engine/index.ts';
import { Module, Conv2d, Conv1d, BatchNorm2d } from '../engine/nn/index.ts';
import { PVT_V2, PyramidVisionTransformerV2, type PvtV2Config } from './pvtv2.ts';

export interface PolypPvtConfig {
  backbone: PvtV2Config;
  /** Decoder width: Translayers, CFM and SAM input (32 in the reference). */
  channel: number;
  /** SAM state channels (plane_mid; 16 in the reference). */
  samPlaneMid: number;
  /** SAM nodes per side: AdaptiveAvgPool(mids + 2) cropped to mids x mids nodes (4 -> 16 nodes in the reference). */
  samMids: number;
}

export const POLYP_PVT: Record<'b2' | 'mu', PolypPvtConfig> = {
  b2: { backbone: PVT_V2.b2, channel: 32, samPlaneMid: 16, samMids: 4 },
  mu: { backbone: PVT_V2.mu, channel: 16, samPlaneMid: 8, samMids: 2 },
};

/** Conv (no bias) + BatchNorm; the reference defines a ReLU here but never applies it. */
export class BasicConv2d extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;
  constructor(inPlanes: number, outPlanes: number, kernelSize: number, padding = 0) {
    super();
    this.conv = new Conv2d(inPlanes, outPlanes, kernelSize, { padding, bias: false });
    this.bn = new BatchNorm2d(outPlanes);
  }

  forward(x: Tensor): Tensor {
    return this.bn.forward(this.conv.forward(x));
  }
}

const up2 = (x: Tensor) => interpolate(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: true });

/** Cascaded fusion module: (x4ᵗ at s, x3ᵗ at 2s, x2ᵗ at 4s) -> [channel, 4s]. */
export class CFM extends Module {
  conv_upsample1: BasicConv2d;
  conv_upsample2: BasicConv2d;
  conv_upsample3: BasicConv2d;
  conv_upsample4: BasicConv2d;
  conv_upsample5: BasicConv2d;
  conv_concat2: BasicConv2d;
  conv_concat3: BasicConv2d;
  conv4: BasicConv2d;
  constructor(c: number) {
    super();
    const bc = (i: number, o: number) => new BasicConv2d(i, o, 3, 1);
    [this.conv_upsample1, this.conv_upsample2, this.conv_upsample3, this.conv_upsample4] = [
      bc(c, c),
      bc(c, c),
      bc(c, c),
      bc(c, c),
    ];
    this.conv_upsample5 = bc(2 * c, 2 * c);
    this.conv_concat2 = bc(2 * c, 2 * c);
    this.conv_concat3 = bc(3 * c, 3 * c);
    this.conv4 = bc(3 * c, c);
  }

  forward(x1: Tensor, x2: Tensor, x3: Tensor): Tensor {
    const x2_1 = mul(this.conv_upsample1.forward(up2(x1)), x2);
    const x3_1 = mul(mul(this.conv_upsample2.forward(up2(up2(x1))), this.conv_upsample3.forward(up2(x2))), x3);
    const x2_2 = this.conv_concat2.forward(cat([x2_1, this.conv_upsample4.forward(up2(x1))], 1)); // -> [B, 2c, 2s]
    const x3_2 = this.conv_concat3.forward(cat([x3_1, this.conv_upsample5.forward(up2(x2_2))], 1)); // -> [B, 3c, 4s]
    return this.conv4.forward(x3_2); // [B, 3c, 4s] -> [B, c, 4s]
  }
}

/** Graph convolution over nodes: h = conv1(xᵀ)ᵀ - x, then relu(conv2(h)). x: [B, state, nodes]. */
export class GCN extends Module {
  conv1: Conv1d;
  conv2: Conv1d;
  constructor(numState: number, numNode: number) {
    super();
    this.conv1 = new Conv1d(numNode, numNode, 1);
    this.conv2 = new Conv1d(numState, numState, 1, { bias: false });
  }

  forward(x: Tensor): Tensor {
    const h = transpose(this.conv1.forward(transpose(x, 1, 2)), 1, 2); // mixes nodes: [B, S, N] -> [B, S, N]
    return relu(this.conv2.forward(sub(h, x)));
  }
}

/** Similarity aggregation module (the reference's SAM, normalize=False). */
export class SAM extends Module {
  conv_state: Conv2d;
  conv_proj: Conv2d;
  gcn: GCN;
  conv_extend: Conv2d;
  constructor(
    numIn: number,
    readonly planeMid: number,
    readonly mids: number,
  ) {
    super();
    this.conv_state = new Conv2d(numIn, planeMid, 1);
    this.conv_proj = new Conv2d(numIn, planeMid, 1);
    this.gcn = new GCN(planeMid, mids * mids);
    this.conv_extend = new Conv2d(planeMid, numIn, 1, { bias: false });
  }

  /** x [B, C, H, W] (CFM feature), edge [B, C', H', W'] (the halved CIM feature). */
  forward(x: Tensor, edge: Tensor): Tensor {
    const [n, , h, w] = x.shape;
    const s = this.planeMid,
      m = this.mids;
    // [B, C', h, w] -> [B, 1, h, w]
    const e = narrow(softmax(interpolate(edge, { size: [h, w], mode: 'nearest' }), 1), 1, 1, 1);
    const state = reshape(this.conv_state.forward(x), [n, s, h * w]); // [B, S, HW]
    const proj = this.conv_proj.forward(x); // [B, S, h, w]
    const priors = adaptiveAvgPool2d(mul(proj, e), m + 2); // [B, S, m+2, m+2]
    const anchor = reshape(slice(priors, [null, null, { start: 1, end: m + 1 }, { start: 1, end: m + 1 }]), [
      n,
      s,
      m * m,
    ]); // -> [B, S, N]
    // [B, N, S] x [B, S, HW] -> [B, N, HW]
    const assign = softmax(matmul(anchor, reshape(proj, [n, s, h * w]), { transA: true }), 1);
    const nodes = matmul(state, assign, { transB: true }); // [B, S, HW] x [B, HW, N] -> [B, S, N]
    const rel = this.gcn.forward(nodes);
    const back = reshape(matmul(rel, assign), [n, s, h, w]); // [B, S, N] x [B, N, HW] -> [B, S, h, w]
    return add(x, this.conv_extend.forward(back));
  }
}

export class ChannelAttention extends Module {
  fc1: Conv2d;
  fc2: Conv2d;
  constructor(inPlanes: number) {
    super();
    const hidden = Math.floor(inPlanes / 16);
    if (hidden < 1)
      throw new Error(
        `ChannelAttention: in_planes ${inPlanes} must be at least 16 (the hidden width is in_planes // 16)`,
      );
    this.fc1 = new Conv2d(inPlanes, hidden, 1, { bias: false });
    this.fc2 = new Conv2d(hidden, inPlanes, 1, { bias: false });
  }

  /** [B, C, H, W] -> channel weights [B, C, 1, 1] in (0, 1). */
  forward(x: Tensor): Tensor {
    const mlp = (t: Tensor) => this.fc2.forward(relu(this.fc1.forward(t)));
    return sigmoid(add(mlp(adaptiveAvgPool2d(x, 1)), mlp(adaptiveMaxPool2d(x, 1))));
  }
}

export class SpatialAttention extends Module {
  conv1: Conv2d;
  constructor(kernelSize: 3 | 7 = 7) {
    super();
    this.conv1 = new Conv2d(2, 1, kernelSize, { padding: kernelSize === 7 ? 3 : 1, bias: false });
  }

  /** [B, C, H, W] -> spatial weights [B, 1, H, W] in (0, 1). */
  forward(x: Tensor): Tensor {
    return sigmoid(this.conv1.forward(cat([mean(x, 1, true), max(x, 1, true)], 1))); // [B, 2, H, W] -> [B, 1, H, W]
  }
}

export class PolypPVT extends Module {
  backbone: PyramidVisionTransformerV2;
  Translayer2_0: BasicConv2d;
  Translayer2_1: BasicConv2d;
  Translayer3_1: BasicConv2d;
  Translayer4_1: BasicConv2d;
  CFM: CFM;
  ca: ChannelAttention;
  sa: SpatialAttention;
  SAM: SAM;
  out_SAM: Conv2d;
  out_CFM: Conv2d;
  constructor(readonly config: PolypPvtConfig) {
    super();
    const c = config.channel,
      d = config.backbone.embedDims;
    this.backbone = new PyramidVisionTransformerV2(config.backbone);
    this.Translayer2_0 = new BasicConv2d(d[0], c, 1);
    this.Translayer2_1 = new BasicConv2d(d[1], c, 1);
    this.Translayer3_1 = new BasicConv2d(d[2], c, 1);
    this.Translayer4_1 = new BasicConv2d(d[3], c, 1);
    this.CFM = new CFM(c);
    this.ca = new ChannelAttention(d[0]);
    this.sa = new SpatialAttention();
    this.SAM = new SAM(c, config.samPlaneMid, config.samMids);
    this.out_SAM = new Conv2d(c, 1, 1);
    this.out_CFM = new Conv2d(c, 1, 1);
  }

  /** The backbone's four maps. */
  forwardFeatures(x: Tensor): Tensor[] {
    return this.backbone.forward(x);
  }

  /** [x1, x2, x3, x4] -> [P1 (CFM), P2 (SAM)], each [B, 1, 8 H2, 8 W2] (H2, W2: x2's grid). */
  forwardHead([x1, x2, x3, x4]: Tensor[]): [Tensor, Tensor] {
    const a = mul(this.ca.forward(x1), x1); // CIM: channel, then spatial attention
    const cim = mul(this.sa.forward(a), a);
    const cfm = this.CFM.forward(
      this.Translayer4_1.forward(x4),
      this.Translayer3_1.forward(x3),
      this.Translayer2_1.forward(x2),
    );
    // down05
    const t2 = interpolate(this.Translayer2_0.forward(cim), { scaleFactor: 0.5, mode: 'bilinear', alignCorners: true });
    const sam = this.SAM.forward(cfm, t2);
    const up8 = (t: Tensor) => interpolate(t, { scaleFactor: 8, mode: 'bilinear', alignCorners: false });
    return [up8(this.out_CFM.forward(cfm)), up8(this.out_SAM.forward(sam))];
  }

  /** [B, 3, H, W] -> [P1, P2] logits, each [B, 1, H, W]; H and W must be multiples of 32. */
  forward(x: Tensor): [Tensor, Tensor] {
    // CFM multiplies x4 upsampled x2 with x3 (and x4 x4 with x2): the grids only line up when
    // every stride-2 stage halves exactly (the reference rounds its training sizes to multiples of 32).
    if (x.ndim !== 4 || x.shape[2] % 32 !== 0 || x.shape[3] % 32 !== 0) {
      throw new Error(`PolypPVT: input ${fmt(x.shape)} must be [B, C, H, W] with H and W multiples of 32`);
    }
    return this.forwardHead(this.forwardFeatures(x));
  }
}

export function polypPvt(
  variant: keyof typeof POLYP_PVT | PolypPvtConfig,
  overrides: Partial<PolypPvtConfig> = {},
): PolypPVT {
  const base = typeof variant === 'string' ? POLYP_PVT[variant] : variant;
  return new PolypPVT({ ...base, ...overrides });
}

/** Polyp-PVT's deep-supervision loss: structure_loss(P1, mask) + structure_loss(P2, mask). */
export function polypPvtLoss(
  [p1, p2]: [Tensor, Tensor],
  mask: Tensor,
  opts?: Parameters<typeof structureLoss>[2],
): Tensor {
  return add(structureLoss(p1, mask, opts), structureLoss(p2, mask, opts));
}

/** Channels of the frozen PVTv2-µ features the SAM-style decoder reads: x2 + x3 + x4. */
export const FEATURE_CHANNELS = 32 + 64 + 128;

/** Images [B, 3, S, S] in [0, 1] -> frozen features [B, 224, S/8, S/8] (EndoKED stage 4 and the browser page). */
export function backboneFeaturesOf(model: PolypPVT, x: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const [, x2, x3, x4] = model.forwardFeatures(x);
      const size: [number, number] = [x2.shape[2], x2.shape[3]];
      const up = (t: Tensor) => interpolate(t, { size, mode: 'bilinear', alignCorners: false });
      return cat([x2, up(x3), up(x4)], 1); // [B, 224, S/8, S/8]
    }),
  );
}
