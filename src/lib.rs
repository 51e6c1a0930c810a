//! Rivet: a full-system RISC-V (RV64GCH) emulator.

pub mod cli;
pub mod console;
pub mod engine;
pub mod exec;
pub mod hart;
pub mod launch;
pub mod runtime;
