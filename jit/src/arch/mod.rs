//! Definitions of the RISC-V architecture that every part of Rivet shares: CSR numbers
//! and fields ([`csr`]), exception causes ([`cause`]) and the ISA extensions ([`Ext`]).
//! This crate is the lowest that needs them (the decoder gates instructions by
//! extension, compiled code reads CSRs inline); the runtime and the boards import them
//! from here, so no number is written down twice.

pub mod csr;
mod ext;

pub use ext::{Ext, ExtSet};

/// Exception cause codes (Priv spec table "mcause values after trap"; causes 10 and
/// 20-23 from the H chapter, "Trap Cause Codes").
pub mod cause {
    pub const INSN_MISALIGNED: u64 = 0;
    pub const INSN_ACCESS: u64 = 1;
    pub const ILLEGAL_INSN: u64 = 2;
    pub const BREAKPOINT: u64 = 3;
    pub const LOAD_MISALIGNED: u64 = 4;
    pub const LOAD_ACCESS: u64 = 5;
    pub const STORE_MISALIGNED: u64 = 6;
    pub const STORE_ACCESS: u64 = 7;
    pub const ECALL_U: u64 = 8;
    pub const ECALL_S: u64 = 9;
    pub const ECALL_VS: u64 = 10;
    pub const ECALL_M: u64 = 11;
    pub const INSN_PAGE_FAULT: u64 = 12;
    pub const LOAD_PAGE_FAULT: u64 = 13;
    pub const STORE_PAGE_FAULT: u64 = 15;
    pub const INSN_GUEST_PAGE_FAULT: u64 = 20;
    pub const LOAD_GUEST_PAGE_FAULT: u64 = 21;
    pub const VIRTUAL_INSN: u64 = 22;
    pub const STORE_GUEST_PAGE_FAULT: u64 = 23;
}
