//! LQF: the linearized network, the quadratic training problem and its solvers
//! (../shared/docs/method.md is the specification).
pub mod finetune;
pub mod influence;
pub mod kfac;
pub mod linearized;
pub mod model_file;
pub mod params;
pub mod probe;
pub mod progress;
pub mod recycle;
pub mod reference;
pub mod solver;
pub mod train;

pub use linearized::{LinBlock, LinearizedNet};
pub use params::ParamSet;
pub use progress::{Phase, Progress};
pub use solver::{Loss, LrScale, Problem, Sgd};
