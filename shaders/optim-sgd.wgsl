// One SGD step (momentum, dampening, Nesterov, L2 weight decay) over a flat slab of parameters
// (engine/optim/sgd.ts), as torch.optim.SGD: owner[i / 64] names the parameter of element i; its
// `hyper` row is a struct Hyper written by name (first = 1 on the parameter's first step, has_grad
// = 0 skips a parameter without a gradient).
// d = g + wd p; with momentum: buf = d on the parameter's first step, else
// buf = momentum buf + (1 - dampening) d; d = nesterov ? d + momentum buf : buf. p -= lr d.
// Four elements per invocation as vec4 (slabs are whole 64-element chunks: the four share an owner).
struct U { n4: u32 }
struct Hyper { lr: f32, wd: f32, momentum: f32, dampening: f32, nesterov: f32, first: f32, has_grad: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> owner: array<u32>;
@group(0) @binding(2) var<storage, read> hyper: array<Hyper>;
@group(0) @binding(3) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> momentum_buffer: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n4) { return; }
  let k = owner[i >> 4u];
  if (k == 0xffffffffu) { return; }
  let h = hyper[k];
  if (h.has_grad == 0.0) { return; }
  let p = param[i];
  var d = grad[i] + h.wd * p;
  if (h.momentum != 0.0) {
    var buf = d;
    if (h.first == 0.0) { buf = h.momentum * momentum_buffer[i] + (1.0 - h.dampening) * d; }
    momentum_buffer[i] = buf;
    d = select(buf, d + h.momentum * buf, h.nesterov != 0.0);
  }
  param[i] = p - h.lr * d;
}
