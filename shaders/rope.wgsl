// Rotary position embedding, interleaved pairs (EVA-02 / timm apply_rot_embed_cat):
//   y = x * cos + rot(x) * sin,  rot([x0, x1, x2, x3, ...]) = [-x1, x0, -x3, x2, ...]
// over x [..., N, D], one invocation per pair (2p, 2p+1). Token t >= start uses table row
// t - start of sin/cos [N - start, D]; tokens before `start` (a cls token) pass through.
// transpose = 1 applies the transposed map (the backward: dx = dy * cos + rot^T(dy * sin)).
struct U { pairs: u32, n: u32, d: u32, start: u32, transpose: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> sinT: array<f32>;
@group(0) @binding(3) var<storage, read> cosT: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.pairs) { return; }
  let half = u.d / 2u;
  let row = i / half;
  let e = row * u.d + 2u * (i % half);
  let tok = row % u.n;
  let x0 = x[e];
  let x1 = x[e + 1u];
  if (tok < u.start) {
    y[e] = x0;
    y[e + 1u] = x1;
    return;
  }
  let t = (tok - u.start) * u.d + 2u * (i % half);
  let c0 = cosT[t];
  let c1 = cosT[t + 1u];
  let s0 = sinT[t];
  let s1 = sinT[t + 1u];
  if (u.transpose == 0u) {
    y[e] = x0 * c0 - x1 * s0;
    y[e + 1u] = x1 * c1 + x0 * s1;
  } else {
    y[e] = x0 * c0 + x1 * s1;
    y[e + 1u] = x1 * c1 - x0 * s0;
  }
}
