//! Rivet's instruction IR: one decoded RISC-V instruction in a fixed 16-byte record.
//!
//! Compressed instructions decode to the same `Op` as their 32-bit expansion (Unpriv spec
//! ch. "C" expansion table), with `len == 2`. Hints decode to the instruction they are
//! encoded as (e.g. `pause` is a `Fence`, Zihintntl hints are `Add` with rd = x0).

use super::table::Op;

/// One decoded instruction.
///
/// Field use by instruction format:
/// - `rd`, `rs1`, `rs2`, `rs3`: register numbers (x or f by the op); 0 where unused.
/// - `imm`: the sign-extended immediate (I/S/B/U/J formats, already shifted: LUI/AUIPC
///   hold `imm[31:12] << 12`); shift amounts for shifts-by-immediate; the CSR number for
///   Zicsr ops (unsigned, 0..4096) whose `rs1` is the register or the 5-bit uimm.
/// - `rm`: funct3 rounding mode for FP ops (7 = dynamic); `aq << 1 | rl` for A and
///   Zalrsc/Zaamo ops; the `fence` pred/succ nibbles as `pred << 4 | succ` for FENCE.
/// - `len`: 2 or 4 (bytes).
/// - `raw`: the instruction bits as fetched (16 bits zero-extended for compressed);
///   mtval of an illegal-instruction trap (Priv spec 3.1.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub op: Op,
    pub rd: u8,
    pub rs1: u8,
    pub rs2: u8,
    pub rs3: u8,
    pub rm: u8,
    pub len: u8,
    pub imm: i32,
    pub raw: u32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == 16);

/// The `seed` CSR (Zkr).
const SEED: u16 = 0x015;

impl Insn {
    /// The CSR number of a Zicsr op.
    #[inline]
    pub fn csr(&self) -> u16 {
        self.imm as u16 & 0xfff
    }

    /// Whether this is a Zicsr instruction that only reads its CSR: `csrrs`/`csrrc`
    /// with rs1 = x0, or `csrrsi`/`csrrci` with uimm = 0 (Unpriv spec "Zicsr": they do
    /// not write the CSR, nor cause its write side effects).
    #[inline]
    pub fn reads_csr_only(&self) -> bool {
        matches!(self.op, Op::Csrrs | Op::Csrrc | Op::Csrrsi | Op::Csrrci) && self.rs1 == 0
    }

    /// Whether the instruction is a Zicsr instruction that writes its CSR.
    pub fn writes_csr(&self) -> bool {
        matches!(
            self.op,
            Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci
        ) && !self.reads_csr_only()
    }

    /// Whether the instruction ends its block: [`Op::ends_block`], except that a CSR
    /// read changes nothing a block depends on (translation, privilege, interrupts),
    /// so it does not; but `seed` (Zkr), whose reads are writes too, does.
    #[inline]
    pub fn ends_block(&self) -> bool {
        if self.reads_csr_only() {
            return self.csr() == SEED;
        }
        self.op.ends_block()
    }

    #[inline]
    pub fn aq(&self) -> bool {
        self.rm & 2 != 0
    }

    #[inline]
    pub fn rl(&self) -> bool {
        self.rm & 1 != 0
    }
}
