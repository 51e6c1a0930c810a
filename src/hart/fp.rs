//! RISC-V F, D and Zfa instruction semantics as pure functions on raw register bits.
//!
//! The interpreter and the JIT helpers both call these, so every function takes and
//! returns plain integers: f-register contents are `u64`, single-precision values live
//! NaN-boxed in them (Unpriv spec, "NaN Boxing of Narrower Values"), and each operation
//! returns the exception flags it raised in fflags layout so the caller can OR them
//! into `fcsr`. Nothing here reads or writes hart state.
//!
//! Arithmetic is Berkeley SoftFloat 3 built with its RISC-V specialisation: NaN results
//! are always the canonical NaN (Unpriv spec F chapter, "NaN Generation and
//! Propagation"), tininess is detected after rounding, and out-of-range integer
//! conversions saturate as the spec's conversion table demands. SoftFloat keeps its
//! rounding mode and flags in thread-local state; every operation here sets the mode,
//! clears the flags, and reads them back, so no state leaks between calls. Only the
//! operations SoftFloat lacks (minimumNumber/maximumNumber, the Zfa minimum/maximum,
//! sign injection, classification, `fli`, `fcvtmod.w.d`) are written out by hand.

use softfloat_wrapper::{ExceptionFlags, Float, RoundingMode, F32, F64};

/// fflags bits (Unpriv spec, "Floating-Point Control and Status Register").
pub mod fflags {
    /// Invalid operation.
    pub const NV: u8 = 1 << 4;
    /// Divide by zero.
    pub const DZ: u8 = 1 << 3;
    /// Overflow.
    pub const OF: u8 = 1 << 2;
    /// Underflow.
    pub const UF: u8 = 1 << 1;
    /// Inexact.
    pub const NX: u8 = 1 << 0;
}

/// The canonical single-precision NaN.
pub const CANONICAL_NAN_S: u32 = 0x7fc0_0000;
/// The canonical double-precision NaN.
pub const CANONICAL_NAN_D: u64 = 0x7ff8_0000_0000_0000;

/// Operand precision of an F/D instruction (the `fmt` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Prec {
    /// Single precision (F), NaN-boxed in the 64-bit f registers.
    S = 0,
    /// Double precision (D).
    D = 1,
}

impl Prec {
    /// Decodes the 2-bit `fmt` field; H (2) and Q (3) are not supported.
    #[inline]
    pub fn from_fmt(fmt: u8) -> Option<Prec> {
        match fmt {
            0 => Some(Prec::S),
            1 => Some(Prec::D),
            _ => None,
        }
    }
}

/// A static rounding mode, encoded as in `frm` and the instruction `rm` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Rm {
    /// Round to nearest, ties to even.
    Rne = 0,
    /// Round towards zero.
    Rtz = 1,
    /// Round down (towards negative infinity).
    Rdn = 2,
    /// Round up (towards positive infinity).
    Rup = 3,
    /// Round to nearest, ties to max magnitude.
    Rmm = 4,
}

impl Rm {
    /// Decodes a static rounding mode; 5, 6 and 7 are not static modes.
    #[inline]
    pub fn from_bits(bits: u8) -> Option<Rm> {
        match bits {
            0 => Some(Rm::Rne),
            1 => Some(Rm::Rtz),
            2 => Some(Rm::Rdn),
            3 => Some(Rm::Rup),
            4 => Some(Rm::Rmm),
            _ => None,
        }
    }

    #[inline]
    fn softfloat(self) -> RoundingMode {
        match self {
            Rm::Rne => RoundingMode::TiesToEven,
            Rm::Rtz => RoundingMode::TowardZero,
            Rm::Rdn => RoundingMode::TowardNegative,
            Rm::Rup => RoundingMode::TowardPositive,
            Rm::Rmm => RoundingMode::TiesToAway,
        }
    }
}

/// Integer side of an `fcvt` between a float and an integer register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IntKind {
    /// Signed 32-bit (`.w`).
    W = 0,
    /// Unsigned 32-bit (`.wu`).
    Wu = 1,
    /// Signed 64-bit (`.l`).
    L = 2,
    /// Unsigned 64-bit (`.lu`).
    Lu = 3,
}

impl IntKind {
    /// Decodes the `rs2` field of `fcvt.<int>.<fmt>` / `fcvt.<fmt>.<int>`, which
    /// selects the integer type; other values are not conversions to or from integers.
    #[inline]
    pub fn from_rs2(rs2: u8) -> Option<IntKind> {
        match rs2 {
            0 => Some(IntKind::W),
            1 => Some(IntKind::Wu),
            2 => Some(IntKind::L),
            3 => Some(IntKind::Lu),
            _ => None,
        }
    }
}

/// Result of an operation: the destination value and the fflags it raised.
///
/// The caller ORs `flags` into `fflags` (flags accrue; nothing here clears them).
/// `bits` is an f-register value (single precision NaN-boxed) for floating-point
/// results, and an x-register value for compares, conversions to integer and
/// `fcvtmod.w.d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpOut {
    pub bits: u64,
    pub flags: u8,
}

/// Resolves an instruction's `rm` field against `frm`.
///
/// `None` means the combination is reserved and the instruction is illegal: `rm` 5 or
/// 6, or `rm` = 7 (dynamic) while `frm` holds 5, 6 or 7 (Unpriv spec,
/// "Floating-Point Control and Status Register").
#[inline]
pub fn resolve_rm(insn_rm: u8, frm: u8) -> Option<Rm> {
    if insn_rm == 7 {
        Rm::from_bits(frm)
    } else {
        Rm::from_bits(insn_rm)
    }
}

/// Reads a single-precision operand from an f register.
///
/// A value whose upper 32 bits are not all ones is not a properly NaN-boxed single
/// and reads as the canonical NaN (Unpriv spec, "NaN Boxing of Narrower Values").
#[inline]
pub fn unbox_s(reg: u64) -> u32 {
    if reg >> 32 == 0xffff_ffff {
        reg as u32
    } else {
        CANONICAL_NAN_S
    }
}

/// NaN-boxes a single-precision result for writing to an f register.
#[inline]
pub fn box_s(v: u32) -> u64 {
    0xffff_ffff_0000_0000 | u64::from(v)
}

/// A SoftFloat format stored in an f register.
trait Reg: Float + Copy {
    fn read(reg: u64) -> Self;
    fn write(self) -> u64;
    /// Raw bits widened to 64, without boxing.
    fn raw(self) -> u64;
    /// The value whose raw bits are the low bits of `v`.
    fn from_raw(v: u64) -> Self;
    const SIGN: u64;
    const CANONICAL_NAN: u64;
}

impl Reg for F32 {
    #[inline]
    fn read(reg: u64) -> Self {
        F32::from_bits(unbox_s(reg))
    }
    #[inline]
    fn write(self) -> u64 {
        box_s(self.to_bits())
    }
    #[inline]
    fn raw(self) -> u64 {
        u64::from(self.to_bits())
    }
    #[inline]
    fn from_raw(v: u64) -> Self {
        F32::from_bits(v as u32)
    }
    const SIGN: u64 = 1 << 31;
    const CANONICAL_NAN: u64 = CANONICAL_NAN_S as u64;
}

impl Reg for F64 {
    #[inline]
    fn read(reg: u64) -> Self {
        F64::from_bits(reg)
    }
    #[inline]
    fn write(self) -> u64 {
        self.to_bits()
    }
    #[inline]
    fn raw(self) -> u64 {
        self.to_bits()
    }
    #[inline]
    fn from_raw(v: u64) -> Self {
        F64::from_bits(v)
    }
    const SIGN: u64 = 1 << 63;
    const CANONICAL_NAN: u64 = CANONICAL_NAN_D;
}

/// Writes raw (unboxed) bits of format `T` to a register value.
#[inline]
fn write_raw<T: Reg>(raw: u64) -> u64 {
    T::from_raw(raw).write()
}

/// Runs a SoftFloat operation with cleared flags and returns the flags it raised.
#[inline]
fn with_flags<R>(op: impl FnOnce() -> R) -> (R, u8) {
    ExceptionFlags::default().set();
    let r = op();
    let mut f = ExceptionFlags::default();
    f.get();
    // SoftFloat's flag bits coincide with fflags (checked by a unit test).
    (r, f.to_bits() & 0x1f)
}

#[inline]
fn float_op<T: Reg>(op: impl FnOnce() -> T) -> FpOut {
    let (r, flags) = with_flags(op);
    FpOut {
        bits: r.write(),
        flags,
    }
}

/// Dispatches on precision to a function generic over the register format.
macro_rules! by_prec {
    ($p:expr, $f:ident($($arg:expr),*)) => {
        match $p {
            Prec::S => $f::<F32>($($arg),*),
            Prec::D => $f::<F64>($($arg),*),
        }
    };
}

fn add_t<T: Reg>(a: u64, b: u64, rm: Rm) -> FpOut {
    let (a, b) = (T::read(a), T::read(b));
    float_op(|| a.add(b, rm.softfloat()))
}

fn sub_t<T: Reg>(a: u64, b: u64, rm: Rm) -> FpOut {
    let (a, b) = (T::read(a), T::read(b));
    float_op(|| a.sub(b, rm.softfloat()))
}

fn mul_t<T: Reg>(a: u64, b: u64, rm: Rm) -> FpOut {
    let (a, b) = (T::read(a), T::read(b));
    float_op(|| a.mul(b, rm.softfloat()))
}

fn div_t<T: Reg>(a: u64, b: u64, rm: Rm) -> FpOut {
    let (a, b) = (T::read(a), T::read(b));
    float_op(|| a.div(b, rm.softfloat()))
}

fn sqrt_t<T: Reg>(a: u64, rm: Rm) -> FpOut {
    let a = T::read(a);
    float_op(|| a.sqrt(rm.softfloat()))
}

/// `fadd.s`/`fadd.d`.
#[inline]
pub fn add(p: Prec, a: u64, b: u64, rm: Rm) -> FpOut {
    by_prec!(p, add_t(a, b, rm))
}

/// `fsub.s`/`fsub.d`.
#[inline]
pub fn sub(p: Prec, a: u64, b: u64, rm: Rm) -> FpOut {
    by_prec!(p, sub_t(a, b, rm))
}

/// `fmul.s`/`fmul.d`.
#[inline]
pub fn mul(p: Prec, a: u64, b: u64, rm: Rm) -> FpOut {
    by_prec!(p, mul_t(a, b, rm))
}

/// `fdiv.s`/`fdiv.d`.
#[inline]
pub fn div(p: Prec, a: u64, b: u64, rm: Rm) -> FpOut {
    by_prec!(p, div_t(a, b, rm))
}

/// `fsqrt.s`/`fsqrt.d`.
#[inline]
pub fn sqrt(p: Prec, a: u64, rm: Rm) -> FpOut {
    by_prec!(p, sqrt_t(a, rm))
}

fn fma_t<T: Reg>(a: u64, b: u64, c: u64, rm: Rm, neg_prod: bool, neg_add: bool) -> FpOut {
    // Negating an operand is exact and only flips its sign bit, NaNs included (a
    // signalling NaN stays signalling), so `-(a*b) ± c` is computed as `(-a)*b ± c`
    // with a single rounding, which is what the spec defines for FNMSUB/FNMADD.
    let neg = |x: T, n: bool| {
        if n {
            T::from_raw(x.raw() ^ T::SIGN)
        } else {
            x
        }
    };
    let a = neg(T::read(a), neg_prod);
    let b = T::read(b);
    let c = neg(T::read(c), neg_add);
    // Unpriv spec F chapter: FMA sets NV for inf * 0 even when the addend is a quiet
    // NaN; SoftFloat's RISC-V build does so.
    float_op(|| a.fused_mul_add(b, c, rm.softfloat()))
}

/// The fused multiply-adds: `fmadd` (no negation), `fmsub` (`neg_add`), `fnmsub`
/// (`neg_prod`) and `fnmadd` (both): `(±(a*b)) ± c` with one rounding.
#[inline]
pub fn fma(p: Prec, a: u64, b: u64, c: u64, rm: Rm, neg_prod: bool, neg_add: bool) -> FpOut {
    match p {
        Prec::S => fma_t::<F32>(a, b, c, rm, neg_prod, neg_add),
        Prec::D => fma_t::<F64>(a, b, c, rm, neg_prod, neg_add),
    }
}

/// `a < b` in the total order used by min/max on non-NaN values: numeric, with
/// -0 below +0.
#[inline]
fn ordered_lt<T: Reg>(a: T, b: T) -> bool {
    // Neither operand is a NaN here, so the quiet compares raise nothing. Equal
    // values with different encodings can only be zeros of opposite sign.
    a.lt_quiet(b) || (a.eq(b) && a.raw() & T::SIGN != 0 && b.raw() & T::SIGN == 0)
}

fn minmax_t<T: Reg>(a: u64, b: u64, want_max: bool, nan_propagating: bool) -> FpOut {
    let (a, b) = (T::read(a), T::read(b));
    let flags = if a.is_signaling_nan() || b.is_signaling_nan() {
        fflags::NV
    } else {
        0
    };
    let bits = match (a.is_nan(), b.is_nan()) {
        (true, true) => T::CANONICAL_NAN,
        (true, false) | (false, true) if nan_propagating => T::CANONICAL_NAN,
        (true, false) => b.raw(),
        (false, true) => a.raw(),
        (false, false) => {
            if ordered_lt(a, b) != want_max {
                a.raw()
            } else {
                b.raw()
            }
        }
    };
    FpOut {
        bits: write_raw::<T>(bits),
        flags,
    }
}

/// `fmin.s`/`fmin.d`: IEEE 754-2019 minimumNumber (Unpriv spec F chapter, "Single-
/// Precision Floating-Point Computational Instructions", version 2.2 semantics). One
/// NaN operand yields the other operand; two NaNs yield the canonical NaN; -0 < +0;
/// a signalling NaN operand raises NV even when the result is not a NaN.
#[inline]
pub fn min(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, minmax_t(a, b, false, false))
}

/// `fmax.s`/`fmax.d`: IEEE 754-2019 maximumNumber; see [`min`].
#[inline]
pub fn max(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, minmax_t(a, b, true, false))
}

/// Zfa `fminm.s`/`fminm.d`: like [`min`] but any NaN operand yields the canonical NaN
/// (IEEE 754-2019 minimum).
#[inline]
pub fn minm(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, minmax_t(a, b, false, true))
}

/// Zfa `fmaxm.s`/`fmaxm.d`: IEEE 754-2019 maximum; see [`minm`].
#[inline]
pub fn maxm(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, minmax_t(a, b, true, true))
}

#[derive(Clone, Copy)]
enum Sgnj {
    Copy,
    Neg,
    Xor,
}

fn sgnj_t<T: Reg>(a: u64, b: u64, kind: Sgnj) -> u64 {
    // Sign injection is not arithmetic: NaN payloads pass through unchanged, but
    // single-precision operands are still subject to the NaN-boxing check.
    let (a, b) = (T::read(a).raw(), T::read(b).raw());
    let sign = match kind {
        Sgnj::Copy => b & T::SIGN,
        Sgnj::Neg => !b & T::SIGN,
        Sgnj::Xor => (a ^ b) & T::SIGN,
    };
    write_raw::<T>((a & !T::SIGN) | sign)
}

/// `fsgnj.s`/`fsgnj.d`: `a` with the sign of `b` (`fmv` when a = b).
#[inline]
pub fn sgnj(p: Prec, a: u64, b: u64) -> u64 {
    by_prec!(p, sgnj_t(a, b, Sgnj::Copy))
}

/// `fsgnjn.s`/`fsgnjn.d`: `a` with the opposite of the sign of `b` (`fneg`).
#[inline]
pub fn sgnjn(p: Prec, a: u64, b: u64) -> u64 {
    by_prec!(p, sgnj_t(a, b, Sgnj::Neg))
}

/// `fsgnjx.s`/`fsgnjx.d`: `a` with the XOR of both signs (`fabs`).
#[inline]
pub fn sgnjx(p: Prec, a: u64, b: u64) -> u64 {
    by_prec!(p, sgnj_t(a, b, Sgnj::Xor))
}

#[derive(Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Le,
    LtQuiet,
    LeQuiet,
}

fn cmp_t<T: Reg>(a: u64, b: u64, cmp: Cmp) -> FpOut {
    let (a, b) = (T::read(a), T::read(b));
    let (r, flags) = with_flags(|| match cmp {
        Cmp::Eq => a.eq(b),
        Cmp::Lt => a.lt(b),
        Cmp::Le => a.le(b),
        Cmp::LtQuiet => a.lt_quiet(b),
        Cmp::LeQuiet => a.le_quiet(b),
    });
    FpOut {
        bits: u64::from(r),
        flags,
    }
}

/// `feq.s`/`feq.d`: quiet compare, NV only for a signalling NaN operand.
#[inline]
pub fn eq(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, cmp_t(a, b, Cmp::Eq))
}

/// `flt.s`/`flt.d`: signalling compare, NV for any NaN operand.
#[inline]
pub fn lt(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, cmp_t(a, b, Cmp::Lt))
}

/// `fle.s`/`fle.d`: signalling compare, NV for any NaN operand.
#[inline]
pub fn le(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, cmp_t(a, b, Cmp::Le))
}

/// Zfa `fltq.s`/`fltq.d`: like [`lt`] but quiet NaNs raise nothing.
#[inline]
pub fn ltq(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, cmp_t(a, b, Cmp::LtQuiet))
}

/// Zfa `fleq.s`/`fleq.d`: like [`le`] but quiet NaNs raise nothing.
#[inline]
pub fn leq(p: Prec, a: u64, b: u64) -> FpOut {
    by_prec!(p, cmp_t(a, b, Cmp::LeQuiet))
}

fn classify_t<T: Reg>(a: u64) -> u64 {
    let a = T::read(a);
    let neg = a.raw() & T::SIGN != 0;
    let bit = if a.is_nan() {
        if a.is_signaling_nan() {
            8
        } else {
            9
        }
    } else if a.is_positive_infinity() || a.is_negative_infinity() {
        if neg {
            0
        } else {
            7
        }
    } else if a.is_zero() {
        if neg {
            3
        } else {
            4
        }
    } else if a.is_subnormal() {
        if neg {
            2
        } else {
            5
        }
    } else if neg {
        1
    } else {
        6
    };
    1 << bit
}

/// `fclass.s`/`fclass.d`: the one-hot class mask (Unpriv spec, "Single-Precision
/// Floating-Point Classify Instruction"): bit 0 -inf, 1 negative normal, 2 negative
/// subnormal, 3 -0, 4 +0, 5 positive subnormal, 6 positive normal, 7 +inf,
/// 8 signalling NaN, 9 quiet NaN.
#[inline]
pub fn classify(p: Prec, a: u64) -> u64 {
    by_prec!(p, classify_t(a))
}

fn to_int_t<T: Reg>(a: u64, rm: Rm, kind: IntKind) -> FpOut {
    let a = T::read(a);
    let rm = rm.softfloat();
    // SoftFloat's RISC-V build saturates exactly as the spec's conversion table says
    // (NaN and too-large values give the maximum, too-small values the minimum, 0 for
    // negative values converted to unsigned) and raises only NV in those cases.
    // Unpriv spec D chapter / RV64F: 32-bit results, unsigned ones included, are
    // sign-extended to 64 bits.
    let (bits, flags) = with_flags(|| match kind {
        IntKind::W => a.to_i32(rm, true) as i64 as u64,
        IntKind::Wu => a.to_u32(rm, true) as i32 as i64 as u64,
        IntKind::L => a.to_i64(rm, true) as u64,
        IntKind::Lu => a.to_u64(rm, true),
    });
    FpOut { bits, flags }
}

/// `fcvt.{w,wu,l,lu}.{s,d}`: float to integer, saturating; the result is an
/// x-register value.
#[inline]
pub fn to_int(p: Prec, a: u64, rm: Rm, kind: IntKind) -> FpOut {
    by_prec!(p, to_int_t(a, rm, kind))
}

fn from_int_t<T: Reg>(x: u64, rm: Rm, kind: IntKind) -> FpOut {
    let rm = rm.softfloat();
    // The 32-bit forms read only the low 32 bits of the source register.
    float_op(|| match kind {
        IntKind::W => T::from_i32(x as u32 as i32, rm),
        IntKind::Wu => T::from_u32(x as u32, rm),
        IntKind::L => T::from_i64(x as i64, rm),
        IntKind::Lu => T::from_u64(x, rm),
    })
}

/// `fcvt.{s,d}.{w,wu,l,lu}`: integer (an x-register value) to float.
#[inline]
pub fn from_int(p: Prec, x: u64, rm: Rm, kind: IntKind) -> FpOut {
    by_prec!(p, from_int_t(x, rm, kind))
}

/// `fcvt.s.d`: narrowing, rounded by `rm`; a NaN becomes the canonical NaN.
#[inline]
pub fn cvt_s_d(a: u64, rm: Rm) -> FpOut {
    let a = F64::read(a);
    float_op(|| a.to_f32(rm.softfloat()))
}

/// `fcvt.d.s`: widening, always exact; a NaN becomes the canonical NaN. `rm` is
/// still validated by the caller (a reserved `rm` is illegal), but cannot matter.
#[inline]
pub fn cvt_d_s(a: u64, rm: Rm) -> FpOut {
    let a = F32::read(a);
    float_op(|| a.to_f64(rm.softfloat()))
}

fn round_t<T: Reg>(a: u64, rm: Rm, exact: bool) -> FpOut {
    let a = T::read(a);
    let (r, mut flags) = with_flags(|| a.round_to_integral(rm.softfloat()));
    // Zfa: FROUNDNX additionally raises NX when the result differs from a non-NaN
    // input. SoftFloat's inexact path for roundToInt is exactly that bit-inequality
    // test, which the wrapper does not expose.
    if exact && !a.is_nan() && r.raw() != a.raw() {
        flags |= fflags::NX;
    }
    FpOut {
        bits: r.write(),
        flags,
    }
}

/// Zfa `fround.{s,d}` (`exact` false) and `froundnx.{s,d}` (`exact` true): round to
/// an integral value in the same format. Zeros and infinities pass unchanged, a
/// signalling NaN raises NV, NaNs give the canonical NaN.
#[inline]
pub fn round(p: Prec, a: u64, rm: Rm, exact: bool) -> FpOut {
    by_prec!(p, round_t(a, rm, exact))
}

/// Zfa `fcvtmod.w.d`: truncate towards zero, keep bits 31:0 of the unbounded two's
/// complement integer, sign-extend; infinities and NaNs give 0. Flags are those
/// `fcvt.w.d` with RTZ would raise for the same input. The instruction's `rm` must be
/// RTZ (any other value is reserved), which the decoder checks.
pub fn fcvtmod_w_d(a: u64) -> FpOut {
    let flags = to_int(Prec::D, a, Rm::Rtz, IntKind::W).flags;
    let exp = ((a >> 52) & 0x7ff) as i64;
    let magnitude = if exp == 0x7ff || exp < 1023 {
        // Infinity, NaN, or |a| < 1 (which truncates to zero).
        0
    } else {
        let sig = (a & ((1 << 52) - 1)) | (1 << 52);
        // a = sig * 2^shift exactly.
        let shift = exp - 1075;
        if shift >= 64 {
            // Every bit of the integer lies above bit 63, so bits 31:0 are zero.
            0
        } else if shift >= 0 {
            sig << shift
        } else {
            // shift >= -52 because exp >= 1023.
            sig >> -shift
        }
    };
    let value = if a >> 63 != 0 {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    FpOut {
        bits: value as u32 as i32 as i64 as u64,
        flags,
    }
}

/// Zfa `fli.s` entries as double values; entries 1 (minimum positive normal), 30
/// (+inf) and 31 (canonical NaN) depend on the format and are handled in [`fli`].
/// Every other entry is exactly representable in single precision.
const FLI_VALUES: [f64; 32] = [
    -1.0,
    0.0, // minimum positive normal, format dependent
    1.0 / 65536.0,
    1.0 / 32768.0,
    1.0 / 256.0,
    1.0 / 128.0,
    0.0625,
    0.125,
    0.25,
    0.3125,
    0.375,
    0.4375,
    0.5,
    0.625,
    0.75,
    0.875,
    1.0,
    1.25,
    1.5,
    1.75,
    2.0,
    2.5,
    3.0,
    4.0,
    8.0,
    16.0,
    128.0,
    256.0,
    32768.0,
    65536.0,
    0.0, // +inf
    0.0, // canonical NaN
];

/// Zfa `fli.s`/`fli.d`: the constant selected by the `rs1` field (Zfa, "Load-Immediate
/// Instructions"). Only the low five bits of `idx` are used. Raises no flags.
pub fn fli(p: Prec, idx: u8) -> u64 {
    let idx = usize::from(idx & 31);
    match p {
        Prec::S => box_s(match idx {
            1 => 0x0080_0000,
            30 => 0x7f80_0000,
            31 => CANONICAL_NAN_S,
            // Exact: every other table value is a short dyadic fraction.
            _ => (FLI_VALUES[idx] as f32).to_bits(),
        }),
        Prec::D => match idx {
            1 => 0x0010_0000_0000_0000,
            30 => 0x7ff0_0000_0000_0000,
            31 => CANONICAL_NAN_D,
            _ => FLI_VALUES[idx].to_bits(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::fflags::{DZ, NV, NX, OF, UF};
    use super::*;

    const ALL_RM: [Rm; 5] = [Rm::Rne, Rm::Rtz, Rm::Rdn, Rm::Rup, Rm::Rmm];

    /// A double as an f-register value.
    fn d(x: f64) -> u64 {
        x.to_bits()
    }

    /// A single as a NaN-boxed f-register value.
    fn s(x: f32) -> u64 {
        box_s(x.to_bits())
    }

    fn out(bits: u64, flags: u8) -> FpOut {
        FpOut { bits, flags }
    }

    const QNAN_D: u64 = 0x7ff8_0000_0000_0000;
    const QNAN_D_PAYLOAD: u64 = 0x7ff8_0000_dead_beef;
    const SNAN_D: u64 = 0x7ff0_0000_0000_0001;
    const QNAN_S_PAYLOAD: u64 = 0xffff_ffff_7fc0_1234;
    const SNAN_S: u64 = 0xffff_ffff_7f80_0001;
    const CNAN_S: u64 = 0xffff_ffff_7fc0_0000;
    /// A single-precision 1.0 whose upper half is not all ones.
    const BADBOX_ONE: u64 = 0x0000_0000_3f80_0000;
    const MIN_SUB_D: u64 = 1;

    #[test]
    fn flag_bits_match_softfloat() {
        let f = ExceptionFlags::from_bits;
        assert!(f(NV).is_invalid() && !f(NV).is_infinite());
        assert!(f(DZ).is_infinite() && !f(DZ).is_overflow());
        assert!(f(OF).is_overflow() && !f(OF).is_underflow());
        assert!(f(UF).is_underflow() && !f(UF).is_inexact());
        assert!(f(NX).is_inexact() && !f(NX).is_invalid());
    }

    #[test]
    fn flags_do_not_leak_between_calls() {
        assert_eq!(div(Prec::D, d(1.0), d(0.0), Rm::Rne).flags, DZ);
        assert_eq!(add(Prec::D, d(1.0), d(2.0), Rm::Rne), out(d(3.0), 0));
        assert_eq!(lt(Prec::D, QNAN_D, d(1.0)).flags, NV);
        assert_eq!(eq(Prec::D, d(1.0), d(1.0)), out(1, 0));
        assert_eq!(to_int(Prec::D, d(0.5), Rm::Rne, IntKind::W).flags, NX);
        assert_eq!(to_int(Prec::D, d(1.0), Rm::Rne, IntKind::W), out(1, 0));
        assert_eq!(round(Prec::D, SNAN_D, Rm::Rne, false).flags, NV);
        assert_eq!(round(Prec::D, d(0.5), Rm::Rne, false), out(d(0.0), 0));
    }

    #[test]
    fn resolve_rm_static_dynamic_reserved() {
        for (i, rm) in ALL_RM.iter().enumerate() {
            assert_eq!(resolve_rm(i as u8, 6), Some(*rm));
            assert_eq!(resolve_rm(7, i as u8), Some(*rm));
        }
        assert_eq!(resolve_rm(5, 0), None);
        assert_eq!(resolve_rm(6, 0), None);
        for frm in 5..=7 {
            assert_eq!(resolve_rm(7, frm), None);
        }
    }

    #[test]
    fn field_decoders() {
        assert_eq!(Prec::from_fmt(0), Some(Prec::S));
        assert_eq!(Prec::from_fmt(1), Some(Prec::D));
        assert_eq!(Prec::from_fmt(2), None);
        assert_eq!(Prec::from_fmt(3), None);
        let kinds = [IntKind::W, IntKind::Wu, IntKind::L, IntKind::Lu];
        for (i, k) in kinds.iter().enumerate() {
            assert_eq!(IntKind::from_rs2(i as u8), Some(*k));
            assert_eq!(*k as u8, i as u8);
        }
        assert_eq!(IntKind::from_rs2(4), None);
        for rm in ALL_RM {
            assert_eq!(Rm::from_bits(rm as u8), Some(rm));
        }
    }

    #[test]
    fn nan_boxing() {
        assert_eq!(box_s(0x3f80_0000), 0xffff_ffff_3f80_0000);
        assert_eq!(unbox_s(0xffff_ffff_3f80_0000), 0x3f80_0000);
        assert_eq!(unbox_s(BADBOX_ONE), CANONICAL_NAN_S);
        assert_eq!(unbox_s(0xffff_fffe_3f80_0000), CANONICAL_NAN_S);
        assert_eq!(unbox_s(0x7fff_ffff_3f80_0000), CANONICAL_NAN_S);
        // An improperly boxed input is a quiet NaN: canonical result, no NV.
        assert_eq!(add(Prec::S, BADBOX_ONE, s(1.0), Rm::Rne), out(CNAN_S, 0));
        assert_eq!(add(Prec::S, s(1.0), BADBOX_ONE, Rm::Rne), out(CNAN_S, 0));
        // A boxed result even for an exact integer-valued result.
        assert_eq!(add(Prec::S, s(1.0), s(2.0), Rm::Rne), out(s(3.0), 0));
        assert_eq!(sqrt(Prec::S, s(4.0), Rm::Rne), out(s(2.0), 0));
    }

    #[test]
    fn nan_results_are_canonical() {
        for rm in ALL_RM {
            assert_eq!(add(Prec::D, QNAN_D_PAYLOAD, d(1.0), rm), out(QNAN_D, 0));
            assert_eq!(mul(Prec::D, d(1.0), SNAN_D, rm), out(QNAN_D, NV));
            assert_eq!(sub(Prec::S, QNAN_S_PAYLOAD, s(1.0), rm), out(CNAN_S, 0));
            assert_eq!(div(Prec::S, SNAN_S, s(1.0), rm), out(CNAN_S, NV));
        }
        let inf = d(f64::INFINITY);
        let ninf = d(f64::NEG_INFINITY);
        assert_eq!(add(Prec::D, inf, ninf, Rm::Rne), out(QNAN_D, NV));
        assert_eq!(sub(Prec::D, inf, inf, Rm::Rne), out(QNAN_D, NV));
        assert_eq!(mul(Prec::D, inf, d(0.0), Rm::Rne), out(QNAN_D, NV));
        assert_eq!(div(Prec::D, d(0.0), d(-0.0), Rm::Rne), out(QNAN_D, NV));
        assert_eq!(div(Prec::D, inf, inf, Rm::Rne), out(QNAN_D, NV));
        assert_eq!(sqrt(Prec::D, d(-1.0), Rm::Rne), out(QNAN_D, NV));
        assert_eq!(sqrt(Prec::S, s(-1.0), Rm::Rne), out(CNAN_S, NV));
        assert_eq!(sqrt(Prec::D, QNAN_D_PAYLOAD, Rm::Rne), out(QNAN_D, 0));
    }

    #[test]
    fn zeros_and_signs() {
        // x + (-x) is +0 except when rounding down.
        for rm in [Rm::Rne, Rm::Rtz, Rm::Rup, Rm::Rmm] {
            assert_eq!(add(Prec::D, d(1.5), d(-1.5), rm), out(d(0.0), 0));
        }
        assert_eq!(add(Prec::D, d(1.5), d(-1.5), Rm::Rdn), out(d(-0.0), 0));
        assert_eq!(add(Prec::S, s(-0.0), s(-0.0), Rm::Rne), out(s(-0.0), 0));
        assert_eq!(add(Prec::D, d(-0.0), d(0.0), Rm::Rne), out(d(0.0), 0));
        assert_eq!(mul(Prec::D, d(-0.0), d(5.0), Rm::Rne), out(d(-0.0), 0));
        assert_eq!(sqrt(Prec::D, d(-0.0), Rm::Rne), out(d(-0.0), 0));
        assert_eq!(
            div(Prec::D, d(1.0), d(0.0), Rm::Rne),
            out(d(f64::INFINITY), DZ)
        );
        assert_eq!(
            div(Prec::S, s(-1.0), s(0.0), Rm::Rne),
            out(s(f32::NEG_INFINITY), DZ)
        );
        assert_eq!(
            div(Prec::D, d(1.0), d(f64::INFINITY), Rm::Rne),
            out(d(0.0), 0)
        );
        assert_eq!(
            sqrt(Prec::D, d(f64::INFINITY), Rm::Rne),
            out(d(f64::INFINITY), 0)
        );
        assert_eq!(div(Prec::D, d(1.0), d(3.0), Rm::Rne).flags, NX);
        assert_eq!(sqrt(Prec::D, d(2.0), Rm::Rne).flags, NX);
    }

    #[test]
    fn overflow_per_rounding_mode() {
        let max = d(f64::MAX);
        let nmax = d(-f64::MAX);
        let inf = d(f64::INFINITY);
        let ninf = d(f64::NEG_INFINITY);
        let expect = [
            (Rm::Rne, inf, ninf),
            (Rm::Rtz, max, nmax),
            (Rm::Rdn, max, ninf),
            (Rm::Rup, inf, nmax),
            (Rm::Rmm, inf, ninf),
        ];
        for (rm, pos, neg) in expect {
            assert_eq!(mul(Prec::D, max, d(2.0), rm), out(pos, OF | NX), "{rm:?}");
            assert_eq!(mul(Prec::D, nmax, d(2.0), rm), out(neg, OF | NX), "{rm:?}");
            assert_eq!(add(Prec::D, max, max, rm), out(pos, OF | NX), "{rm:?}");
        }
        let smax = s(f32::MAX);
        assert_eq!(
            add(Prec::S, smax, smax, Rm::Rne),
            out(s(f32::INFINITY), OF | NX)
        );
        assert_eq!(add(Prec::S, smax, smax, Rm::Rtz), out(smax, OF | NX));
        // A carry into the exponent that stays finite is not an overflow.
        assert_eq!(add(Prec::D, max, d(1.0), Rm::Rne), out(max, NX));
    }

    #[test]
    fn ties_in_every_rounding_mode() {
        let one = d(1.0);
        let ulp = f64::EPSILON; // 2^-52
        let up = d(1.0 + ulp);
        let half_ulp = d(ulp / 2.0);
        let expect = [
            (Rm::Rne, one),
            (Rm::Rtz, one),
            (Rm::Rdn, one),
            (Rm::Rup, up),
            (Rm::Rmm, up),
        ];
        for (rm, r) in expect {
            assert_eq!(add(Prec::D, one, half_ulp, rm), out(r, NX), "{rm:?}");
            // Negated operands: RDN and RUP swap.
            let r_neg = match rm {
                Rm::Rdn => d(-1.0 - ulp),
                Rm::Rup => d(-1.0),
                _ => r ^ (1 << 63),
            };
            assert_eq!(
                add(Prec::D, d(-1.0), d(-ulp / 2.0), rm),
                out(r_neg, NX),
                "{rm:?}"
            );
        }
        // A tie on an odd significand rounds up under RNE too.
        assert_eq!(
            add(Prec::D, up, half_ulp, Rm::Rne),
            out(d(1.0 + 2.0 * ulp), NX)
        );
        // Single precision: 2^24 + 1 is a tie between 2^24 and 2^24 + 2.
        let big = s(16_777_216.0);
        assert_eq!(add(Prec::S, big, s(1.0), Rm::Rne), out(big, NX));
        assert_eq!(add(Prec::S, big, s(1.0), Rm::Rmm), out(s(16_777_218.0), NX));
        assert_eq!(add(Prec::S, big, s(1.0), Rm::Rup), out(s(16_777_218.0), NX));
    }

    #[test]
    fn underflow_detected_after_rounding() {
        let min_normal = d(f64::MIN_POSITIVE); // 2^-1022
        let a = d(-(2f64.powi(-538)));
        let b = d(2f64.powi(-538));
        // Exact value 2^-1022 - 2^-1076 lies below the smallest normal, but rounded to
        // 53 bits with an unbounded exponent (RNE) it is 2^-1022: not tiny after
        // rounding, so NX alone (before-rounding detection would add UF).
        assert_eq!(
            fma(Prec::D, a, b, min_normal, Rm::Rne, false, false),
            out(min_normal, NX)
        );
        // Rounded towards zero it stays below 2^-1022: tiny and inexact.
        assert_eq!(
            fma(Prec::D, a, b, min_normal, Rm::Rtz, false, false),
            out(0x000f_ffff_ffff_ffff, UF | NX)
        );
        // Exact subnormal results raise nothing.
        assert_eq!(
            mul(Prec::D, min_normal, d(0.5), Rm::Rne),
            out(0x0008_0000_0000_0000, 0)
        );
        // Half the smallest subnormal: a tie that rounds to even (zero), or away.
        assert_eq!(
            mul(Prec::D, MIN_SUB_D, d(0.5), Rm::Rne),
            out(d(0.0), UF | NX)
        );
        assert_eq!(
            mul(Prec::D, MIN_SUB_D, d(0.5), Rm::Rmm),
            out(MIN_SUB_D, UF | NX)
        );
        assert_eq!(
            mul(Prec::D, MIN_SUB_D, d(0.5), Rm::Rup),
            out(MIN_SUB_D, UF | NX)
        );
        // Subnormal operands are not flushed.
        assert_eq!(add(Prec::D, MIN_SUB_D, MIN_SUB_D, Rm::Rne), out(2, 0));
        assert_eq!(add(Prec::S, box_s(1), box_s(1), Rm::Rne), out(box_s(2), 0));
    }

    #[test]
    fn fused_multiply_add_variants() {
        let (a, b, c) = (d(2.0), d(3.0), d(1.0));
        let f = |np, na| fma(Prec::D, a, b, c, Rm::Rne, np, na);
        assert_eq!(f(false, false), out(d(7.0), 0)); // fmadd
        assert_eq!(f(false, true), out(d(5.0), 0)); // fmsub
        assert_eq!(f(true, false), out(d(-5.0), 0)); // fnmsub
        assert_eq!(f(true, true), out(d(-7.0), 0)); // fnmadd
        let fs = fma(Prec::S, s(2.0), s(3.0), s(1.0), Rm::Rne, true, true);
        assert_eq!(fs, out(s(-7.0), 0));
        // fnmadd is (-(a*b)) - c, so an exact zero is +0 unless rounding down.
        let z = |rm| fma(Prec::D, d(1.0), d(1.0), d(-1.0), rm, true, true);
        assert_eq!(z(Rm::Rne), out(d(0.0), 0));
        assert_eq!(z(Rm::Rdn), out(d(-0.0), 0));
        // One rounding: (1 + 2^-30)(1 - 2^-30) - 1 = -2^-60 exactly.
        let e = 2f64.powi(-30);
        assert_eq!(
            fma(
                Prec::D,
                d(1.0 + e),
                d(1.0 - e),
                d(-1.0),
                Rm::Rne,
                false,
                false
            ),
            out(d(-(2f64.powi(-60))), 0)
        );
        // inf * 0 raises NV even with a quiet NaN addend.
        let inf = d(f64::INFINITY);
        for (np, na) in [(false, false), (true, true)] {
            assert_eq!(
                fma(Prec::D, inf, d(0.0), QNAN_D_PAYLOAD, Rm::Rne, np, na),
                out(QNAN_D, NV)
            );
        }
        assert_eq!(
            fma(
                Prec::D,
                d(1.0),
                d(1.0),
                QNAN_D_PAYLOAD,
                Rm::Rne,
                false,
                false
            ),
            out(QNAN_D, 0)
        );
        assert_eq!(
            fma(Prec::D, d(1.0), d(1.0), SNAN_D, Rm::Rne, false, true),
            out(QNAN_D, NV)
        );
        assert_eq!(
            fma(
                Prec::D,
                inf,
                d(1.0),
                d(f64::NEG_INFINITY),
                Rm::Rne,
                false,
                false
            ),
            out(QNAN_D, NV)
        );
        assert_eq!(
            fma(Prec::S, BADBOX_ONE, s(1.0), s(1.0), Rm::Rne, false, false),
            out(CNAN_S, 0)
        );
    }

    #[test]
    fn min_max_number() {
        let (pz, nz) = (d(0.0), d(-0.0));
        assert_eq!(min(Prec::D, nz, pz), out(nz, 0));
        assert_eq!(min(Prec::D, pz, nz), out(nz, 0));
        assert_eq!(max(Prec::D, nz, pz), out(pz, 0));
        assert_eq!(max(Prec::D, pz, nz), out(pz, 0));
        assert_eq!(min(Prec::S, s(0.0), s(-0.0)), out(s(-0.0), 0));
        assert_eq!(max(Prec::S, s(-0.0), s(0.0)), out(s(0.0), 0));
        assert_eq!(min(Prec::D, d(1.0), d(2.0)), out(d(1.0), 0));
        assert_eq!(max(Prec::D, d(1.0), d(2.0)), out(d(2.0), 0));
        assert_eq!(
            min(Prec::D, d(f64::NEG_INFINITY), d(-5.0)).bits,
            d(f64::NEG_INFINITY)
        );
        assert_eq!(max(Prec::S, s(-3.0), s(-4.0)), out(s(-3.0), 0));
        // One NaN: the other operand; NV only for a signalling NaN.
        assert_eq!(min(Prec::D, SNAN_D, d(1.0)), out(d(1.0), NV));
        assert_eq!(min(Prec::D, d(1.0), SNAN_D), out(d(1.0), NV));
        assert_eq!(max(Prec::D, QNAN_D_PAYLOAD, d(1.0)), out(d(1.0), 0));
        assert_eq!(min(Prec::S, SNAN_S, s(1.0)), out(s(1.0), NV));
        assert_eq!(max(Prec::S, s(-1.0), QNAN_S_PAYLOAD), out(s(-1.0), 0));
        // Two NaNs: the canonical NaN, not a payload.
        assert_eq!(min(Prec::D, QNAN_D_PAYLOAD, QNAN_D_PAYLOAD), out(QNAN_D, 0));
        assert_eq!(max(Prec::D, SNAN_D, QNAN_D_PAYLOAD), out(QNAN_D, NV));
        assert_eq!(min(Prec::S, QNAN_S_PAYLOAD, SNAN_S), out(CNAN_S, NV));
        // Improperly boxed operands are quiet NaNs.
        assert_eq!(min(Prec::S, BADBOX_ONE, s(2.0)), out(s(2.0), 0));
        assert_eq!(max(Prec::S, BADBOX_ONE, BADBOX_ONE), out(CNAN_S, 0));
    }

    #[test]
    fn zfa_min_max_propagate_nan() {
        assert_eq!(minm(Prec::D, QNAN_D_PAYLOAD, d(1.0)), out(QNAN_D, 0));
        assert_eq!(maxm(Prec::D, d(1.0), SNAN_D), out(QNAN_D, NV));
        assert_eq!(minm(Prec::S, s(1.0), QNAN_S_PAYLOAD), out(CNAN_S, 0));
        assert_eq!(maxm(Prec::S, SNAN_S, s(1.0)), out(CNAN_S, NV));
        assert_eq!(minm(Prec::S, BADBOX_ONE, s(1.0)), out(CNAN_S, 0));
        assert_eq!(minm(Prec::D, d(-0.0), d(0.0)), out(d(-0.0), 0));
        assert_eq!(maxm(Prec::D, d(-0.0), d(0.0)), out(d(0.0), 0));
        assert_eq!(maxm(Prec::D, d(1.0), d(2.0)), out(d(2.0), 0));
        assert_eq!(minm(Prec::S, s(1.0), s(2.0)), out(s(1.0), 0));
    }

    #[test]
    fn sign_injection() {
        assert_eq!(sgnj(Prec::D, d(1.0), d(-2.0)), d(-1.0));
        assert_eq!(sgnjn(Prec::D, d(1.0), d(-2.0)), d(1.0));
        assert_eq!(sgnjn(Prec::D, d(1.0), d(1.0)), d(-1.0));
        assert_eq!(sgnjx(Prec::D, d(-1.0), d(-2.0)), d(1.0));
        assert_eq!(sgnjx(Prec::D, d(-1.0), d(2.0)), d(-1.0));
        assert_eq!(sgnj(Prec::S, s(3.0), s(-0.0)), s(-3.0));
        assert_eq!(sgnjx(Prec::S, s(-3.0), s(-3.0)), s(3.0));
        // Payloads pass through, signalling NaNs stay signalling, no flags exist.
        assert_eq!(sgnjn(Prec::D, SNAN_D, SNAN_D), SNAN_D | (1 << 63));
        assert_eq!(
            sgnj(Prec::S, QNAN_S_PAYLOAD, s(-1.0)),
            QNAN_S_PAYLOAD | (1 << 31)
        );
        // Improperly boxed operands read as the canonical NaN.
        assert_eq!(sgnjn(Prec::S, BADBOX_ONE, s(1.0)), box_s(0xffc0_0000));
        assert_eq!(sgnj(Prec::S, s(-1.0), BADBOX_ONE), s(1.0));
    }

    #[test]
    fn compares() {
        let (qn, sn) = (QNAN_D_PAYLOAD, SNAN_D);
        assert_eq!(eq(Prec::D, d(1.0), d(1.0)), out(1, 0));
        assert_eq!(eq(Prec::D, d(-0.0), d(0.0)), out(1, 0));
        assert_eq!(eq(Prec::D, qn, d(1.0)), out(0, 0));
        assert_eq!(eq(Prec::D, qn, qn), out(0, 0));
        assert_eq!(eq(Prec::D, sn, d(1.0)), out(0, NV));
        assert_eq!(lt(Prec::D, d(1.0), d(2.0)), out(1, 0));
        assert_eq!(lt(Prec::D, d(2.0), d(1.0)), out(0, 0));
        assert_eq!(lt(Prec::D, d(-0.0), d(0.0)), out(0, 0));
        assert_eq!(lt(Prec::D, qn, d(1.0)), out(0, NV));
        assert_eq!(le(Prec::D, d(-0.0), d(0.0)), out(1, 0));
        assert_eq!(le(Prec::D, d(1.0), qn), out(0, NV));
        assert_eq!(ltq(Prec::D, qn, d(1.0)), out(0, 0));
        assert_eq!(ltq(Prec::D, sn, d(1.0)), out(0, NV));
        assert_eq!(ltq(Prec::D, d(1.0), d(2.0)), out(1, 0));
        assert_eq!(leq(Prec::D, d(1.0), d(1.0)), out(1, 0));
        assert_eq!(leq(Prec::D, d(1.0), qn), out(0, 0));
        assert_eq!(leq(Prec::D, d(1.0), sn), out(0, NV));
        assert_eq!(lt(Prec::S, s(-1.0), s(1.0)), out(1, 0));
        assert_eq!(eq(Prec::S, SNAN_S, s(1.0)), out(0, NV));
        // An improperly boxed operand is a quiet NaN.
        assert_eq!(eq(Prec::S, BADBOX_ONE, s(1.0)), out(0, 0));
        assert_eq!(le(Prec::S, BADBOX_ONE, s(1.0)), out(0, NV));
        assert_eq!(leq(Prec::S, BADBOX_ONE, s(1.0)), out(0, 0));
    }

    #[test]
    fn classify_every_class() {
        let cases_d = [
            (d(f64::NEG_INFINITY), 0),
            (d(-1.0), 1),
            (d(-f64::MIN_POSITIVE), 1),
            (MIN_SUB_D | (1 << 63), 2),
            (d(-0.0), 3),
            (d(0.0), 4),
            (0x000f_ffff_ffff_ffff, 5),
            (d(f64::MAX), 6),
            (d(f64::INFINITY), 7),
            (SNAN_D, 8),
            (SNAN_D | (1 << 63), 8),
            (QNAN_D_PAYLOAD, 9),
            (0xfff8_0000_0000_0000, 9),
        ];
        for (v, bit) in cases_d {
            assert_eq!(classify(Prec::D, v), 1 << bit, "{v:#x}");
        }
        let cases_s = [
            (s(f32::NEG_INFINITY), 0),
            (s(-2.5), 1),
            (box_s(0x8000_0001), 2),
            (s(-0.0), 3),
            (s(0.0), 4),
            (box_s(0x007f_ffff), 5),
            (s(f32::MIN_POSITIVE), 6),
            (s(f32::INFINITY), 7),
            (SNAN_S, 8),
            (QNAN_S_PAYLOAD, 9),
            (BADBOX_ONE, 9),
        ];
        for (v, bit) in cases_s {
            assert_eq!(classify(Prec::S, v), 1 << bit, "{v:#x}");
        }
    }

    /// Sign-extends a 32-bit integer result as RV64 writes it.
    fn sx(v: i32) -> u64 {
        v as i64 as u64
    }

    #[test]
    fn to_int_saturation_table() {
        let nan_inputs = [QNAN_D_PAYLOAD, SNAN_D, 0xfff8_0000_0000_0000];
        for nan in nan_inputs {
            // Unpriv spec, conversion table: NaN converts like +inf, to the maximum.
            assert_eq!(
                to_int(Prec::D, nan, Rm::Rne, IntKind::W),
                out(sx(i32::MAX), NV)
            );
            assert_eq!(
                to_int(Prec::D, nan, Rm::Rne, IntKind::Wu),
                out(u64::MAX, NV)
            );
            assert_eq!(
                to_int(Prec::D, nan, Rm::Rne, IntKind::L),
                out(i64::MAX as u64, NV)
            );
            assert_eq!(
                to_int(Prec::D, nan, Rm::Rne, IntKind::Lu),
                out(u64::MAX, NV)
            );
        }
        let inf = d(f64::INFINITY);
        let ninf = d(f64::NEG_INFINITY);
        assert_eq!(
            to_int(Prec::D, inf, Rm::Rne, IntKind::W),
            out(sx(i32::MAX), NV)
        );
        assert_eq!(
            to_int(Prec::D, ninf, Rm::Rne, IntKind::W),
            out(sx(i32::MIN), NV)
        );
        assert_eq!(
            to_int(Prec::D, inf, Rm::Rne, IntKind::Wu),
            out(u64::MAX, NV)
        );
        assert_eq!(to_int(Prec::D, ninf, Rm::Rne, IntKind::Wu), out(0, NV));
        assert_eq!(
            to_int(Prec::D, inf, Rm::Rne, IntKind::L),
            out(i64::MAX as u64, NV)
        );
        assert_eq!(
            to_int(Prec::D, ninf, Rm::Rne, IntKind::L),
            out(i64::MIN as u64, NV)
        );
        assert_eq!(to_int(Prec::D, ninf, Rm::Rne, IntKind::Lu), out(0, NV));
        assert_eq!(
            to_int(Prec::S, s(f32::INFINITY), Rm::Rne, IntKind::Lu),
            out(u64::MAX, NV)
        );
        // Range edges.
        let two31 = d(2147483648.0);
        assert_eq!(
            to_int(Prec::D, two31, Rm::Rtz, IntKind::W),
            out(sx(i32::MAX), NV)
        );
        assert_eq!(
            to_int(Prec::D, d(-2147483648.0), Rm::Rtz, IntKind::W),
            out(0xffff_ffff_8000_0000, 0)
        );
        assert_eq!(
            to_int(Prec::D, d(-2147483648.5), Rm::Rtz, IntKind::W),
            out(0xffff_ffff_8000_0000, NX)
        );
        assert_eq!(
            to_int(Prec::D, d(-2147483649.0), Rm::Rtz, IntKind::W),
            out(0xffff_ffff_8000_0000, NV)
        );
        assert_eq!(
            to_int(Prec::D, d(2147483647.0), Rm::Rne, IntKind::W),
            out(0x7fff_ffff, 0)
        );
        assert_eq!(
            to_int(Prec::D, d(2147483647.5), Rm::Rne, IntKind::W),
            out(0x7fff_ffff, NV)
        );
        // Unsigned 32-bit results are sign-extended too.
        assert_eq!(
            to_int(Prec::D, d(3e9), Rm::Rne, IntKind::Wu),
            out(0xffff_ffff_b2d0_5e00, 0)
        );
        assert_eq!(
            to_int(Prec::D, d(4294967296.0), Rm::Rne, IntKind::Wu),
            out(u64::MAX, NV)
        );
        // Negative to unsigned: 0 with NV, unless it rounds to zero.
        assert_eq!(to_int(Prec::D, d(-1.0), Rm::Rtz, IntKind::Wu), out(0, NV));
        assert_eq!(to_int(Prec::D, d(-0.5), Rm::Rtz, IntKind::Wu), out(0, NX));
        assert_eq!(to_int(Prec::D, d(-0.5), Rm::Rne, IntKind::Wu), out(0, NX));
        assert_eq!(to_int(Prec::D, d(-0.5), Rm::Rdn, IntKind::Wu), out(0, NV));
        assert_eq!(to_int(Prec::S, s(-0.5), Rm::Rtz, IntKind::Lu), out(0, NX));
        assert_eq!(to_int(Prec::D, d(-0.0), Rm::Rne, IntKind::Lu), out(0, 0));
        assert_eq!(
            to_int(Prec::D, d(18446744073709551616.0), Rm::Rne, IntKind::Lu),
            out(u64::MAX, NV)
        );
        assert_eq!(
            to_int(Prec::D, d(9223372036854775808.0), Rm::Rne, IntKind::L),
            out(i64::MAX as u64, NV)
        );
        assert_eq!(
            to_int(Prec::D, d(-9223372036854775808.0), Rm::Rne, IntKind::L),
            out(i64::MIN as u64, 0)
        );
        assert_eq!(
            to_int(Prec::S, s(1e10), Rm::Rne, IntKind::L),
            out(10_000_000_000, 0)
        );
        assert_eq!(
            to_int(Prec::S, BADBOX_ONE, Rm::Rne, IntKind::W),
            out(sx(i32::MAX), NV)
        );
    }

    #[test]
    fn to_int_rounding_modes() {
        let expect = [
            (Rm::Rne, 2, -2),
            (Rm::Rtz, 2, -2),
            (Rm::Rdn, 2, -3),
            (Rm::Rup, 3, -2),
            (Rm::Rmm, 3, -3),
        ];
        for (rm, pos, neg) in expect {
            for kind in [IntKind::W, IntKind::L] {
                assert_eq!(
                    to_int(Prec::D, d(2.5), rm, kind),
                    out(pos as u64, NX),
                    "{rm:?}"
                );
                assert_eq!(
                    to_int(Prec::S, s(-2.5), rm, kind),
                    out(neg as i64 as u64, NX),
                    "{rm:?}"
                );
            }
        }
        assert_eq!(to_int(Prec::D, d(3.5), Rm::Rne, IntKind::W), out(4, NX));
        assert_eq!(to_int(Prec::D, d(7.0), Rm::Rup, IntKind::Lu), out(7, 0));
    }

    #[test]
    fn from_int_conversions() {
        let x = 0x1234_5678_ffff_ffff_u64; // low word is -1 / 2^32-1
        assert_eq!(from_int(Prec::D, x, Rm::Rne, IntKind::W), out(d(-1.0), 0));
        assert_eq!(
            from_int(Prec::D, x, Rm::Rne, IntKind::Wu),
            out(d(4294967295.0), 0)
        );
        assert_eq!(
            from_int(Prec::D, u64::MAX, Rm::Rne, IntKind::L),
            out(d(-1.0), 0)
        );
        assert_eq!(
            from_int(Prec::D, u64::MAX, Rm::Rne, IntKind::Lu),
            out(d(18446744073709551616.0), NX)
        );
        assert_eq!(
            from_int(Prec::D, u64::MAX, Rm::Rtz, IntKind::Lu),
            out(0x43ef_ffff_ffff_ffff, NX)
        );
        assert_eq!(
            from_int(Prec::S, 16_777_217, Rm::Rne, IntKind::W),
            out(s(16_777_216.0), NX)
        );
        assert_eq!(
            from_int(Prec::S, 16_777_217, Rm::Rup, IntKind::W),
            out(s(16_777_218.0), NX)
        );
        assert_eq!(
            from_int(Prec::S, 16_777_217, Rm::Rmm, IntKind::L),
            out(s(16_777_218.0), NX)
        );
        assert_eq!(from_int(Prec::S, 0, Rm::Rne, IntKind::L), out(s(0.0), 0));
        assert_eq!(
            from_int(Prec::S, 0x8000_0000, Rm::Rne, IntKind::W),
            out(s(-2147483648.0), 0)
        );
    }

    #[test]
    fn precision_conversions() {
        let third = 1.0f64 / 3.0;
        assert_eq!(cvt_s_d(d(third), Rm::Rne), out(s(third as f32), NX));
        assert_eq!(cvt_s_d(d(1.5), Rm::Rne), out(s(1.5), 0));
        assert_eq!(
            cvt_s_d(d(f64::MAX), Rm::Rne),
            out(s(f32::INFINITY), OF | NX)
        );
        assert_eq!(cvt_s_d(d(f64::MAX), Rm::Rtz), out(s(f32::MAX), OF | NX));
        assert_eq!(cvt_s_d(d(-f64::MAX), Rm::Rup), out(s(-f32::MAX), OF | NX));
        assert_eq!(cvt_s_d(d(1e-40), Rm::Rne), out(s(1e-40f32), UF | NX));
        assert_eq!(cvt_s_d(d(1e-300), Rm::Rup), out(box_s(1), UF | NX));
        assert_eq!(cvt_s_d(QNAN_D_PAYLOAD, Rm::Rne), out(CNAN_S, 0));
        assert_eq!(cvt_s_d(SNAN_D, Rm::Rne), out(CNAN_S, NV));
        assert_eq!(cvt_d_s(s(0.1), Rm::Rne), out(d(f64::from(0.1f32)), 0));
        assert_eq!(
            cvt_d_s(box_s(1), Rm::Rne),
            out(d(f64::from(f32::from_bits(1))), 0)
        );
        assert_eq!(
            cvt_d_s(s(f32::NEG_INFINITY), Rm::Rne),
            out(d(f64::NEG_INFINITY), 0)
        );
        assert_eq!(cvt_d_s(QNAN_S_PAYLOAD, Rm::Rne), out(QNAN_D, 0));
        assert_eq!(cvt_d_s(SNAN_S, Rm::Rne), out(QNAN_D, NV));
        assert_eq!(cvt_d_s(BADBOX_ONE, Rm::Rne), out(QNAN_D, 0));
    }

    #[test]
    fn round_to_integral() {
        let expect = [
            (Rm::Rne, 2.0, -2.0),
            (Rm::Rtz, 2.0, -2.0),
            (Rm::Rdn, 2.0, -3.0),
            (Rm::Rup, 3.0, -2.0),
            (Rm::Rmm, 3.0, -3.0),
        ];
        for (rm, pos, neg) in expect {
            assert_eq!(round(Prec::D, d(2.5), rm, false), out(d(pos), 0), "{rm:?}");
            assert_eq!(round(Prec::D, d(2.5), rm, true), out(d(pos), NX), "{rm:?}");
            assert_eq!(
                round(Prec::S, s(-2.5), rm, true),
                out(s(neg as f32), NX),
                "{rm:?}"
            );
        }
        assert_eq!(round(Prec::D, d(3.0), Rm::Rne, true), out(d(3.0), 0));
        // The sign of a zero result is kept.
        assert_eq!(round(Prec::D, d(-0.3), Rm::Rne, true), out(d(-0.0), NX));
        assert_eq!(round(Prec::D, d(-0.3), Rm::Rdn, true), out(d(-1.0), NX));
        assert_eq!(round(Prec::D, d(0.3), Rm::Rup, false), out(d(1.0), 0));
        assert_eq!(round(Prec::D, MIN_SUB_D, Rm::Rne, true), out(d(0.0), NX));
        for v in [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, 2f64.powi(60)] {
            assert_eq!(round(Prec::D, d(v), Rm::Rup, true), out(d(v), 0));
        }
        assert_eq!(
            round(Prec::S, s(8388609.0), Rm::Rne, true),
            out(s(8388609.0), 0)
        );
        assert_eq!(
            round(Prec::D, QNAN_D_PAYLOAD, Rm::Rne, true),
            out(QNAN_D, 0)
        );
        assert_eq!(round(Prec::D, SNAN_D, Rm::Rne, false), out(QNAN_D, NV));
        assert_eq!(round(Prec::S, SNAN_S, Rm::Rne, true), out(CNAN_S, NV));
        assert_eq!(round(Prec::S, BADBOX_ONE, Rm::Rne, true), out(CNAN_S, 0));
    }

    #[test]
    fn fcvtmod_wraps_like_javascript() {
        assert_eq!(fcvtmod_w_d(d(1.5)), out(1, NX));
        assert_eq!(fcvtmod_w_d(d(-1.5)), out(u64::MAX, NX));
        assert_eq!(fcvtmod_w_d(d(-0.0)), out(0, 0));
        assert_eq!(fcvtmod_w_d(d(0.75)), out(0, NX));
        assert_eq!(fcvtmod_w_d(MIN_SUB_D), out(0, NX));
        assert_eq!(fcvtmod_w_d(d(2147483647.0)), out(0x7fff_ffff, 0));
        assert_eq!(fcvtmod_w_d(d(-2147483648.0)), out(0xffff_ffff_8000_0000, 0));
        // Out of range: the low 32 bits, with NV as fcvt.w.d raises (no NX).
        assert_eq!(fcvtmod_w_d(d(2147483648.0)), out(0xffff_ffff_8000_0000, NV));
        assert_eq!(fcvtmod_w_d(d(4294967301.0)), out(5, NV));
        assert_eq!(fcvtmod_w_d(d(-4294967301.0)), out(sx(-5), NV));
        assert_eq!(fcvtmod_w_d(d(4294967301.5)), out(5, NV));
        assert_eq!(
            fcvtmod_w_d(d(4294967296.0 * 3.0 + 0x8000_0007u32 as f64)),
            out(0xffff_ffff_8000_0007, NV)
        );
        // (2^52 + 3) * 2^10: bits above the significand come from the shift.
        assert_eq!(
            fcvtmod_w_d(d((4503599627370496.0 + 3.0) * 1024.0)),
            out(3072, NV)
        );
        assert_eq!(fcvtmod_w_d(d(1e300)), out(0, NV));
        assert_eq!(
            fcvtmod_w_d(d(2f64.powi(63) + 2f64.powi(40) * 3.0)),
            out(0, NV)
        );
        assert_eq!(fcvtmod_w_d(d(f64::INFINITY)), out(0, NV));
        assert_eq!(fcvtmod_w_d(d(f64::NEG_INFINITY)), out(0, NV));
        assert_eq!(fcvtmod_w_d(QNAN_D), out(0, NV));
        assert_eq!(fcvtmod_w_d(SNAN_D), out(0, NV));
        // Agrees with a plain modular reduction over a range of integral values.
        let mut v = -1e12f64;
        while v < 1e12 {
            let expect = (v as i64) as i32;
            assert_eq!(fcvtmod_w_d(d(v)).bits, sx(expect), "{v}");
            v += 987_654_321.25;
        }
    }

    #[test]
    fn fli_matches_table() {
        // Values from Zfa's FLI.S table, indices 2..=29.
        let values = [
            2f64.powi(-16),
            2f64.powi(-15),
            2f64.powi(-8),
            2f64.powi(-7),
            0.0625,
            0.125,
            0.25,
            0.3125,
            0.375,
            0.4375,
            0.5,
            0.625,
            0.75,
            0.875,
            1.0,
            1.25,
            1.5,
            1.75,
            2.0,
            2.5,
            3.0,
            4.0,
            8.0,
            16.0,
            128.0,
            256.0,
            32768.0,
            65536.0,
        ];
        for (i, v) in values.iter().enumerate() {
            let idx = (i + 2) as u8;
            assert_eq!(fli(Prec::D, idx), d(*v), "{idx}");
            assert_eq!(fli(Prec::S, idx), s(*v as f32), "{idx}");
        }
        assert_eq!(fli(Prec::S, 0), box_s(0xbf80_0000));
        assert_eq!(fli(Prec::S, 1), box_s(0x0080_0000));
        assert_eq!(fli(Prec::S, 2), box_s(0x3780_0000));
        assert_eq!(fli(Prec::S, 9), box_s(0x3ea0_0000));
        assert_eq!(fli(Prec::S, 30), box_s(0x7f80_0000));
        assert_eq!(fli(Prec::S, 31), CNAN_S);
        assert_eq!(fli(Prec::D, 0), d(-1.0));
        assert_eq!(fli(Prec::D, 1), d(f64::MIN_POSITIVE));
        assert_eq!(fli(Prec::D, 30), d(f64::INFINITY));
        assert_eq!(fli(Prec::D, 31), QNAN_D);
        // Only the 5-bit field is used.
        assert_eq!(fli(Prec::D, 32 + 16), d(1.0));
        assert_eq!(fli(Prec::S, 255), CNAN_S);
    }

    /// xorshift64*: deterministic operands without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// A double biased towards interesting values: nearby exponents (so sums
        /// cancel and products stay in range), extremes, subnormals and raw bits.
        fn f64_bits(&mut self) -> u64 {
            let r = self.next();
            let sign = r & (1 << 63);
            let frac = self.next() & ((1 << 52) - 1);
            let exp = match r % 8 {
                0 => self.next() % 2048,
                1 => 0,
                2 => 2046 - (self.next() % 4),
                3 => 1 + (self.next() % 4),
                _ => 1023 - 8 + (self.next() % 16),
            };
            if r % 16 == 15 {
                self.next()
            } else {
                sign | (exp << 52) | frac
            }
        }

        fn f32_bits(&mut self) -> u32 {
            let r = self.next();
            let sign = (r as u32) & (1 << 31);
            let frac = (self.next() as u32) & ((1 << 23) - 1);
            let exp = match r % 8 {
                0 => (self.next() % 256) as u32,
                1 => 0,
                2 => 254 - (self.next() % 4) as u32,
                3 => 1 + (self.next() % 4) as u32,
                _ => 127 - 8 + (self.next() % 16) as u32,
            };
            if r % 16 == 15 {
                self.next() as u32
            } else {
                sign | (exp << 23) | frac
            }
        }
    }

    /// Our result must equal the host's bit for bit, or both must be NaN with ours
    /// canonical.
    fn check_d(what: &str, ours: FpOut, host: f64, ops: &[u64]) {
        if host.is_nan() {
            assert_eq!(ours.bits, QNAN_D, "{what} {ops:x?}");
        } else {
            assert_eq!(ours.bits, host.to_bits(), "{what} {ops:x?}");
        }
    }

    fn check_s(what: &str, ours: FpOut, host: f32, ops: &[u32]) {
        if host.is_nan() {
            assert_eq!(ours.bits, CNAN_S, "{what} {ops:x?}");
        } else {
            assert_eq!(ours.bits, s(host), "{what} {ops:x?}");
        }
    }

    #[test]
    fn differential_against_host_f64() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let (a, b, c) = (rng.f64_bits(), rng.f64_bits(), rng.f64_bits());
            let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
            let ops = [a, b, c];
            check_d("add", add(Prec::D, a, b, Rm::Rne), x + y, &ops);
            check_d("sub", sub(Prec::D, a, b, Rm::Rne), x - y, &ops);
            check_d("mul", mul(Prec::D, a, b, Rm::Rne), x * y, &ops);
            check_d("div", div(Prec::D, a, b, Rm::Rne), x / y, &ops);
            check_d("sqrt", sqrt(Prec::D, a, Rm::Rne), x.sqrt(), &ops);
            check_d(
                "fma",
                fma(Prec::D, a, b, c, Rm::Rne, false, false),
                x.mul_add(y, z),
                &ops,
            );
            check_d(
                "fnmadd",
                fma(Prec::D, a, b, c, Rm::Rne, true, true),
                (-x).mul_add(y, -z),
                &ops,
            );
            check_s("cvt.s.d", cvt_s_d(a, Rm::Rne), x as f32, &[a as u32]);
            // Rust's `as` truncates and saturates like RTZ fcvt, except NaN gives 0.
            if !x.is_nan() {
                assert_eq!(
                    to_int(Prec::D, a, Rm::Rtz, IntKind::L).bits,
                    x as i64 as u64
                );
                assert_eq!(to_int(Prec::D, a, Rm::Rtz, IntKind::Lu).bits, x as u64);
                assert_eq!(to_int(Prec::D, a, Rm::Rtz, IntKind::W).bits, sx(x as i32));
                assert_eq!(
                    to_int(Prec::D, a, Rm::Rtz, IntKind::Wu).bits,
                    sx(x as u32 as i32)
                );
            }
            let i = rng.next();
            check_d(
                "fcvt.d.l",
                from_int(Prec::D, i, Rm::Rne, IntKind::L),
                i as i64 as f64,
                &[i],
            );
            check_d(
                "fcvt.d.lu",
                from_int(Prec::D, i, Rm::Rne, IntKind::Lu),
                i as f64,
                &[i],
            );
        }
    }

    #[test]
    fn differential_against_host_f32() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for _ in 0..50_000 {
            let (a, b, c) = (rng.f32_bits(), rng.f32_bits(), rng.f32_bits());
            let (x, y, z) = (f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
            let (ra, rb, rc) = (box_s(a), box_s(b), box_s(c));
            let ops = [a, b, c];
            check_s("add", add(Prec::S, ra, rb, Rm::Rne), x + y, &ops);
            check_s("sub", sub(Prec::S, ra, rb, Rm::Rne), x - y, &ops);
            check_s("mul", mul(Prec::S, ra, rb, Rm::Rne), x * y, &ops);
            check_s("div", div(Prec::S, ra, rb, Rm::Rne), x / y, &ops);
            check_s("sqrt", sqrt(Prec::S, ra, Rm::Rne), x.sqrt(), &ops);
            check_s(
                "fma",
                fma(Prec::S, ra, rb, rc, Rm::Rne, false, false),
                x.mul_add(y, z),
                &ops,
            );
            check_s(
                "fmsub",
                fma(Prec::S, ra, rb, rc, Rm::Rne, false, true),
                x.mul_add(y, -z),
                &ops,
            );
            check_d(
                "cvt.d.s",
                cvt_d_s(ra, Rm::Rne),
                f64::from(x),
                &[u64::from(a)],
            );
            if !x.is_nan() {
                assert_eq!(to_int(Prec::S, ra, Rm::Rtz, IntKind::W).bits, sx(x as i32));
                assert_eq!(to_int(Prec::S, ra, Rm::Rtz, IntKind::Lu).bits, x as u64);
            }
            let i = rng.next();
            check_s(
                "fcvt.s.l",
                from_int(Prec::S, i, Rm::Rne, IntKind::L),
                i as i64 as f32,
                &[i as u32],
            );
            check_s(
                "fcvt.s.wu",
                from_int(Prec::S, i, Rm::Rne, IntKind::Wu),
                i as u32 as f32,
                &[i as u32],
            );
        }
    }
}
