//! Encoders for instructions that the cross binutils (2.40) cannot assemble:
//! Zicond, Zfa, and deliberately reserved encodings. Each returns the 32-bit word
//! that the generator emits as `.word` with the mnemonic in a comment.

/// R-type: funct7 | rs2 | rs1 | funct3 | rd | opcode (Unpriv spec 2.2).
pub fn r_type(opcode: u32, rd: u32, funct3: u32, rs1: u32, rs2: u32, funct7: u32) -> u32 {
    (funct7 & 0x7f) << 25
        | (rs2 & 0x1f) << 20
        | (rs1 & 0x1f) << 15
        | (funct3 & 7) << 12
        | (rd & 0x1f) << 7
        | (opcode & 0x7f)
}

const OP: u32 = 0x33;
const OP_FP: u32 = 0x53;

/// Zicond (Unpriv spec ch. "Zicond"): czero.eqz funct3 = 101, czero.nez = 111,
/// funct7 = 0000111.
pub fn czero(nez: bool, rd: u32, rs1: u32, rs2: u32) -> u32 {
    r_type(OP, rd, if nez { 7 } else { 5 }, rs1, rs2, 0x07)
}

/// Floating-point format field: 00 = S, 01 = D.
fn fmt(double: bool) -> u32 {
    u32::from(double)
}

/// fli.{s,d} rd, idx: funct5 11110, rs2 = 00001, rs1 = constant index.
pub fn fli(double: bool, rd: u32, idx: u32) -> u32 {
    r_type(OP_FP, rd, 0, idx, 1, 0x78 | fmt(double))
}

/// fminm/fmaxm: funct5 00101, funct3 010 (min) / 011 (max).
pub fn fminmaxm(double: bool, max: bool, rd: u32, rs1: u32, rs2: u32) -> u32 {
    r_type(
        OP_FP,
        rd,
        if max { 3 } else { 2 },
        rs1,
        rs2,
        0x14 | fmt(double),
    )
}

/// fround/froundnx: funct5 01000, rs2 = 00100 (fround) / 00101 (froundnx).
pub fn fround(double: bool, nx: bool, rd: u32, rs1: u32, rm: u32) -> u32 {
    r_type(
        OP_FP,
        rd,
        rm,
        rs1,
        if nx { 5 } else { 4 },
        0x20 | fmt(double),
    )
}

/// fcvtmod.w.d rd, rs1, rtz: funct7 1100001, rs2 = 01000, rm must be RTZ (001).
pub fn fcvtmod_w_d(rd: u32, rs1: u32) -> u32 {
    r_type(OP_FP, rd, 1, rs1, 8, 0x61)
}

/// fleq/fltq: funct5 10100, funct3 100 (fleq) / 101 (fltq).
pub fn fleq_fltq(double: bool, lt: bool, rd: u32, rs1: u32, rs2: u32) -> u32 {
    r_type(
        OP_FP,
        rd,
        if lt { 5 } else { 4 },
        rs1,
        rs2,
        0x50 | fmt(double),
    )
}

/// fadd.{s,d} with an arbitrary rm field, used to emit the reserved rounding
/// modes 101 and 110 (Unpriv spec 20.2: reserved rm is an illegal instruction).
pub fn fadd_rm(double: bool, rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    r_type(OP_FP, rd, rm, rs1, rs2, fmt(double))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        // Little-endian words from the LLVM MC encoding tests for Zicond and Zfa
        // (independent of this encoder).
        assert_eq!(czero(false, 5, 13, 1), 0x0e16_d2b3); // czero.eqz t0, a3, ra
        assert_eq!(czero(true, 11, 3, 31), 0x0ff1_f5b3); // czero.nez a1, gp, t6
        assert_eq!(fcvtmod_w_d(11, 1), 0xc280_95d3); // fcvtmod.w.d a1, ft1, rtz
        assert_eq!(fli(true, 1, 16), 0xf218_00d3); // fli.d ft1, 1.0
        assert_eq!(fminmaxm(false, false, 10, 11, 12), 0x28c5_a553); // fminm.s
        assert_eq!(fminmaxm(true, true, 19, 20, 21), 0x2b5a_39d3); // fmaxm.d
        assert_eq!(fround(false, false, 9, 18, 1), 0x4049_14d3); // fround.s rtz
        assert_eq!(fround(true, true, 9, 18, 7), 0x4259_74d3); // froundnx.d dyn
        assert_eq!(fleq_fltq(true, true, 11, 9, 18), 0xa324_d5d3); // fltq.d
        assert_eq!(fleq_fltq(false, false, 11, 1, 2), 0xa020_c5d3); // fleq.s
    }
}
