// One Adam-family step over a flat slab of parameters (engine/optim/adam.ts, adabelief.ts).
// owner[i / 64] names the parameter element i belongs to; its row `h` in `hyper` holds the
// struct Hyper fields, written by name (engine/optim/optimizer.ts checks the names against this
// struct). Decoupled decay multiplies the weight first (p_mul = 1 - lr wd, wd = 0); coupled decay
// adds wd p to the gradient (p_mul = 1); step_size = lr / bc1, sqrt_bc2 = sqrt(bc2); has_grad = 0
// skips a parameter without a gradient. m = b1 m + (1 - b1) g; the second moment `v` is {{SECOND}} (from the old
// value `v0`, `g` and `m`); p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
//   Adam/AdamW (PyTorch):          v = b2 v0 + (1 - b2) g^2
//   AdaBelief (adabelief-pytorch): v = b2 v0 + (1 - b2) (g - m)^2 + eps   (eps added in place)
// Four elements per invocation as vec4 (slabs are whole 64-element chunks, so the four share an
// owner): the same arithmetic per element, a quarter of the loads and invocations.
struct U { n4: u32 }
struct Hyper { p_mul: f32, wd: f32, beta1: f32, beta2: f32, eps: f32, step_size: f32, sqrt_bc2: f32, has_grad: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> owner: array<u32>;
@group(0) @binding(2) var<storage, read> hyper: array<Hyper>;
@group(0) @binding(3) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> exp_avg: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> second: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n4) { return; }
  let k = owner[i >> 4u];
  if (k == 0xffffffffu) { return; }
  let h = hyper[k];
  if (h.has_grad == 0.0) { return; }
  let p = param[i] * h.p_mul;
  let g = grad[i] + h.wd * p;
  let m = h.beta1 * exp_avg[i] + (1.0 - h.beta1) * g;
  let v0 = second[i];
  let v = {{SECOND}};
  exp_avg[i] = m;
  second[i] = v;
  param[i] = p - h.step_size * m / (sqrt(v) / h.sqrt_bc2 + h.eps);
}
