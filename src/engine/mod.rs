//! The execution engine: the dispatcher that runs a hart's code ([`dispatch`]), the
//! decoded blocks and their tiering ([`blocks`]), the Cranelift tier ([`tier1`]) and
//! the lockstep check of the two ([`lockstep`]). Instruction semantics live in
//! [`crate::exec`], shared by both tiers.

pub mod blocks;
pub mod cache;
pub mod dispatch;
pub mod lockstep;
pub mod stats;
pub mod tier1;

pub use dispatch::Interp;
pub use lockstep::LOCKSTEP_FAIL;
pub use stats::DispatchStats;
pub use cache::CodeCache;
pub use tier1::{compiler_threads, Jit, JitStats, Tier1Options, DEFAULT_THRESHOLD};
