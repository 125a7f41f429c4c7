// conv_transpose2d gather, register-blocked (no barriers): each invocation computes TM output
// channels of one group x TN output pixels of one row that share a phase modulo the width stride
// (ox = r + j*sw), so every pixel reads the same taps (ky, kx) at consecutive input columns.
// Per valid tap and input channel: TN input loads and TM weight loads for TM*TN multiply-adds.
// Same uniforms, layout and semantics as conv-transpose2d.wgsl (its reference).
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
const TN = {{TN}}u;

@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // Invocations over [n, oh, phase r, pixel block] (x, spilling into y) x channel blocks (z).
  let perPhase = (u.ow + u.sw - 1u) / u.sw;
  let nb = (perPhase + TN - 1u) / TN;
  var t = gid.x + gid.y * nwg.x * 32u;
  if (t >= u.n * u.oh * u.sw * nb) { return; }
  let jb = t % nb;
  t /= nb;
  let r = t % u.sw;
  t /= u.sw;
  let oy = t % u.oh;
  let b = t / u.oh;
  let ox0 = r + jb * TN * u.sw;
  if (ox0 >= u.ow) { return; }
  let cig = u.cin / u.groups;
  let cog = u.cout / u.groups;
  let nmb = (cog + TM - 1u) / TM;
  let g = gid.z / nmb;
  let m0 = (gid.z % nmb) * TM;
  let hw = u.h * u.w;
  let kk = u.kh * u.kw;
  var wb: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { wb[i] = (g * cig * cog + min(m0 + i, cog - 1u)) * kk; }
  var acc: array<f32, TM * TN>;
  for (var ky = 0u; ky < u.kh; ky++) {
    let ty = i32(oy) + u.ph - i32(ky * u.dh);
    if (ty < 0 || ty % i32(u.sh) != 0) { continue; }
    let iy = u32(ty) / u.sh;
    if (iy >= u.h) { continue; }
    for (var kx = 0u; kx < u.kw; kx++) {
      // Input column of pixel j: (ox0 + j*sw + pw - kx*dw) / sw = ix0 + j when divisible.
      let tx = i32(ox0) + u.pw - i32(kx * u.dw);
      if (tx % i32(u.sw) != 0) { continue; }
      let ix0 = tx / i32(u.sw);
      let xr = (b * u.cin + g * cig) * hw + iy * u.w;
      let k = ky * u.kw + kx;
      for (var ci = 0u; ci < cig; ci++) {
        var xv: array<f32, TN>;
        for (var j = 0u; j < TN; j++) {
          let ix = ix0 + i32(j);
          let ok = ix >= 0 && ix < i32(u.w);
          xv[j] = select(0.0, f32(x[select(0u, xr + ci * hw + u32(ix), ok)]), ok);
        }
        for (var i = 0u; i < TM; i++) {
          let wv = f32(wt[wb[i] + ci * cog * kk + k]);
          for (var j = 0u; j < TN; j++) { acc[i * TN + j] += wv * xv[j]; }
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
    let o = ((b * u.cout + co) * u.oh + oy) * u.ow;
    for (var j = 0u; j < TN; j++) {
      let ox = ox0 + j * u.sw;
      if (ox < u.ow) { out[o + ox] = {{ROUND}}(acc[i * TN + j] + bv); }
    }
  }
}

{{ROUND_F16}}
