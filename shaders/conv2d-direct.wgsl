// Reference conv2d (PyTorch semantics, NCHW): one invocation per output element.
// out[b, co, oy, ox] = bias[co] + sum over ci in co's group, ky, kx of
//   x[b, g*cig + ci, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw] * weight[co, ci, ky, kx]
// (taps outside the input read zero). Padding is signed: the transposed-convolution path passes
// a negative padding to crop. Every faster conv2d kernel is tested against this one.
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
  let g = co / (u.cout / u.groups);
  var acc = 0.0;
  if (u.hasBias != 0u) { acc = bias[co]; }
  for (var ci = 0u; ci < cig; ci++) {
    let xb = (b * u.cin + g * cig + ci) * u.h * u.w;
    let wb = (co * cig + ci) * u.kh * u.kw;
    for (var ky = 0u; ky < u.kh; ky++) {
      let iy = i32(oy * u.sh + ky * u.dh) - u.ph;
      if (iy < 0 || iy >= i32(u.h)) { continue; }
      for (var kx = 0u; kx < u.kw; kx++) {
        let ix = i32(ox * u.sw + kx * u.dw) - u.pw;
        if (ix < 0 || ix >= i32(u.w)) { continue; }
        acc += f32(x[xb + u32(iy) * u.w + u32(ix)]) * f32(wt[wb + ky * u.kw + kx]);
      }
    }
  }
  out[i] = {{ROUND}}(acc);
}

{{ROUND_F16}}
