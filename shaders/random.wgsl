// Counter-based random numbers: value i of a draw is a hash of (seed, counter + i), so a draw
// reproduces exactly from the generator state, whatever the dispatch size. mode 0: uniform in
// [p0, p1); 1: normal(mean p0, std p1) by Box-Muller; 2: bernoulli(p0) as 0/1.
struct U { n: u32, seed: u32, counter: u32, mode: u32, p0: f32, p1: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn uniform01(k: u32) -> f32 {
  let h = pcg(pcg(k ^ pcg(u.seed)) + u.seed);
  return f32(h >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  if (u.mode == 1u) {
    let u1 = max(uniform01(u.counter + 2u * i), 1e-7);
    let u2 = uniform01(u.counter + 2u * i + 1u);
    out[i] = u.p0 + u.p1 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
  } else if (u.mode == 2u) {
    out[i] = select(0.0, 1.0, uniform01(u.counter + i) < u.p0);
  } else {
    out[i] = u.p0 + (u.p1 - u.p0) * uniform01(u.counter + i);
  }
}
