// conv_transpose2d as a gather (deterministic, no atomics): one invocation per output element.
// x: [N, cin, h, w], weight: [cin, cout/groups, kh, kw], out: [N, cout, oh, ow] with
//   out[b, co, oy, ox] = bias[co] + sum over ci in co's group and taps (ky, kx) with
//   oy = iy*sh - ph + ky*dh, ox = ix*sw - pw + kx*dw of x[b, ci, iy, ix] * weight[ci, co % cog, ky, kx].
// The output size comes from the host (it is also conv2d's input gradient, whose size is the
// forward input's). Taps are visited outermost so the divisibility tests cost once per tap.
// Element type: T (x and weight) is f32, or f16 under autocast (ENABLE turns it on); sums are f32
// either way, and with f16 operands each result (bias included) is rounded to f16 (ROUND) and
// stored widened to f32 (engine/ops/conv-kernels.ts).
{{ENABLE}}
struct U { n: u32, cin: u32, h: u32, w: u32, cout: u32, oh: u32, ow: u32, groups: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: i32, pw: i32, dh: u32, dw: u32, hasBias: u32, splits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
@group(0) @binding(2) var<storage, read> wt: array<{{T}}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n * u.cout * u.oh * u.ow) { return; }
  let ox = i % u.ow;
  let oy = (i / u.ow) % u.oh;
  let co = (i / (u.ow * u.oh)) % u.cout;
  let b = i / (u.ow * u.oh * u.cout);
  let cig = u.cin / u.groups;
  let cog = u.cout / u.groups;
  let g = co / cog;
  let hw = u.h * u.w;
  let kk = u.kh * u.kw;
  let xb = (b * u.cin + g * cig) * hw;
  let wb = (g * cig * cog + co % cog) * kk;
  var acc = 0.0;
  if (u.hasBias != 0u) { acc = bias[co]; }
  for (var ky = 0u; ky < u.kh; ky++) {
    let ty = i32(oy) + u.ph - i32(ky * u.dh);
    if (ty < 0 || ty % i32(u.sh) != 0) { continue; }
    let iy = u32(ty) / u.sh;
    if (iy >= u.h) { continue; }
    for (var kx = 0u; kx < u.kw; kx++) {
      let tx = i32(ox) + u.pw - i32(kx * u.dw);
      if (tx < 0 || tx % i32(u.sw) != 0) { continue; }
      let ix = u32(tx) / u.sw;
      if (ix >= u.w) { continue; }
      let xo = xb + iy * u.w + ix;
      let wo = wb + ky * u.kw + kx;
      for (var ci = 0u; ci < cig; ci++) { acc += f32(x[xo + ci * hw]) * f32(wt[wo + ci * cog * kk]); }
    }
  }
  out[i] = {{ROUND}}(acc);
}

{{ROUND_F16}}
