//! The frontend: one declarative decode table ([`table`]) from which the decoder, the
//! disassembler and the `Op` enum that interpreter and JIT dispatch on are generated.

pub mod disasm;
pub mod ir;
pub mod table;

pub use disasm::disasm;
pub use ir::Insn;
pub use table::{compressed_mnemonic, decode, decode_for, Ext, Fmt, Op};
