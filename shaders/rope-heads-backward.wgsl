// The backward of rope-heads.wgsl: gathers heads-major gradients dq, dk [B, H, N, D] (and dv
// when parts = 3) into the packed gradient [B, N, 3, H, D], applying the transposed rotation
// (dx = dy * cos + rot^T(dy * sin)) and `qscale` to q. With parts = 2 the v third of the output
// is left as it is (the fused attention backward writes it there directly). One invocation per
// pair of the packed output, in its order, so the writes are contiguous.
struct U { pairs: u32, parts: u32, n: u32, heads: u32, d: u32, start: u32, hasRope: u32, qscale: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dq: array<f32>;
@group(0) @binding(2) var<storage, read> dk: array<f32>;
@group(0) @binding(3) var<storage, read> dv: array<f32>;
@group(0) @binding(4) var<storage, read> sinT: array<f32>;
@group(0) @binding(5) var<storage, read> cosT: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.pairs) { return; }
  let half = u.d / 2u;
  let e = 2u * (i % half);
  var rest = i / half;
  let h = rest % u.heads;
  rest = rest / u.heads;
  let part = rest % u.parts;
  let tokRow = rest / u.parts; // b * N + tok
  let tok = tokRow % u.n;
  let b = tokRow / u.n;
  let src = ((b * u.heads + h) * u.n + tok) * u.d + e;
  let dst = (tokRow * 3u + part) * u.heads * u.d + h * u.d + e;
  if (part == 2u) {
    dx[dst] = dv[src];
    dx[dst + 1u] = dv[src + 1u];
    return;
  }
  var g0: f32;
  var g1: f32;
  if (part == 0u) {
    g0 = dq[src] * u.qscale;
    g1 = dq[src + 1u] * u.qscale;
  } else {
    g0 = dk[src];
    g1 = dk[src + 1u];
  }
  if (u.hasRope != 0u && tok >= u.start) {
    let t = (tok - u.start) * u.d + e;
    let y0 = g0 * cosT[t] + g1 * sinT[t + 1u];
    let y1 = g1 * cosT[t + 1u] - g0 * sinT[t];
    g0 = y0;
    g1 = y1;
  }
  dx[dst] = g0;
  dx[dst + 1u] = g1;
}
