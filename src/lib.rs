//! Rivet: a full-system RISC-V (RV64GCH) emulator.

pub mod hart;
