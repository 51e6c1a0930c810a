//! F and D in compiled code: all floating-point lowering lives here.
//!
//! Loads, stores, moves and sign injection are bit operations and always run inline.
//! Arithmetic, comparisons and conversions run on the host FPU when that is bit-exact
//! with RISC-V, and otherwise through the interpreter's SoftFloat semantics:
//!
//! - Only round-to-nearest-even: a static `rm` of RNE, or `dyn` with `frm` = RNE
//!   (checked at run time); round toward zero too for conversions to integers
//!   (`fcvt.w.d a0, fa0, rtz`, what C casts compile to). The host FPU rounds to nearest
//!   even, the IEEE default, and truncating conversions ignore the mode.
//! - Only results that cannot raise a flag other than NX: a finite result, not tiny
//!   unless exact, from operands that are not NaN (a NaN result needs RISC-V's
//!   canonical NaN and sets NV or not by the operands' kinds). Anything else (NaN,
//!   infinity, overflow, underflow, division by zero, out-of-range conversions) is left
//!   to the slow path.
//! - NX comes from the exact error of the operation, computed on the host (IEEE
//!   arithmetic makes it exact where the fast path is taken): TwoSum for addition and
//!   subtraction, a fused multiply-add for the error of a product, the remainder of a
//!   quotient and of a square root, the round trip of a conversion.
//!
//! The slow path is a side exit: the registers are written back, the instruction runs
//! through `exec_one` (which takes it to the next pc), and the function returns.
//! Single-precision operands must be NaN-boxed (Unpriv spec "NaN Boxing of Narrower
//! Values"); an operand that is not takes the slow path, which reads it as the
//! canonical NaN.
//!
//! `mstatus.FS` (Priv spec 3.1.6.6): the first floating-point instruction of each
//! member checks that FS is not Off (else the slow path raises the illegal-instruction
//! exception), and the first one that writes an f register or `fflags` sets FS to
//! Dirty. f registers are read from and written to the hart on each use.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F64, I32, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value};

use super::translate::{state_flags, Tx};
use crate::arch::csr::{mstatus, num};
use crate::frontend::{Insn, Op};

/// `mstatus.FS` (Off = 0, Dirty = 3).
const FS: i64 = mstatus::FS as i64;
/// `fflags.NX`.
const NX: i64 = 1;
/// Rounding modes (Unpriv spec "Floating-Point Control and Status Register").
const RNE: u8 = 0;
const RTZ: u8 = 1;
const DYN: u8 = 7;

/// A precision: the host type and the biased-exponent field of its bits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum P {
    S,
    D,
}

impl P {
    fn int(self) -> Type {
        match self {
            P::S => I32,
            P::D => I64,
        }
    }
    fn mantissa_bits(self) -> i64 {
        match self {
            P::S => 23,
            P::D => 52,
        }
    }
    fn exp_max(self) -> i64 {
        match self {
            P::S => 0xff,
            P::D => 0x7ff,
        }
    }
    /// The smallest biased exponent at which the error of a product, quotient or
    /// square root is still representable (precision + 2 above the subnormals), so
    /// the FMA-computed error is exact.
    fn exp_margin(self) -> i64 {
        match self {
            P::S => 26,
            P::D => 55,
        }
    }
}

/// What an inline arithmetic operation is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
}

impl Tx<'_> {
    /// Translates the floating-point instruction `i` at `pc` inline, if it is one
    /// this module handles; false leaves it to `exec_one`.
    pub(super) fn fp_insn(&mut self, i: &Insn, pc: u64) -> bool {
        use Op::*;
        let (arith, p) = match i.op {
            Flw | Fld | Fsw | Fsd => {
                self.fp_guard(i, pc, matches!(i.op, Flw | Fld));
                match i.op {
                    Flw => self.fp_load(i, pc, 4),
                    Fld => self.fp_load(i, pc, 8),
                    Fsw => self.fp_store(i, pc, 4),
                    _ => self.fp_store(i, pc, 8),
                }
                return true;
            }
            FmvXW | FmvXD => {
                self.fp_guard(i, pc, false);
                let a = self.fget(i.rs1);
                let v = if i.op == FmvXW {
                    let n = self.b.ins().ireduce(I32, a);
                    self.b.ins().sextend(I64, n)
                } else {
                    a
                };
                self.set(i.rd, v);
                return true;
            }
            FmvWX | FmvDX => {
                self.fp_guard(i, pc, true);
                let x = self.get(i.rs1);
                let v = if i.op == FmvWX { self.boxed(x) } else { x };
                self.fset(i.rd, v);
                return true;
            }
            FsgnjS | FsgnjnS | FsgnjxS | FsgnjD | FsgnjnD | FsgnjxD => {
                self.sign_inject(i, pc);
                return true;
            }
            FaddS => (Arith::Add, P::S),
            FsubS => (Arith::Sub, P::S),
            FmulS => (Arith::Mul, P::S),
            FdivS => (Arith::Div, P::S),
            FsqrtS => (Arith::Sqrt, P::S),
            FaddD => (Arith::Add, P::D),
            FsubD => (Arith::Sub, P::D),
            FmulD => (Arith::Mul, P::D),
            FdivD => (Arith::Div, P::D),
            FsqrtD => (Arith::Sqrt, P::D),
            FeqS | FltS | FleS => return self.compare(i, pc, P::S),
            FeqD | FltD | FleD => return self.compare(i, pc, P::D),
            FcvtDW | FcvtDWu => return self.int_to_double(i, pc),
            FcvtWD | FcvtLD => return self.double_to_int(i, pc),
            _ => return false,
        };
        if !self.rounds_nearest_even(i, pc) {
            return false;
        }
        self.arith(i, pc, arith, p);
        true
    }

    /// The FS check of the member (see the module docs), and FS = Dirty before the
    /// first instruction of the member that writes f registers or flags.
    fn fp_guard(&mut self, i: &Insn, pc: u64, writes: bool) {
        let flags = state_flags();
        if !self.fp_checked {
            // FS on in mstatus, and with V=1 in vsstatus too.
            let ms = self
                .b
                .ins()
                .load(I64, flags, self.hart, self.layout.mstatus);
            let vs = self
                .b
                .ins()
                .load(I64, flags, self.hart, self.layout.vsstatus);
            let virt = self.b.ins().uload8(I64, flags, self.hart, self.layout.virt);
            let fs = self.b.ins().band_imm_s(ms, FS);
            let m_on = self.b.ins().icmp_imm_s(IntCC::NotEqual, fs, 0);
            let vfs = self.b.ins().band_imm_s(vs, FS);
            let v_on = self.b.ins().icmp_imm_s(IntCC::NotEqual, vfs, 0);
            let host = self.b.ins().icmp_imm_s(IntCC::Equal, virt, 0);
            let v_ok = self.b.ins().bor(v_on, host);
            let ok = self.b.ins().band(m_on, v_ok);
            self.slow_unless(ok, i, pc);
            self.fp_checked = true;
        }
        if writes && !self.fs_dirty {
            let ms = self
                .b
                .ins()
                .load(I64, flags, self.hart, self.layout.mstatus);
            let ms = self.b.ins().bor_imm_s(ms, FS);
            self.b
                .ins()
                .store(flags, ms, self.hart, self.layout.mstatus);
            // vsstatus.FS |= FS * V.
            let virt = self.b.ins().uload8(I64, flags, self.hart, self.layout.virt);
            let bits = self.b.ins().imul_imm_s(virt, FS);
            let vs = self
                .b
                .ins()
                .load(I64, flags, self.hart, self.layout.vsstatus);
            let vs = self.b.ins().bor(vs, bits);
            self.b
                .ins()
                .store(flags, vs, self.hart, self.layout.vsstatus);
            self.fs_dirty = true;
        }
    }

    /// A read of `fflags`, `frm` or `fcsr` (which FS = Off makes illegal), inline.
    pub(super) fn fp_csr_read(&mut self, i: &Insn, pc: u64) -> Option<Value> {
        let csr = i.csr();
        if !matches!(csr, num::FFLAGS | num::FRM | num::FCSR) {
            return None;
        }
        self.fp_guard(i, pc, false);
        let flags = self
            .b
            .ins()
            .uload8(I64, state_flags(), self.hart, self.layout.fflags);
        let frm = self
            .b
            .ins()
            .uload8(I64, state_flags(), self.hart, self.layout.frm);
        Some(match csr {
            num::FFLAGS => flags,
            num::FRM => frm,
            _ => {
                let hi = self.b.ins().ishl_imm_s(frm, 5);
                self.b.ins().bor(hi, flags)
            }
        })
    }

    /// Whether `i` rounds to nearest even: true for a static RNE; for `dyn`, a run-time
    /// check of `frm` (the slow path otherwise); false for other static modes.
    fn rounds_nearest_even(&mut self, i: &Insn, pc: u64) -> bool {
        match i.rm {
            RNE => {
                self.fp_guard(i, pc, true);
                true
            }
            DYN => {
                self.fp_guard(i, pc, true);
                let frm = self
                    .b
                    .ins()
                    .uload8(I64, state_flags(), self.hart, self.layout.frm);
                let rne = self.b.ins().icmp_imm_s(IntCC::Equal, frm, i64::from(RNE));
                self.slow_unless(rne, i, pc);
                true
            }
            _ => false,
        }
    }

    /// The bits of f register `r`.
    fn fget(&mut self, r: u8) -> Value {
        let off = self.layout.f + 8 * i32::from(r & 31);
        self.b.ins().load(I64, state_flags(), self.hart, off)
    }

    fn fset(&mut self, r: u8, v: Value) {
        let off = self.layout.f + 8 * i32::from(r & 31);
        self.b.ins().store(state_flags(), v, self.hart, off);
    }

    /// The low 32 bits of `v`, NaN-boxed.
    fn boxed(&mut self, v: Value) -> Value {
        let lo = self.b.ins().ireduce(I32, v);
        let lo = self.b.ins().uextend(I64, lo);
        self.b.ins().bor_imm_s(lo, -1 << 32)
    }

    /// Whether `v` is a NaN-boxed single.
    fn is_boxed(&mut self, v: Value) -> Value {
        let hi = self.b.ins().ushr_imm_s(v, 32);
        self.b.ins().icmp_imm_s(IntCC::Equal, hi, 0xffff_ffff)
    }

    /// Sets `fflags.NX` when `inexact` (an i8 boolean).
    fn accrue_nx(&mut self, inexact: Value) {
        let flags = self
            .b
            .ins()
            .uload8(I32, state_flags(), self.hart, self.layout.fflags);
        // NX is bit 0: the boolean itself.
        const _: () = assert!(NX == 1);
        let nx = self.b.ins().uextend(I32, inexact);
        let flags = self.b.ins().bor(flags, nx);
        self.b
            .ins()
            .istore8(state_flags(), flags, self.hart, self.layout.fflags);
    }

    /// `flw`/`fld` into f register `rd` (single values NaN-boxed).
    fn fp_load(&mut self, i: &Insn, pc: u64, size: u8) {
        let v = self.access_load(i, pc, size, false, true);
        let v = if size == 4 { self.boxed(v) } else { v };
        self.fset(i.rd, v);
    }

    /// `fsw`/`fsd` of f register `rs2` (its low bits for `fsw`, boxed or not).
    fn fp_store(&mut self, i: &Insn, pc: u64, size: u8) {
        let v = self.fget(i.rs2);
        self.access_store(i, pc, size, v);
    }

    /// `fsgnj`, `fsgnjn`, `fsgnjx`: the magnitude of `rs1` with a sign from `rs2`.
    fn sign_inject(&mut self, i: &Insn, pc: u64) {
        use Op::*;
        let single = matches!(i.op, FsgnjS | FsgnjnS | FsgnjxS);
        self.fp_guard(i, pc, true);
        let mut a = self.fget(i.rs1);
        let mut b = self.fget(i.rs2);
        if single {
            // An operand that is not NaN-boxed reads as the canonical NaN.
            let canon = self.b.ins().iconst(I64, 0x7fc0_0000);
            let ba = self.is_boxed(a);
            a = self.b.ins().select(ba, a, canon);
            let bb = self.is_boxed(b);
            b = self.b.ins().select(bb, b, canon);
        }
        let sign = if single { 1i64 << 31 } else { i64::MIN };
        let sb = self.b.ins().band_imm_s(b, sign);
        let v = match i.op {
            FsgnjS | FsgnjD => {
                let mag = self.b.ins().band_imm_s(a, !sign);
                self.b.ins().bor(mag, sb)
            }
            FsgnjnS | FsgnjnD => {
                let mag = self.b.ins().band_imm_s(a, !sign);
                let ns = self.b.ins().bxor_imm_s(sb, sign);
                self.b.ins().bor(mag, ns)
            }
            _ => self.b.ins().bxor(a, sb),
        };
        let v = if single { self.boxed(v) } else { v };
        self.fset(i.rd, v);
    }

    /// The operand `r` of precision `p` as a host float, with whether it may be used
    /// (a single must be NaN-boxed).
    fn operand(&mut self, r: u8, p: P) -> (Value, Option<Value>) {
        let bits = self.fget(r);
        match p {
            P::D => (self.b.ins().bitcast(F64, MemFlagsData::new(), bits), None),
            P::S => {
                let ok = self.is_boxed(bits);
                let lo = self.b.ins().ireduce(I32, bits);
                (self.b.ins().bitcast(F32, MemFlagsData::new(), lo), Some(ok))
            }
        }
    }

    /// The biased exponent field of float `v`.
    fn exponent(&mut self, v: Value, p: P) -> Value {
        let bits = self.b.ins().bitcast(p.int(), MemFlagsData::new(), v);
        let bits = if p == P::S {
            self.b.ins().uextend(I64, bits)
        } else {
            bits
        };
        let e = self.b.ins().ushr_imm_s(bits, p.mantissa_bits());
        self.b.ins().band_imm_s(e, p.exp_max())
    }

    /// Whether float `v` is ±0.
    fn is_zero(&mut self, v: Value, p: P) -> Value {
        let zero = match p {
            P::S => self.b.ins().f32const(0.0),
            P::D => self.b.ins().f64const(0.0),
        };
        self.b.ins().fcmp(FloatCC::Equal, v, zero)
    }

    fn band_all(&mut self, conds: &[Value]) -> Value {
        let mut acc = conds[0];
        for &c in &conds[1..] {
            acc = self.b.ins().band(acc, c);
        }
        acc
    }

    /// `fadd`, `fsub`, `fmul`, `fdiv`, `fsqrt` in round-to-nearest-even.
    fn arith(&mut self, i: &Insn, pc: u64, op: Arith, p: P) {
        let (a, oka) = self.operand(i.rs1, p);
        let (b, okb) = if op == Arith::Sqrt {
            (a, None)
        } else {
            self.operand(i.rs2, p)
        };
        let (r, err) = match op {
            Arith::Add | Arith::Sub => {
                let b = if op == Arith::Sub {
                    self.b.ins().fneg(b)
                } else {
                    b
                };
                // TwoSum (Knuth): a + b = r + err exactly, r finite.
                let r = self.b.ins().fadd(a, b);
                let bb = self.b.ins().fsub(r, a);
                let aa = self.b.ins().fsub(r, bb);
                let da = self.b.ins().fsub(a, aa);
                let db = self.b.ins().fsub(b, bb);
                (r, self.b.ins().fadd(da, db))
            }
            Arith::Mul => {
                let r = self.b.ins().fmul(a, b);
                let nr = self.b.ins().fneg(r);
                (r, self.b.ins().fma(a, b, nr))
            }
            Arith::Div => {
                let r = self.b.ins().fdiv(a, b);
                let nr = self.b.ins().fneg(r);
                (r, self.b.ins().fma(nr, b, a))
            }
            Arith::Sqrt => {
                let r = self.b.ins().sqrt(a);
                let nr = self.b.ins().fneg(r);
                (r, self.b.ins().fma(nr, r, a))
            }
        };
        let er = self.exponent(r, p);
        let finite = self.b.ins().icmp_imm_s(IntCC::NotEqual, er, p.exp_max());
        let exact = self.is_zero(err, p);
        // Tiny results are taken only when exact (no underflow); for a product,
        // quotient or root, a result or operand near the subnormals may make the
        // FMA-computed error inexact itself, so the fast path keeps away from them
        // unless everything is zero.
        let mut conds = vec![finite];
        match op {
            Arith::Add | Arith::Sub => {
                let normal = self.b.ins().icmp_imm_s(IntCC::NotEqual, er, 0);
                let ok = self.b.ins().bor(normal, exact);
                conds.push(ok);
            }
            Arith::Mul => {
                // A product that underflows to zero has an error that does too: only a
                // zero operand makes a zero product exact.
                let big =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, er, p.exp_margin());
                let az = self.is_zero(a, p);
                let bz = self.is_zero(b, p);
                let zero = self.b.ins().bor(az, bz);
                conds.push(self.b.ins().bor(big, zero));
            }
            Arith::Div => {
                let eb = self.exponent(b, p);
                let b_normal = self.b.ins().icmp_imm_s(IntCC::NotEqual, eb, 0);
                let b_finite = self.b.ins().icmp_imm_s(IntCC::NotEqual, eb, p.exp_max());
                let ea = self.exponent(a, p);
                let big_r =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, er, p.exp_margin());
                let big_a =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, ea, p.exp_margin());
                let big = self.b.ins().band(big_r, big_a);
                let az = self.is_zero(a, p);
                let ok = self.b.ins().bor(big, az);
                conds.extend([b_normal, b_finite, ok]);
            }
            Arith::Sqrt => {
                let ea = self.exponent(a, p);
                let big =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, ea, p.exp_margin());
                let az = self.is_zero(a, p);
                conds.push(self.b.ins().bor(big, az));
            }
        }
        conds.extend(oka);
        conds.extend(okb);
        let fast = self.band_all(&conds);
        self.slow_unless(fast, i, pc);
        let inexact = self.b.ins().bxor_imm_s(exact, 1);
        self.accrue_nx(inexact);
        let bits = self.b.ins().bitcast(p.int(), MemFlagsData::new(), r);
        let bits = if p == P::S {
            let w = self.b.ins().uextend(I64, bits);
            self.boxed(w)
        } else {
            bits
        };
        self.fset(i.rd, bits);
    }

    /// `feq`, `flt`, `fle` on numbers (a NaN operand takes the slow path, which sets NV
    /// as each comparison requires).
    fn compare(&mut self, i: &Insn, pc: u64, p: P) -> bool {
        self.fp_guard(i, pc, false);
        let (a, oka) = self.operand(i.rs1, p);
        let (b, okb) = self.operand(i.rs2, p);
        let ordered = self.b.ins().fcmp(FloatCC::Ordered, a, b);
        let mut conds = vec![ordered];
        conds.extend(oka);
        conds.extend(okb);
        let fast = self.band_all(&conds);
        self.slow_unless(fast, i, pc);
        let cc = match i.op {
            Op::FeqS | Op::FeqD => FloatCC::Equal,
            Op::FltS | Op::FltD => FloatCC::LessThan,
            _ => FloatCC::LessThanOrEqual,
        };
        let c = self.b.ins().fcmp(cc, a, b);
        let v = self.b.ins().uextend(I64, c);
        self.set(i.rd, v);
        true
    }

    /// `fcvt.d.w`, `fcvt.d.wu`: every 32-bit integer is a double, exactly.
    fn int_to_double(&mut self, i: &Insn, pc: u64) -> bool {
        self.fp_guard(i, pc, true);
        let x = self.get(i.rs1);
        let w = self.b.ins().ireduce(I32, x);
        let w = if i.op == Op::FcvtDW {
            self.b.ins().sextend(I64, w)
        } else {
            self.b.ins().uextend(I64, w)
        };
        let d = self.b.ins().fcvt_from_sint(F64, w);
        let bits = self.b.ins().bitcast(I64, MemFlagsData::new(), d);
        self.fset(i.rd, bits);
        true
    }

    /// `fcvt.w.d`, `fcvt.l.d` in round-toward-zero or to-nearest-even, for values in
    /// range (NaN and out-of-range values take the slow path, which saturates and sets
    /// NV); NX when the value had a fraction.
    fn double_to_int(&mut self, i: &Insn, pc: u64) -> bool {
        let rm = i.rm;
        if rm != RTZ && rm != RNE && rm != DYN {
            return false;
        }
        self.fp_guard(i, pc, true);
        if rm == DYN {
            let frm = self
                .b
                .ins()
                .uload8(I64, state_flags(), self.hart, self.layout.frm);
            let rne = self.b.ins().icmp_imm_s(IntCC::Equal, frm, i64::from(RNE));
            self.slow_unless(rne, i, pc);
        }
        let (a, _) = self.operand(i.rs1, P::D);
        let rounded = if rm == RTZ {
            self.b.ins().trunc(a)
        } else {
            self.b.ins().nearest(a)
        };
        // In range: -2^31 <= rounded < 2^31 (or 2^63); NaN compares false.
        let limit = if i.op == Op::FcvtWD {
            2f64.powi(31)
        } else {
            2f64.powi(63)
        };
        let hi = self.b.ins().f64const(limit);
        let lo = self.b.ins().f64const(-limit);
        let below = self.b.ins().fcmp(FloatCC::LessThan, rounded, hi);
        let above = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, rounded, lo);
        let fast = self.b.ins().band(below, above);
        self.slow_unless(fast, i, pc);
        let frac = self.b.ins().fcmp(FloatCC::NotEqual, rounded, a);
        self.accrue_nx(frac);
        let v = self.b.ins().fcvt_to_sint_sat(I64, rounded);
        let v = if i.op == Op::FcvtWD {
            let n = self.b.ins().ireduce(I32, v);
            self.b.ins().sextend(I64, n)
        } else {
            v
        };
        self.set(i.rd, v);
        true
    }
}
