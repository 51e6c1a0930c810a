//! The frontend: one declarative decode table ([`table`]) from which the decoder, the
//! disassembler and the `Op` enum that interpreter and JIT dispatch on are generated.

pub mod ir;
pub mod table;
pub mod disasm;

pub use ir::Insn;
pub use table::{decode, Op};
