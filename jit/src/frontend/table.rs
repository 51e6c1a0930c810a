//! The decode table. (Being written: until it lands, every encoding decodes as illegal.)

use super::ir::Insn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Op {
    Illegal,
}

pub fn decode(raw: u32) -> Insn {
    Insn {
        op: Op::Illegal,
        rd: 0,
        rs1: 0,
        rs2: 0,
        rs3: 0,
        rm: 0,
        len: if raw & 3 == 3 { 4 } else { 2 },
        imm: 0,
        raw,
    }
}
