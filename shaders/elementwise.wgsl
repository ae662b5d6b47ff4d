// Element-wise kernels: leaky-ReLU6 forward, σ'(u)·t (shared by the JVP and the VJP of the
// activation), axpby (residual adds, tangent sums), and the MSE residual f − κ·onehot(y).

struct Params {
    len: u32, cols: u32, _p0: u32, _p1: u32,
    alpha: f32, beta: f32, kappa: f32, _p2: u32,
}

const WG: u32 = 256u;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}


// ---- unary: out = f(x)
@group(0) @binding(0) var<storage, read> ux: array<f32>;
@group(0) @binding(1) var<storage, read_write> uout: array<f32>;
@group(0) @binding(2) var<uniform> up: Params;

@compute @workgroup_size(256, 1, 1)
fn leaky_relu6_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= up.len) { return; }
    uout[i] = leaky_relu6(ux[i], up.alpha);
}

// out[i] += x[i % cols]: a bias row added to every row of out.
@compute @workgroup_size(256, 1, 1)
fn add_row_vector(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= up.len) { return; }
    uout[i] += ux[i % up.cols];
}

// ---- binary: out = f(x, y)
@group(0) @binding(0) var<storage, read> bx: array<f32>;
@group(0) @binding(1) var<storage, read> by: array<f32>;
@group(0) @binding(2) var<storage, read_write> bout: array<f32>;
@group(0) @binding(3) var<uniform> bp: Params;

// out = σ'(x) · y   with x the pre-activation at θ0.
@compute @workgroup_size(256, 1, 1)
fn leaky_relu6_grad_mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= bp.len) { return; }
    bout[i] = leaky_relu6_slope(bx[i], bp.alpha) * by[i];
}

// out = alpha·x + beta·y
@compute @workgroup_size(256, 1, 1)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= bp.len) { return; }
    bout[i] = bp.alpha * bx[i] + bp.beta * by[i];
}

// ---- MSE residual over [rows, cols] with u32 labels
@group(0) @binding(0) var<storage, read> mf: array<f32>;
@group(0) @binding(1) var<storage, read> mlabels: array<u32>;
@group(0) @binding(2) var<storage, read_write> mres: array<f32>;
@group(0) @binding(3) var<uniform> mp: Params;

@compute @workgroup_size(256, 1, 1)
fn mse_residual(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= mp.len) { return; }
    let hit = mlabels[i / mp.cols] == i % mp.cols;
    mres[i] = mf[i] - select(0.0, mp.kappa, hit);
}
