// dtype conversion y = O(x) between f32 and f16 over a contiguous tensor (autocast's casts).
// On lavapipe (amp-autocast.test.ts) the conversion rounds to nearest even and out-of-range values
// become +-inf, as the dynamic loss scaler needs; WGSL leaves out-of-range results to the driver.
enable f16;
alias I = {{TI}};
alias O = {{TO}};
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<I>;
@group(0) @binding(2) var<storage, read_write> out: array<O>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  out[i] = O(a[i]);
}
