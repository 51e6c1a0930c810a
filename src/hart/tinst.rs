//! Transformed instructions for `mtinst`/`htinst` (H chapter, "Transformed Instruction
//! or Pseudoinstruction for mtinst or htinst"): what a trap of a load, store or AMO
//! writes so a hypervisor can emulate the access without reading the instruction.
//!
//! A load keeps opcode, funct3 and rd; a store opcode, funct3 and rs2; an atomic or an
//! HLV/HLVX/HSV every field. The immediate becomes zero and rs1 the offset of the
//! faulting address from the access's own (non-zero only for a misaligned access). A
//! compressed instruction is expanded first and then has bit 1 cleared. Rivet writes
//! these for every trap of a data access into M or HS (as QEMU does; the spec also
//! allows zero), which is what KVM's MMIO emulation reads first.

use rivet_jit::frontend::{Insn, Op};

const LOAD: u64 = 0x03;
const LOAD_FP: u64 = 0x07;
const STORE: u64 = 0x23;
const STORE_FP: u64 = 0x27;

/// A load or store as the helpers of compiled code know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataAccess {
    pub store: bool,
    /// Access size in bytes.
    pub size: u8,
    /// Sign-extending load (LB, LH, LW) rather than zero-extending.
    pub signed: bool,
    /// FLW/FLD/FSW/FSD.
    pub fp: bool,
    /// rd of a load, rs2 of a store.
    pub reg: u8,
    /// Compressed (16-bit) encoding.
    pub compressed: bool,
}

impl DataAccess {
    /// The transformed instruction, with `offset` in the rs1 field.
    pub fn transformed(&self, offset: u64) -> u64 {
        let width = u64::from(self.size.trailing_zeros() & 3);
        // funct3: the width, plus 4 for the zero-extending integer loads.
        let f3 = if !self.store && !self.fp && !self.signed && self.size < 8 {
            width | 4
        } else {
            width
        };
        let reg = u64::from(self.reg & 31);
        let v = match (self.store, self.fp) {
            (false, false) => LOAD | reg << 7,
            (false, true) => LOAD_FP | reg << 7,
            (true, false) => STORE | reg << 20,
            (true, true) => STORE_FP | reg << 20,
        } | f3 << 12
            | (offset & 0x1f) << 15;
        if self.compressed {
            v & !2
        } else {
            v
        }
    }
}

/// The transformed instruction of `i` for a trap at `offset` bytes past its access's
/// address; 0 for instructions with no defined transformation.
pub fn transformed(i: &Insn, offset: u64) -> u64 {
    use Op::*;
    let (store, size, signed, fp, reg) = match i.op {
        Lb => (false, 1, true, false, i.rd),
        Lh => (false, 2, true, false, i.rd),
        Lw => (false, 4, true, false, i.rd),
        Ld => (false, 8, true, false, i.rd),
        Lbu => (false, 1, false, false, i.rd),
        Lhu => (false, 2, false, false, i.rd),
        Lwu => (false, 4, false, false, i.rd),
        Flw => (false, 4, false, true, i.rd),
        Fld => (false, 8, false, true, i.rd),
        Sb => (true, 1, false, false, i.rs2),
        Sh => (true, 2, false, false, i.rs2),
        Sw => (true, 4, false, false, i.rs2),
        Sd => (true, 8, false, false, i.rs2),
        Fsw => (true, 4, false, true, i.rs2),
        Fsd => (true, 8, false, true, i.rs2),
        _ => {
            // Atomics and the virtual-machine loads and stores keep every field but
            // rs1 (they have no compressed forms).
            let keeps_all = i.op.ext() == Some(rivet_jit::arch::Ext::A)
                || i.op.ext() == Some(rivet_jit::arch::Ext::H)
                    && !matches!(i.op, HfenceVvma | HfenceGvma);
            return if keeps_all {
                (u64::from(i.raw) & !(0x1f << 15)) | (offset & 0x1f) << 15
            } else {
                0
            };
        }
    };
    DataAccess {
        store,
        size,
        signed,
        fp,
        reg,
        compressed: i.len == 2,
    }
    .transformed(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivet_jit::frontend::decode;

    #[test]
    fn loads_keep_opcode_funct3_rd() {
        // ld a0, 16(a1) -> ld a0, 0(x0) with offset 0.
        assert_eq!(transformed(&decode(0x0105_b503), 0), 0x0000_3503);
        // lbu t0, -1(sp), offset 0.
        assert_eq!(transformed(&decode(0xfff1_4283), 0), 0x0000_4283);
        // lw with a misaligned offset of 2 in rs1.
        assert_eq!(transformed(&decode(0x0045_2503), 2), 0x0001_2503);
        // fld fa0, 8(a0).
        assert_eq!(transformed(&decode(0x0085_3507), 0), 0x0000_3507);
    }

    #[test]
    fn stores_keep_opcode_funct3_rs2() {
        // sd a1, 8(a0) -> sd a1, 0(x0).
        assert_eq!(transformed(&decode(0x00b5_3423), 0), 0x00b0_3023);
        // fsw fa1, 4(a0).
        assert_eq!(transformed(&decode(0x00b5_2227), 0), 0x00b0_2027);
    }

    #[test]
    fn compressed_forms_are_expanded_with_bit_1_clear() {
        // c.lw a0, 4(a1) (0x41c8) -> lw a0, 0(x0) with bit 1 clear.
        let i = decode(0x41c8);
        assert_eq!(i.len, 2);
        assert_eq!(transformed(&i, 0), 0x0000_2501);
        // c.sdsp ra, 8(sp) (0xe406) -> sd ra, 0(x0) with bit 1 clear.
        assert_eq!(transformed(&decode(0xe406), 0), 0x0010_3021);
    }

    #[test]
    fn atomics_and_hlv_keep_all_but_rs1() {
        // amoadd.w a0, a2, (a1) = 0x00c5a52f.
        assert_eq!(transformed(&decode(0x00c5_a52f), 0), 0x00c0_252f);
        // hlv.d a0, (a1) = 0x6c05c573.
        assert_eq!(transformed(&decode(0x6c05_c573), 3), 0x6c01_c573);
        // Neither an addi nor an hfence has a transformation.
        assert_eq!(transformed(&decode(0x0015_0513), 0), 0);
        assert_eq!(transformed(&decode(0x6200_0073), 0), 0);
    }

    #[test]
    fn helper_accesses_match_the_decoded_forms() {
        let lw = DataAccess {
            store: false,
            size: 4,
            signed: true,
            fp: false,
            reg: 10,
            compressed: false,
        };
        assert_eq!(lw.transformed(0), transformed(&decode(0x0045_2503), 0));
        let lhu = DataAccess {
            signed: false,
            size: 2,
            ..lw
        };
        assert_eq!(lhu.transformed(0), 0x0000_5503);
    }
}
