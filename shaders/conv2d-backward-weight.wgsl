// conv2d weight gradient: dW[co, ci, ky, kx] = sum over b, oy, ox of
//   dy[b, co, oy, ox] * x[b, g*cig + ci, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw],
// a GEMM over the long axis K = N*OH*OW. Split-K for parallelism: split s sums the output rows
// (b, oy) in [s*R/splits, (s+1)*R/splits) into partial[s], which the host then sums over s
// (deterministic: no atomics). Each invocation computes TM output channels of one group x
// 4*TN4 taps k = (ci, ky, kx), register-blocked with no barriers; TM = 1 serves depthwise.
// Invocations are numbered over [splits, groups, channel blocks, tap blocks], fastest last.
// Element type: T (x and dy) is f32, or f16 under autocast (ENABLE turns it on); sums are f32
// either way. ROUND rounds each stored sum to f16 when the operands are f16 and there is one split
// (the host passes none to the partials of a split-K run and rounds their sum instead).
{{ENABLE}}
struct U { n: u32, cin: u32, h: u32, w: u32, cout: u32, oh: u32, ow: u32, groups: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: i32, pw: i32, dh: u32, dw: u32, hasBias: u32, splits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
@group(0) @binding(2) var<storage, read> dy: array<{{T}}>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

const TM = {{TM}}u;
const TN4 = {{TN4}}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let cig = u.cin / u.groups;
  let cog = u.cout / u.groups;
  let kk = u.kh * u.kw;
  let K = cig * kk;
  let nkb = (K + 4u * TN4 - 1u) / (4u * TN4);
  let nmb = (cog + TM - 1u) / TM;
  var t = gid.x + gid.y * nwg.x * 64u;
  if (t >= nkb * nmb * u.groups * u.splits) { return; }
  let k0 = (t % nkb) * 4u * TN4;
  t /= nkb;
  let m0 = (t % nmb) * TM;
  t /= nmb;
  let g = t % u.groups;
  let s = t / u.groups;
  let hw = u.h * u.w;
  let plane = u.oh * u.ow;
  // Per tap: channel offset and the tap's displacement from (oy*sh, ox*sw).
  var xc: array<vec4<u32>, TN4>;
  var offy: array<vec4<i32>, TN4>;
  var offx: array<vec4<i32>, TN4>;
  for (var j = 0u; j < TN4; j++) {
    let k = min(vec4u(k0 + 4u * j) + vec4u(0u, 1u, 2u, 3u), vec4u(K - 1u));
    let r = k % kk;
    xc[j] = (g * cig + k / kk) * hw;
    offy[j] = vec4i((r / u.kw) * u.dh) - u.ph;
    offx[j] = vec4i((r % u.kw) * u.dw) - u.pw;
  }
  var dc: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { dc[i] = (g * cog + min(m0 + i, cog - 1u)) * plane; }
  let rows = u.n * u.oh;
  let r0 = s * rows / u.splits;
  let r1 = (s + 1u) * rows / u.splits;
  let hi = vec4i(i32(u.h));
  let wi = vec4i(i32(u.w));
  var acc: array<vec4<f32>, TM * TN4>;
  for (var r = r0; r < r1; r++) {
    let b = r / u.oh;
    let oy = r % u.oh;
    let dyRow = b * u.cout * plane + oy * u.ow;
    var rowOk: array<vec4<bool>, TN4>;
    var row: array<vec4<u32>, TN4>;
    for (var j = 0u; j < TN4; j++) {
      let iy = vec4i(i32(oy * u.sh)) + offy[j];
      rowOk[j] = (iy >= vec4i(0)) & (iy < hi);
      row[j] = b * u.cin * hw + xc[j] + vec4u(max(iy, vec4i(0))) * u.w;
    }
    for (var ox = 0u; ox < u.ow; ox++) {
      var xv: array<vec4<f32>, TN4>;
      for (var j = 0u; j < TN4; j++) {
        let ix = vec4i(i32(ox * u.sw)) + offx[j];
        let ok = rowOk[j] & (ix >= vec4i(0)) & (ix < wi);
        let o = select(vec4u(0u), row[j] + vec4u(max(ix, vec4i(0))), ok);
        xv[j] = select(vec4f(0.0), vec4f(f32(x[o.x]), f32(x[o.y]), f32(x[o.z]), f32(x[o.w])), ok);
      }
      for (var i = 0u; i < TM; i++) {
        let d = f32(dy[dyRow + dc[i] + ox]);
        for (var j = 0u; j < TN4; j++) { acc[i * TN4 + j] += d * xv[j]; }
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m >= cog) { break; }
    let base = (s * u.cout + g * cog + m) * K;
    for (var j = 0u; j < TN4; j++) {
      for (var l = 0u; l < 4u; l++) {
        let k = k0 + 4u * j + l;
        if (k < K) { partial[base + k] = {{ROUND}}(acc[i * TN4 + j][l]); }
      }
    }
  }
}

{{ROUND_F16}}
