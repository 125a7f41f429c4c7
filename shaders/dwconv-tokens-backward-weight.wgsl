// Weight gradient of the channels-last depthwise convolution (dwconv-tokens.wgsl), first pass: one
// invocation per output row (b, oy) and 4 channels sums dy * x over that row for all K * K taps,
// writing partial [B * OH, C, K * K]; a column sum over the rows (reduce-serial.wgsl) gives the
// gradient in the weight's layout [C, 1, K, K]. K is a template value (the accumulators' count).
struct U { total: u32, ih: u32, iw: u32, oh: u32, ow: u32, c4: u32, pad: i32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

const K = {{K}}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * 64u;
  if (g >= u.total) { return; }
  let c4 = g % u.c4;
  let row = g / u.c4;
  let oy = i32(row % u.oh);
  let base = (row / u.oh) * u.ih * u.iw;
  var acc: array<vec4<f32>, K * K>;
  for (var ox = 0u; ox < u.ow; ox++) {
    let d = dy[(row * u.ow + ox) * u.c4 + c4];
    for (var ky = 0u; ky < K; ky++) {
      let iy = oy + i32(ky) - u.pad;
      if (iy < 0 || iy >= i32(u.ih)) { continue; }
      for (var kx = 0u; kx < K; kx++) {
        let ix = i32(ox) + i32(kx) - u.pad;
        if (ix < 0 || ix >= i32(u.iw)) { continue; }
        acc[ky * K + kx] += d * x[(base + u32(iy) * u.iw + u32(ix)) * u.c4 + c4];
      }
    }
  }
  let o = (row * u.c4 * 4u + 4u * c4) * K * K;
  for (var l = 0u; l < 4u; l++) {
    for (var t = 0u; t < K * K; t++) { partial[o + l * K * K + t] = acc[t][l]; }
  }
}
