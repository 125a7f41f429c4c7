// The default MIM teacher when no pre-trained teacher is given: a frozen, randomly initialised
// two-layer convolutional patch encoder. EVA-02 regresses EVA-CLIP's patch features (spec §1.2);
// without such a model, the features of a fixed random network still carry each patch's colour,
// texture and edges (random projections preserve distances), so predicting them from context
// is a meaningful masked-modelling task for small runs. Any engine model that maps images to
// [B, L, T] patch features can take its place (the MIM recipe accepts a safetensors teacher).
//   patch conv k = s = patch (3 -> 2T) -> GELU -> 1x1 conv (2T -> T) -> [B, L, T]
import { Tensor, noGrad, gelu, reshape, permute, conv2d, Generator } from '../engine/index.ts';
import { Module, init, parameter } from '../engine/nn/index.ts';

export class PatchTeacher extends Module {
  declare proj: Tensor;
  declare mix: Tensor;

  constructor(
    readonly patchSize: number,
    readonly dim: number,
    seed = 1234,
  ) {
    super();
    const g = new Generator(seed);
    // Kaiming-normal (fan_in, gain sqrt 2 for the GELU layer, 1 for the linear one).
    this.proj = parameter(init.kaimingNormal([2 * dim, 3, patchSize, patchSize], { generator: g }), false);
    this.mix = parameter(init.kaimingNormal([dim, 2 * dim, 1, 1], { nonlinearity: 'linear', generator: g }), false);
  }

  /** Images [B, 3, H, W] -> patch features [B, L, T] (no gradient: the teacher is frozen). */
  forward(x: Tensor): Tensor {
    return noGrad(() => {
      const h = gelu(conv2d(x, this.proj, null, { stride: this.patchSize })); // [B, 2T, gh, gw]
      const f = conv2d(h, this.mix, null); // -> [B, T, gh, gw]
      const [b, t, gh, gw] = f.shape;
      return permute(reshape(f, [b, t, gh * gw]), [0, 2, 1]); // -> [B, L, T]
    });
  }
}
