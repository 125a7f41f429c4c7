// Register-blocked conv2d for CPU drivers (no shared memory, no barriers): each invocation
// computes TM output channels of one group x 4*TN4 output pixels (pixels flattened over
// [N, OH, OW], so small planes and patchify outputs waste no lanes). Per tap (ci, ky, kx) it
// loads TM weights and 4*TN4 inputs for 4*TM*TN4 multiply-adds; on a CPU driver loads are the
// cost, so arithmetic per load is the lever. Channels and pixels past the edge are clamped (loads
// stay in range) and not stored. Same uniforms and semantics as conv2d-direct.wgsl; TM = 1 serves
// depthwise convolutions (one channel per group).
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

const TM = {{TM}}u;
const TN4 = {{TN4}}u;

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let plane = u.oh * u.ow;
  let npix = u.n * plane;
  let p0 = gid.x * TN4 * 4u;
  let cig = u.cin / u.groups;
  let cog = u.cout / u.groups;
  let m0 = gid.y * TM;
  let g = gid.z;
  if (p0 >= npix || m0 >= cog) { return; }
  let hw = u.h * u.w;
  let kk = u.kh * u.kw;
  // Per pixel: the offset of its batch's first channel of this group, and the top-left tap.
  var xb: array<vec4<u32>, TN4>;
  var iy0: array<vec4<i32>, TN4>;
  var ix0: array<vec4<i32>, TN4>;
  for (var j = 0u; j < TN4; j++) {
    let p = min(vec4u(p0 + 4u * j) + vec4u(0u, 1u, 2u, 3u), vec4u(npix - 1u));
    let r = p % plane;
    xb[j] = ((p / plane) * u.cin + g * cig) * hw;
    iy0[j] = vec4i((r / u.ow) * u.sh) - u.ph;
    ix0[j] = vec4i((r % u.ow) * u.sw) - u.pw;
  }
  var wb: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { wb[i] = (g * cog + min(m0 + i, cog - 1u)) * cig * kk; }
  var acc: array<vec4<f32>, TM * TN4>;
  let hi = vec4i(i32(u.h));
  let wi = vec4i(i32(u.w));
  for (var ci = 0u; ci < cig; ci++) {
    for (var ky = 0u; ky < u.kh; ky++) {
      var rowOk: array<vec4<bool>, TN4>;
      var row: array<vec4<u32>, TN4>;
      for (var j = 0u; j < TN4; j++) {
        let iy = iy0[j] + vec4i(i32(ky * u.dh));
        rowOk[j] = (iy >= vec4i(0)) & (iy < hi);
        row[j] = xb[j] + ci * hw + vec4u(max(iy, vec4i(0))) * u.w;
      }
      for (var kx = 0u; kx < u.kw; kx++) {
        let k = (ci * u.kh + ky) * u.kw + kx;
        var xv: array<vec4<f32>, TN4>;
        for (var j = 0u; j < TN4; j++) {
          let ix = ix0[j] + vec4i(i32(kx * u.dw));
          let ok = rowOk[j] & (ix >= vec4i(0)) & (ix < wi);
          let o = select(vec4u(0u), row[j] + vec4u(max(ix, vec4i(0))), ok);
          xv[j] = select(vec4f(0.0), vec4f(f32(x[o.x]), f32(x[o.y]), f32(x[o.z]), f32(x[o.w])), ok);
        }
        for (var i = 0u; i < TM; i++) {
          let wv = f32(wt[wb[i] + k]);
          for (var j = 0u; j < TN4; j++) { acc[i * TN4 + j] += wv * xv[j]; }
        }
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m >= cog) { break; }
    let co = g * cog + m;
    var bv = 0.0;
    if (u.hasBias != 0u) { bv = bias[co]; }
    for (var j = 0u; j < TN4; j++) {
      for (var l = 0u; l < 4u; l++) {
        let p = p0 + 4u * j + l;
        if (p < npix) { out[((p / plane) * u.cout + co) * plane + p % plane] = {{ROUND}}(acc[i * TN4 + j][l] + bv); }
      }
    }
  }
}

{{ROUND_F16}}
