//! Progress reports from long training phases, for the CLI's progress lines and the page's bar.

/// What a training run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Running the frozen trunk over the images (once per image).
    Features,
    /// Setting the classifier at θ0 (ridge or logistic probe).
    Init,
    /// K-FAC statistics: C backward passes per image.
    Curvature,
    /// Choosing λ by cross-validation on the training set (step = one fold solved at one λ).
    LambdaSearch,
    /// The solver: CG iterations or SGD epochs.
    Solve,
}

/// One report: `step` of `total` in `phase`; the training loss where the phase knows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    pub step: usize,
    pub total: usize,
    pub loss: Option<f64>,
    /// ‖∇L(Δ)‖/‖∇L(0)‖ for the LQF solvers (CG's relative residual).
    pub residual: Option<f64>,
}

impl Progress {
    pub fn new(phase: Phase, step: usize, total: usize) -> Progress {
        Progress { phase, step, total, loss: None, residual: None }
    }
}

/// The callback every long-running function takes.
pub type OnProgress<'a> = &'a mut dyn FnMut(Progress);
