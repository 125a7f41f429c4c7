// Exponential moving average of weights over a flat slab (engine/optim/ema.ts):
// ema = decay * ema + (1 - decay) * x, in place (timm ModelEmaV2's lerp).
struct U { n: u32, decay: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ema: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  ema[i] = u.decay * ema[i] + (1.0 - u.decay) * x[i];
}
