//! References for `shaders/elementwise.wgsl` and `shaders/reduce.wgsl`.
use super::Real;

pub fn leaky_relu6<T: Real>(u: T, alpha: T) -> T {
    let six = T::from_f64(6.0);
    if u < T::ZERO {
        alpha * u
    } else if u > six {
        six + alpha * (u - six)
    } else {
        u
    }
}

/// dσ/du at u: 1 inside [0, 6], α outside. (At the kinks we take the inside value.)
pub fn leaky_relu6_slope<T: Real>(u: T, alpha: T) -> T {
    if u < T::ZERO || u > T::from_f64(6.0) {
        alpha
    } else {
        T::ONE
    }
}

pub fn activation<T: Real>(u: &[T], alpha: T) -> Vec<T> {
    u.iter().map(|&v| leaky_relu6(v, alpha)).collect()
}

/// σ'(u) ⊙ t: the JVP of the activation (t a tangent) and its VJP (t an output gradient).
pub fn activation_grad_mul<T: Real>(u: &[T], t: &[T], alpha: T) -> Vec<T> {
    u.iter().zip(t).map(|(&v, &g)| leaky_relu6_slope(v, alpha) * g).collect()
}

pub fn axpby<T: Real>(alpha: T, x: &[T], beta: T, y: &[T]) -> Vec<T> {
    x.iter().zip(y).map(|(&a, &b)| alpha * a + beta * b).collect()
}

/// r = f − κ·onehot(label), row by row over `[rows, classes]`.
pub fn mse_residual<T: Real>(f: &[T], labels: &[u32], classes: usize, kappa: T) -> Vec<T> {
    f.iter().enumerate().map(|(i, &v)| if labels[i / classes] as usize == i % classes { v - kappa } else { v }).collect()
}

/// Mean over the pixels of an NHWC tensor: `[n, hw, c]` → `[n, c]`.
pub fn global_avg_pool<T: Real>(x: &[T], n: usize, hw: usize, c: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; n * c];
    let inv = T::from_f64(1.0 / hw as f64);
    for b in 0..n {
        for p in 0..hw {
            for ch in 0..c {
                out[b * c + ch] += x[(b * hw + p) * c + ch] * inv;
            }
        }
    }
    out
}

/// The transpose of the pool: every pixel gets g / hw.
pub fn global_avg_pool_backward<T: Real>(g: &[T], n: usize, hw: usize, c: usize) -> Vec<T> {
    let inv = T::from_f64(1.0 / hw as f64);
    (0..n * hw * c).map(|i| g[(i / (hw * c)) * c + i % c] * inv).collect()
}

pub fn softmax_rows<T: Real>(x: &[T], cols: usize) -> Vec<T> {
    x.chunks(cols)
        .flat_map(|row| {
            let m = row.iter().cloned().fold(row[0], |a, b| if b > a { b } else { a });
            let e: Vec<T> = row.iter().map(|&v| (v - m).exp()).collect();
            let s: T = e.iter().cloned().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

/// Cross-entropy of logits `[rows, cols]`: (softmax(f) − onehot(y), per-row logsumexp(f) − f_y).
pub fn softmax_cross_entropy<T: Real>(f: &[T], labels: &[u32], cols: usize) -> (Vec<T>, Vec<T>) {
    let mut r = softmax_rows(f, cols);
    let mut loss = Vec::with_capacity(labels.len());
    for ((row, rr), &y) in f.chunks(cols).zip(r.chunks_mut(cols)).zip(labels) {
        let m = row.iter().cloned().fold(row[0], |a, b| if b > a { b } else { a });
        let s: T = row.iter().map(|&v| (v - m).exp()).sum();
        loss.push(m + s.ln() - row[y as usize]);
        rr[y as usize] -= T::ONE;
    }
    (r, loss)
}

/// Index of the largest value in each row (the first one on ties).
pub fn argmax_rows<T: Real>(x: &[T], cols: usize) -> Vec<u32> {
    x.chunks(cols)
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect()
}
