//! Decode and disassemble arbitrary instruction bytes as a hart would fetch them:
//! 16-bit parcels, 32 bits when the low two bits are 0b11. Neither may panic, and the
//! decoded record must respect its invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rivet_jit::frontend::{decode, disasm, Op};

fuzz_target!(|data: &[u8]| {
    let mut pc = 0x8000_0000u64;
    let mut rest = data;
    while rest.len() >= 2 {
        let lo = u16::from_le_bytes([rest[0], rest[1]]) as u32;
        let raw = if lo & 3 == 3 && rest.len() >= 4 {
            lo | (u16::from_le_bytes([rest[2], rest[3]]) as u32) << 16
        } else {
            lo
        };
        let insn = decode(raw);
        let len = if raw & 3 == 3 { 4 } else { 2 };
        assert_eq!(insn.len as usize, len);
        assert!(insn.rd < 32 && insn.rs1 < 32 && insn.rs2 < 32 && insn.rs3 < 32);
        if insn.op == Op::Illegal {
            assert_eq!(insn.raw, raw);
        }
        let text = disasm(&insn, pc);
        assert!(!text.is_empty());
        pc = pc.wrapping_add(len as u64);
        rest = &rest[len.min(rest.len())..];
    }
});
