// Register-blocked conv2d for CPU drivers, specialised to unit stride and dilation along the
// width (3x3 s1, dilated only in height, 1xk): each invocation computes 4*TM4 output channels of
// one group x TN consecutive pixels of one output row. Along a row the taps of neighbouring
// pixels overlap, so per (ci, ky) it loads TN + KW - 1 inputs once and reuses them for every kx,
// and the weights come pre-transposed as [groups, cig*kh*kw, ceil(cog/4)] vec4s, zero-padded (one
// load per 4 channels). Loads per (ci, ky): TN + KW - 1 + KW*TM4 for 4*TM4*TN*KW multiply-adds.
// On a CPU driver a load costs far more than a vec4 multiply-add, so depthwise convolutions
// (one channel per group) run here too, wasting three lanes of arithmetic but no loads.
// Needs kw == KW (the host checks). Same uniforms and semantics as conv2d-direct.wgsl.
// Element type: T (x and weight) is f32, or f16 under autocast (ENABLE turns it on); sums are f32
// either way, and with f16 operands each result (bias included) is rounded to f16 (ROUND) and
// stored widened to f32 (engine/ops/conv-kernels.ts).
{{ENABLE}}
struct U { n: u32, cin: u32, h: u32, w: u32, cout: u32, oh: u32, ow: u32, groups: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: i32, pw: i32, dh: u32, dw: u32, hasBias: u32, splits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<{{T}}>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const TM4 = {{TM4}}u;
const TN = {{TN}}u;
const KW = {{KW}}u;

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let xblocks = (u.ow + TN - 1u) / TN;
  let rows = u.n * u.oh;
  if (gid.x >= rows * xblocks) { return; }
  let r = gid.x / xblocks;
  let ox0 = (gid.x % xblocks) * TN;
  let b = r / u.oh;
  let oy = r % u.oh;
  let cig = u.cin / u.groups;
  let cog = u.cout / u.groups;
  let cog4 = (cog + 3u) / 4u;
  let m4 = gid.y * TM4;
  let g = gid.z;
  if (m4 >= cog4) { return; }
  let hw = u.h * u.w;
  let K = cig * u.kh * KW;
  let ix0 = i32(ox0) - u.pw;
  var wrow: array<u32, TM4>;
  for (var i = 0u; i < TM4; i++) { wrow[i] = g * K * cog4 + min(m4 + i, cog4 - 1u); }
  var acc: array<vec4<f32>, TM4 * TN>;
  for (var ci = 0u; ci < cig; ci++) {
    let xc = (b * u.cin + g * cig + ci) * hw;
    for (var ky = 0u; ky < u.kh; ky++) {
      let iy = i32(oy * u.sh + ky * u.dh) - u.ph;
      if (iy < 0 || iy >= i32(u.h)) { continue; }
      let xr = xc + u32(iy) * u.w;
      var v: array<f32, TN + KW - 1u>;
      for (var t = 0u; t < TN + KW - 1u; t++) {
        let ix = ix0 + i32(t);
        let ok = ix >= 0 && ix < i32(u.w);
        v[t] = select(0.0, f32(x[select(0u, xr + u32(ix), ok)]), ok);
      }
      let k0 = (ci * u.kh + ky) * KW;
      for (var kx = 0u; kx < KW; kx++) {
        var wv: array<vec4<f32>, TM4>;
        for (var i = 0u; i < TM4; i++) { wv[i] = vec4f(wt[wrow[i] + (k0 + kx) * cog4]); }
        for (var j = 0u; j < TN; j++) {
          let xv = v[kx + j];
          for (var i = 0u; i < TM4; i++) { acc[j * TM4 + i] += xv * wv[i]; }
        }
      }
    }
  }
  let plane = u.oh * u.ow;
  for (var i = 0u; i < TM4; i++) {
    if (m4 + i >= cog4) { break; }
    for (var l = 0u; l < 4u; l++) {
      let m = (m4 + i) * 4u + l;
      if (m >= cog) { break; }
      let co = g * cog + m;
      var bv = 0.0;
      if (u.hasBias != 0u) { bv = bias[co]; }
      let o = (b * u.cout + co) * plane + oy * u.ow;
      for (var j = 0u; j < TN; j++) {
        if (ox0 + j < u.ow) { out[o + ox0 + j] = {{ROUND}}(acc[j * TM4 + i][l] + bv); }
      }
    }
  }
}

{{ROUND_F16}}
