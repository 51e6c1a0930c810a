//! Instruction semantics: what one decoded instruction does to a hart. The interpreter
//! runs them directly; compiled code reaches them through the JIT's `exec_one` helper
//! for every instruction it does not inline, so both tiers share one definition.

use rivet_jit::frontend::{Insn, Op};

use crate::hart::csr::{self, hstatus, mstatus};
use crate::hart::fp::{self, Prec};
use crate::hart::memory::AmoOp;
use crate::hart::trap::{cause, Exception};
use crate::hart::{Hart, Priv};

/// Interprets the instructions of one block, starting at `h.pc`.
pub(crate) fn interpret(h: &mut Hart, insns: &[Insn], tracing: bool) {
    for insn in insns {
        if tracing {
            trace(h, insn);
        }
        match exec(h, insn) {
            Ok(next) => {
                h.pc = next;
                h.instret = h.instret.wrapping_add(1);
            }
            Err(e) => {
                h.raise(e);
                break;
            }
        }
    }
}

/// Executes one instruction at `h.pc`; returns the next PC. Compiled code reaches this
/// through the JIT's `exec_one` helper for every instruction it does not inline.
#[inline]
pub(crate) fn exec(h: &mut Hart, i: &Insn) -> Result<u64, Exception> {
    let pc = h.pc;
    let next = pc.wrapping_add(u64::from(i.len));
    let rs1 = h.x[usize::from(i.rs1)];
    let rs2 = h.x[usize::from(i.rs2)];
    let imm = i64::from(i.imm) as u64;
    let rd = i.rd;
    macro_rules! w {
        ($v:expr) => {{
            let v: u64 = $v;
            h.set_x(rd, v);
        }};
    }
    macro_rules! sext32 {
        ($v:expr) => {
            ($v as u32 as i32 as i64 as u64)
        };
    }
    macro_rules! branch {
        ($c:expr) => {{
            return if $c {
                jump(pc.wrapping_add(imm))
            } else {
                Ok(next)
            };
        }};
    }
    // A trap of a data access writes the transformed instruction to mtinst/htinst.
    macro_rules! access {
        ($e:expr, $addr:expr, $size:expr) => {
            $e.map_err(|e| with_tinst(e, i, $addr, $size))?
        };
    }
    macro_rules! load {
        ($size:expr, $ext:expr) => {{
            let a = rs1.wrapping_add(imm);
            let v = access!(h.load(a, $size), a, $size);
            let ext: fn(u64) -> u64 = $ext;
            w!(ext(v));
        }};
    }
    macro_rules! store {
        ($size:expr) => {{
            let a = rs1.wrapping_add(imm);
            access!(h.store(a, $size, rs2), a, $size);
        }};
    }
    macro_rules! amo {
        ($size:expr, $op:expr) => {
            access!(h.amo(rs1, $size, $op, rs2), rs1, $size)
        };
    }
    // HLV/HLVX/HSV: valid in M and HS, and in U with hstatus.HU; a virtual
    // instruction with V=1 (H chapter, "Hypervisor Virtual-Machine Load and Store
    // Instructions").
    macro_rules! hyp_access {
        () => {
            if h.virt {
                return Err(Exception::virtual_insn(i.raw));
            } else if h.prv == Priv::U && h.csr.hstatus & hstatus::HU == 0 {
                return Err(Exception::illegal(i.raw));
            }
        };
    }
    macro_rules! hlv {
        ($size:expr, $hlvx:expr, $ext:expr) => {{
            hyp_access!();
            let v = access!(h.hlv(rs1, $size, $hlvx), rs1, $size);
            let ext: fn(u64) -> u64 = $ext;
            w!(ext(v));
        }};
    }
    macro_rules! hsv {
        ($size:expr) => {{
            hyp_access!();
            access!(h.hsv(rs1, $size, rs2), rs1, $size);
        }};
    }
    match i.op {
        Op::Lui => w!(imm),
        Op::Auipc => w!(pc.wrapping_add(imm)),
        Op::Jal => {
            let t = pc.wrapping_add(imm);
            w!(next);
            return jump(t);
        }
        Op::Jalr => {
            let t = rs1.wrapping_add(imm) & !1;
            w!(next);
            return jump(t);
        }
        Op::Beq => branch!(rs1 == rs2),
        Op::Bne => branch!(rs1 != rs2),
        Op::Blt => branch!((rs1 as i64) < (rs2 as i64)),
        Op::Bge => branch!((rs1 as i64) >= (rs2 as i64)),
        Op::Bltu => branch!(rs1 < rs2),
        Op::Bgeu => branch!(rs1 >= rs2),
        Op::Lb => load!(1, |v| v as i8 as i64 as u64),
        Op::Lh => load!(2, |v| v as i16 as i64 as u64),
        Op::Lw => load!(4, |v| v as i32 as i64 as u64),
        Op::Ld => load!(8, |v| v),
        Op::Lbu => load!(1, |v| v),
        Op::Lhu => load!(2, |v| v),
        Op::Lwu => load!(4, |v| v),
        Op::Sb => store!(1),
        Op::Sh => store!(2),
        Op::Sw => store!(4),
        Op::Sd => store!(8),
        Op::Addi => w!(rs1.wrapping_add(imm)),
        Op::Slti => w!(((rs1 as i64) < (imm as i64)) as u64),
        Op::Sltiu => w!((rs1 < imm) as u64),
        Op::Xori => w!(rs1 ^ imm),
        Op::Ori => w!(rs1 | imm),
        Op::Andi => w!(rs1 & imm),
        Op::Slli => w!(rs1 << (imm & 63)),
        Op::Srli => w!(rs1 >> (imm & 63)),
        Op::Srai => w!(((rs1 as i64) >> (imm & 63)) as u64),
        Op::Add => w!(rs1.wrapping_add(rs2)),
        Op::Sub => w!(rs1.wrapping_sub(rs2)),
        Op::Sll => w!(rs1 << (rs2 & 63)),
        Op::Slt => w!(((rs1 as i64) < (rs2 as i64)) as u64),
        Op::Sltu => w!((rs1 < rs2) as u64),
        Op::Xor => w!(rs1 ^ rs2),
        Op::Srl => w!(rs1 >> (rs2 & 63)),
        Op::Sra => w!(((rs1 as i64) >> (rs2 & 63)) as u64),
        Op::Or => w!(rs1 | rs2),
        Op::And => w!(rs1 & rs2),
        Op::Addiw => w!(sext32!(rs1.wrapping_add(imm))),
        Op::Slliw => w!(sext32!((rs1 as u32) << (imm & 31))),
        Op::Srliw => w!(sext32!((rs1 as u32) >> (imm & 31))),
        Op::Sraiw => w!(((rs1 as i32) >> (imm & 31)) as i64 as u64),
        Op::Addw => w!(sext32!(rs1.wrapping_add(rs2))),
        Op::Subw => w!(sext32!(rs1.wrapping_sub(rs2))),
        Op::Sllw => w!(sext32!((rs1 as u32) << (rs2 & 31))),
        Op::Srlw => w!(sext32!((rs1 as u32) >> (rs2 & 31))),
        Op::Sraw => w!(((rs1 as i32) >> (rs2 & 31)) as i64 as u64),
        // Harts see their own accesses in order and host atomics order the rest;
        // a host fence gives FENCE/FENCE.TSO their ordering across host threads.
        Op::Fence | Op::FenceTso => std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst),
        Op::FenceI => {
            // Ends the block; the engine drops its code caches after it.
            h.code_flush_pending = true;
            return Ok(next);
        }
        Op::Ecall => {
            let c = match (h.prv, h.virt) {
                (Priv::U, _) => cause::ECALL_U,
                (Priv::S, false) => cause::ECALL_S,
                (Priv::S, true) => cause::ECALL_VS,
                (Priv::M, _) => cause::ECALL_M,
            };
            return Err(Exception::new(c, 0));
        }
        Op::Ebreak => return Err(Exception::new(cause::BREAKPOINT, pc)),

        // Zicsr (Unpriv spec ch. "Zicsr"): csrrw with rd = x0 does not read;
        // csrrs/csrrc with rs1 = x0 (or uimm 0) do not write.
        Op::Csrrw | Op::Csrrwi => {
            let v = if i.op == Op::Csrrw {
                rs1
            } else {
                u64::from(i.rs1)
            };
            let old = h.csr_op(i.csr(), i.raw, Some(&|_| v))?;
            w!(old);
            return Ok(next);
        }
        Op::Csrrs | Op::Csrrc | Op::Csrrsi | Op::Csrrci => {
            let src = if matches!(i.op, Op::Csrrs | Op::Csrrc) {
                rs1
            } else {
                u64::from(i.rs1)
            };
            let old = if i.rs1 == 0 {
                h.csr_op(i.csr(), i.raw, None)?
            } else if matches!(i.op, Op::Csrrs | Op::Csrrsi) {
                h.csr_op(i.csr(), i.raw, Some(&|base| base | src))?
            } else {
                h.csr_op(i.csr(), i.raw, Some(&|base| base & !src))?
            };
            w!(old);
            return Ok(next);
        }

        // M
        Op::Mul => w!(rs1.wrapping_mul(rs2)),
        Op::Mulh => w!(((i128::from(rs1 as i64) * i128::from(rs2 as i64)) >> 64) as u64),
        Op::Mulhsu => w!(((i128::from(rs1 as i64) * (rs2 as i128)) >> 64) as u64),
        Op::Mulhu => w!(((u128::from(rs1) * u128::from(rs2)) >> 64) as u64),
        Op::Div => w!(div(rs1 as i64, rs2 as i64) as u64),
        Op::Divu => w!(rs1.checked_div(rs2).unwrap_or(u64::MAX)),
        Op::Rem => w!(rem(rs1 as i64, rs2 as i64) as u64),
        Op::Remu => w!(if rs2 == 0 { rs1 } else { rs1 % rs2 }),
        Op::Mulw => w!(sext32!((rs1 as u32).wrapping_mul(rs2 as u32))),
        Op::Divw => w!(div32(rs1 as i32, rs2 as i32) as i64 as u64),
        Op::Divuw => w!(sext32!((rs1 as u32)
            .checked_div(rs2 as u32)
            .unwrap_or(u32::MAX))),
        Op::Remw => w!(rem32(rs1 as i32, rs2 as i32) as i64 as u64),
        Op::Remuw => w!(sext32!(if rs2 as u32 == 0 {
            rs1 as u32
        } else {
            rs1 as u32 % rs2 as u32
        })),

        // A
        Op::LrW => w!(access!(h.load_reserved(rs1, 4), rs1, 4) as i32 as i64 as u64),
        Op::LrD => w!(access!(h.load_reserved(rs1, 8), rs1, 8)),
        Op::ScW => w!(access!(h.store_conditional(rs1, 4, rs2), rs1, 4)),
        Op::ScD => w!(access!(h.store_conditional(rs1, 8, rs2), rs1, 8)),
        Op::AmoswapW => w!(sext32!(amo!(4, AmoOp::Swap))),
        Op::AmoaddW => w!(sext32!(amo!(4, AmoOp::Add))),
        Op::AmoxorW => w!(sext32!(amo!(4, AmoOp::Xor))),
        Op::AmoandW => w!(sext32!(amo!(4, AmoOp::And))),
        Op::AmoorW => w!(sext32!(amo!(4, AmoOp::Or))),
        Op::AmominW => w!(sext32!(amo!(4, AmoOp::Min))),
        Op::AmomaxW => w!(sext32!(amo!(4, AmoOp::Max))),
        Op::AmominuW => w!(sext32!(amo!(4, AmoOp::Minu))),
        Op::AmomaxuW => w!(sext32!(amo!(4, AmoOp::Maxu))),
        Op::AmoswapD => w!(amo!(8, AmoOp::Swap)),
        Op::AmoaddD => w!(amo!(8, AmoOp::Add)),
        Op::AmoxorD => w!(amo!(8, AmoOp::Xor)),
        Op::AmoandD => w!(amo!(8, AmoOp::And)),
        Op::AmoorD => w!(amo!(8, AmoOp::Or)),
        Op::AmominD => w!(amo!(8, AmoOp::Min)),
        Op::AmomaxD => w!(amo!(8, AmoOp::Max)),
        Op::AmominuD => w!(amo!(8, AmoOp::Minu)),
        Op::AmomaxuD => w!(amo!(8, AmoOp::Maxu)),

        // Zba
        Op::AddUw => w!(rs2.wrapping_add(rs1 & 0xffff_ffff)),
        Op::Sh1add => w!(rs2.wrapping_add(rs1 << 1)),
        Op::Sh2add => w!(rs2.wrapping_add(rs1 << 2)),
        Op::Sh3add => w!(rs2.wrapping_add(rs1 << 3)),
        Op::Sh1addUw => w!(rs2.wrapping_add((rs1 & 0xffff_ffff) << 1)),
        Op::Sh2addUw => w!(rs2.wrapping_add((rs1 & 0xffff_ffff) << 2)),
        Op::Sh3addUw => w!(rs2.wrapping_add((rs1 & 0xffff_ffff) << 3)),
        Op::SlliUw => w!((rs1 & 0xffff_ffff) << (imm & 63)),
        // Zbb
        Op::Andn => w!(rs1 & !rs2),
        Op::Orn => w!(rs1 | !rs2),
        Op::Xnor => w!(!(rs1 ^ rs2)),
        Op::Clz => w!(u64::from(rs1.leading_zeros())),
        Op::Clzw => w!(u64::from((rs1 as u32).leading_zeros())),
        Op::Ctz => w!(u64::from(rs1.trailing_zeros())),
        Op::Ctzw => w!(u64::from((rs1 as u32).trailing_zeros())),
        Op::Cpop => w!(u64::from(rs1.count_ones())),
        Op::Cpopw => w!(u64::from((rs1 as u32).count_ones())),
        Op::Max => w!((rs1 as i64).max(rs2 as i64) as u64),
        Op::Maxu => w!(rs1.max(rs2)),
        Op::Min => w!((rs1 as i64).min(rs2 as i64) as u64),
        Op::Minu => w!(rs1.min(rs2)),
        Op::SextB => w!(rs1 as i8 as i64 as u64),
        Op::SextH => w!(rs1 as i16 as i64 as u64),
        Op::ZextH => w!(rs1 & 0xffff),
        Op::Rol => w!(rs1.rotate_left((rs2 & 63) as u32)),
        Op::Ror => w!(rs1.rotate_right((rs2 & 63) as u32)),
        Op::Rori => w!(rs1.rotate_right((imm & 63) as u32)),
        Op::Rolw => w!(sext32!((rs1 as u32).rotate_left((rs2 & 31) as u32))),
        Op::Rorw => w!(sext32!((rs1 as u32).rotate_right((rs2 & 31) as u32))),
        Op::Roriw => w!(sext32!((rs1 as u32).rotate_right((imm & 31) as u32))),
        Op::OrcB => w!(orc_b(rs1)),
        Op::Rev8 => w!(rs1.swap_bytes()),
        // Zbc
        Op::Clmul => w!(clmul(rs1, rs2) as u64),
        Op::Clmulh => w!((clmul(rs1, rs2) >> 64) as u64),
        Op::Clmulr => w!((clmul(rs1, rs2) >> 63) as u64),
        // Zbs
        Op::Bclr => w!(rs1 & !(1 << (rs2 & 63))),
        Op::Bclri => w!(rs1 & !(1 << (imm & 63))),
        Op::Bext => w!((rs1 >> (rs2 & 63)) & 1),
        Op::Bexti => w!((rs1 >> (imm & 63)) & 1),
        Op::Binv => w!(rs1 ^ (1 << (rs2 & 63))),
        Op::Binvi => w!(rs1 ^ (1 << (imm & 63))),
        Op::Bset => w!(rs1 | (1 << (rs2 & 63))),
        Op::Bseti => w!(rs1 | (1 << (imm & 63))),
        // Zicond
        Op::CzeroEqz => w!(if rs2 == 0 { 0 } else { rs1 }),
        Op::CzeroNez => w!(if rs2 != 0 { 0 } else { rs1 }),
        // Zicbom/Zicboz (Priv spec 3.1.18: menvcfg/senvcfg gate them).
        Op::CboClean | Op::CboFlush | Op::CboInval => {
            access!(h.cbo_manage(rs1, i.op == Op::CboInval, i.raw), rs1, 1)
        }
        Op::CboZero => access!(h.cbo_zero(rs1, i.raw), rs1, 1),
        // Zawrs: no reservation-set wake-up source is modelled beyond the
        // timeout, so wrs.* behave as a short stall (allowed: Zawrs ch. "WRS").
        Op::WrsNto | Op::WrsSto => {
            if h.reservation.is_none() {
                return Ok(next);
            }
            if i.op == Op::WrsNto && h.prv != Priv::M && h.csr.mstatus & mstatus::TW != 0 {
                return Err(Exception::illegal(i.raw));
            }
            // Zawrs: WRS.NTO in VU-mode (TW=0) or in VS-mode with VTW is a virtual
            // instruction.
            if i.op == Op::WrsNto
                && h.virt
                && (h.prv == Priv::U || h.csr.hstatus & hstatus::VTW != 0)
            {
                return Err(Exception::virtual_insn(i.raw));
            }
            std::hint::spin_loop();
        }

        // Privileged. With V=1 an instruction HS-mode could run but V forbids is a
        // virtual instruction; mstatus.TSR and TVM affect HS only, TW every mode below
        // M (H chapter, "mstatus" and "Trap Cause Codes").
        Op::Mret => {
            if h.prv != Priv::M {
                return Err(Exception::illegal(i.raw));
            }
            h.mret();
            return Ok(h.pc);
        }
        Op::Sret => {
            match (h.prv, h.virt) {
                (Priv::U, false) => return Err(Exception::illegal(i.raw)),
                (Priv::S, false) if h.csr.mstatus & mstatus::TSR != 0 => {
                    return Err(Exception::illegal(i.raw))
                }
                (Priv::U, true) => return Err(Exception::virtual_insn(i.raw)),
                (Priv::S, true) if h.csr.hstatus & hstatus::VTSR != 0 => {
                    return Err(Exception::virtual_insn(i.raw))
                }
                _ => {}
            }
            h.sret();
            return Ok(h.pc);
        }
        Op::Wfi => {
            // Priv spec 3.1.6.5: TW traps WFI below M; U-mode WFI is illegal. With V=1,
            // VU (TW=0) and VS with VTW are virtual instructions.
            let tw = h.csr.mstatus & mstatus::TW != 0;
            match (h.prv, h.virt) {
                (Priv::M, _) => {}
                (_, _) if tw => return Err(Exception::illegal(i.raw)),
                (Priv::U, false) => return Err(Exception::illegal(i.raw)),
                (Priv::U, true) => return Err(Exception::virtual_insn(i.raw)),
                (Priv::S, true) if h.csr.hstatus & hstatus::VTW != 0 => {
                    return Err(Exception::virtual_insn(i.raw))
                }
                _ => {}
            }
            if !h.wfi_wakeup() {
                h.waiting = true;
            }
        }
        Op::SfenceVma | Op::SinvalVma => {
            match (h.prv, h.virt) {
                (Priv::U, false) => return Err(Exception::illegal(i.raw)),
                (Priv::S, false) if h.csr.mstatus & mstatus::TVM != 0 => {
                    return Err(Exception::illegal(i.raw))
                }
                (Priv::U, true) => return Err(Exception::virtual_insn(i.raw)),
                (Priv::S, true) if h.csr.hstatus & hstatus::VTVM != 0 => {
                    return Err(Exception::virtual_insn(i.raw))
                }
                _ => {}
            }
            let vaddr = (i.rs1 != 0).then_some(rs1);
            let asid = (i.rs2 != 0).then_some(rs2 as u16);
            h.sfence_vma(vaddr, asid);
        }
        Op::SfenceWInval | Op::SfenceInvalIr => match (h.prv, h.virt) {
            (Priv::U, false) => return Err(Exception::illegal(i.raw)),
            (Priv::U, true) => return Err(Exception::virtual_insn(i.raw)),
            _ => {}
        },
        // HFENCE.VVMA/GVMA and Svinval's HINVAL: M and HS only (virtual with V=1,
        // illegal in U); TVM traps the G-stage fences in HS.
        Op::HfenceVvma | Op::HinvalVvma | Op::HfenceGvma | Op::HinvalGvma => {
            let gvma = matches!(i.op, Op::HfenceGvma | Op::HinvalGvma);
            match (h.prv, h.virt) {
                (_, true) => return Err(Exception::virtual_insn(i.raw)),
                (Priv::U, false) => return Err(Exception::illegal(i.raw)),
                (Priv::S, false) if gvma && h.csr.mstatus & mstatus::TVM != 0 => {
                    return Err(Exception::illegal(i.raw))
                }
                _ => {}
            }
            if gvma {
                let gpa = (i.rs1 != 0).then_some(rs1 << 2);
                let vmid = (i.rs2 != 0).then_some((rs2 & csr::atp::VMID_MASK) as u16);
                h.hfence_gvma(gpa, vmid);
            } else {
                let vaddr = (i.rs1 != 0).then_some(rs1);
                let asid = (i.rs2 != 0).then_some(rs2 as u16);
                h.hfence_vvma(vaddr, asid);
            }
        }
        Op::HlvB => hlv!(1, false, |v| v as i8 as i64 as u64),
        Op::HlvBu => hlv!(1, false, |v| v),
        Op::HlvH => hlv!(2, false, |v| v as i16 as i64 as u64),
        Op::HlvHu => hlv!(2, false, |v| v),
        Op::HlvxHu => hlv!(2, true, |v| v),
        Op::HlvW => hlv!(4, false, |v| v as i32 as i64 as u64),
        Op::HlvWu => hlv!(4, false, |v| v),
        Op::HlvxWu => hlv!(4, true, |v| v),
        Op::HlvD => hlv!(8, false, |v| v),
        Op::HsvB => hsv!(1),
        Op::HsvH => hsv!(2),
        Op::HsvW => hsv!(4),
        Op::HsvD => hsv!(8),

        // F and D loads/stores: plain bit moves; S values are NaN-boxed.
        Op::Flw => {
            h.fp_check(i.raw)?;
            let a = rs1.wrapping_add(imm);
            let v = access!(h.load(a, 4), a, 4);
            h.set_f(rd, fp::box_s(v as u32));
        }
        Op::Fld => {
            h.fp_check(i.raw)?;
            let a = rs1.wrapping_add(imm);
            let v = access!(h.load(a, 8), a, 8);
            h.set_f(rd, v);
        }
        Op::Fsw => {
            h.fp_check(i.raw)?;
            let a = rs1.wrapping_add(imm);
            access!(h.store(a, 4, h.f[usize::from(i.rs2)]), a, 4);
        }
        Op::Fsd => {
            h.fp_check(i.raw)?;
            let a = rs1.wrapping_add(imm);
            access!(h.store(a, 8, h.f[usize::from(i.rs2)]), a, 8);
        }
        _ => return exec_fp(h, i, next),
    }
    Ok(next)
}

/// F, D and Zfa computational instructions; anything else is illegal.
fn exec_fp(h: &mut Hart, i: &Insn, next: u64) -> Result<u64, Exception> {
    use Prec::{D, S};
    h.fp_check(i.raw)?;
    let a = h.f[usize::from(i.rs1)];
    let b = h.f[usize::from(i.rs2)];
    let c = h.f[usize::from(i.rs3)];
    let x1 = h.x[usize::from(i.rs1)];
    let illegal = Exception::illegal(i.raw);
    let rm = || fp::resolve_rm(i.rm, h.csr.frm).ok_or(illegal);
    // Results: to an f register, or to an x register, with accrued flags.
    enum R {
        F(fp::FpOut),
        X(fp::FpOut),
        FBits(u64),
        XBits(u64),
    }
    use fp::IntKind::{Lu, Wu, L, W};
    let r = match i.op {
        Op::FaddS => R::F(fp::add(S, a, b, rm()?)),
        Op::FsubS => R::F(fp::sub(S, a, b, rm()?)),
        Op::FmulS => R::F(fp::mul(S, a, b, rm()?)),
        Op::FdivS => R::F(fp::div(S, a, b, rm()?)),
        Op::FsqrtS => R::F(fp::sqrt(S, a, rm()?)),
        Op::FaddD => R::F(fp::add(D, a, b, rm()?)),
        Op::FsubD => R::F(fp::sub(D, a, b, rm()?)),
        Op::FmulD => R::F(fp::mul(D, a, b, rm()?)),
        Op::FdivD => R::F(fp::div(D, a, b, rm()?)),
        Op::FsqrtD => R::F(fp::sqrt(D, a, rm()?)),
        Op::FmaddS => R::F(fp::fma(S, a, b, c, rm()?, false, false)),
        Op::FmsubS => R::F(fp::fma(S, a, b, c, rm()?, false, true)),
        Op::FnmsubS => R::F(fp::fma(S, a, b, c, rm()?, true, false)),
        Op::FnmaddS => R::F(fp::fma(S, a, b, c, rm()?, true, true)),
        Op::FmaddD => R::F(fp::fma(D, a, b, c, rm()?, false, false)),
        Op::FmsubD => R::F(fp::fma(D, a, b, c, rm()?, false, true)),
        Op::FnmsubD => R::F(fp::fma(D, a, b, c, rm()?, true, false)),
        Op::FnmaddD => R::F(fp::fma(D, a, b, c, rm()?, true, true)),
        Op::FsgnjS => R::FBits(fp::sgnj(S, a, b)),
        Op::FsgnjnS => R::FBits(fp::sgnjn(S, a, b)),
        Op::FsgnjxS => R::FBits(fp::sgnjx(S, a, b)),
        Op::FsgnjD => R::FBits(fp::sgnj(D, a, b)),
        Op::FsgnjnD => R::FBits(fp::sgnjn(D, a, b)),
        Op::FsgnjxD => R::FBits(fp::sgnjx(D, a, b)),
        Op::FminS => R::F(fp::min(S, a, b)),
        Op::FmaxS => R::F(fp::max(S, a, b)),
        Op::FminD => R::F(fp::min(D, a, b)),
        Op::FmaxD => R::F(fp::max(D, a, b)),
        Op::FminmS => R::F(fp::minm(S, a, b)),
        Op::FmaxmS => R::F(fp::maxm(S, a, b)),
        Op::FminmD => R::F(fp::minm(D, a, b)),
        Op::FmaxmD => R::F(fp::maxm(D, a, b)),
        Op::FeqS => R::X(fp::eq(S, a, b)),
        Op::FltS => R::X(fp::lt(S, a, b)),
        Op::FleS => R::X(fp::le(S, a, b)),
        Op::FeqD => R::X(fp::eq(D, a, b)),
        Op::FltD => R::X(fp::lt(D, a, b)),
        Op::FleD => R::X(fp::le(D, a, b)),
        Op::FltqS => R::X(fp::ltq(S, a, b)),
        Op::FleqS => R::X(fp::leq(S, a, b)),
        Op::FltqD => R::X(fp::ltq(D, a, b)),
        Op::FleqD => R::X(fp::leq(D, a, b)),
        Op::FclassS => R::XBits(fp::classify(S, a)),
        Op::FclassD => R::XBits(fp::classify(D, a)),
        Op::FcvtWS => R::X(fp::to_int(S, a, rm()?, W)),
        Op::FcvtWuS => R::X(fp::to_int(S, a, rm()?, Wu)),
        Op::FcvtLS => R::X(fp::to_int(S, a, rm()?, L)),
        Op::FcvtLuS => R::X(fp::to_int(S, a, rm()?, Lu)),
        Op::FcvtWD => R::X(fp::to_int(D, a, rm()?, W)),
        Op::FcvtWuD => R::X(fp::to_int(D, a, rm()?, Wu)),
        Op::FcvtLD => R::X(fp::to_int(D, a, rm()?, L)),
        Op::FcvtLuD => R::X(fp::to_int(D, a, rm()?, Lu)),
        Op::FcvtSW => R::F(fp::from_int(S, x1, rm()?, W)),
        Op::FcvtSWu => R::F(fp::from_int(S, x1, rm()?, Wu)),
        Op::FcvtSL => R::F(fp::from_int(S, x1, rm()?, L)),
        Op::FcvtSLu => R::F(fp::from_int(S, x1, rm()?, Lu)),
        Op::FcvtDW => R::F(fp::from_int(D, x1, rm()?, W)),
        Op::FcvtDWu => R::F(fp::from_int(D, x1, rm()?, Wu)),
        Op::FcvtDL => R::F(fp::from_int(D, x1, rm()?, L)),
        Op::FcvtDLu => R::F(fp::from_int(D, x1, rm()?, Lu)),
        Op::FcvtSD => R::F(fp::cvt_s_d(a, rm()?)),
        Op::FcvtDS => R::F(fp::cvt_d_s(a, rm()?)),
        Op::FmvXW => R::XBits(a as u32 as i32 as i64 as u64),
        Op::FmvWX => R::FBits(fp::box_s(x1 as u32)),
        Op::FmvXD => R::XBits(a),
        Op::FmvDX => R::FBits(x1),
        Op::FliS => R::FBits(fp::fli(S, i.rs1)),
        Op::FliD => R::FBits(fp::fli(D, i.rs1)),
        Op::FroundS => R::F(fp::round(S, a, rm()?, false)),
        Op::FroundnxS => R::F(fp::round(S, a, rm()?, true)),
        Op::FroundD => R::F(fp::round(D, a, rm()?, false)),
        Op::FroundnxD => R::F(fp::round(D, a, rm()?, true)),
        Op::FcvtmodWD => R::X(fp::fcvtmod_w_d(a)),
        _ => return Err(illegal),
    };
    match r {
        R::F(o) => {
            h.accrue(o.flags);
            h.set_f(i.rd, o.bits);
        }
        R::X(o) => {
            h.accrue(o.flags);
            h.set_x(i.rd, o.bits);
        }
        R::FBits(v) => h.set_f(i.rd, v),
        R::XBits(v) => h.set_x(i.rd, v),
    }
    Ok(next)
}

/// `e` with the transformed instruction of `i` (whose access was at `addr`, `size`
/// bytes) when it is a data-access exception that has none yet (a pseudoinstruction of
/// a VS-stage walk stays).
#[cold]
fn with_tinst(e: Exception, i: &Insn, addr: u64, size: u64) -> Exception {
    if e.tinst != 0 || !e.is_data_access() {
        return e;
    }
    let offset = e.tval.wrapping_sub(addr) & (size.max(1) - 1);
    Exception {
        tinst: crate::hart::tinst::transformed(i, offset),
        ..e
    }
}

#[cold]
fn trace(h: &Hart, i: &Insn) {
    let p = match (h.prv, h.virt) {
        (Priv::M, _) => "M",
        (Priv::S, false) => "S",
        (Priv::U, false) => "U",
        (Priv::S, true) => "VS",
        (Priv::U, true) => "VU",
    };
    eprintln!(
        "hart{} {p} {:016x}: {:08x}  {}",
        h.hartid,
        h.pc,
        i.raw,
        rivet_jit::frontend::disasm::disasm(i, h.pc)
    );
}

#[inline]
fn jump(target: u64) -> Result<u64, Exception> {
    // With C, IALIGN is 16: bit 0 is cleared by JALR and never set by JAL/branches.
    Ok(target)
}

impl Hart {
    /// FP instructions are illegal while mstatus.FS is Off (Priv spec 3.1.6.6), or with
    /// V=1 vsstatus.FS (H chapter, "vsstatus").
    #[inline]
    fn fp_check(&self, raw: u32) -> Result<(), Exception> {
        if self.fp_enabled() {
            Ok(())
        } else {
            Err(Exception::illegal(raw))
        }
    }

    #[inline]
    fn set_f(&mut self, r: u8, v: u64) {
        self.f[usize::from(r)] = v;
        self.fs_dirty();
    }

    #[inline]
    fn accrue(&mut self, flags: u8) {
        if flags != 0 {
            self.csr.fflags |= flags;
        }
        self.fs_dirty();
    }
}

fn div(a: i64, b: i64) -> i64 {
    if b == 0 {
        -1
    } else {
        a.wrapping_div(b)
    }
}

fn rem(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        a.wrapping_rem(b)
    }
}

fn div32(a: i32, b: i32) -> i32 {
    if b == 0 {
        -1
    } else {
        a.wrapping_div(b)
    }
}

fn rem32(a: i32, b: i32) -> i32 {
    if b == 0 {
        a
    } else {
        a.wrapping_rem(b)
    }
}

fn orc_b(v: u64) -> u64 {
    let mut r = 0;
    for byte in 0..8 {
        if (v >> (byte * 8)) & 0xff != 0 {
            r |= 0xff << (byte * 8);
        }
    }
    r
}

fn clmul(a: u64, b: u64) -> u128 {
    let mut r = 0u128;
    for bit in 0..64 {
        if (b >> bit) & 1 != 0 {
            r ^= u128::from(a) << bit;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hart::csr::{menvcfg, num};
    use crate::hart::testutil::{self, csrr, csrw, Guest, RAM_BASE, RWX, U};
    use rivet_devices::irq::{SEIP, SSIP, VSEIP};
    use rivet_jit::frontend::decode;

    const SRET: u32 = 0x1020_0073;
    const WFI: u32 = 0x1050_0073;
    const SFENCE_VMA: u32 = 0x1200_0073;
    const SINVAL_VMA: u32 = 0x1600_0073;
    const HFENCE_VVMA: u32 = 0x2200_0073;
    const HFENCE_GVMA: u32 = 0x6200_0073;
    const HINVAL_GVMA: u32 = 0x6600_0073;
    const ECALL: u32 = 0x0000_0073;
    /// hlv.d a0, (a1); hlv.b a0, (a1); hlvx.hu a0, (a1); hsv.w a2, (a1).
    const HLV_D: u32 = 0x6c05_c573;
    const HLV_B: u32 = 0x6005_c573;
    const HLVX_HU: u32 = 0x6435_c573;
    const HSV_W: u32 = 0x6ac5_c073;
    /// fadd.s ft0, ft0, ft0 (dynamic rounding).
    const FADD_S: u32 = 0x0000_7053;
    /// cbo.zero (a0).
    const CBO_ZERO: u32 = 0x0045_200f;

    /// Runs the instruction `raw` in mode (`p`, `virt`); the cause of its exception.
    fn run(h: &mut Hart, raw: u32, p: Priv, virt: bool) -> Option<u64> {
        h.set_mode(p, virt);
        let e = exec(h, &decode(raw)).err();
        e.map(|e| {
            if matches!(e.cause, cause::ILLEGAL_INSN | cause::VIRTUAL_INSN) {
                // H chapter, "Trap Cause Codes": the same tval as illegal instruction.
                assert_eq!(e.tval, u64::from(raw), "tval of {raw:#x}");
            }
            e.cause
        })
    }

    const ILL: Option<u64> = Some(cause::ILLEGAL_INSN);
    const VIRT: Option<u64> = Some(cause::VIRTUAL_INSN);

    #[test]
    fn csrrs_on_mip_does_not_latch_the_external_seip_signal() {
        let mut h = testutil::hart();
        let signals = h.signals.clone();
        signals.set_level(SEIP, true);
        assert_ne!(h.csr_read(num::MIP, 0).unwrap() & SEIP, 0);
        // csrrs zero, mip, t0 with t0 = SSIP (OpenSBI injecting an IPI).
        h.x[5] = SSIP;
        let insn = decode(0x3442_a073);
        assert_eq!(insn.op, Op::Csrrs);
        exec(&mut h, &insn).unwrap();
        signals.set_level(SEIP, false);
        let mip = h.csr_read(num::MIP, 0).unwrap();
        assert_eq!(mip & SEIP, 0, "SEIP must follow the PLIC, not stay latched");
        assert_ne!(mip & SSIP, 0);
    }

    #[test]
    fn bit_manipulation_helpers() {
        assert_eq!(orc_b(0x0001_0000_ff00_0010), 0x00ff_0000_ff00_00ff);
        assert_eq!(clmul(3, 3), 5);
        assert_eq!(
            (clmul(u64::MAX, u64::MAX) >> 64) as u64,
            0x5555_5555_5555_5555
        );
        assert_eq!(div(i64::MIN, -1), i64::MIN);
        assert_eq!(rem(i64::MIN, -1), 0);
        assert_eq!(div(7, 0), -1);
        assert_eq!(rem32(-7, 0), -7);
    }

    #[test]
    fn the_encodings_used_here_decode_as_intended() {
        for (raw, op) in [
            (SRET, Op::Sret),
            (WFI, Op::Wfi),
            (SFENCE_VMA, Op::SfenceVma),
            (SINVAL_VMA, Op::SinvalVma),
            (HFENCE_VVMA, Op::HfenceVvma),
            (HFENCE_GVMA, Op::HfenceGvma),
            (HINVAL_GVMA, Op::HinvalGvma),
            (ECALL, Op::Ecall),
            (HLV_D, Op::HlvD),
            (HLV_B, Op::HlvB),
            (HLVX_HU, Op::HlvxHu),
            (HSV_W, Op::HsvW),
            (FADD_S, Op::FaddS),
            (CBO_ZERO, Op::CboZero),
        ] {
            assert_eq!(decode(raw).op, op, "{raw:#x}");
        }
    }

    #[test]
    fn sret_is_virtual_in_vu_and_behind_vtsr_in_vs_and_tsr_in_hs() {
        let mut h = testutil::hart();
        assert_eq!(run(&mut h, SRET, Priv::U, true), VIRT);
        assert_eq!(run(&mut h, SRET, Priv::U, false), ILL);
        csrw(&mut h, num::HSTATUS, hstatus::VTSR);
        assert_eq!(run(&mut h, SRET, Priv::S, true), VIRT);
        // VTSR does not reach HS; TSR does not reach VS (H chapter, "mstatus").
        h.csr.vsstatus |= mstatus::SPP;
        assert_eq!(run(&mut h, SRET, Priv::S, false), None);
        csrw(&mut h, num::HSTATUS, 0);
        csrw(&mut h, num::MSTATUS, mstatus::TSR | mstatus::SPP);
        assert_eq!(run(&mut h, SRET, Priv::S, false), ILL);
        assert_eq!(run(&mut h, SRET, Priv::S, true), None);
        assert_eq!((h.prv, h.virt), (Priv::S, true), "vsstatus.SPP was set");
    }

    #[test]
    fn wfi_is_virtual_in_vu_and_in_vs_with_vtw_and_illegal_with_tw() {
        let mut h = testutil::hart();
        assert_eq!(run(&mut h, WFI, Priv::U, true), VIRT);
        assert_eq!(run(&mut h, WFI, Priv::U, false), ILL);
        assert_eq!(run(&mut h, WFI, Priv::S, true), None);
        csrw(&mut h, num::HSTATUS, hstatus::VTW);
        assert_eq!(run(&mut h, WFI, Priv::S, true), VIRT);
        assert_eq!(run(&mut h, WFI, Priv::S, false), None, "VTW is VS's");
        // TW=1 wins over VTW, in every mode below M.
        csrw(&mut h, num::MSTATUS, mstatus::TW);
        assert_eq!(run(&mut h, WFI, Priv::S, true), ILL);
        assert_eq!(run(&mut h, WFI, Priv::U, true), ILL);
        assert_eq!(run(&mut h, WFI, Priv::S, false), ILL);
        assert_eq!(run(&mut h, WFI, Priv::M, false), None);
    }

    #[test]
    fn sfence_and_sinval_are_virtual_in_vu_and_in_vs_with_vtvm() {
        let mut h = testutil::hart();
        for raw in [SFENCE_VMA, SINVAL_VMA] {
            csrw(&mut h, num::HSTATUS, 0);
            csrw(&mut h, num::MSTATUS, 0);
            assert_eq!(run(&mut h, raw, Priv::U, true), VIRT);
            assert_eq!(run(&mut h, raw, Priv::U, false), ILL);
            assert_eq!(run(&mut h, raw, Priv::S, true), None);
            csrw(&mut h, num::HSTATUS, hstatus::VTVM);
            assert_eq!(run(&mut h, raw, Priv::S, true), VIRT);
            assert_eq!(run(&mut h, raw, Priv::S, false), None);
            csrw(&mut h, num::HSTATUS, 0);
            csrw(&mut h, num::MSTATUS, mstatus::TVM);
            assert_eq!(run(&mut h, raw, Priv::S, false), ILL);
            assert_eq!(run(&mut h, raw, Priv::S, true), None, "TVM is HS's");
        }
    }

    #[test]
    fn hypervisor_instructions_from_vs_and_vu_are_virtual() {
        let mut h = testutil::hart();
        csrw(&mut h, num::HSTATUS, hstatus::HU);
        for raw in [
            HFENCE_VVMA,
            HFENCE_GVMA,
            HINVAL_GVMA,
            HLV_D,
            HLV_B,
            HLVX_HU,
            HSV_W,
        ] {
            assert_eq!(run(&mut h, raw, Priv::S, true), VIRT, "{raw:#x} in VS");
            assert_eq!(run(&mut h, raw, Priv::U, true), VIRT, "{raw:#x} in VU");
        }
    }

    #[test]
    fn hlv_and_hsv_from_u_need_hstatus_hu() {
        // With vsatp and hgatp Bare the guest's addresses are physical ones.
        let mut h = testutil::hart();
        let at = RAM_BASE + 0x1000;
        h.shared.ram.write(at, 8, 0x1122_3344_5566_7788).unwrap();
        h.x[11] = at;
        h.x[12] = 0xaabb_ccdd;
        for raw in [HLV_D, HLV_B, HLVX_HU, HSV_W] {
            assert_eq!(run(&mut h, raw, Priv::U, false), ILL, "{raw:#x}, HU=0");
        }
        csrw(&mut h, num::HSTATUS, hstatus::HU);
        assert_eq!(run(&mut h, HLV_D, Priv::U, false), None);
        assert_eq!(h.x[10], 0x1122_3344_5566_7788);
        assert_eq!(run(&mut h, HLV_B, Priv::U, false), None);
        assert_eq!(h.x[10], 0xffff_ffff_ffff_ff88, "sign-extended");
        assert_eq!(run(&mut h, HSV_W, Priv::U, false), None);
        assert_eq!(h.shared.ram.read(at, 8), Some(0x1122_3344_aabb_ccdd));
        // HU covers the virtual-machine loads and stores only, not the fences.
        assert_eq!(run(&mut h, HFENCE_VVMA, Priv::U, false), ILL);
        assert_eq!(run(&mut h, HFENCE_GVMA, Priv::U, false), ILL);
    }

    #[test]
    fn hfence_gvma_in_hs_with_tvm_is_illegal_but_hfence_vvma_is_not() {
        // H chapter, "Hypervisor Memory-Management Fence Instructions".
        let mut h = testutil::hart();
        csrw(&mut h, num::MSTATUS, mstatus::TVM);
        assert_eq!(run(&mut h, HFENCE_GVMA, Priv::S, false), ILL);
        assert_eq!(run(&mut h, HINVAL_GVMA, Priv::S, false), ILL);
        assert_eq!(run(&mut h, HFENCE_VVMA, Priv::S, false), None);
        assert_eq!(run(&mut h, HFENCE_GVMA, Priv::M, false), None);
        csrw(&mut h, num::MSTATUS, 0);
        assert_eq!(run(&mut h, HFENCE_GVMA, Priv::S, false), None);
    }

    #[test]
    fn fp_with_vsstatus_fs_off_is_illegal_not_virtual() {
        let mut h = testutil::hart();
        csrw(&mut h, num::MSTATUS, 1 << mstatus::FS_SHIFT);
        h.csr.vsstatus &= !mstatus::FS;
        assert_eq!(run(&mut h, FADD_S, Priv::S, true), ILL);
        assert_eq!(run(&mut h, FADD_S, Priv::U, true), ILL);
        h.csr.vsstatus |= 1 << mstatus::FS_SHIFT;
        assert_eq!(run(&mut h, FADD_S, Priv::U, true), None);
        // Both fields become Dirty (H chapter, "vsstatus").
        assert_eq!(h.csr.mstatus & mstatus::FS, mstatus::FS);
        assert_eq!(h.csr.vsstatus & mstatus::FS, mstatus::FS);
        h.csr.mstatus &= !mstatus::FS;
        assert_eq!(run(&mut h, FADD_S, Priv::S, true), ILL);
    }

    #[test]
    fn cbo_zero_is_illegal_for_menvcfg_and_virtual_for_henvcfg_and_senvcfg() {
        // Zicboz, and the H chapter's "henvcfg": a bit M clears makes the instruction
        // illegal; one HS clears (henvcfg) or VS clears for VU (senvcfg) makes it
        // virtual.
        let mut h = testutil::hart();
        let at = RAM_BASE + 0x2000;
        h.shared.ram.write(at + 8, 8, u64::MAX).unwrap();
        h.x[10] = at + 8;
        let cbze = menvcfg::CBZE;
        assert_eq!(run(&mut h, CBO_ZERO, Priv::S, true), ILL, "menvcfg clear");
        assert_eq!(run(&mut h, CBO_ZERO, Priv::S, false), ILL);
        csrw(&mut h, num::MENVCFG, cbze);
        assert_eq!(run(&mut h, CBO_ZERO, Priv::S, true), VIRT, "henvcfg clear");
        assert_eq!(run(&mut h, CBO_ZERO, Priv::U, true), VIRT);
        csrw(&mut h, num::HENVCFG, cbze);
        assert_eq!(run(&mut h, CBO_ZERO, Priv::U, true), VIRT, "senvcfg clear");
        assert_eq!(
            run(&mut h, CBO_ZERO, Priv::U, false),
            ILL,
            "senvcfg clear, V=0"
        );
        assert_eq!(
            h.shared.ram.read(at + 8, 8),
            Some(u64::MAX),
            "nothing written"
        );
        assert_eq!(run(&mut h, CBO_ZERO, Priv::S, true), None);
        assert_eq!(h.shared.ram.read(at + 8, 8), Some(0));
    }

    #[test]
    fn ecall_causes_tell_vs_from_hs() {
        let mut h = testutil::hart();
        assert_eq!(run(&mut h, ECALL, Priv::S, true), Some(cause::ECALL_VS));
        assert_eq!(run(&mut h, ECALL, Priv::U, true), Some(cause::ECALL_U));
        assert_eq!(run(&mut h, ECALL, Priv::S, false), Some(cause::ECALL_S));
    }

    #[test]
    fn virtual_and_illegal_instruction_traps_put_the_instruction_in_stval() {
        let mut h = testutil::hart();
        csrw(
            &mut h,
            num::MEDELEG,
            1 << cause::ILLEGAL_INSN | 1 << cause::VIRTUAL_INSN,
        );
        csrw(&mut h, num::HSTATUS, hstatus::VTSR);
        csrw(&mut h, num::MSTATUS, 1 << mstatus::FS_SHIFT);
        h.csr.vsstatus &= !mstatus::FS;
        for (raw, c) in [(SRET, cause::VIRTUAL_INSN), (FADD_S, cause::ILLEGAL_INSN)] {
            h.set_mode(Priv::S, true);
            let e = exec(&mut h, &decode(raw)).unwrap_err();
            h.raise(e);
            assert_eq!((h.prv, h.virt), (Priv::S, false));
            assert_eq!(csrr(&mut h, num::SCAUSE), c);
            assert_eq!(csrr(&mut h, num::STVAL), u64::from(raw));
            assert_eq!(csrr(&mut h, num::HTVAL), 0);
            assert_eq!(csrr(&mut h, num::HSTATUS) & hstatus::GVA, 0);
        }
        // Into M as well.
        csrw(&mut h, num::MEDELEG, 0);
        h.set_mode(Priv::U, true);
        let e = exec(&mut h, &decode(WFI)).unwrap_err();
        h.raise(e);
        assert_eq!(csrr(&mut h, num::MCAUSE), cause::VIRTUAL_INSN);
        assert_eq!(csrr(&mut h, num::MTVAL), u64::from(WFI));
    }

    #[test]
    fn wfi_in_vs_wakes_on_a_pending_enabled_vs_interrupt_with_sie_clear() {
        // Priv spec, "Wait for Interrupt": WFI resumes on a locally enabled pending
        // interrupt whatever the global enables; the trap is not taken.
        let mut h = testutil::hart();
        csrw(&mut h, num::HIDELEG, VSEIP);
        csrw(&mut h, num::HIE, VSEIP);
        h.csr.vsstatus &= !mstatus::SIE;
        assert_eq!(run(&mut h, WFI, Priv::S, true), None);
        assert!(h.waiting, "nothing pending: the hart waits");
        h.waiting = false;
        csrw(&mut h, num::HVIP, VSEIP);
        assert_eq!(run(&mut h, WFI, Priv::S, true), None);
        assert!(!h.waiting);
        assert_eq!(h.pending_interrupt(), None, "SIE is clear in vsstatus");
    }

    /// A guest at VMID 1 mapping guest virtual 0x4000_0000 onto a RAM page through
    /// both stages; the hart in VS-mode.
    fn guest_hart() -> (Hart, Guest, u64) {
        let mut h = testutil::hart();
        let mut g = Guest::new(&h);
        let pa = RAM_BASE + 0x10_0000;
        g.map(0x4000_0000, pa, RWX, RWX | U);
        g.install(&mut h, 1);
        h.set_mode(Priv::S, true);
        (h, g, pa)
    }

    #[test]
    fn guest_page_faults_of_loads_and_stores_carry_the_transformed_instruction() {
        let (mut h, mut g, pa) = guest_hart();
        let gpa = pa - testutil::GPA_TO_PA;
        // The G stage loses the data page.
        g.gmap(gpa, pa, 0);
        h.x[11] = 0x4000_0000;
        // ld a0, 8(a1): a load keeps opcode, funct3 and rd; the offset field is zero.
        let e = exec(&mut h, &decode(0x0085_b503)).unwrap_err();
        assert_eq!(e.cause, cause::LOAD_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa, e.gva), (0x4000_0008, gpa + 8, true));
        assert_eq!(e.tinst, 0x0000_3503);
        // sd a2, 16(a1): a store keeps opcode, funct3 and rs2.
        let e = exec(&mut h, &decode(0x00c5_b823)).unwrap_err();
        assert_eq!(e.cause, cause::STORE_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa), (0x4000_0010, gpa + 16));
        assert_eq!(e.tinst, 0x00c0_3023);
        // c.lw a0, 4(a1): expanded, then bit 1 cleared.
        let e = exec(&mut h, &decode(0x41c8)).unwrap_err();
        assert_eq!(e.tinst, 0x0000_2501);
        // Taken into HS: htval = gpa >> 2, htinst the transformed instruction.
        csrw(&mut h, num::MEDELEG, 1 << cause::LOAD_GUEST_PAGE_FAULT);
        let e = exec(&mut h, &decode(0x0085_b503)).unwrap_err();
        h.raise(e);
        assert_eq!(csrr(&mut h, num::SCAUSE), cause::LOAD_GUEST_PAGE_FAULT);
        assert_eq!(csrr(&mut h, num::STVAL), 0x4000_0008);
        assert_eq!(csrr(&mut h, num::HTVAL), (gpa + 8) >> 2);
        assert_eq!(csrr(&mut h, num::HTINST), 0x0000_3503);
        let hs = csrr(&mut h, num::HSTATUS);
        assert_eq!(
            hs & (hstatus::GVA | hstatus::SPV),
            hstatus::GVA | hstatus::SPV
        );
    }

    #[test]
    fn a_guest_page_fault_of_the_vs_walk_keeps_its_pseudoinstruction() {
        // H chapter, "Transformed Instruction or Pseudoinstruction": an implicit access
        // of the VS-stage walk that faults in the G stage writes 0x3000 (a read), never
        // the transformed instruction.
        let (mut h, mut g, _) = guest_hart();
        let leaf = g.vsmap(0x4000_0000, 0x1010_0000, RWX);
        let table = leaf & !0xfff;
        g.gmap(table, table + testutil::GPA_TO_PA, 0);
        h.x[11] = 0x4000_0000;
        let e = exec(&mut h, &decode(0x0085_b503)).unwrap_err();
        assert_eq!(e.cause, cause::LOAD_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa, e.tinst), (0x4000_0008, leaf, 0x3000));
        let e = exec(&mut h, &decode(0x00c5_b823)).unwrap_err();
        assert_eq!(e.cause, cause::STORE_GUEST_PAGE_FAULT);
        assert_eq!((e.gpa, e.tinst), (leaf, 0x3000));
    }

    #[test]
    fn hfence_gvma_takes_the_guest_physical_address_shifted_right_by_2() {
        let (mut h, mut g, pa) = guest_hart();
        let gpa = pa - testutil::GPA_TO_PA;
        h.shared.ram.write(pa, 8, 1).unwrap();
        h.shared.ram.write(pa + 0x1000, 8, 2).unwrap();
        assert_eq!(h.load(0x4000_0000, 8), Ok(1));
        g.gmap(gpa, pa + 0x1000, RWX | U);
        assert_eq!(h.load(0x4000_0000, 8), Ok(1), "still cached");
        // hfence.gvma a0, a1 with a0 = gpa >> 2 and a1 = VMID 1, from HS.
        h.x[10] = gpa >> 2;
        h.x[11] = 1;
        assert_eq!(
            run(&mut h, HFENCE_GVMA | 10 << 15 | 11 << 20, Priv::S, false),
            None
        );
        h.set_mode(Priv::S, true);
        assert_eq!(h.load(0x4000_0000, 8), Ok(2));
    }

    #[test]
    fn sfence_vma_in_vs_fences_a_guest_virtual_address() {
        let (mut h, mut g, pa) = guest_hart();
        h.shared.ram.write(pa, 8, 1).unwrap();
        h.shared.ram.write(pa + 0x1000, 8, 2).unwrap();
        assert_eq!(h.load(0x4000_0000, 8), Ok(1));
        g.vsmap(0x4000_0000, pa + 0x1000 - testutil::GPA_TO_PA, RWX);
        g.gmap(pa + 0x1000 - testutil::GPA_TO_PA, pa + 0x1000, RWX | U);
        assert_eq!(h.load(0x4000_0000, 8), Ok(1), "still cached");
        // sfence.vma a0, x0 in VS: the guest virtual address of the current VMID.
        h.x[10] = 0x4000_0000;
        assert_eq!(run(&mut h, SFENCE_VMA | 10 << 15, Priv::S, true), None);
        assert_eq!(h.load(0x4000_0000, 8), Ok(2));
    }
}
