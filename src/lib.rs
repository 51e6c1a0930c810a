//! Rivet: a full-system RISC-V (RV64GCH) emulator.

pub mod cli;
pub mod console;
pub mod hart;
pub mod interp;
pub mod jit;
pub mod launch;
pub mod runtime;
