//! rivet-jit: the frontend that decodes RISC-V into Rivet's instruction IR (the one
//! decoder in Rivet), and later the Cranelift backend that compiles that IR.

pub mod arch;
pub mod backend;
pub mod frontend;
