//! The decode table: every RISC-V encoding Rivet knows, one line each, in [`for_each_insn!`].
//!
//! From that one table come the [`Op`] enum that the interpreter and the JIT dispatch on,
//! its metadata ([`Op::mnemonic`], [`Op::ext`], [`Op::ends_block`], [`Op::format`]), the
//! decoder ([`decode`]) and the disassembler (`disasm.rs`, which reads [`Fmt::args`]).
//!
//! 32-bit lines give: mnemonic, `Op` variant, mask, match, operand format, extension,
//! flags. A word `w` is the encoding when `w & mask == match`. Compressed lines give:
//! mnemonic, the `Op` of the 32-bit instruction it expands to, mask, match and a
//! compressed format that says how to expand the fields (Unpriv spec, "C" chapter,
//! RVC instruction set listings). Compressed code points that the spec reserves are
//! rejected in [`expand16`]; hints decode as the instruction they are encoded as.
//!
//! Decoding is bucketed: 32-bit entries by major opcode and funct3 (256 buckets), 16-bit
//! entries by quadrant and funct3 (32 buckets), each bucket ordered most specific mask
//! first. The buckets are built at compile time.

use super::ir::Insn;

pub use crate::arch::Ext;

/// Operand format of a 32-bit encoding: which fields [`decode`] fills in and how
/// `disasm` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fmt {
    /// No operands (ecall, mret, fence.tso, fence.i).
    None,
    /// x rd, x rs1, x rs2.
    R,
    /// x rd, x rs1 (clz, sext.b, ...).
    R1,
    /// x rd, x rs1, I-immediate.
    I,
    /// Load: x rd, I-immediate(x rs1).
    Load,
    /// Store: x rs2, S-immediate(x rs1).
    Store,
    /// Branch: x rs1, x rs2, B-immediate (pc-relative).
    Branch,
    /// LUI/AUIPC: x rd, U-immediate (imm holds imm[31:12] << 12).
    U,
    /// JAL: x rd, J-immediate (pc-relative).
    Jal,
    /// JALR: x rd, I-immediate(x rs1).
    Jalr,
    /// Shift by a 6-bit immediate: x rd, x rs1, shamt in imm.
    Sh6,
    /// Shift by a 5-bit immediate (W forms): x rd, x rs1, shamt in imm.
    Sh5,
    /// CSR register form: x rd, csr (imm), x rs1.
    Csr,
    /// CSR immediate form: x rd, csr (imm), uimm5 (rs1).
    CsrI,
    /// FENCE: rm = pred << 4 | succ.
    Fence,
    /// AMO: x rd, x rs2, (x rs1); rm = aq << 1 | rl.
    Amo,
    /// LR: x rd, (x rs1); rm = aq << 1 | rl.
    Lr,
    /// FP load: f rd, I-immediate(x rs1).
    FLoad,
    /// FP store: f rs2, S-immediate(x rs1).
    FStore,
    /// Fused multiply-add: f rd, f rs1, f rs2, f rs3, rm.
    R4,
    /// f rd, f rs1, f rs2, rm.
    FRrm,
    /// f rd, f rs1, f rs2 (sign injection, min/max).
    FR,
    /// f rd, f rs1, rm (fsqrt, fcvt.s.d, fround).
    F1rm,
    /// f rd, f rs1 with an rm field that does not change the result (fcvt.d.s).
    F1exact,
    /// x rd, f rs1, rm (fcvt.w.s, fcvtmod.w.d).
    FtoXrm,
    /// f rd, x rs1, rm (fcvt.s.w).
    XtoFrm,
    /// f rd, x rs1 with an rm field that does not change the result (fcvt.d.w).
    XtoFexact,
    /// x rd, f rs1 (fmv.x.w, fclass).
    FtoX,
    /// f rd, x rs1 (fmv.w.x).
    XtoF,
    /// x rd, f rs1, f rs2 (feq, flt, fle, fleq, fltq).
    FCmp,
    /// FLI: f rd, constant index in rs1.
    Fli,
    /// HLV/HLVX: x rd, (x rs1).
    HLoad,
    /// HSV: x rs2, (x rs1).
    HStore,
    /// SFENCE.VMA-like: x rs1, x rs2.
    Fence2,
    /// CBO: (x rs1).
    Cbo,
}

/// How a compressed encoding's fields expand to its 32-bit instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CFmt {
    /// c.addi4spn: addi rd', sp, nzuimm (nzuimm = 0 reserved).
    Addi4spn,
    /// c.lw: rd', uimm[6:2](rs1').
    Lw,
    /// c.ld / c.fld: rd', uimm[7:3](rs1').
    Ld,
    /// c.sw: rs2', uimm[6:2](rs1').
    Sw,
    /// c.sd / c.fsd: rs2', uimm[7:3](rs1').
    Sd,
    /// c.addi / c.nop: addi rd, rd, imm (rd = 0 or imm = 0 are hints).
    Addi,
    /// c.addiw: addiw rd, rd, imm (rd = 0 reserved).
    Addiw,
    /// c.li: addi rd, zero, imm.
    Li,
    /// c.addi16sp: addi sp, sp, nzimm (nzimm = 0 reserved).
    Addi16sp,
    /// c.lui: lui rd, nzimm (nzimm = 0 reserved; rd = 0 is a hint).
    Lui,
    /// c.srli / c.srai: rd', rd', shamt6.
    ShiftR,
    /// c.andi: andi rd', rd', imm.
    Andi,
    /// c.sub ... c.addw: rd', rd', rs2'.
    Ca,
    /// c.j: jal zero, offset.
    J,
    /// c.beqz / c.bnez: rs1', zero, offset.
    Bz,
    /// c.slli: slli rd, rd, shamt6.
    Slli,
    /// c.lwsp: lw rd, uimm(sp) (rd = 0 reserved).
    Lwsp,
    /// c.ldsp: ld rd, uimm(sp) (rd = 0 reserved).
    Ldsp,
    /// c.fldsp: fld rd, uimm(sp).
    Fldsp,
    /// c.swsp: sw rs2, uimm(sp).
    Swsp,
    /// c.sdsp / c.fsdsp: rs2, uimm(sp).
    Sdsp,
    /// c.jr: jalr zero, 0(rs1) (rs1 = 0 reserved).
    Jr,
    /// c.mv: add rd, zero, rs2.
    Mv,
    /// c.jalr: jalr ra, 0(rs1).
    Jalr,
    /// c.add: add rd, rd, rs2.
    Add,
    /// c.ebreak.
    None,
}

/// Flag: the instruction ends a translation block (control flow, or a side effect on
/// translation state, privilege or the code stream).
const END: u8 = 1;

// Major opcodes (Unpriv spec, "RV32/64G Instruction Set Listings", opcode map).
const LOAD: u32 = 0x03;
const LOAD_FP: u32 = 0x07;
const MISC_MEM: u32 = 0x0f;
const OP_IMM: u32 = 0x13;
const AUIPC: u32 = 0x17;
const OP_IMM_32: u32 = 0x1b;
const STORE: u32 = 0x23;
const STORE_FP: u32 = 0x27;
const AMO: u32 = 0x2f;
const OP: u32 = 0x33;
const LUI: u32 = 0x37;
const OP_32: u32 = 0x3b;
const MADD: u32 = 0x43;
const MSUB: u32 = 0x47;
const NMSUB: u32 = 0x4b;
const NMADD: u32 = 0x4f;
const OP_FP: u32 = 0x53;
const BRANCH: u32 = 0x63;
const JALR: u32 = 0x67;
const JAL: u32 = 0x6f;
const SYSTEM: u32 = 0x73;

// Masks: which bits an encoding fixes.
/// opcode.
const M_OPC: u32 = 0x0000_007f;
/// opcode + funct3.
const M_F3: u32 = 0x0000_707f;
/// opcode + funct3 + funct7.
const M_F7: u32 = 0xfe00_707f;
/// opcode + funct3 + funct6 (RV64 shifts by immediate: shamt[5] is bit 25).
const M_F6: u32 = 0xfc00_707f;
/// opcode + funct3 + funct7 + rs2 (unary ops, fcvt with fixed rm).
const M_F7_RS2: u32 = 0xfff0_707f;
/// opcode + funct7 (funct3 is the rounding mode).
const M_F7_RM: u32 = 0xfe00_007f;
/// opcode + funct7 + rs2 (funct3 is the rounding mode).
const M_F7_RS2_RM: u32 = 0xfff0_007f;
/// opcode + fmt (fused multiply-add).
const M_R4: u32 = 0x0600_007f;
/// opcode + funct3 + funct5 (AMOs; aq/rl free).
const M_AMO: u32 = 0xf800_707f;
/// opcode + funct3 + funct5 + rs2 (LR).
const M_LR: u32 = 0xf9f0_707f;
/// opcode + funct3 + funct7 + rd (sfence.vma, hfence, hsv).
const M_F7_RD: u32 = 0xfe00_7fff;
/// opcode + funct3 + imm12 + rd (cbo.*).
const M_CBO: u32 = 0xfff0_7fff;
/// Every bit.
const M_ALL: u32 = 0xffff_ffff;

/// opcode + funct3 match.
const fn i(opc: u32, f3: u32) -> u32 {
    opc | f3 << 12
}

/// opcode + funct3 + funct7 match (funct6 << 1 for RV64 immediate shifts).
const fn r(opc: u32, f3: u32, f7: u32) -> u32 {
    opc | f3 << 12 | f7 << 25
}

/// opcode + funct3 + funct7 + rs2 match.
const fn r2(opc: u32, f3: u32, f7: u32, rs2: u32) -> u32 {
    r(opc, f3, f7) | rs2 << 20
}

/// AMO match: funct5 and width (funct3: 2 = .w, 3 = .d).
const fn amo(f5: u32, f3: u32) -> u32 {
    AMO | f3 << 12 | f5 << 27
}

/// The decode table. Invokes `$m!` with two brace groups: the 32-bit encodings
/// `(mnemonic, Op, mask, match, Fmt, Ext, flags)` and the compressed encodings
/// `(mnemonic, expanded Op, mask, match, CFmt)`.
macro_rules! for_each_insn {
    ($m:ident) => {
        $m! {
            {
                // RV64I (Unpriv spec ch. 2 and 4).
                ("lui", Lui, M_OPC, LUI, U, I, 0),
                ("auipc", Auipc, M_OPC, AUIPC, U, I, 0),
                ("jal", Jal, M_OPC, JAL, Jal, I, END),
                ("jalr", Jalr, M_F3, i(JALR, 0), Jalr, I, END),
                ("beq", Beq, M_F3, i(BRANCH, 0), Branch, I, END),
                ("bne", Bne, M_F3, i(BRANCH, 1), Branch, I, END),
                ("blt", Blt, M_F3, i(BRANCH, 4), Branch, I, END),
                ("bge", Bge, M_F3, i(BRANCH, 5), Branch, I, END),
                ("bltu", Bltu, M_F3, i(BRANCH, 6), Branch, I, END),
                ("bgeu", Bgeu, M_F3, i(BRANCH, 7), Branch, I, END),
                ("lb", Lb, M_F3, i(LOAD, 0), Load, I, 0),
                ("lh", Lh, M_F3, i(LOAD, 1), Load, I, 0),
                ("lw", Lw, M_F3, i(LOAD, 2), Load, I, 0),
                ("ld", Ld, M_F3, i(LOAD, 3), Load, I, 0),
                ("lbu", Lbu, M_F3, i(LOAD, 4), Load, I, 0),
                ("lhu", Lhu, M_F3, i(LOAD, 5), Load, I, 0),
                ("lwu", Lwu, M_F3, i(LOAD, 6), Load, I, 0),
                ("sb", Sb, M_F3, i(STORE, 0), Store, I, 0),
                ("sh", Sh, M_F3, i(STORE, 1), Store, I, 0),
                ("sw", Sw, M_F3, i(STORE, 2), Store, I, 0),
                ("sd", Sd, M_F3, i(STORE, 3), Store, I, 0),
                // Zicbop prefetch.{i,r,w} are ORI with rd = 0 and decode as Ori.
                ("addi", Addi, M_F3, i(OP_IMM, 0), I, I, 0),
                ("slti", Slti, M_F3, i(OP_IMM, 2), I, I, 0),
                ("sltiu", Sltiu, M_F3, i(OP_IMM, 3), I, I, 0),
                ("xori", Xori, M_F3, i(OP_IMM, 4), I, I, 0),
                ("ori", Ori, M_F3, i(OP_IMM, 6), I, I, 0),
                ("andi", Andi, M_F3, i(OP_IMM, 7), I, I, 0),
                ("slli", Slli, M_F6, r(OP_IMM, 1, 0x00), Sh6, I, 0),
                ("srli", Srli, M_F6, r(OP_IMM, 5, 0x00), Sh6, I, 0),
                ("srai", Srai, M_F6, r(OP_IMM, 5, 0x20), Sh6, I, 0),
                ("add", Add, M_F7, r(OP, 0, 0x00), R, I, 0),
                ("sub", Sub, M_F7, r(OP, 0, 0x20), R, I, 0),
                ("sll", Sll, M_F7, r(OP, 1, 0x00), R, I, 0),
                ("slt", Slt, M_F7, r(OP, 2, 0x00), R, I, 0),
                ("sltu", Sltu, M_F7, r(OP, 3, 0x00), R, I, 0),
                ("xor", Xor, M_F7, r(OP, 4, 0x00), R, I, 0),
                ("srl", Srl, M_F7, r(OP, 5, 0x00), R, I, 0),
                ("sra", Sra, M_F7, r(OP, 5, 0x20), R, I, 0),
                ("or", Or, M_F7, r(OP, 6, 0x00), R, I, 0),
                ("and", And, M_F7, r(OP, 7, 0x00), R, I, 0),
                ("addiw", Addiw, M_F3, i(OP_IMM_32, 0), I, I, 0),
                ("slliw", Slliw, M_F7, r(OP_IMM_32, 1, 0x00), Sh5, I, 0),
                ("srliw", Srliw, M_F7, r(OP_IMM_32, 5, 0x00), Sh5, I, 0),
                ("sraiw", Sraiw, M_F7, r(OP_IMM_32, 5, 0x20), Sh5, I, 0),
                ("addw", Addw, M_F7, r(OP_32, 0, 0x00), R, I, 0),
                ("subw", Subw, M_F7, r(OP_32, 0, 0x20), R, I, 0),
                ("sllw", Sllw, M_F7, r(OP_32, 1, 0x00), R, I, 0),
                ("srlw", Srlw, M_F7, r(OP_32, 5, 0x00), R, I, 0),
                ("sraw", Sraw, M_F7, r(OP_32, 5, 0x20), R, I, 0),
                // Unpriv 2.7: FENCE's rs1/rd and reserved fm values are ignored (a
                // normal fence). Zihintpause `pause` is a FENCE (pred = W, succ = 0).
                ("fence.tso", FenceTso, 0xfff0_707f, 0x8330_000f, None, I, 0),
                ("fence", Fence, M_F3, i(MISC_MEM, 0), Fence, I, 0),
                ("ecall", Ecall, M_ALL, 0x0000_0073, None, I, END),
                ("ebreak", Ebreak, M_ALL, 0x0010_0073, None, I, END),
                // Zifencei: imm, rs1 and rd are ignored (Unpriv "Zifencei").
                ("fence.i", FenceI, M_F3, i(MISC_MEM, 1), None, Zifencei, END),
                // Zicsr.
                ("csrrw", Csrrw, M_F3, i(SYSTEM, 1), Csr, Zicsr, END),
                ("csrrs", Csrrs, M_F3, i(SYSTEM, 2), Csr, Zicsr, END),
                ("csrrc", Csrrc, M_F3, i(SYSTEM, 3), Csr, Zicsr, END),
                ("csrrwi", Csrrwi, M_F3, i(SYSTEM, 5), CsrI, Zicsr, END),
                ("csrrsi", Csrrsi, M_F3, i(SYSTEM, 6), CsrI, Zicsr, END),
                ("csrrci", Csrrci, M_F3, i(SYSTEM, 7), CsrI, Zicsr, END),
                // M.
                ("mul", Mul, M_F7, r(OP, 0, 0x01), R, M, 0),
                ("mulh", Mulh, M_F7, r(OP, 1, 0x01), R, M, 0),
                ("mulhsu", Mulhsu, M_F7, r(OP, 2, 0x01), R, M, 0),
                ("mulhu", Mulhu, M_F7, r(OP, 3, 0x01), R, M, 0),
                ("div", Div, M_F7, r(OP, 4, 0x01), R, M, 0),
                ("divu", Divu, M_F7, r(OP, 5, 0x01), R, M, 0),
                ("rem", Rem, M_F7, r(OP, 6, 0x01), R, M, 0),
                ("remu", Remu, M_F7, r(OP, 7, 0x01), R, M, 0),
                ("mulw", Mulw, M_F7, r(OP_32, 0, 0x01), R, M, 0),
                ("divw", Divw, M_F7, r(OP_32, 4, 0x01), R, M, 0),
                ("divuw", Divuw, M_F7, r(OP_32, 5, 0x01), R, M, 0),
                ("remw", Remw, M_F7, r(OP_32, 6, 0x01), R, M, 0),
                ("remuw", Remuw, M_F7, r(OP_32, 7, 0x01), R, M, 0),
                // A.
                ("lr.w", LrW, M_LR, amo(0x02, 2), Lr, A, 0),
                ("sc.w", ScW, M_AMO, amo(0x03, 2), Amo, A, 0),
                ("amoswap.w", AmoswapW, M_AMO, amo(0x01, 2), Amo, A, 0),
                ("amoadd.w", AmoaddW, M_AMO, amo(0x00, 2), Amo, A, 0),
                ("amoxor.w", AmoxorW, M_AMO, amo(0x04, 2), Amo, A, 0),
                ("amoand.w", AmoandW, M_AMO, amo(0x0c, 2), Amo, A, 0),
                ("amoor.w", AmoorW, M_AMO, amo(0x08, 2), Amo, A, 0),
                ("amomin.w", AmominW, M_AMO, amo(0x10, 2), Amo, A, 0),
                ("amomax.w", AmomaxW, M_AMO, amo(0x14, 2), Amo, A, 0),
                ("amominu.w", AmominuW, M_AMO, amo(0x18, 2), Amo, A, 0),
                ("amomaxu.w", AmomaxuW, M_AMO, amo(0x1c, 2), Amo, A, 0),
                ("lr.d", LrD, M_LR, amo(0x02, 3), Lr, A, 0),
                ("sc.d", ScD, M_AMO, amo(0x03, 3), Amo, A, 0),
                ("amoswap.d", AmoswapD, M_AMO, amo(0x01, 3), Amo, A, 0),
                ("amoadd.d", AmoaddD, M_AMO, amo(0x00, 3), Amo, A, 0),
                ("amoxor.d", AmoxorD, M_AMO, amo(0x04, 3), Amo, A, 0),
                ("amoand.d", AmoandD, M_AMO, amo(0x0c, 3), Amo, A, 0),
                ("amoor.d", AmoorD, M_AMO, amo(0x08, 3), Amo, A, 0),
                ("amomin.d", AmominD, M_AMO, amo(0x10, 3), Amo, A, 0),
                ("amomax.d", AmomaxD, M_AMO, amo(0x14, 3), Amo, A, 0),
                ("amominu.d", AmominuD, M_AMO, amo(0x18, 3), Amo, A, 0),
                ("amomaxu.d", AmomaxuD, M_AMO, amo(0x1c, 3), Amo, A, 0),
                // F.
                ("flw", Flw, M_F3, i(LOAD_FP, 2), FLoad, F, 0),
                ("fsw", Fsw, M_F3, i(STORE_FP, 2), FStore, F, 0),
                ("fmadd.s", FmaddS, M_R4, MADD, R4, F, 0),
                ("fmsub.s", FmsubS, M_R4, MSUB, R4, F, 0),
                ("fnmsub.s", FnmsubS, M_R4, NMSUB, R4, F, 0),
                ("fnmadd.s", FnmaddS, M_R4, NMADD, R4, F, 0),
                ("fadd.s", FaddS, M_F7_RM, r(OP_FP, 0, 0x00), FRrm, F, 0),
                ("fsub.s", FsubS, M_F7_RM, r(OP_FP, 0, 0x04), FRrm, F, 0),
                ("fmul.s", FmulS, M_F7_RM, r(OP_FP, 0, 0x08), FRrm, F, 0),
                ("fdiv.s", FdivS, M_F7_RM, r(OP_FP, 0, 0x0c), FRrm, F, 0),
                ("fsqrt.s", FsqrtS, M_F7_RS2_RM, r2(OP_FP, 0, 0x2c, 0), F1rm, F, 0),
                ("fsgnj.s", FsgnjS, M_F7, r(OP_FP, 0, 0x10), FR, F, 0),
                ("fsgnjn.s", FsgnjnS, M_F7, r(OP_FP, 1, 0x10), FR, F, 0),
                ("fsgnjx.s", FsgnjxS, M_F7, r(OP_FP, 2, 0x10), FR, F, 0),
                ("fmin.s", FminS, M_F7, r(OP_FP, 0, 0x14), FR, F, 0),
                ("fmax.s", FmaxS, M_F7, r(OP_FP, 1, 0x14), FR, F, 0),
                ("fcvt.w.s", FcvtWS, M_F7_RS2_RM, r2(OP_FP, 0, 0x60, 0), FtoXrm, F, 0),
                ("fcvt.wu.s", FcvtWuS, M_F7_RS2_RM, r2(OP_FP, 0, 0x60, 1), FtoXrm, F, 0),
                ("fcvt.l.s", FcvtLS, M_F7_RS2_RM, r2(OP_FP, 0, 0x60, 2), FtoXrm, F, 0),
                ("fcvt.lu.s", FcvtLuS, M_F7_RS2_RM, r2(OP_FP, 0, 0x60, 3), FtoXrm, F, 0),
                ("fmv.x.w", FmvXW, M_F7_RS2, r2(OP_FP, 0, 0x70, 0), FtoX, F, 0),
                ("fclass.s", FclassS, M_F7_RS2, r2(OP_FP, 1, 0x70, 0), FtoX, F, 0),
                ("feq.s", FeqS, M_F7, r(OP_FP, 2, 0x50), FCmp, F, 0),
                ("flt.s", FltS, M_F7, r(OP_FP, 1, 0x50), FCmp, F, 0),
                ("fle.s", FleS, M_F7, r(OP_FP, 0, 0x50), FCmp, F, 0),
                ("fcvt.s.w", FcvtSW, M_F7_RS2_RM, r2(OP_FP, 0, 0x68, 0), XtoFrm, F, 0),
                ("fcvt.s.wu", FcvtSWu, M_F7_RS2_RM, r2(OP_FP, 0, 0x68, 1), XtoFrm, F, 0),
                ("fcvt.s.l", FcvtSL, M_F7_RS2_RM, r2(OP_FP, 0, 0x68, 2), XtoFrm, F, 0),
                ("fcvt.s.lu", FcvtSLu, M_F7_RS2_RM, r2(OP_FP, 0, 0x68, 3), XtoFrm, F, 0),
                ("fmv.w.x", FmvWX, M_F7_RS2, r2(OP_FP, 0, 0x78, 0), XtoF, F, 0),
                // D.
                ("fld", Fld, M_F3, i(LOAD_FP, 3), FLoad, D, 0),
                ("fsd", Fsd, M_F3, i(STORE_FP, 3), FStore, D, 0),
                ("fmadd.d", FmaddD, M_R4, MADD | 1 << 25, R4, D, 0),
                ("fmsub.d", FmsubD, M_R4, MSUB | 1 << 25, R4, D, 0),
                ("fnmsub.d", FnmsubD, M_R4, NMSUB | 1 << 25, R4, D, 0),
                ("fnmadd.d", FnmaddD, M_R4, NMADD | 1 << 25, R4, D, 0),
                ("fadd.d", FaddD, M_F7_RM, r(OP_FP, 0, 0x01), FRrm, D, 0),
                ("fsub.d", FsubD, M_F7_RM, r(OP_FP, 0, 0x05), FRrm, D, 0),
                ("fmul.d", FmulD, M_F7_RM, r(OP_FP, 0, 0x09), FRrm, D, 0),
                ("fdiv.d", FdivD, M_F7_RM, r(OP_FP, 0, 0x0d), FRrm, D, 0),
                ("fsqrt.d", FsqrtD, M_F7_RS2_RM, r2(OP_FP, 0, 0x2d, 0), F1rm, D, 0),
                ("fsgnj.d", FsgnjD, M_F7, r(OP_FP, 0, 0x11), FR, D, 0),
                ("fsgnjn.d", FsgnjnD, M_F7, r(OP_FP, 1, 0x11), FR, D, 0),
                ("fsgnjx.d", FsgnjxD, M_F7, r(OP_FP, 2, 0x11), FR, D, 0),
                ("fmin.d", FminD, M_F7, r(OP_FP, 0, 0x15), FR, D, 0),
                ("fmax.d", FmaxD, M_F7, r(OP_FP, 1, 0x15), FR, D, 0),
                ("fcvt.s.d", FcvtSD, M_F7_RS2_RM, r2(OP_FP, 0, 0x20, 1), F1rm, D, 0),
                ("fcvt.d.s", FcvtDS, M_F7_RS2_RM, r2(OP_FP, 0, 0x21, 0), F1exact, D, 0),
                ("feq.d", FeqD, M_F7, r(OP_FP, 2, 0x51), FCmp, D, 0),
                ("flt.d", FltD, M_F7, r(OP_FP, 1, 0x51), FCmp, D, 0),
                ("fle.d", FleD, M_F7, r(OP_FP, 0, 0x51), FCmp, D, 0),
                ("fclass.d", FclassD, M_F7_RS2, r2(OP_FP, 1, 0x71, 0), FtoX, D, 0),
                ("fcvt.w.d", FcvtWD, M_F7_RS2_RM, r2(OP_FP, 0, 0x61, 0), FtoXrm, D, 0),
                ("fcvt.wu.d", FcvtWuD, M_F7_RS2_RM, r2(OP_FP, 0, 0x61, 1), FtoXrm, D, 0),
                ("fcvt.l.d", FcvtLD, M_F7_RS2_RM, r2(OP_FP, 0, 0x61, 2), FtoXrm, D, 0),
                ("fcvt.lu.d", FcvtLuD, M_F7_RS2_RM, r2(OP_FP, 0, 0x61, 3), FtoXrm, D, 0),
                ("fcvt.d.w", FcvtDW, M_F7_RS2_RM, r2(OP_FP, 0, 0x69, 0), XtoFexact, D, 0),
                ("fcvt.d.wu", FcvtDWu, M_F7_RS2_RM, r2(OP_FP, 0, 0x69, 1), XtoFexact, D, 0),
                ("fcvt.d.l", FcvtDL, M_F7_RS2_RM, r2(OP_FP, 0, 0x69, 2), XtoFrm, D, 0),
                ("fcvt.d.lu", FcvtDLu, M_F7_RS2_RM, r2(OP_FP, 0, 0x69, 3), XtoFrm, D, 0),
                ("fmv.x.d", FmvXD, M_F7_RS2, r2(OP_FP, 0, 0x71, 0), FtoX, D, 0),
                ("fmv.d.x", FmvDX, M_F7_RS2, r2(OP_FP, 0, 0x79, 0), XtoF, D, 0),
                // Zfa for S and D (fmvh.x.d / fmvp.d.x are RV32-only and absent).
                ("fli.s", FliS, M_F7_RS2, r2(OP_FP, 0, 0x78, 1), Fli, Zfa, 0),
                ("fli.d", FliD, M_F7_RS2, r2(OP_FP, 0, 0x79, 1), Fli, Zfa, 0),
                ("fminm.s", FminmS, M_F7, r(OP_FP, 2, 0x14), FR, Zfa, 0),
                ("fmaxm.s", FmaxmS, M_F7, r(OP_FP, 3, 0x14), FR, Zfa, 0),
                ("fminm.d", FminmD, M_F7, r(OP_FP, 2, 0x15), FR, Zfa, 0),
                ("fmaxm.d", FmaxmD, M_F7, r(OP_FP, 3, 0x15), FR, Zfa, 0),
                ("fround.s", FroundS, M_F7_RS2_RM, r2(OP_FP, 0, 0x20, 4), F1rm, Zfa, 0),
                ("froundnx.s", FroundnxS, M_F7_RS2_RM, r2(OP_FP, 0, 0x20, 5), F1rm, Zfa, 0),
                ("fround.d", FroundD, M_F7_RS2_RM, r2(OP_FP, 0, 0x21, 4), F1rm, Zfa, 0),
                ("froundnx.d", FroundnxD, M_F7_RS2_RM, r2(OP_FP, 0, 0x21, 5), F1rm, Zfa, 0),
                // fcvtmod.w.d only exists with rm = RTZ.
                ("fcvtmod.w.d", FcvtmodWD, M_F7_RS2, r2(OP_FP, 1, 0x61, 8), FtoXrm, Zfa, 0),
                ("fleq.s", FleqS, M_F7, r(OP_FP, 4, 0x50), FCmp, Zfa, 0),
                ("fltq.s", FltqS, M_F7, r(OP_FP, 5, 0x50), FCmp, Zfa, 0),
                ("fleq.d", FleqD, M_F7, r(OP_FP, 4, 0x51), FCmp, Zfa, 0),
                ("fltq.d", FltqD, M_F7, r(OP_FP, 5, 0x51), FCmp, Zfa, 0),
                // Zba.
                ("sh1add", Sh1add, M_F7, r(OP, 2, 0x10), R, Zba, 0),
                ("sh2add", Sh2add, M_F7, r(OP, 4, 0x10), R, Zba, 0),
                ("sh3add", Sh3add, M_F7, r(OP, 6, 0x10), R, Zba, 0),
                ("add.uw", AddUw, M_F7, r(OP_32, 0, 0x04), R, Zba, 0),
                ("sh1add.uw", Sh1addUw, M_F7, r(OP_32, 2, 0x10), R, Zba, 0),
                ("sh2add.uw", Sh2addUw, M_F7, r(OP_32, 4, 0x10), R, Zba, 0),
                ("sh3add.uw", Sh3addUw, M_F7, r(OP_32, 6, 0x10), R, Zba, 0),
                ("slli.uw", SlliUw, M_F6, r(OP_IMM_32, 1, 0x04), Sh6, Zba, 0),
                // Zbb.
                ("andn", Andn, M_F7, r(OP, 7, 0x20), R, Zbb, 0),
                ("orn", Orn, M_F7, r(OP, 6, 0x20), R, Zbb, 0),
                ("xnor", Xnor, M_F7, r(OP, 4, 0x20), R, Zbb, 0),
                ("clz", Clz, M_F7_RS2, r2(OP_IMM, 1, 0x30, 0), R1, Zbb, 0),
                ("ctz", Ctz, M_F7_RS2, r2(OP_IMM, 1, 0x30, 1), R1, Zbb, 0),
                ("cpop", Cpop, M_F7_RS2, r2(OP_IMM, 1, 0x30, 2), R1, Zbb, 0),
                ("sext.b", SextB, M_F7_RS2, r2(OP_IMM, 1, 0x30, 4), R1, Zbb, 0),
                ("sext.h", SextH, M_F7_RS2, r2(OP_IMM, 1, 0x30, 5), R1, Zbb, 0),
                ("clzw", Clzw, M_F7_RS2, r2(OP_IMM_32, 1, 0x30, 0), R1, Zbb, 0),
                ("ctzw", Ctzw, M_F7_RS2, r2(OP_IMM_32, 1, 0x30, 1), R1, Zbb, 0),
                ("cpopw", Cpopw, M_F7_RS2, r2(OP_IMM_32, 1, 0x30, 2), R1, Zbb, 0),
                ("max", Max, M_F7, r(OP, 6, 0x05), R, Zbb, 0),
                ("maxu", Maxu, M_F7, r(OP, 7, 0x05), R, Zbb, 0),
                ("min", Min, M_F7, r(OP, 4, 0x05), R, Zbb, 0),
                ("minu", Minu, M_F7, r(OP, 5, 0x05), R, Zbb, 0),
                ("zext.h", ZextH, M_F7_RS2, r2(OP_32, 4, 0x04, 0), R1, Zbb, 0),
                ("rol", Rol, M_F7, r(OP, 1, 0x30), R, Zbb, 0),
                ("ror", Ror, M_F7, r(OP, 5, 0x30), R, Zbb, 0),
                ("rolw", Rolw, M_F7, r(OP_32, 1, 0x30), R, Zbb, 0),
                ("rorw", Rorw, M_F7, r(OP_32, 5, 0x30), R, Zbb, 0),
                ("rori", Rori, M_F6, r(OP_IMM, 5, 0x30), Sh6, Zbb, 0),
                ("roriw", Roriw, M_F7, r(OP_IMM_32, 5, 0x30), Sh5, Zbb, 0),
                ("orc.b", OrcB, M_F7_RS2, r2(OP_IMM, 5, 0x14, 7), R1, Zbb, 0),
                ("rev8", Rev8, M_F7_RS2, r2(OP_IMM, 5, 0x35, 24), R1, Zbb, 0),
                // Zbc.
                ("clmul", Clmul, M_F7, r(OP, 1, 0x05), R, Zbc, 0),
                ("clmulh", Clmulh, M_F7, r(OP, 3, 0x05), R, Zbc, 0),
                ("clmulr", Clmulr, M_F7, r(OP, 2, 0x05), R, Zbc, 0),
                // Zbs.
                ("bclr", Bclr, M_F7, r(OP, 1, 0x24), R, Zbs, 0),
                ("bclri", Bclri, M_F6, r(OP_IMM, 1, 0x24), Sh6, Zbs, 0),
                ("bext", Bext, M_F7, r(OP, 5, 0x24), R, Zbs, 0),
                ("bexti", Bexti, M_F6, r(OP_IMM, 5, 0x24), Sh6, Zbs, 0),
                ("binv", Binv, M_F7, r(OP, 1, 0x34), R, Zbs, 0),
                ("binvi", Binvi, M_F6, r(OP_IMM, 1, 0x34), Sh6, Zbs, 0),
                ("bset", Bset, M_F7, r(OP, 1, 0x14), R, Zbs, 0),
                ("bseti", Bseti, M_F6, r(OP_IMM, 1, 0x14), Sh6, Zbs, 0),
                // Zicond.
                ("czero.eqz", CzeroEqz, M_F7, r(OP, 5, 0x07), R, Zicond, 0),
                ("czero.nez", CzeroNez, M_F7, r(OP, 7, 0x07), R, Zicond, 0),
                // Zicbom, Zicboz.
                ("cbo.inval", CboInval, M_CBO, i(MISC_MEM, 2), Cbo, Zicbom, 0),
                ("cbo.clean", CboClean, M_CBO, i(MISC_MEM, 2) | 1 << 20, Cbo, Zicbom, 0),
                ("cbo.flush", CboFlush, M_CBO, i(MISC_MEM, 2) | 2 << 20, Cbo, Zicbom, 0),
                ("cbo.zero", CboZero, M_CBO, i(MISC_MEM, 2) | 4 << 20, Cbo, Zicboz, 0),
                // Zawrs.
                ("wrs.nto", WrsNto, M_ALL, 0x00d0_0073, None, Zawrs, END),
                ("wrs.sto", WrsSto, M_ALL, 0x01d0_0073, None, Zawrs, END),
                // Privileged (Priv spec 3.3, 10.2).
                ("mret", Mret, M_ALL, 0x3020_0073, None, I, END),
                ("sret", Sret, M_ALL, 0x1020_0073, None, S, END),
                ("wfi", Wfi, M_ALL, 0x1050_0073, None, I, END),
                ("sfence.vma", SfenceVma, M_F7_RD, r(SYSTEM, 0, 0x09), Fence2, S, END),
                // Svinval.
                ("sinval.vma", SinvalVma, M_F7_RD, r(SYSTEM, 0, 0x0b), Fence2, Svinval, END),
                ("sfence.w.inval", SfenceWInval, M_ALL, 0x1800_0073, None, Svinval, END),
                ("sfence.inval.ir", SfenceInvalIr, M_ALL, 0x1810_0073, None, Svinval, END),
                ("hinval.vvma", HinvalVvma, M_F7_RD, r(SYSTEM, 0, 0x13), Fence2, Svinval, END),
                ("hinval.gvma", HinvalGvma, M_F7_RD, r(SYSTEM, 0, 0x33), Fence2, Svinval, END),
                // H (Priv spec ch. "Hypervisor Extension", 9.3).
                ("hfence.vvma", HfenceVvma, M_F7_RD, r(SYSTEM, 0, 0x11), Fence2, H, END),
                ("hfence.gvma", HfenceGvma, M_F7_RD, r(SYSTEM, 0, 0x31), Fence2, H, END),
                ("hlv.b", HlvB, M_F7_RS2, r2(SYSTEM, 4, 0x30, 0), HLoad, H, 0),
                ("hlv.bu", HlvBu, M_F7_RS2, r2(SYSTEM, 4, 0x30, 1), HLoad, H, 0),
                ("hlv.h", HlvH, M_F7_RS2, r2(SYSTEM, 4, 0x32, 0), HLoad, H, 0),
                ("hlv.hu", HlvHu, M_F7_RS2, r2(SYSTEM, 4, 0x32, 1), HLoad, H, 0),
                ("hlvx.hu", HlvxHu, M_F7_RS2, r2(SYSTEM, 4, 0x32, 3), HLoad, H, 0),
                ("hlv.w", HlvW, M_F7_RS2, r2(SYSTEM, 4, 0x34, 0), HLoad, H, 0),
                ("hlv.wu", HlvWu, M_F7_RS2, r2(SYSTEM, 4, 0x34, 1), HLoad, H, 0),
                ("hlvx.wu", HlvxWu, M_F7_RS2, r2(SYSTEM, 4, 0x34, 3), HLoad, H, 0),
                ("hlv.d", HlvD, M_F7_RS2, r2(SYSTEM, 4, 0x36, 0), HLoad, H, 0),
                ("hsv.b", HsvB, M_F7_RD, r(SYSTEM, 4, 0x31), HStore, H, 0),
                ("hsv.h", HsvH, M_F7_RD, r(SYSTEM, 4, 0x33), HStore, H, 0),
                ("hsv.w", HsvW, M_F7_RD, r(SYSTEM, 4, 0x35), HStore, H, 0),
                ("hsv.d", HsvD, M_F7_RD, r(SYSTEM, 4, 0x37), HStore, H, 0),
            }
            {
                // RV64C (Unpriv "C" chapter, RVC listings). Quadrant 0.
                ("c.addi4spn", Addi, 0xe003, 0x0000, Addi4spn),
                ("c.fld", Fld, 0xe003, 0x2000, Ld),
                ("c.lw", Lw, 0xe003, 0x4000, Lw),
                ("c.ld", Ld, 0xe003, 0x6000, Ld),
                ("c.fsd", Fsd, 0xe003, 0xa000, Sd),
                ("c.sw", Sw, 0xe003, 0xc000, Sw),
                ("c.sd", Sd, 0xe003, 0xe000, Sd),
                // Quadrant 1. c.nop is c.addi with rd = 0.
                ("c.addi", Addi, 0xe003, 0x0001, Addi),
                ("c.addiw", Addiw, 0xe003, 0x2001, Addiw),
                ("c.li", Addi, 0xe003, 0x4001, Li),
                ("c.addi16sp", Addi, 0xef83, 0x6101, Addi16sp),
                ("c.lui", Lui, 0xe003, 0x6001, Lui),
                ("c.srli", Srli, 0xec03, 0x8001, ShiftR),
                ("c.srai", Srai, 0xec03, 0x8401, ShiftR),
                ("c.andi", Andi, 0xec03, 0x8801, Andi),
                ("c.sub", Sub, 0xfc63, 0x8c01, Ca),
                ("c.xor", Xor, 0xfc63, 0x8c21, Ca),
                ("c.or", Or, 0xfc63, 0x8c41, Ca),
                ("c.and", And, 0xfc63, 0x8c61, Ca),
                ("c.subw", Subw, 0xfc63, 0x9c01, Ca),
                ("c.addw", Addw, 0xfc63, 0x9c21, Ca),
                ("c.j", Jal, 0xe003, 0xa001, J),
                ("c.beqz", Beq, 0xe003, 0xc001, Bz),
                ("c.bnez", Bne, 0xe003, 0xe001, Bz),
                // Quadrant 2.
                ("c.slli", Slli, 0xe003, 0x0002, Slli),
                ("c.fldsp", Fld, 0xe003, 0x2002, Fldsp),
                ("c.lwsp", Lw, 0xe003, 0x4002, Lwsp),
                ("c.ldsp", Ld, 0xe003, 0x6002, Ldsp),
                ("c.jr", Jalr, 0xf07f, 0x8002, Jr),
                ("c.mv", Add, 0xf003, 0x8002, Mv),
                ("c.ebreak", Ebreak, 0xffff, 0x9002, None),
                ("c.jalr", Jalr, 0xf07f, 0x9002, Jalr),
                ("c.add", Add, 0xf003, 0x9002, Add),
                ("c.fsdsp", Fsd, 0xe003, 0xa002, Sdsp),
                ("c.swsp", Sw, 0xe003, 0xc002, Swsp),
                ("c.sdsp", Sd, 0xe003, 0xe002, Sdsp),
            }
        }
    };
}

/// One 32-bit table line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) mask: u32,
    pub(crate) matc: u32,
    pub(crate) op: Op,
}

/// One compressed table line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CEntry {
    pub(crate) name: &'static str,
    pub(crate) mask: u16,
    pub(crate) matc: u16,
    pub(crate) op: Op,
    pub(crate) fmt: CFmt,
}

macro_rules! gen_table {
    (
        { $( ($name:literal, $op:ident, $mask:expr, $match:expr, $fmt:ident, $ext:ident, $flags:expr), )* }
        { $( ($cname:literal, $cop:ident, $cmask:literal, $cmatch:literal, $cfmt:ident), )* }
    ) => {
        /// A decoded operation: one variant per 32-bit encoding in the table (compressed
        /// encodings decode to their 32-bit expansion), plus `Illegal`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Op {
            /// Not a valid RV64GCH (+ supported extensions) encoding.
            Illegal,
            $( $op, )*
        }

        impl Op {
            /// Every op, in discriminant order (`Op::ALL[op as usize] == op`).
            pub const ALL: &'static [Op] = &[Op::Illegal, $( Op::$op, )*];
            /// Number of ops, including `Illegal`.
            pub const COUNT: usize = Self::ALL.len();

            /// The assembler mnemonic (`"illegal"` for [`Op::Illegal`]).
            pub const fn mnemonic(self) -> &'static str {
                match self {
                    Op::Illegal => "illegal",
                    $( Op::$op => $name, )*
                }
            }

            /// The extension that defines this op.
            /// The extension that defines the instruction (`None` for [`Op::Illegal`]).
            /// Compressed encodings name their expansion's; the `C` check is on
            /// [`Insn::len`]. The machine-level privileged instructions (MRET, WFI)
            /// count as `I`, SRET and SFENCE.VMA as `S`.
            pub const fn ext(self) -> Option<Ext> {
                match self {
                    Op::Illegal => None,
                    $( Op::$op => Some(Ext::$ext), )*
                }
            }

            /// The operand format, which says which [`Insn`] fields are used.
            pub const fn format(self) -> Fmt {
                match self {
                    Op::Illegal => Fmt::None,
                    $( Op::$op => Fmt::$fmt, )*
                }
            }

            /// Whether a translation block must end after this instruction: control
            /// flow, traps, xRET/WFI, TLB and instruction-stream fences, WRS, every
            /// CSR access (it may change privilege, translation or interrupts), Illegal.
            pub const fn ends_block(self) -> bool {
                match self {
                    Op::Illegal => true,
                    $( Op::$op => ($flags) & END != 0, )*
                }
            }
        }

        pub(crate) const INSNS32: &[Entry] = &[
            $( Entry { mask: $mask, matc: $match, op: Op::$op }, )*
        ];

        pub(crate) const INSNS16: &[CEntry] = &[
            $( CEntry { name: $cname, mask: $cmask, matc: $cmatch, op: Op::$cop, fmt: CFmt::$cfmt }, )*
        ];
    };
}

for_each_insn!(gen_table);

impl Fmt {
    /// The operands as `disasm` prints them, in the style of GNU objdump's operand
    /// strings: `d`/`s`/`t` = x rd/rs1/rs2, `D`/`S`/`T`/`R` = f rd/rs1/rs2/rs3,
    /// `j` = decimal immediate, `>` = hex shift amount, `u` = hex U-immediate,
    /// `p` = pc-relative target, `E` = CSR, `Z` = 5-bit uimm in rs1, `m` = rounding
    /// mode (omitted with its comma when dynamic), `P`/`Q` = fence pred/succ,
    /// `F` = FLI constant; other characters are printed as they are.
    pub const fn args(self) -> &'static str {
        match self {
            Fmt::None => "",
            Fmt::R => "d,s,t",
            Fmt::R1 => "d,s",
            Fmt::I => "d,s,j",
            Fmt::Load | Fmt::Jalr => "d,j(s)",
            Fmt::Store => "t,j(s)",
            Fmt::Branch => "s,t,p",
            Fmt::U => "d,u",
            Fmt::Jal => "d,p",
            Fmt::Sh6 | Fmt::Sh5 => "d,s,>",
            Fmt::Csr => "d,E,s",
            Fmt::CsrI => "d,E,Z",
            Fmt::Fence => "P,Q",
            Fmt::Amo => "d,t,(s)",
            Fmt::Lr => "d,(s)",
            Fmt::FLoad => "D,j(s)",
            Fmt::FStore => "T,j(s)",
            Fmt::R4 => "D,S,T,R,m",
            Fmt::FRrm => "D,S,T,m",
            Fmt::FR => "D,S,T",
            Fmt::F1rm => "D,S,m",
            Fmt::F1exact => "D,S",
            Fmt::FtoXrm => "d,S,m",
            Fmt::XtoFrm => "D,s,m",
            Fmt::XtoFexact => "D,s",
            Fmt::FtoX => "d,S",
            Fmt::XtoF => "D,s",
            Fmt::FCmp => "d,S,T",
            Fmt::Fli => "D,F",
            Fmt::HLoad => "d,(s)",
            Fmt::HStore => "t,(s)",
            Fmt::Fence2 => "s,t",
            Fmt::Cbo => "(s)",
        }
    }

    /// Whether funct3 is a rounding mode (stored in `Insn::rm`).
    const fn has_rm(self) -> bool {
        matches!(
            self,
            Fmt::R4
                | Fmt::FRrm
                | Fmt::F1rm
                | Fmt::F1exact
                | Fmt::FtoXrm
                | Fmt::XtoFrm
                | Fmt::XtoFexact
        )
    }
}

/// Bucket of a 32-bit word: major opcode (bits 6:2) and funct3.
#[inline]
const fn key32(raw: u32) -> usize {
    ((raw >> 2 & 0x1f) << 3 | (raw >> 12 & 7)) as usize
}

/// The bits [`key32`] reads.
const KEY32_BITS: u32 = 0x707c;

/// Bucket of a 16-bit parcel: funct3 (bits 15:13) and quadrant.
#[inline]
const fn key16(raw: u16) -> usize {
    ((raw >> 13) << 2 | (raw & 3)) as usize
}

/// The bits [`key16`] reads.
const KEY16_BITS: u16 = 0xe003;

const N32: usize = INSNS32.len();
const N16: usize = INSNS16.len();

/// Whether an entry can match some word of bucket `k` (the bits they share agree).
const fn in_bucket32(e: &Entry, k: usize) -> bool {
    let raw = ((k as u32 >> 3) << 2) | ((k as u32 & 7) << 12);
    (raw ^ e.matc) & e.mask & KEY32_BITS == 0
}

const fn in_bucket16(e: &CEntry, k: usize) -> bool {
    let raw = ((k as u16 >> 2) << 13) | (k as u16 & 3);
    (raw ^ e.matc) & e.mask & KEY16_BITS == 0
}

const fn total32() -> usize {
    let mut n = 0;
    let mut k = 0;
    while k < 256 {
        let mut j = 0;
        while j < N32 {
            if in_bucket32(&INSNS32[j], k) {
                n += 1;
            }
            j += 1;
        }
        k += 1;
    }
    n
}

const fn total16() -> usize {
    let mut n = 0;
    let mut k = 0;
    while k < 32 {
        let mut j = 0;
        while j < N16 {
            if in_bucket16(&INSNS16[j], k) {
                n += 1;
            }
            j += 1;
        }
        k += 1;
    }
    n
}

const T32: usize = total32();
const T16: usize = total16();

/// Per-bucket candidate lists for 32-bit words: bucket `k` is
/// `IDX32.1[IDX32.0[k]..IDX32.0[k + 1]]`, indices into [`INSNS32`], most specific first.
const IDX32: ([u16; 257], [u16; T32]) = {
    let mut off = [0u16; 257];
    let mut list = [0u16; T32];
    let mut n = 0;
    let mut k = 0;
    while k < 256 {
        off[k] = n as u16;
        let start = n;
        let mut j = 0;
        while j < N32 {
            if in_bucket32(&INSNS32[j], k) {
                // Insertion sort by descending mask popcount, stable for equal counts.
                let pop = INSNS32[j].mask.count_ones();
                let mut p = n;
                while p > start && INSNS32[list[p - 1] as usize].mask.count_ones() < pop {
                    list[p] = list[p - 1];
                    p -= 1;
                }
                list[p] = j as u16;
                n += 1;
            }
            j += 1;
        }
        k += 1;
    }
    off[256] = n as u16;
    (off, list)
};

/// Like [`IDX32`] for compressed parcels, indices into [`INSNS16`].
const IDX16: ([u16; 33], [u16; T16]) = {
    let mut off = [0u16; 33];
    let mut list = [0u16; T16];
    let mut n = 0;
    let mut k = 0;
    while k < 32 {
        off[k] = n as u16;
        let start = n;
        let mut j = 0;
        while j < N16 {
            if in_bucket16(&INSNS16[j], k) {
                let pop = INSNS16[j].mask.count_ones();
                let mut p = n;
                while p > start && INSNS16[list[p - 1] as usize].mask.count_ones() < pop {
                    list[p] = list[p - 1];
                    p -= 1;
                }
                list[p] = j as u16;
                n += 1;
            }
            j += 1;
        }
        k += 1;
    }
    off[32] = n as u16;
    (off, list)
};

/// The table line a 32-bit word matches, if any.
#[inline]
pub(crate) fn lookup32(raw: u32) -> Option<&'static Entry> {
    let k = key32(raw);
    let (lo, hi) = (IDX32.0[k] as usize, IDX32.0[k + 1] as usize);
    IDX32.1[lo..hi]
        .iter()
        .map(|&j| &INSNS32[j as usize])
        .find(|e| raw & e.mask == e.matc)
}

/// The table line a 16-bit parcel matches, if any (before reserved-value checks).
#[inline]
pub(crate) fn lookup16(raw: u16) -> Option<&'static CEntry> {
    let k = key16(raw);
    let (lo, hi) = (IDX16.0[k] as usize, IDX16.0[k + 1] as usize);
    IDX16.1[lo..hi]
        .iter()
        .map(|&j| &INSNS16[j as usize])
        .find(|e| raw & e.mask == e.matc)
}

/// The RVC mnemonic (`"c.addi"`, ...) of a compressed parcel that decodes to a legal
/// instruction, for traces that want to show the compressed form.
pub fn compressed_mnemonic(raw: u16) -> Option<&'static str> {
    if decode(raw as u32).op == Op::Illegal {
        return None;
    }
    lookup16(raw).map(|e| e.name)
}

#[inline]
const fn illegal(raw: u32, len: u8) -> Insn {
    Insn {
        op: Op::Illegal,
        rd: 0,
        rs1: 0,
        rs2: 0,
        rs3: 0,
        rm: 0,
        len,
        imm: 0,
        raw,
    }
}

/// Decodes one instruction for a hart that implements the extensions in `exts`: an
/// instruction of an extension not in the set is [`Op::Illegal`] (Priv spec 3.1.1:
/// an extension that `misa` does not show behaves as not implemented).
#[inline]
pub fn decode_for(raw: u32, exts: crate::arch::ExtSet) -> Insn {
    let i = decode(raw);
    let ok = match i.op.ext() {
        Some(e) => exts.has(e) && (i.len == 4 || exts.has(Ext::C)),
        None => true,
    };
    if ok {
        i
    } else {
        illegal(raw, i.len)
    }
}

/// Decode one instruction. `raw` holds the fetched bits: if its low two bits are not
/// `0b11` only the low 16 bits are used (a compressed instruction, `len == 2`),
/// otherwise all 32 (`len == 4`). Undecodable and reserved encodings give
/// [`Op::Illegal`] with `raw` set as the trap value. Never panics.
#[inline]
pub fn decode(raw: u32) -> Insn {
    if raw & 3 != 3 {
        decode16(raw as u16)
    } else {
        decode32(raw)
    }
}

fn decode32(raw: u32) -> Insn {
    match lookup32(raw) {
        Some(e) => expand32(raw, e.op),
        None => illegal(raw, 4),
    }
}

/// Bits `hi..=lo` of `raw`, shifted down.
#[inline(always)]
const fn bits(raw: u32, hi: u32, lo: u32) -> u32 {
    (raw >> lo) & ((1 << (hi - lo + 1)) - 1)
}

#[inline(always)]
const fn imm_i(raw: u32) -> i32 {
    raw as i32 >> 20
}

#[inline(always)]
const fn imm_s(raw: u32) -> i32 {
    (raw as i32 >> 25) << 5 | bits(raw, 11, 7) as i32
}

#[inline(always)]
const fn imm_b(raw: u32) -> i32 {
    (raw as i32 >> 31) << 12
        | (bits(raw, 7, 7) << 11) as i32
        | (bits(raw, 30, 25) << 5) as i32
        | (bits(raw, 11, 8) << 1) as i32
}

#[inline(always)]
const fn imm_j(raw: u32) -> i32 {
    (raw as i32 >> 31) << 20
        | (raw & 0x000f_f000) as i32
        | (bits(raw, 20, 20) << 11) as i32
        | (bits(raw, 30, 21) << 1) as i32
}

/// Fill the fields of a matched 32-bit encoding by its format.
fn expand32(raw: u32, op: Op) -> Insn {
    let fmt = op.format();
    let rd = bits(raw, 11, 7) as u8;
    let rs1 = bits(raw, 19, 15) as u8;
    let rs2 = bits(raw, 24, 20) as u8;
    let f3 = bits(raw, 14, 12) as u8;
    let mut insn = Insn {
        op,
        rd: 0,
        rs1: 0,
        rs2: 0,
        rs3: 0,
        rm: 0,
        len: 4,
        imm: 0,
        raw,
    };
    match fmt {
        Fmt::None => {}
        Fmt::R | Fmt::Amo | Fmt::FRrm | Fmt::FR | Fmt::FCmp => {
            (insn.rd, insn.rs1, insn.rs2) = (rd, rs1, rs2);
        }
        Fmt::R1
        | Fmt::F1rm
        | Fmt::F1exact
        | Fmt::FtoXrm
        | Fmt::XtoFrm
        | Fmt::XtoFexact
        | Fmt::FtoX
        | Fmt::XtoF
        | Fmt::Lr
        | Fmt::HLoad
        | Fmt::Fli => {
            (insn.rd, insn.rs1) = (rd, rs1);
        }
        Fmt::I | Fmt::Load | Fmt::Jalr | Fmt::FLoad => {
            (insn.rd, insn.rs1, insn.imm) = (rd, rs1, imm_i(raw));
        }
        Fmt::Store | Fmt::FStore => {
            (insn.rs1, insn.rs2, insn.imm) = (rs1, rs2, imm_s(raw));
        }
        Fmt::Branch => {
            (insn.rs1, insn.rs2, insn.imm) = (rs1, rs2, imm_b(raw));
        }
        Fmt::U => {
            (insn.rd, insn.imm) = (rd, (raw & 0xffff_f000) as i32);
        }
        Fmt::Jal => {
            (insn.rd, insn.imm) = (rd, imm_j(raw));
        }
        Fmt::Sh6 => {
            (insn.rd, insn.rs1, insn.imm) = (rd, rs1, bits(raw, 25, 20) as i32);
        }
        Fmt::Sh5 => {
            (insn.rd, insn.rs1, insn.imm) = (rd, rs1, bits(raw, 24, 20) as i32);
        }
        Fmt::Csr | Fmt::CsrI => {
            (insn.rd, insn.rs1, insn.imm) = (rd, rs1, bits(raw, 31, 20) as i32);
        }
        Fmt::Fence => {
            insn.rm = bits(raw, 27, 20) as u8;
        }
        Fmt::R4 => {
            (insn.rd, insn.rs1, insn.rs2) = (rd, rs1, rs2);
            insn.rs3 = bits(raw, 31, 27) as u8;
        }
        Fmt::HStore | Fmt::Fence2 => {
            (insn.rs1, insn.rs2) = (rs1, rs2);
        }
        Fmt::Cbo => {
            insn.rs1 = rs1;
        }
    }
    if matches!(fmt, Fmt::Amo | Fmt::Lr) {
        insn.rm = bits(raw, 26, 25) as u8;
    }
    if fmt.has_rm() {
        // Unpriv "F" 11.2: rounding modes 101 and 110 are reserved; an instruction
        // that names one statically is illegal (DYN with a bad frm traps at run time).
        if f3 == 5 || f3 == 6 {
            return illegal(raw, 4);
        }
        insn.rm = f3;
    }
    insn
}

/// Register number of a 3-bit compressed register field (x8..x15 / f8..f15).
#[inline(always)]
const fn creg(field: u32) -> u8 {
    (field & 7) as u8 + 8
}

/// Sign-extend the low `n` bits of `v`.
#[inline(always)]
const fn sext(v: u32, n: u32) -> i32 {
    ((v << (32 - n)) as i32) >> (32 - n)
}

fn decode16(raw: u16) -> Insn {
    match lookup16(raw) {
        Some(e) => expand16(raw, e.op, e.fmt).unwrap_or(illegal(raw as u32, 2)),
        None => illegal(raw as u32, 2),
    }
}

/// Expand a matched compressed encoding to the fields of its 32-bit instruction, or
/// `None` for a reserved code point (Unpriv "C" chapter, RVC listings).
fn expand16(raw16: u16, op: Op, fmt: CFmt) -> Option<Insn> {
    let raw = raw16 as u32;
    let b = |hi, lo| bits(raw, hi, lo);
    // Full 5-bit rd/rs1 (bits 11:7) and rs2 (bits 6:2); 3-bit rd'/rs2' (4:2), rs1' (9:7).
    let r_hi = b(11, 7) as u8;
    let r_lo = b(6, 2) as u8;
    let rp_lo = creg(b(4, 2));
    let rp_hi = creg(b(9, 7));
    // CI-format 6-bit immediate: imm[5] = bit 12, imm[4:0] = bits 6:2.
    let ci = b(12, 12) << 5 | b(6, 2);
    // CL/CS offsets: word (c.lw/c.sw) and doubleword (c.ld/c.sd/c.fld/c.fsd).
    let off_w = b(12, 10) << 3 | b(6, 6) << 2 | b(5, 5) << 6;
    let off_d = b(12, 10) << 3 | b(6, 5) << 6;
    let (mut rd, mut rs1, mut rs2, mut imm) = (0u8, 0u8, 0u8, 0i32);
    match fmt {
        CFmt::Addi4spn => {
            let nzuimm = b(12, 11) << 4 | b(10, 7) << 6 | b(6, 6) << 2 | b(5, 5) << 3;
            if nzuimm == 0 {
                return None;
            }
            (rd, rs1, imm) = (rp_lo, 2, nzuimm as i32);
        }
        CFmt::Lw => (rd, rs1, imm) = (rp_lo, rp_hi, off_w as i32),
        CFmt::Ld => (rd, rs1, imm) = (rp_lo, rp_hi, off_d as i32),
        CFmt::Sw => (rs2, rs1, imm) = (rp_lo, rp_hi, off_w as i32),
        CFmt::Sd => (rs2, rs1, imm) = (rp_lo, rp_hi, off_d as i32),
        CFmt::Addi => (rd, rs1, imm) = (r_hi, r_hi, sext(ci, 6)),
        CFmt::Addiw => {
            if r_hi == 0 {
                return None;
            }
            (rd, rs1, imm) = (r_hi, r_hi, sext(ci, 6));
        }
        CFmt::Li => (rd, imm) = (r_hi, sext(ci, 6)),
        CFmt::Addi16sp => {
            let nzimm = b(12, 12) << 9 | b(6, 6) << 4 | b(5, 5) << 6 | b(4, 3) << 7 | b(2, 2) << 5;
            if nzimm == 0 {
                return None;
            }
            (rd, rs1, imm) = (2, 2, sext(nzimm, 10));
        }
        CFmt::Lui => {
            if ci == 0 {
                return None;
            }
            (rd, imm) = (r_hi, sext(ci, 6) << 12);
        }
        CFmt::ShiftR => (rd, rs1, imm) = (rp_hi, rp_hi, ci as i32),
        CFmt::Andi => (rd, rs1, imm) = (rp_hi, rp_hi, sext(ci, 6)),
        CFmt::Ca => (rd, rs1, rs2) = (rp_hi, rp_hi, rp_lo),
        CFmt::J => {
            let off = b(12, 12) << 11
                | b(11, 11) << 4
                | b(10, 9) << 8
                | b(8, 8) << 10
                | b(7, 7) << 6
                | b(6, 6) << 7
                | b(5, 3) << 1
                | b(2, 2) << 5;
            imm = sext(off, 12);
        }
        CFmt::Bz => {
            let off = b(12, 12) << 8 | b(11, 10) << 3 | b(6, 5) << 6 | b(4, 3) << 1 | b(2, 2) << 5;
            (rs1, imm) = (rp_hi, sext(off, 9));
        }
        CFmt::Slli => (rd, rs1, imm) = (r_hi, r_hi, ci as i32),
        CFmt::Lwsp => {
            if r_hi == 0 {
                return None;
            }
            let off = b(12, 12) << 5 | b(6, 4) << 2 | b(3, 2) << 6;
            (rd, rs1, imm) = (r_hi, 2, off as i32);
        }
        CFmt::Ldsp | CFmt::Fldsp => {
            if r_hi == 0 && fmt == CFmt::Ldsp {
                return None;
            }
            let off = b(12, 12) << 5 | b(6, 5) << 3 | b(4, 2) << 6;
            (rd, rs1, imm) = (r_hi, 2, off as i32);
        }
        CFmt::Swsp => {
            let off = b(12, 9) << 2 | b(8, 7) << 6;
            (rs2, rs1, imm) = (r_lo, 2, off as i32);
        }
        CFmt::Sdsp => {
            let off = b(12, 10) << 3 | b(9, 7) << 6;
            (rs2, rs1, imm) = (r_lo, 2, off as i32);
        }
        CFmt::Jr => {
            if r_hi == 0 {
                return None;
            }
            rs1 = r_hi;
        }
        CFmt::Mv => (rd, rs2) = (r_hi, r_lo),
        CFmt::Jalr => (rd, rs1) = (1, r_hi),
        CFmt::Add => (rd, rs1, rs2) = (r_hi, r_hi, r_lo),
        CFmt::None => {}
    }
    Some(Insn {
        op,
        rd,
        rs1,
        rs2,
        rs3: 0,
        rm: 0,
        len: 2,
        imm,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic PRNG (xorshift64*) so failures reproduce.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next_u32(&mut self) -> u32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
        }
    }

    /// (op, rd, rs1, rs2, imm) of a decoded word.
    type Fields = (Op, u8, u8, u8, i32);

    fn fields(raw: u32) -> Fields {
        let i = decode(raw);
        (i.op, i.rd, i.rs1, i.rs2, i.imm)
    }

    #[test]
    fn compressed_immediates() {
        use Op::*;
        // Encodings from GNU as (rv64gc); comments give the assembly.
        let cases: &[(u16, Fields)] = &[
            (0x1fe8, (Addi, 10, 2, 0, 1020)),    // c.addi4spn a0,sp,1020
            (0x0044, (Addi, 9, 2, 0, 4)),        // c.addi4spn s1,sp,4
            (0x5f7c, (Lw, 15, 14, 0, 124)),      // c.lw a5,124(a4)
            (0x7fe0, (Ld, 8, 15, 0, 248)),       // c.ld s0,248(a5)
            (0x249c, (Fld, 15, 9, 0, 8)),        // c.fld fa5,8(s1)
            (0xc13c, (Sw, 0, 10, 15, 64)),       // c.sw a5,64(a0)
            (0xe0c8, (Sd, 0, 9, 10, 128)),       // c.sd a0,128(s1)
            (0xbfe0, (Fsd, 0, 15, 8, 248)),      // c.fsd fs0,248(a5)
            (0x1501, (Addi, 10, 10, 0, -32)),    // c.addi a0,-32
            (0x017d, (Addi, 2, 2, 0, 31)),       // c.addi sp,31
            (0x0001, (Addi, 0, 0, 0, 0)),        // c.nop
            (0x35fd, (Addiw, 11, 11, 0, -1)),    // c.addiw a1,-1
            (0x52bd, (Addi, 5, 0, 0, -17)),      // c.li t0,-17
            (0x7101, (Addi, 2, 2, 0, -512)),     // c.addi16sp sp,-512
            (0x617d, (Addi, 2, 2, 0, 496)),      // c.addi16sp sp,496
            (0x7601, (Lui, 12, 0, 0, -0x20000)), // c.lui a2,0xfffe0
            (0x66fd, (Lui, 13, 0, 0, 0x1f000)),  // c.lui a3,0x1f
            (0x917d, (Srli, 10, 10, 0, 63)),     // c.srli a0,63
            (0x8485, (Srai, 9, 9, 0, 1)),        // c.srai s1,1
            (0x9b81, (Andi, 15, 15, 0, -32)),    // c.andi a5,-32
            (0x8c05, (Sub, 8, 8, 9, 0)),         // c.sub s0,s1
            (0x9d2d, (Addw, 10, 10, 11, 0)),     // c.addw a0,a1
            (0x9e15, (Subw, 12, 12, 13, 0)),     // c.subw a2,a3
            (0xb001, (Jal, 0, 0, 0, -2048)),     // c.j -2048
            (0xaffd, (Jal, 0, 0, 0, 2046)),      // c.j 2046
            (0xd101, (Beq, 0, 10, 0, -256)),     // c.beqz a0,-256
            (0xecfd, (Bne, 0, 9, 0, 254)),       // c.bnez s1,254
            (0x137e, (Slli, 6, 6, 0, 63)),       // c.slli t1,63
            (0x30fe, (Fld, 1, 2, 0, 504)),       // c.fldsp ft1,504(sp)
            (0x50fe, (Lw, 1, 2, 0, 252)),        // c.lwsp ra,252(sp)
            (0x7dfe, (Ld, 27, 2, 0, 504)),       // c.ldsp s11,504(sp)
            (0x8082, (Jalr, 0, 1, 0, 0)),        // c.jr ra
            (0x857e, (Add, 10, 0, 31, 0)),       // c.mv a0,t6
            (0x9002, (Ebreak, 0, 0, 0, 0)),      // c.ebreak
            (0x9782, (Jalr, 1, 15, 0, 0)),       // c.jalr a5
            (0x994e, (Add, 18, 18, 19, 0)),      // c.add s2,s3
            (0xbfee, (Fsd, 0, 2, 27, 504)),      // c.fsdsp fs11,504(sp)
            (0xdfb2, (Sw, 0, 2, 12, 252)),       // c.swsp a2,252(sp)
            (0xfffe, (Sd, 0, 2, 31, 504)),       // c.sdsp t6,504(sp)
        ];
        for &(raw, want) in cases {
            assert_eq!(fields(raw as u32), want, "c 0x{raw:04x}");
            let i = decode(raw as u32);
            assert_eq!((i.len, i.raw), (2, raw as u32), "c 0x{raw:04x}");
        }
        // Only the low 16 bits of a compressed parcel count.
        assert_eq!(decode(0xdead_0001).op, Op::Addi);
        assert_eq!(decode(0xdead_0001).raw, 0x0001);
    }

    #[test]
    fn compressed_reserved_and_hints() {
        let illegal = [
            0x0000, // all zero (c.addi4spn nzuimm = 0)
            0x0010, // c.addi4spn nzuimm = 0, rd' = a2
            0x2001, // c.addiw rd = 0
            0x6101, // c.addi16sp nzimm = 0
            0x6001, // c.lui rd = 0, nzimm = 0
            0x6081, // c.lui ra, nzimm = 0
            0x8002, // c.jr rs1 = 0
            0x4002, // c.lwsp rd = 0
            0x6002, // c.ldsp rd = 0
            0x8000, // quadrant 0 funct3 100 (reserved; Zcb not supported)
            0x9c41, // CA bit12 = 1, funct2 = 10 (reserved)
            0x9c61, // CA bit12 = 1, funct2 = 11 (reserved; Zcb c.mul etc.)
            0x9c65, // Zcb c.zext.b-like space
        ];
        for raw in illegal {
            let i = decode(raw);
            assert_eq!(i.op, Op::Illegal, "0x{raw:04x}");
            assert_eq!((i.len, i.raw), (2, raw), "0x{raw:04x}");
        }
        // Hints decode as the instruction they are encoded as.
        assert_eq!(fields(0x0005), (Op::Addi, 0, 0, 0, 1)); // c.nop 1 (hint)
        assert_eq!(fields(0x0081), (Op::Addi, 1, 1, 0, 0)); // c.addi ra,0 (hint)
        assert_eq!(fields(0x1002), (Op::Slli, 0, 0, 0, 32)); // c.slli zero,32 (hint)
        assert_eq!(fields(0x0502), (Op::Slli, 10, 10, 0, 0)); // c.slli64 a0 (hint)
        assert_eq!(fields(0x8001), (Op::Srli, 8, 8, 0, 0)); // c.srli64 s0 (hint)
        assert_eq!(fields(0x607d), (Op::Lui, 0, 0, 0, 0x1f000)); // c.lui zero (hint)
        assert_eq!(fields(0x4015), (Op::Addi, 0, 0, 0, 5)); // c.li zero,5 (hint)
        assert_eq!(fields(0x802e), (Op::Add, 0, 0, 11, 0)); // c.mv zero,a1 (hint)
    }

    #[test]
    fn immediates_32() {
        use Op::*;
        let cases: &[(u32, Fields)] = &[
            (0x8005_8513, (Addi, 10, 11, 0, -2048)),   // addi a0,a1,-2048
            (0x7ff5_8513, (Addi, 10, 11, 0, 2047)),    // addi a0,a1,2047
            (0xfea5_bc23, (Sd, 0, 11, 10, -8)),        // sd a0,-8(a1)
            (0x80a5_b023, (Sd, 0, 11, 10, -2048)),     // sd a0,-2048(a1)
            (0xfeb5_0ee3, (Beq, 0, 10, 11, -4)),       // beq a0,a1,.-4
            (0x80b5_0063, (Beq, 0, 10, 11, -4096)),    // beq a0,a1,.-4096
            (0x7eb5_1fe3, (Bne, 0, 10, 11, 4094)),     // bne a0,a1,.+4094
            (0xffff_f0ef, (Jal, 1, 0, 0, -2)),         // jal ra,.-2
            (0x8000_006f, (Jal, 0, 0, 0, -(1 << 20))), // jal zero,.-1MiB
            (0x7fff_f06f, (Jal, 0, 0, 0, (1 << 20) - 2)), // jal zero,.+1MiB-2
            (0xffff_f537, (Lui, 10, 0, 0, -4096)),     // lui a0,0xfffff
            (0x1234_5517, (Auipc, 10, 0, 0, 0x1234_5000)), // auipc a0,0x12345
            (0xfff5_8567, (Jalr, 10, 11, 0, -1)),      // jalr a0,-1(a1)
            (0x03f5_9513, (Slli, 10, 11, 0, 63)),      // slli a0,a1,63
            (0x43f5_d513, (Srai, 10, 11, 0, 63)),      // srai a0,a1,63
            (0x41f5_d51b, (Sraiw, 10, 11, 0, 31)),     // sraiw a0,a1,31
            (0x03f5_9513 ^ 0x0400_0000, (Illegal, 0, 0, 0, 0)), // slli funct6 = 000001
            (0x0205_951b, (Illegal, 0, 0, 0, 0)),      // slliw with shamt[5] = 1
            (0x6bf5_9513, (Binvi, 10, 11, 0, 63)),     // binvi a0,a1,63
            (0x6ff5_9513, (Illegal, 0, 0, 0, 0)),      // funct6 011011 funct3 001: no such op
            (0x0805_951b, (SlliUw, 10, 11, 0, 0)),     // slli.uw a0,a1,0
            (0x0bf5_951b, (SlliUw, 10, 11, 0, 63)),    // slli.uw a0,a1,63
            (0x63f5_d513, (Rori, 10, 11, 0, 63)),      // rori a0,a1,63
            (0x61f5_d51b, (Roriw, 10, 11, 0, 31)),     // roriw a0,a1,31
            (0x6b85_d513, (Rev8, 10, 11, 0, 0)),       // rev8 a0,a1
            (0x2875_d513, (OrcB, 10, 11, 0, 0)),       // orc.b a0,a1
            (0x0805_c53b, (ZextH, 10, 11, 0, 0)),      // zext.h a0,a1
            (0x4bf5_9513, (Bclri, 10, 11, 0, 63)),     // bclri a0,a1,63
        ];
        for &(raw, want) in cases {
            assert_eq!(fields(raw), want, "0x{raw:08x}");
        }
    }

    #[test]
    fn csr_fence_amo_fp_fields() {
        // csrrw a0,mstatus,a1
        let i = decode(0x3005_9573);
        assert_eq!(
            (i.op, i.rd, i.rs1, i.csr(), i.imm),
            (Op::Csrrw, 10, 11, 0x300, 0x300)
        );
        // csrrsi zero,0xfff,31: the CSR number is unsigned.
        let i = decode(0xffff_e073);
        assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Csrrsi, 0, 31, 0xfff));
        // fence iorw,iorw / fence rw,w / fence.tso / pause.
        assert_eq!(
            (decode(0x0ff0_000f).op, decode(0x0ff0_000f).rm),
            (Op::Fence, 0xff)
        );
        assert_eq!(decode(0x0310_000f).rm, 0x31);
        assert_eq!(decode(0x8330_000f).op, Op::FenceTso);
        let pause = decode(0x0100_000f);
        assert_eq!((pause.op, pause.rm), (Op::Fence, 0x10));
        // Unused FENCE/FENCE.I fields are ignored (Unpriv 2.7, Zifencei).
        assert_eq!(decode(0x0ff5_850f).op, Op::Fence);
        assert_eq!(decode(0x0015_950f).op, Op::FenceI);
        // amoadd.d.aqrl a0,a2,(a1) / lr.w.aq a0,(a1) / sc.d.rl
        let i = decode(0x06c5_b52f);
        assert_eq!(
            (i.op, i.rd, i.rs1, i.rs2, i.rm),
            (Op::AmoaddD, 10, 11, 12, 3)
        );
        assert!(i.aq() && i.rl());
        let i = decode(0x1405_a52f);
        assert_eq!((i.op, i.rm), (Op::LrW, 2));
        assert!(i.aq() && !i.rl());
        assert_eq!(decode(0x1a0c_b52f).op, Op::ScD);
        assert_eq!(decode(0x1a0c_b52f).rm, 1);
        // lr with rs2 != 0 is not an encoding.
        assert_eq!(decode(0x1015_a52f).op, Op::Illegal);
        // fmadd.d fa0,fa1,fa2,fa3,rne: rs3 and rm.
        let i = decode(0x6ac5_8543);
        assert_eq!(
            (i.op, i.rd, i.rs1, i.rs2, i.rs3, i.rm),
            (Op::FmaddD, 10, 11, 12, 13, 0)
        );
        // fadd.s with rm = 101 / 110 is illegal; 111 is dynamic.
        assert_eq!(decode(0x00c5_d553).op, Op::Illegal);
        assert_eq!(decode(0x00c5_e553).op, Op::Illegal);
        assert_eq!(decode(0x00c5_f553).rm, 7);
        // fcvtmod.w.d needs rm = rtz; fmvh.x.d / fmvp.d.x are RV32-only.
        assert_eq!(decode(0xc285_9553).op, Op::FcvtmodWD);
        assert_eq!(decode(0xc285_8553).op, Op::Illegal);
        assert_eq!(decode(0xe215_8553).op, Op::Illegal);
        assert_eq!(decode(0xb2c5_8553).op, Op::Illegal);
        // fli.d fa0,inf: constant index in rs1.
        let i = decode(0xf21f_0553);
        assert_eq!((i.op, i.rd, i.rs1), (Op::FliD, 10, 30));
    }

    #[test]
    fn illegal_32() {
        for raw in [
            0xffff_ffff,          // not a 32-bit encoding we know (48/64-bit prefix space)
            0x0000_7003,          // LOAD funct3 111 (reserved in RV64)
            0x0000_4023,          // STORE funct3 100
            0x0000_2063,          // BRANCH funct3 010
            0x0000_1067,          // JALR funct3 001
            0x1000_0073 | 1 << 7, // sret with rd != 0
            0x0000_0077,          // custom/reserved opcode
            0x0020_0073,          // SYSTEM funct3 000, imm 2 (URET, removed)
        ] {
            let i = decode(raw);
            assert_eq!(i.op, Op::Illegal, "0x{raw:08x}");
            assert_eq!((i.len, i.raw), (4, raw));
        }
    }

    #[test]
    fn all_16_bit_parcels() {
        let mut legal = 0;
        for raw in 0..=0xffffu32 {
            if raw & 3 == 3 {
                continue;
            }
            let i = decode(raw);
            assert_eq!((i.len, i.raw), (2, raw));
            if i.op != Op::Illegal {
                legal += 1;
                // Compressed registers never leave the architectural range.
                assert!(i.rd < 32 && i.rs1 < 32 && i.rs2 < 32 && i.rs3 == 0);
            } else {
                assert_eq!((i.rd, i.rs1, i.rs2, i.imm), (0, 0, 0, 0));
            }
        }
        // Three quadrants minus the reserved space: most parcels are legal.
        assert!(legal > 40_000, "{legal}");
    }

    #[test]
    fn random_32_bit_words() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut legal = 0;
        for _ in 0..4_000_000 {
            let raw = rng.next_u32() | 3;
            let i = decode(raw);
            assert_eq!((i.len, i.raw), (4, raw));
            if i.op != Op::Illegal {
                legal += 1;
                let e = lookup32(raw).expect("legal word has a table line");
                assert_eq!(raw & e.mask, e.matc);
            }
        }
        assert!(legal > 200_000, "{legal}");
    }

    /// CamelCase variant name of a mnemonic, per the naming rule of `Op`.
    fn camel(m: &str) -> String {
        m.split('.')
            .map(|seg| {
                let mut c = seg.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn op_names_follow_mnemonics() {
        for &op in Op::ALL {
            assert_eq!(format!("{op:?}"), camel(op.mnemonic()), "{op:?}");
            assert_eq!(Op::ALL[op as usize], op);
        }
        assert_eq!(Op::COUNT, Op::ALL.len());
    }

    #[test]
    fn table_is_unambiguous() {
        // Every op has exactly one 32-bit line.
        for &op in &Op::ALL[1..] {
            assert_eq!(INSNS32.iter().filter(|e| e.op == op).count(), 1, "{op:?}");
        }
        for e in INSNS32 {
            assert_eq!(e.matc & !e.mask, 0, "{:?}: match outside mask", e.op);
            assert_eq!(e.mask & 0x7f, 0x7f, "{:?}: opcode not fixed", e.op);
        }
        // Two lines that can match the same word must be ordered: one mask strictly
        // contains the other (the more specific one is tried first).
        for (a, ea) in INSNS32.iter().enumerate() {
            for eb in &INSNS32[a + 1..] {
                let common = ea.mask & eb.mask;
                if (ea.matc ^ eb.matc) & common == 0 {
                    let sub = ea.mask & !eb.mask != 0 && eb.mask & !ea.mask == 0
                        || eb.mask & !ea.mask != 0 && ea.mask & !eb.mask == 0;
                    assert!(sub, "{:?} and {:?} overlap", ea.op, eb.op);
                }
            }
        }
        for (a, ea) in INSNS16.iter().enumerate() {
            assert_eq!(ea.matc & !ea.mask, 0, "{}", ea.name);
            for eb in &INSNS16[a + 1..] {
                let common = ea.mask & eb.mask;
                if (ea.matc ^ eb.matc) & common == 0 {
                    assert!(
                        ea.mask.count_ones() != eb.mask.count_ones(),
                        "{} and {} overlap",
                        ea.name,
                        eb.name
                    );
                }
            }
        }
    }

    #[test]
    fn compressed_expansions_are_consistent() {
        // A compressed line expands to an op whose format takes the fields it fills.
        for e in INSNS16 {
            let base = e.name.trim_start_matches("c.");
            let m = e.op.mnemonic();
            let ok = match base {
                "addi4spn" | "addi16sp" | "li" | "nop" => m == "addi",
                "j" => m == "jal",
                "jr" => m == "jalr",
                "mv" => m == "add",
                "beqz" => m == "beq",
                "bnez" => m == "bne",
                b => m == b.trim_end_matches("sp"),
            };
            assert!(ok, "{} -> {}", e.name, m);
        }
    }

    #[test]
    fn block_ends() {
        for op in [
            Op::Beq,
            Op::Jal,
            Op::Jalr,
            Op::Ecall,
            Op::Ebreak,
            Op::Mret,
            Op::Sret,
            Op::Wfi,
            Op::SfenceVma,
            Op::HfenceVvma,
            Op::HfenceGvma,
            Op::FenceI,
            Op::WrsNto,
            Op::WrsSto,
            Op::Csrrw,
            Op::Csrrci,
            Op::Illegal,
        ] {
            assert!(op.ends_block(), "{op:?}");
        }
        for op in [
            Op::Add,
            Op::Ld,
            Op::Fence,
            Op::AmoaddW,
            Op::FaddD,
            Op::HlvD,
            Op::CboZero,
        ] {
            assert!(!op.ends_block(), "{op:?}");
        }
        assert_eq!(Op::Illegal.ext(), None);
        assert_eq!(Op::FcvtmodWD.ext(), Some(Ext::Zfa));
        assert_eq!(Op::HlvxWu.ext(), Some(Ext::H));
        // hlv.d a0, (a1) decodes only where H is implemented.
        let hlv = 0x6c05_c573;
        assert_eq!(decode(hlv).op, Op::HlvD);
        let all = crate::arch::ExtSet::ALL;
        assert_eq!(decode_for(hlv, all).op, Op::HlvD);
        let no_h = all.without(Ext::H);
        assert_eq!(decode_for(hlv, no_h).op, Op::Illegal);
        assert_eq!(decode_for(hlv, no_h).raw, hlv);
        // c.addi without C, add.uw without Zba.
        assert_eq!(decode_for(0x0505, all.without(Ext::C)).op, Op::Illegal);
        assert_eq!(
            decode_for(0x0805_053b, all.without(Ext::Zba)).op,
            Op::Illegal
        );
        assert_eq!(decode_for(0x0805_053b, all).op, Op::AddUw);
    }
}
