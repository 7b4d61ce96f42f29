//! Did tuning make the model do the job? Eval cases with structured-output and text checks,
//! metrics over them, and base / few-shot / tuned comparisons.

pub mod cases;
pub mod checks;
pub mod compare;
pub mod live;
pub mod metrics;
pub mod run;
