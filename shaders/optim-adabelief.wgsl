// One AdaBelief step (rectify off, amsgrad off) over a flat slab of parameters
// (engine/optim/adabelief.ts), as adabelief-pytorch 0.2.0: owner[i / 64] names the parameter of
// element i; its `hyper` row is (pMul, wd, beta1, beta2), (eps, lr / bc1, sqrt(bc2), active).
// Decoupled decay: pMul = 1 - lr wd (or 1 - wd, fixed), wd = 0; otherwise g += wd p.
// m = b1 m + (1 - b1) g; s = b2 s + (1 - b2) (g - m)^2 + eps (eps added to the state in place);
// p -= lr / bc1 * m / (sqrt(s) / sqrt(bc2) + eps).
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> owner: array<u32>;
@group(0) @binding(2) var<storage, read> hyper: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> param: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(6) var<storage, read_write> exp_avg_var: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  let k = owner[i >> 6u];
  if (k == 0xffffffffu) { return; }
  let h0 = hyper[2u * k];
  let h1 = hyper[2u * k + 1u];
  if (h1.w == 0.0) { return; }
  let p = param[i] * h0.x;
  let g = grad[i] + h0.y * p;
  let m = h0.z * exp_avg[i] + (1.0 - h0.z) * g;
  let r = g - m;
  let s = h0.w * exp_avg_var[i] + (1.0 - h0.w) * r * r + h1.x;
  exp_avg[i] = m;
  exp_avg_var[i] = s;
  param[i] = p - h1.y * m / (sqrt(s) / h1.z + h1.x);
}
