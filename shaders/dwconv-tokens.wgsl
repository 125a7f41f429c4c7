// Depthwise K x K convolution, stride 1, on channels-last tokens: x [B, IH * IW, C] -> out
// [B, OH * OW, C] (engine/ops/dwconv-tokens.ts). One invocation per PX consecutive output pixels
// of a row and 4 channels, read and written as vec4 (C is a multiple of 4): its K x K weights
// are loaded once, and each input row segment of PX + K - 1 pixels once per kernel row, so an
// output costs (PX + K - 1) K / PX loads instead of K^2 (plus 4 K^2 scalar weight loads).
// Weight [C, 1, K, K] as PyTorch stores it. With flip = 1 the taps are mirrored: the input
// gradient of the forward (dy correlated with the flipped kernel, padding K - 1 - p) runs here too.
struct U { total: u32, ih: u32, iw: u32, oh: u32, ow: u32, c4: u32, xblocks: u32, flip: u32, hasBias: u32, pad: i32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

const K = {{K}}u;
const PX = {{PX}}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * 64u;
  if (g >= u.total) { return; }
  let c4 = g % u.c4;
  let blk = g / u.c4;
  let ox0 = (blk % u.xblocks) * PX;
  let row = blk / u.xblocks; // b * OH + oy
  let oy = i32(row % u.oh);
  let base = (row / u.oh) * u.ih * u.iw;
  var wv: array<vec4<f32>, K * K>;
  let wc = 4u * c4 * K * K; // weight row of the first of the 4 channels
  for (var t = 0u; t < K * K; t++) {
    let s = select(t, K * K - 1u - t, u.flip == 1u);
    wv[t] = vec4<f32>(w[wc + s], w[wc + K * K + s], w[wc + 2u * K * K + s], w[wc + 3u * K * K + s]);
  }
  var acc: array<vec4<f32>, PX>;
  if (u.hasBias == 1u) {
    for (var p = 0u; p < PX; p++) { acc[p] = bias[c4]; }
  }
  for (var ky = 0u; ky < K; ky++) {
    let iy = oy + i32(ky) - u.pad;
    if (iy < 0 || iy >= i32(u.ih)) { continue; }
    let rowBase = base + u32(iy) * u.iw;
    var xs: array<vec4<f32>, PX + K - 1u>;
    for (var j = 0u; j < PX + K - 1u; j++) {
      let ix = i32(ox0 + j) - u.pad;
      if (ix >= 0 && ix < i32(u.iw)) { xs[j] = x[(rowBase + u32(ix)) * u.c4 + c4]; }
    }
    for (var p = 0u; p < PX; p++) {
      for (var kx = 0u; kx < K; kx++) { acc[p] += xs[p + kx] * wv[ky * K + kx]; }
    }
  }
  for (var p = 0u; p < PX; p++) {
    if (ox0 + p < u.ow) { out[(row * u.ow + ox0 + p) * u.c4 + c4] = acc[p]; }
  }
}
