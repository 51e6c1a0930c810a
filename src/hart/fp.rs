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
pub enum Prec {
    /// Single precision (F), NaN-boxed in the 64-bit f registers.
    S,
    /// Double precision (D).
    D,
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
pub enum IntKind {
    /// Signed 32-bit (`.w`).
    W,
    /// Unsigned 32-bit (`.wu`).
    Wu,
    /// Signed 64-bit (`.l`).
    L,
    /// Unsigned 64-bit (`.lu`).
    Lu,
}

/// Result of an operation: the destination value and the fflags it raised.
///
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
