// Adds the split-K partial weight gradients: dw[i] = sum over s of partial[s, i], in split
// order (deterministic). One invocation per weight element; the generic reduction would spend a
// workgroup with barriers on each element's handful of terms.
// ROUND rounds the sum to f16 when the weight gradient's operands were f16 (else it is empty).
struct U { n: u32, splits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var acc = 0.0;
  for (var s = 0u; s < u.splits; s++) { acc += partial[s * u.n + i]; }
  dw[i] = {{ROUND}}(acc);
}

{{ROUND_F16}}
