// Inverse of a symmetric positive-definite matrix by blocked Gauss-Jordan elimination without
// pivoting (stable for SPD: every Schur complement stays SPD). For each diagonal block K (size
// bs <= 64) the host records:
//   1. block_inverse   Pinv = A[K,K]⁻¹, in workgroup memory; flags a pivot <= 0 or non-finite
//   2. (copy)          R0 = A[K,:]               contiguous rows, a buffer copy
//   3. extract_cols    Ccol = A[:,K]
//   4. (gemm)          R = Pinv·R0,  T = Ccol·Pinv,  A -= Ccol·R
//   5. put_rows / put_cols   A[K,:] = R (A[K,K] = Pinv),  A[i,K] = -T[i,:] for i outside K
// so almost all the O(n³) work runs in the GEMM kernel.

struct Params {
    n: u32, k0: u32, bs: u32, block: u32,
}

const NB: u32 = 64u;

// Exactly 16 KiB, WebGPU's guaranteed workgroup storage. The pivot column needs no copy: it
// is read in the update phase and only rewritten in the phase after it.
var<workgroup> tile: array<f32, 4096>;  // NB × NB

@group(0) @binding(0) var<storage, read> ia: array<f32>;
@group(0) @binding(1) var<storage, read_write> ipinv: array<f32>;
@group(0) @binding(2) var<storage, read_write> istatus: array<u32>;
@group(0) @binding(3) var<uniform> ip: Params;

// In-place Gauss-Jordan on the block: per pivot, scale its row, eliminate the other rows
// (columns other than the pivot's), then rewrite the pivot column.
@compute @workgroup_size(256, 1, 1)
fn block_inverse(@builtin(local_invocation_index) lid: u32) {
    let bs = ip.bs;
    for (var e = lid; e < bs * bs; e += 256u) {
        let i = e / bs;
        let j = e % bs;
        tile[i * NB + j] = ia[(ip.k0 + i) * ip.n + ip.k0 + j];
    }
    for (var piv = 0u; piv < bs; piv++) {
        workgroupBarrier();
        let d = tile[piv * NB + piv];
        // d > 0 is false for NaN too; the upper bound catches +Inf.
        if (lid == 0u && !(d > 0.0 && d < 3.0e38)) {
            istatus[0] = ip.block + 1u;
        }
        workgroupBarrier();
        for (var j = lid; j < bs; j += 256u) {
            tile[piv * NB + j] = select(tile[piv * NB + j] / d, 1.0 / d, j == piv);
        }
        workgroupBarrier();
        for (var e = lid; e < bs * bs; e += 256u) {
            let i = e / bs;
            let j = e % bs;
            if (i != piv && j != piv) {
                tile[i * NB + j] -= tile[i * NB + piv] * tile[piv * NB + j];
            }
        }
        workgroupBarrier();
        for (var i = lid; i < bs; i += 256u) {
            if (i != piv) {
                tile[i * NB + piv] = -tile[i * NB + piv] / d;
            }
        }
    }
    workgroupBarrier();
    for (var e = lid; e < bs * bs; e += 256u) {
        ipinv[e] = tile[(e / bs) * NB + e % bs];
    }
}

// Ccol[i, t] = A[i, k0 + t]   (n × bs)
@group(0) @binding(0) var<storage, read> ea: array<f32>;
@group(0) @binding(1) var<storage, read_write> ecol: array<f32>;
@group(0) @binding(2) var<uniform> ep: Params;

@compute @workgroup_size(64, 1, 1)
fn extract_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 64u;
    if (e >= ep.n * ep.bs) { return; }
    let i = e / ep.bs;
    let t = e % ep.bs;
    ecol[e] = ea[i * ep.n + ep.k0 + t];
}

// A[k0 + t, j] = R[t, j], except the diagonal block, which becomes Pinv.
@group(0) @binding(0) var<storage, read> rr: array<f32>;
@group(0) @binding(1) var<storage, read> rpinv: array<f32>;
@group(0) @binding(2) var<storage, read_write> ra: array<f32>;
@group(0) @binding(3) var<uniform> rp: Params;

@compute @workgroup_size(64, 1, 1)
fn put_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 64u;
    if (e >= rp.bs * rp.n) { return; }
    let t = e / rp.n;
    let j = e % rp.n;
    var v = rr[e];
    if (j >= rp.k0 && j < rp.k0 + rp.bs) {
        v = rpinv[t * rp.bs + (j - rp.k0)];
    }
    ra[(rp.k0 + t) * rp.n + j] = v;
}

// A[i, k0 + t] = -T[i, t] for rows i outside the block.
@group(0) @binding(0) var<storage, read> ct: array<f32>;
@group(0) @binding(1) var<storage, read_write> ca: array<f32>;
@group(0) @binding(2) var<uniform> cp: Params;

@compute @workgroup_size(64, 1, 1)
fn put_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 64u;
    if (e >= cp.n * cp.bs) { return; }
    let i = e / cp.bs;
    let t = e % cp.bs;
    if (i >= cp.k0 && i < cp.k0 + cp.bs) { return; }
    ca[i * cp.n + cp.k0 + t] = -ct[e];
}
