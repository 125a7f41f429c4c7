// batch_norm running statistics, updated in place as torch.nn.functional.batch_norm does in
// training: running = (1 - momentum) * running + momentum * batch, with the variance unbiased
// (times n / (n - 1)) for the running estimate.
struct U { c: u32, momentum: f32, unbias: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> bvar: array<f32>;
@group(0) @binding(3) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(4) var<storage, read_write> runningVar: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.c) { return; }
  runningMean[c] = (1.0 - u.momentum) * runningMean[c] + u.momentum * mean[c];
  runningVar[c] = (1.0 - u.momentum) * runningVar[c] + u.momentum * bvar[c] * u.unbias;
}
