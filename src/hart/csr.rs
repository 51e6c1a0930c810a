//! Control and status registers: one table (number -> access predicate, read, write),
//! with the WARL behaviour of each register (Priv spec ch. 2, 3.1, 12.1; the H chapter
//! for the hypervisor and VS registers; Zicntr/Zihpm; Sstc; Sdtrig).
//!
//! An access goes through three steps, in the spirit of QEMU's `csr_ops`:
//! 1. the generic rule of the CSR number (Priv spec 2.1): a read-only number is never
//!    written; the privilege in bits 9:8 must be reached. With V=1 an access that
//!    HS-mode could make raises a virtual-instruction exception instead of an illegal
//!    one (H chapter, "Trap Cause Codes": HS-qualified CSR accesses);
//! 2. the register's own predicate (FS, counter enables, TVM/VTVM, STCE);
//! 3. with V=1, an S-level number that has a VS copy reaches the copy (H chapter,
//!    "Hypervisor and Virtual Supervisor CSRs"); `senvcfg` and `scounteren` have none.

use std::sync::LazyLock;

use rivet_jit::arch::Ext;

use rivet_devices::imsic::File;

use super::trap::Exception;
use super::{Hart, Priv};
use rivet_devices::irq;

pub use rivet_jit::arch::csr::{atp, counteren, hstatus, hvictl, iselect, menvcfg, mstatus, num};

/// Interrupts S-mode may see and delegate: SSI, STI, SEI.
pub const S_INTERRUPTS: u64 = irq::SSIP | irq::STIP | irq::SEIP;
pub const M_INTERRUPTS: u64 = irq::MSIP | irq::MTIP | irq::MEIP;
/// The VS-level interrupts of the H extension: VSSI, VSTI, VSEI.
pub const VS_INTERRUPTS: u64 = irq::VSSIP | irq::VSTIP | irq::VSEIP;
/// Exceptions that `medeleg` can delegate (Priv spec 3.1.8: ecall from M and the
/// reserved codes 14 and 16-19 Rivet does not raise are read-only zero); with H also
/// ecall from VS and the guest-page-fault and virtual-instruction causes.
const DELEGABLE_EXCEPTIONS: u64 = 0xb3ff & !(1 << 10) & !(1 << 11);
const DELEGABLE_EXCEPTIONS_H: u64 = 1 << 10 | 0xf << 20;
/// `hedeleg` (H chapter, table "Bits of hedeleg that must be writable or must be
/// read-only zero"): ecalls from HS, VS and M and the guest-page-fault and
/// virtual-instruction causes cannot go to VS.
const HEDELEG_WRITABLE: u64 = 0xb1ff;

/// xcounteren bits that exist: CY, TM, IR. No hpmcounters are implemented, so their
/// enable bits are read-only zero (WARL; QEMU does the same without a PMU).
const COUNTEREN_WRITABLE: u64 = counteren::CY | counteren::TM | counteren::IR;

/// The architectural CSR state of one hart (what is not derived on read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Csrs {
    pub mstatus: u64,
    pub misa: u64,
    pub medeleg: u64,
    /// The writable bits of `mideleg`; the H extension's read-only ones are added on
    /// read ([`Hart::mideleg`]).
    pub mideleg: u64,
    pub mie: u64,
    /// Software-writable `mip` bits (SSIP, STIP without Sstc, SEIP) and `hvip` (VSSIP,
    /// VSTIP, VSEIP); device lines and timers are ORed in by [`Hart::mip`].
    pub mip: u64,
    pub mtvec: u64,
    pub mcounteren: u64,
    pub menvcfg: u64,
    pub mcountinhibit: u64,
    pub mscratch: u64,
    pub mepc: u64,
    pub mcause: u64,
    pub mtval: u64,
    pub mtval2: u64,
    pub mtinst: u64,
    pub stvec: u64,
    pub scounteren: u64,
    pub senvcfg: u64,
    pub sscratch: u64,
    pub sepc: u64,
    pub scause: u64,
    pub stval: u64,
    pub satp: u64,
    pub stimecmp: u64,
    pub hstatus: u64,
    pub hedeleg: u64,
    pub hideleg: u64,
    pub hcounteren: u64,
    pub hgeie: u64,
    /// As written; the bits `menvcfg` does not enable read as zero ([`Hart::henvcfg`]).
    pub henvcfg: u64,
    pub htval: u64,
    pub htinst: u64,
    pub hgatp: u64,
    pub htimedelta: u64,
    pub vsstatus: u64,
    pub vstvec: u64,
    pub vsscratch: u64,
    pub vsepc: u64,
    pub vscause: u64,
    pub vstval: u64,
    pub vsatp: u64,
    pub vstimecmp: u64,
    pub miselect: u64,
    pub siselect: u64,
    pub vsiselect: u64,
    pub hvictl: u64,
    pub fflags: u8,
    pub frm: u8,
}

/// `misa` for RV64IMAFDC with S and U modes (Priv spec 3.1.1); machines set theirs.
pub const MISA: u64 = (2 << 62) | ext_bits("ACDFIMSU");

const fn ext_bits(letters: &str) -> u64 {
    let b = letters.as_bytes();
    let mut v = 0;
    let mut i = 0;
    while i < b.len() {
        v |= 1 << (b[i] - b'A');
        i += 1;
    }
    v
}

impl Csrs {
    pub fn reset() -> Self {
        Self {
            misa: MISA,
            mstatus: mstatus::XL64,
            stimecmp: u64::MAX,
            vstimecmp: u64::MAX,
            hstatus: hstatus::VSXL64,
            vsstatus: mstatus::VS_RESET,
            ..Self::default()
        }
    }
}

/// What an access check decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Ok,
    /// Illegal-instruction exception.
    Illegal,
    /// Virtual-instruction exception (cause 22).
    Virtual,
}

/// An access predicate: the hart, the CSR number as the instruction names it, and
/// whether the instruction writes.
type Pred = fn(&Hart, u16, bool) -> Gate;
type Read = fn(&mut Hart, u16) -> u64;
type Write = fn(&mut Hart, u16, u64);
/// An atomic read-modify-write: applies the function to the value the register holds
/// and returns that value (for state other threads change, such as an IMSIC file's
/// pending bits, and registers whose read-modify-write base differs from their read).
type Rmw = fn(&mut Hart, u16, &dyn Fn(u64) -> u64) -> u64;

/// One CSR (or a range of numbered ones, such as `pmpaddr0-63`).
struct Csr {
    lo: u16,
    hi: u16,
    /// The extensions the CSR needs; without them the number is unimplemented.
    exts: &'static [Ext],
    pred: Pred,
    read: Read,
    /// `None`: read-only; a write raises illegal instruction.
    write: Option<Write>,
    /// How a read-modify-write is done when not as a read followed by a write.
    rmw: Option<Rmw>,
}

const fn csr(num: u16, exts: &'static [Ext], pred: Pred, read: Read, write: Option<Write>) -> Csr {
    Csr {
        lo: num,
        hi: num,
        exts,
        pred,
        read,
        write,
        rmw: None,
    }
}

/// A CSR whose read-modify-write goes through `rmw` (writes too, with a function that
/// ignores the old value).
const fn csr_rmw(num: u16, exts: &'static [Ext], pred: Pred, read: Read, rmw: Rmw) -> Csr {
    Csr {
        lo: num,
        hi: num,
        exts,
        pred,
        read,
        // Writable: the writes go through `rmw`.
        write: Some(|_, _, _| {}),
        rmw: Some(rmw),
    }
}

const fn range(lo: u16, hi: u16, pred: Pred, read: Read, write: Option<Write>) -> Csr {
    Csr {
        lo,
        hi,
        exts: &[],
        pred,
        read,
        write,
        rmw: None,
    }
}

const H: &[Ext] = &[Ext::H];
const SMAIA: &[Ext] = &[Ext::Smaia];
const SSAIA: &[Ext] = &[Ext::Ssaia];
const SSAIA_H: &[Ext] = &[Ext::Ssaia, Ext::H];

/// The S-level CSRs that have a VS copy at their number plus 0x100 (H chapter, "When
/// V=1, the VS CSRs substitute for the corresponding supervisor CSRs").
const VS_COPIES: [u16; 14] = [
    num::SSTATUS,
    num::SIE,
    num::STVEC,
    num::SSCRATCH,
    num::SEPC,
    num::SCAUSE,
    num::STVAL,
    num::SIP,
    num::STIMECMP,
    num::SATP,
    num::SISELECT,
    num::SIREG,
    num::STOPEI,
    num::STOPI,
];

/// What `miselect`, `siselect` and `vsiselect` hold (WARL): at least 0-0x1FF, which
/// covers the priority array, the interrupt files and `vsiselect`'s required range.
const ISELECT_MASK: u64 = 0xfff;

/// Every CSR Rivet implements.
static CSRS: &[Csr] = &[
    // Floating point (FS gates them: Priv spec 3.1.6.6).
    csr(
        num::FFLAGS,
        &[Ext::F],
        fp,
        |h, _| u64::from(h.csr.fflags),
        Some(|h, _, v| {
            h.csr.fflags = v as u8 & 0x1f;
            h.fs_dirty();
        }),
    ),
    csr(
        num::FRM,
        &[Ext::F],
        fp,
        |h, _| u64::from(h.csr.frm),
        Some(|h, _, v| {
            h.csr.frm = v as u8 & 7;
            h.fs_dirty();
        }),
    ),
    csr(
        num::FCSR,
        &[Ext::F],
        fp,
        |h, _| u64::from(h.csr.frm) << 5 | u64::from(h.csr.fflags),
        Some(|h, _, v| {
            h.csr.fflags = v as u8 & 0x1f;
            h.csr.frm = (v >> 5) as u8 & 7;
            h.fs_dirty();
        }),
    ),
    // Counters (Zicntr, Zihpm).
    csr(num::CYCLE, &[], counter, |h, _| h.cycle(), None),
    csr(num::TIME, &[], counter, |h, _| h.time(), None),
    csr(num::INSTRET, &[], counter, |h, _| h.instret, None),
    range(num::HPMCOUNTER3, num::HPMCOUNTER31, counter, |_, _| 0, None),
    // Supervisor.
    csr(
        num::SSTATUS,
        &[],
        any,
        |h, _| with_sd(h.csr.mstatus) & mstatus::S_VIEW,
        Some(|h, _, v| {
            let w = mstatus::S_WRITABLE;
            h.set_mstatus((h.csr.mstatus & !w) | (v & w));
        }),
    ),
    csr(
        num::SIE,
        &[],
        any,
        |h, _| h.csr.mie & h.csr.mideleg & S_INTERRUPTS,
        Some(|h, _, v| {
            let m = h.csr.mideleg & S_INTERRUPTS;
            h.csr.mie = (h.csr.mie & !m) | (v & m);
        }),
    ),
    csr(
        num::STVEC,
        &[],
        any,
        |h, _| h.csr.stvec,
        Some(|h, _, v| h.csr.stvec = legal_tvec(h.csr.stvec, v)),
    ),
    csr(
        num::SCOUNTEREN,
        &[],
        any,
        |h, _| h.csr.scounteren,
        Some(|h, _, v| h.csr.scounteren = v & COUNTEREN_WRITABLE),
    ),
    csr(
        num::SENVCFG,
        &[],
        any,
        |h, _| h.csr.senvcfg,
        Some(|h, _, v| h.csr.senvcfg = v & menvcfg::S_WRITABLE),
    ),
    csr(
        num::SSCRATCH,
        &[],
        any,
        |h, _| h.csr.sscratch,
        Some(|h, _, v| h.csr.sscratch = v),
    ),
    csr(
        num::SEPC,
        &[],
        any,
        |h, _| h.csr.sepc,
        Some(|h, _, v| h.csr.sepc = v & !1),
    ),
    csr(
        num::SCAUSE,
        &[],
        any,
        |h, _| h.csr.scause,
        Some(|h, _, v| h.csr.scause = v),
    ),
    csr(
        num::STVAL,
        &[],
        any,
        |h, _| h.csr.stval,
        Some(|h, _, v| h.csr.stval = v),
    ),
    csr(
        num::SIP,
        &[],
        any,
        |h, _| h.mip_now() & h.csr.mideleg & S_INTERRUPTS,
        Some(|h, _, v| {
            // Only SSIP is writable through sip (Priv spec 12.1.3).
            let m = irq::SSIP & h.csr.mideleg;
            h.csr.mip = (h.csr.mip & !m) | (v & m);
        }),
    ),
    csr(
        num::STIMECMP,
        &[Ext::Sstc],
        sstc,
        |h, _| h.csr.stimecmp,
        Some(|h, _, v| {
            h.csr.stimecmp = v;
            h.update_timers();
        }),
    ),
    csr(
        num::SATP,
        &[],
        satp,
        |h, _| h.csr.satp,
        Some(|h, _, v| h.write_satp(v)),
    ),
    // Virtual supervisor (H).
    csr(
        num::VSSTATUS,
        H,
        any,
        |h, _| with_sd(h.csr.vsstatus) & mstatus::S_VIEW,
        Some(|h, _, v| {
            let w = mstatus::VS_WRITABLE;
            let new = (h.csr.vsstatus & !w) | (v & w);
            let changed = new ^ h.csr.vsstatus;
            h.csr.vsstatus = new;
            // vsstatus.MXR changes what VS-regime L1 entries grant; SUM selects tables.
            if changed & mstatus::MXR != 0 {
                h.data_regime_changed();
            }
        }),
    ),
    csr(
        num::VSIE,
        H,
        any,
        |h, _| (h.csr.mie & h.csr.hideleg & VS_INTERRUPTS) >> 1,
        Some(|h, _, v| {
            let m = h.csr.hideleg & VS_INTERRUPTS;
            h.csr.mie = (h.csr.mie & !m) | ((v << 1) & m);
        }),
    ),
    csr(
        num::VSTVEC,
        H,
        any,
        |h, _| h.csr.vstvec,
        Some(|h, _, v| h.csr.vstvec = legal_tvec(h.csr.vstvec, v)),
    ),
    csr(
        num::VSSCRATCH,
        H,
        any,
        |h, _| h.csr.vsscratch,
        Some(|h, _, v| h.csr.vsscratch = v),
    ),
    csr(
        num::VSEPC,
        H,
        any,
        |h, _| h.csr.vsepc,
        Some(|h, _, v| h.csr.vsepc = v & !1),
    ),
    csr(
        num::VSCAUSE,
        H,
        any,
        |h, _| h.csr.vscause,
        Some(|h, _, v| h.csr.vscause = v),
    ),
    csr(
        num::VSTVAL,
        H,
        any,
        |h, _| h.csr.vstval,
        Some(|h, _, v| h.csr.vstval = v),
    ),
    csr(
        num::VSIP,
        H,
        any,
        |h, _| (h.mip_now() & h.csr.hideleg & VS_INTERRUPTS) >> 1,
        Some(|h, _, v| {
            // vsip.SSIP is hip.VSSIP, an alias of hvip.VSSIP, when delegated.
            let m = h.csr.hideleg & irq::VSSIP;
            h.csr.mip = (h.csr.mip & !m) | ((v << 1) & m);
        }),
    ),
    csr(
        num::VSTIMECMP,
        H,
        vstimecmp,
        |h, _| h.csr.vstimecmp,
        Some(|h, _, v| {
            h.csr.vstimecmp = v;
            h.update_timers();
        }),
    ),
    csr(
        num::VSATP,
        H,
        any,
        |h, _| h.csr.vsatp,
        Some(|h, _, v| h.write_vsatp(v)),
    ),
    // Hypervisor.
    csr(
        num::HSTATUS,
        H,
        any,
        |h, _| h.csr.hstatus,
        Some(|h, _, v| {
            let mut w = hstatus::WRITABLE;
            // VGEIN is WLRL over 0..=GEILEN.
            if (v & hstatus::VGEIN) >> hstatus::VGEIN_SHIFT <= u64::from(h.geilen) {
                w |= hstatus::VGEIN;
            }
            h.csr.hstatus = (h.csr.hstatus & !w) | (v & w);
        }),
    ),
    csr(
        num::HEDELEG,
        H,
        any,
        |h, _| h.csr.hedeleg,
        Some(|h, _, v| h.csr.hedeleg = v & HEDELEG_WRITABLE),
    ),
    csr(
        num::HIDELEG,
        H,
        any,
        |h, _| h.csr.hideleg,
        Some(|h, _, v| h.csr.hideleg = v & VS_INTERRUPTS),
    ),
    csr(
        num::HIE,
        H,
        any,
        |h, _| h.csr.mie & h.hie_mask(),
        Some(|h, _, v| {
            let m = h.hie_mask();
            h.csr.mie = (h.csr.mie & !m) | (v & m);
        }),
    ),
    csr(
        num::HTIMEDELTA,
        H,
        any,
        |h, _| h.csr.htimedelta,
        Some(|h, _, v| {
            h.csr.htimedelta = v;
            h.update_timers();
        }),
    ),
    csr(
        num::HCOUNTEREN,
        H,
        any,
        |h, _| h.csr.hcounteren,
        Some(|h, _, v| h.csr.hcounteren = v & COUNTEREN_WRITABLE),
    ),
    csr(
        num::HGEIE,
        H,
        any,
        |h, _| h.csr.hgeie,
        Some(|h, _, v| h.csr.hgeie = v & h.hgeie_mask()),
    ),
    csr(
        num::HENVCFG,
        H,
        any,
        |h, _| h.henvcfg(),
        Some(|h, _, v| {
            h.csr.henvcfg = v & h.henvcfg_writable();
            // ADUE and PBMTE change VS-stage walks; STCE the VS timer.
            h.tlb_flush_all();
            h.update_timers();
        }),
    ),
    csr(
        num::HTVAL,
        H,
        any,
        |h, _| h.csr.htval,
        Some(|h, _, v| h.csr.htval = v),
    ),
    csr(
        num::HIP,
        H,
        any,
        |h, _| h.mip_now() & h.hie_mask(),
        Some(|h, _, v| {
            // Only VSSIP is writable in hip (an alias of hvip.VSSIP).
            h.csr.mip = (h.csr.mip & !irq::VSSIP) | (v & irq::VSSIP);
        }),
    ),
    csr(
        num::HVIP,
        H,
        any,
        |h, _| h.csr.mip & VS_INTERRUPTS,
        Some(|h, _, v| {
            h.csr.mip = (h.csr.mip & !VS_INTERRUPTS) | (v & VS_INTERRUPTS);
        }),
    ),
    csr(
        num::HTINST,
        H,
        any,
        |h, _| h.csr.htinst,
        Some(|h, _, v| h.csr.htinst = v),
    ),
    csr(
        num::HGATP,
        H,
        hgatp,
        |h, _| h.csr.hgatp,
        Some(|h, _, v| h.write_hgatp(v)),
    ),
    csr(num::HGEIP, H, any, |h, _| h.hgeip(), None),
    // Machine information.
    csr(num::MVENDORID, &[], any, |_, _| 0, None),
    csr(num::MARCHID, &[], any, |_, _| 0, None),
    csr(num::MIMPID, &[], any, |_, _| 0, None),
    csr(num::MHARTID, &[], any, |h, _| h.hartid, None),
    csr(num::MCONFIGPTR, &[], any, |_, _| 0, None),
    // Machine trap setup and handling.
    csr(
        num::MSTATUS,
        &[],
        any,
        |h, _| with_sd(h.csr.mstatus),
        Some(|h, _, v| {
            let mut w = mstatus::M_WRITABLE;
            if h.exts.has(Ext::H) {
                w |= mstatus::M_WRITABLE_H;
            }
            let mut new = (h.csr.mstatus & !w) | (v & w);
            // MPP is WARL: the reserved value 2 keeps the old mode.
            if (new & mstatus::MPP) >> mstatus::MPP_SHIFT == 2 {
                new = (new & !mstatus::MPP) | (h.csr.mstatus & mstatus::MPP);
            }
            h.set_mstatus(new);
        }),
    ),
    // WARL: the extension set is fixed.
    csr(num::MISA, &[], any, |h, _| h.csr.misa, Some(|_, _, _| {})),
    csr(
        num::MEDELEG,
        &[],
        any,
        |h, _| h.csr.medeleg,
        Some(|h, _, v| {
            let mut w = DELEGABLE_EXCEPTIONS;
            if h.exts.has(Ext::H) {
                w |= DELEGABLE_EXCEPTIONS_H;
            }
            h.csr.medeleg = v & w;
        }),
    ),
    csr(
        num::MIDELEG,
        &[],
        any,
        |h, _| h.mideleg(),
        Some(|h, _, v| h.csr.mideleg = v & S_INTERRUPTS),
    ),
    csr(
        num::MIE,
        &[],
        any,
        |h, _| h.csr.mie,
        Some(|h, _, v| {
            let m = S_INTERRUPTS | M_INTERRUPTS | h.hie_mask();
            h.csr.mie = v & m;
        }),
    ),
    csr(
        num::MTVEC,
        &[],
        any,
        |h, _| h.csr.mtvec,
        Some(|h, _, v| h.csr.mtvec = legal_tvec(h.csr.mtvec, v)),
    ),
    csr(
        num::MCOUNTEREN,
        &[],
        any,
        |h, _| h.csr.mcounteren,
        Some(|h, _, v| h.csr.mcounteren = v & COUNTEREN_WRITABLE),
    ),
    csr(
        num::MENVCFG,
        &[],
        any,
        |h, _| h.csr.menvcfg,
        Some(|h, _, v| {
            h.csr.menvcfg = v & menvcfg::WRITABLE;
            h.tlb_flush_all();
            h.update_timers();
        }),
    ),
    csr(
        num::MCOUNTINHIBIT,
        &[],
        any,
        |h, _| h.csr.mcountinhibit,
        Some(|h, _, v| h.csr.mcountinhibit = v & 0xffff_fffd),
    ),
    range(
        num::MHPMEVENT3,
        num::MHPMEVENT31,
        any,
        |_, _| 0,
        Some(|_, _, _| {}),
    ),
    csr(
        num::MSCRATCH,
        &[],
        any,
        |h, _| h.csr.mscratch,
        Some(|h, _, v| h.csr.mscratch = v),
    ),
    csr(
        num::MEPC,
        &[],
        any,
        |h, _| h.csr.mepc,
        Some(|h, _, v| h.csr.mepc = v & !1),
    ),
    csr(
        num::MCAUSE,
        &[],
        any,
        |h, _| h.csr.mcause,
        Some(|h, _, v| h.csr.mcause = v),
    ),
    csr(
        num::MTVAL,
        &[],
        any,
        |h, _| h.csr.mtval,
        Some(|h, _, v| h.csr.mtval = v),
    ),
    // Priv spec 3.1.9: reads of mip.SEIP return the software-writable bit ORed with the
    // interrupt controller's signal, but only the software bit takes part in a
    // read-modify-write (else OpenSBI's `csrs mip, SSIP` while the PLIC signals would
    // latch SEIP for good: an interrupt storm).
    csr_rmw(
        num::MIP,
        &[],
        any,
        |h, _| h.mip_now(),
        |h, _, f| {
            let read = h.mip_now();
            let base = (read & !irq::SEIP) | (h.csr.mip & irq::SEIP);
            // SSIP, STIP (unless Sstc owns it), SEIP, and VSSIP (hvip's) are writable.
            let mut m = irq::SSIP | irq::SEIP | irq::VSSIP & h.hie_mask();
            if h.csr.menvcfg & menvcfg::STCE == 0 {
                m |= irq::STIP;
            }
            h.csr.mip = (h.csr.mip & !m) | (f(base) & m);
            read
        },
    ),
    // Smaia/Ssaia (AIA spec, "CSRs Added to Harts"). mvien, hvien and the priority
    // arrays (iprio, hviprio1/2) are read-only zero, the spec's minimal implementation;
    // mvip's bits 1, 5 and 9 are then mip's software-writable SSIP, STIP and SEIP.
    csr(num::MVIEN, SMAIA, any, |_, _| 0, Some(|_, _, _| {})),
    csr(
        num::MVIP,
        SMAIA,
        any,
        |h, _| h.csr.mip & h.mvip_mask(),
        Some(|h, _, v| {
            let m = h.mvip_mask();
            h.csr.mip = (h.csr.mip & !m) | (v & m);
        }),
    ),
    csr(
        num::MISELECT,
        SMAIA,
        any,
        |h, _| h.csr.miselect,
        Some(|h, _, v| {
            h.csr.miselect = v & ISELECT_MASK;
        }),
    ),
    csr_rmw(num::MIREG, SMAIA, ireg, ireg_read, ireg_rmw),
    csr_rmw(num::MTOPEI, SMAIA, topei, topei_read, topei_claim),
    csr(num::MTOPI, SMAIA, any, |h, _| h.mtopi(), None),
    csr(
        num::SISELECT,
        SSAIA,
        any,
        |h, _| h.csr.siselect,
        Some(|h, _, v| {
            h.csr.siselect = v & ISELECT_MASK;
        }),
    ),
    csr_rmw(num::SIREG, SSAIA, ireg, ireg_read, ireg_rmw),
    csr_rmw(num::STOPEI, SSAIA, topei, topei_read, topei_claim),
    csr(num::STOPI, SSAIA, any, |h, _| h.stopi(), None),
    csr(
        num::VSISELECT,
        SSAIA_H,
        any,
        |h, _| h.csr.vsiselect,
        Some(|h, _, v| {
            h.csr.vsiselect = v & ISELECT_MASK;
        }),
    ),
    csr_rmw(num::VSIREG, SSAIA_H, ireg, ireg_read, ireg_rmw),
    csr_rmw(num::VSTOPEI, SSAIA_H, topei, topei_read, topei_claim),
    csr(num::VSTOPI, SSAIA_H, any, |h, _| h.vstopi(), None),
    csr(num::HVIEN, SSAIA_H, any, |_, _| 0, Some(|_, _, _| {})),
    csr(
        num::HVICTL,
        SSAIA_H,
        any,
        |h, _| h.csr.hvictl,
        Some(|h, _, v| {
            h.csr.hvictl = v & hvictl::WRITABLE;
        }),
    ),
    csr(num::HVIPRIO1, SSAIA_H, any, |_, _| 0, Some(|_, _, _| {})),
    csr(num::HVIPRIO2, SSAIA_H, any, |_, _| 0, Some(|_, _, _| {})),
    csr(
        num::MTINST,
        H,
        any,
        |h, _| h.csr.mtinst,
        Some(|h, _, v| h.csr.mtinst = v),
    ),
    csr(
        num::MTVAL2,
        H,
        any,
        |h, _| h.csr.mtval2,
        Some(|h, _, v| h.csr.mtval2 = v),
    ),
    // Memory protection.
    range(
        num::PMPCFG0,
        num::PMPCFG15,
        any,
        |h, n| h.pmp.read_cfg(usize::from(n - num::PMPCFG0)).unwrap_or(0),
        Some(|h, n, v| {
            if h.pmp.write_cfg(usize::from(n - num::PMPCFG0), v).is_ok() {
                h.pmp_changed();
            }
        }),
    ),
    range(
        num::PMPADDR0,
        num::PMPADDR63,
        any,
        |h, n| h.pmp.read_addr(usize::from(n - num::PMPADDR0)).unwrap_or(0),
        Some(|h, n, v| {
            if h.pmp.write_addr(usize::from(n - num::PMPADDR0), v).is_ok() {
                h.pmp_changed();
            }
        }),
    ),
    // Machine counters.
    csr(
        num::MCYCLE,
        &[],
        any,
        |h, _| h.cycle(),
        Some(|h, _, v| h.set_cycle(v)),
    ),
    csr(
        num::MINSTRET,
        &[],
        any,
        |h, _| h.instret,
        Some(|h, _, v| {
            // The instruction that writes minstret retires too; it must read back as
            // written on the next instruction.
            h.instret = v.wrapping_sub(1);
        }),
    ),
    range(
        num::MHPMCOUNTER3,
        num::MHPMCOUNTER31,
        any,
        |_, _| 0,
        Some(|_, _, _| {}),
    ),
    // Debug triggers (Sdtrig) with no trigger implemented: `tselect` holds only 0,
    // `tdata1` reads type 0 ("no trigger at this tselect"), `tinfo` reads 1, the value
    // the Sdtrig spec gives for a trigger that does not exist.
    csr(num::TSELECT, &[], any, |_, _| 0, Some(|_, _, _| {})),
    csr(num::TDATA1, &[], any, |_, _| 0, Some(|_, _, _| {})),
    csr(num::TDATA2, &[], any, |_, _| 0, Some(|_, _, _| {})),
    csr(num::TDATA3, &[], any, |_, _| 0, Some(|_, _, _| {})),
    csr(num::TINFO, &[], any, |_, _| 1, Some(|_, _, _| {})),
];

/// CSR number -> index in [`CSRS`] plus one (0: no such CSR).
static INDEX: LazyLock<Box<[u8; 4096]>> = LazyLock::new(|| {
    let mut index = Box::new([0u8; 4096]);
    for (i, c) in CSRS.iter().enumerate() {
        for n in c.lo..=c.hi {
            debug_assert_eq!(index[usize::from(n)], 0, "CSR {n:#x} listed twice");
            index[usize::from(n)] = u8::try_from(i + 1).expect("fewer than 255 CSR entries");
        }
    }
    index
});

fn lookup(csr: u16) -> Option<&'static Csr> {
    match INDEX.get(usize::from(csr)).copied() {
        Some(i) if i > 0 => Some(&CSRS[usize::from(i) - 1]),
        _ => None,
    }
}

// Predicates.

fn any(_: &Hart, _: u16, _: bool) -> Gate {
    Gate::Ok
}

/// FS off in `mstatus`, or with V=1 in `vsstatus`: always illegal, never virtual (H
/// chapter, "Trap Cause Codes": FS and VS deviate from the HS-qualified rule).
fn fp(h: &Hart, _: u16, _: bool) -> Gate {
    if h.fp_enabled() {
        Gate::Ok
    } else {
        Gate::Illegal
    }
}

/// `cycle`, `time`, `instret`, `hpmcounterN`: mcounteren below M, then hcounteren with
/// V=1 (virtual), then scounteren in U and VU (H chapter, "Hypervisor Counter-Enable
/// Register"; Priv spec 3.1.11).
fn counter(h: &Hart, csr: u16, _: bool) -> Gate {
    let bit = 1u64 << (csr & 0x1f);
    if h.prv == Priv::M {
        return Gate::Ok;
    }
    if h.csr.mcounteren & bit == 0 {
        return Gate::Illegal;
    }
    if h.virt {
        if h.csr.hcounteren & bit == 0 || (h.prv == Priv::U && h.csr.scounteren & bit == 0) {
            return Gate::Virtual;
        }
    } else if h.prv == Priv::U && h.csr.scounteren & bit == 0 {
        return Gate::Illegal;
    }
    Gate::Ok
}

/// `satp`: TVM traps HS-mode accesses; with V=1 (reaching `vsatp`) VTVM traps VS-mode
/// ones (H chapter: TVM affects only HS-mode).
fn satp(h: &Hart, _: u16, _: bool) -> Gate {
    match (h.prv, h.virt) {
        (Priv::S, false) if h.csr.mstatus & mstatus::TVM != 0 => Gate::Illegal,
        (Priv::S, true) if h.csr.hstatus & hstatus::VTVM != 0 => Gate::Virtual,
        _ => Gate::Ok,
    }
}

/// `hgatp`: TVM traps HS-mode accesses (H chapter, "hgatp"); not VS-mode ones, which
/// are virtual instructions whatever TVM says ("Trap Cause Codes").
fn hgatp(h: &Hart, _: u16, _: bool) -> Gate {
    if h.prv == Priv::S && !h.virt && h.csr.mstatus & mstatus::TVM != 0 {
        Gate::Illegal
    } else {
        Gate::Ok
    }
}

/// `stimecmp` (Sstc): below M it needs menvcfg.STCE and mcounteren.TM; with V=1
/// (reaching `vstimecmp`) also henvcfg.STCE and hcounteren.TM, else virtual.
fn sstc(h: &Hart, _: u16, _: bool) -> Gate {
    if h.prv == Priv::M {
        return Gate::Ok;
    }
    let tm = counteren::TM;
    if h.csr.menvcfg & menvcfg::STCE == 0 || h.csr.mcounteren & tm == 0 {
        return Gate::Illegal;
    }
    if h.virt && (h.henvcfg() & menvcfg::STCE == 0 || h.csr.hcounteren & tm == 0) {
        return Gate::Virtual;
    }
    Gate::Ok
}

/// `vstimecmp` by its own number (from M or HS): as `stimecmp` from HS. It needs both
/// H (its table entry) and Sstc: Sstc adds "the VS-level vstimecmp CSR", its "similar
/// facility" for the hypervisor extension's VS-mode (Sstc chapter), so a hart without
/// H has no such CSR.
fn vstimecmp(h: &Hart, _: u16, _: bool) -> Gate {
    if !h.exts.has(Ext::Sstc) {
        return Gate::Illegal;
    }
    if h.prv == Priv::M {
        return Gate::Ok;
    }
    if h.csr.menvcfg & menvcfg::STCE == 0 || h.csr.mcounteren & counteren::TM == 0 {
        return Gate::Illegal;
    }
    Gate::Ok
}

/// `mireg`, `sireg`, `vsireg` (AIA spec, "CSRs Added to Harts" and "Indirectly
/// accessed interrupt-file registers"): what the selected register number allows. At M
/// and S level: the priority array (even numbers; odd ones do not exist on RV64) and,
/// with an IMSIC, the interrupt file. At VS level (`vsireg`, or `sireg` with V=1): only
/// the guest file `hstatus.VGEIN` selects; the priority numbers and a missing file are
/// "inaccessible" (illegal from M and HS, virtual from VS); reserved numbers are illegal.
/// These rules replace the H extension's HS-qualified rule for these CSRs.
fn ireg(h: &Hart, csr: u16, _: bool) -> Gate {
    if h.virt && h.prv == Priv::U {
        // VU-mode: always a virtual instruction.
        return Gate::Virtual;
    }
    let file_rules = |sel: u64, odd: Gate| match sel {
        0x70..=0x7f => Gate::Ok,
        _ if sel % 2 == 1 => odd,
        _ => Gate::Ok,
    };
    let vs_level = csr == num::VSIREG || (csr == num::SIREG && h.virt);
    if !vs_level {
        let (sel, file) = if csr == num::MIREG {
            (h.csr.miselect, h.imsic.is_some())
        } else {
            (h.csr.siselect, h.imsic.is_some())
        };
        return match sel {
            iselect::IPRIO0..=iselect::IPRIO15 if sel % 2 == 0 => Gate::Ok,
            iselect::FILE_FIRST..=iselect::FILE_LAST if file => file_rules(sel, Gate::Illegal),
            _ => Gate::Illegal,
        };
    }
    let inaccessible = if h.virt { Gate::Virtual } else { Gate::Illegal };
    match h.csr.vsiselect {
        iselect::IPRIO0..=iselect::IPRIO15 => inaccessible,
        sel @ iselect::FILE_FIRST..=iselect::FILE_LAST => {
            if h.guest_file().is_some() {
                file_rules(sel, inaccessible)
            } else {
                inaccessible
            }
        }
        _ => Gate::Illegal,
    }
}

/// `mtopei`, `stopei`, `vstopei`: only with an IMSIC; the VS one only while
/// `hstatus.VGEIN` names a guest file (else illegal from M/HS, virtual from VS).
fn topei(h: &Hart, csr: u16, _: bool) -> Gate {
    let Some(files) = &h.imsic else {
        return Gate::Illegal;
    };
    let vs_level = csr == num::VSTOPEI || (csr == num::STOPEI && h.virt);
    if !vs_level || files.guest(h.vgein()).is_some() {
        Gate::Ok
    } else if h.virt {
        Gate::Virtual
    } else {
        Gate::Illegal
    }
}

/// The interrupt file `*ireg`/`*topei` number `csr` reaches (after the VS redirection).
fn file_of(h: &Hart, csr: u16) -> Option<&File> {
    let files = h.imsic.as_deref()?;
    match csr {
        num::MIREG | num::MTOPEI => Some(&files.m),
        num::SIREG | num::STOPEI => Some(&files.s),
        _ => files.guest(h.vgein()),
    }
}

fn selected(h: &Hart, csr: u16) -> u64 {
    match csr {
        num::MIREG => h.csr.miselect,
        num::SIREG => h.csr.siselect,
        _ => h.csr.vsiselect,
    }
}

fn ireg_read(h: &mut Hart, csr: u16) -> u64 {
    let sel = selected(h, csr);
    match (sel, file_of(h, csr)) {
        // The priority arrays are read-only zero.
        (iselect::FILE_FIRST..=iselect::FILE_LAST, Some(f)) => f.read(sel).unwrap_or(0),
        _ => 0,
    }
}

fn ireg_rmw(h: &mut Hart, csr: u16, f: &dyn Fn(u64) -> u64) -> u64 {
    let sel = selected(h, csr);
    match (sel, file_of(h, csr)) {
        (iselect::FILE_FIRST..=iselect::FILE_LAST, Some(file)) => file.modify(sel, f).unwrap_or(0),
        _ => 0,
    }
}

fn topei_read(h: &mut Hart, csr: u16) -> u64 {
    file_of(h, csr).map_or(0, File::topei)
}

/// A write of `*topei` claims the identity it reads (the value written is ignored).
fn topei_claim(h: &mut Hart, csr: u16, _: &dyn Fn(u64) -> u64) -> u64 {
    let id = file_of(h, csr).map_or(0, File::claim);
    if id != 0 {
        let level = match csr {
            num::MTOPEI => 0,
            num::STOPEI => 1,
            _ => 2,
        };
        h.stats.imsic_claims[level] += 1;
    }
    id
}

impl Hart {
    /// The generic rule of CSR numbers and the register's predicate: the entry to use
    /// (the VS copy when redirected) and its number, or the exception.
    fn csr_gate(&self, csr: u16, write: bool, raw: u32) -> Result<(&'static Csr, u16), Exception> {
        let illegal = Exception::illegal(raw);
        let entry = lookup(csr).ok_or(illegal)?;
        if entry.exts.iter().any(|&e| !self.exts.has(e)) {
            return Err(illegal);
        }
        if write && (num::is_read_only(csr) || entry.write.is_none()) {
            return Err(illegal);
        }
        let level = num::level(csr);
        let gate = match (self.prv, self.virt) {
            (Priv::M, _) => Gate::Ok,
            (Priv::S, false) if level == 3 => Gate::Illegal,
            (Priv::S, false) => Gate::Ok,
            (Priv::U, false) if level == 0 => Gate::Ok,
            (Priv::U, false) => Gate::Illegal,
            // VS: M-level is illegal; hypervisor and VS CSRs by number are virtual.
            (Priv::S, true) => match level {
                3 => Gate::Illegal,
                2 => Gate::Virtual,
                _ => Gate::Ok,
            },
            (Priv::U, true) => match level {
                3 => Gate::Illegal,
                1 | 2 => Gate::Virtual,
                _ => Gate::Ok,
            },
        };
        let gate = match gate {
            Gate::Ok => (entry.pred)(self, csr, write),
            // H chapter, "Trap Cause Codes": V=1 makes an access virtual only if it is
            // HS-qualified, "allowed in HS-mode, assuming mstatus.TVM=0". One that the
            // register's own predicate refuses for reasons M controls (Sstc's
            // menvcfg.STCE and mcounteren.TM) stays illegal.
            Gate::Virtual if (entry.pred)(self, csr, write) == Gate::Illegal => Gate::Illegal,
            g => g,
        };
        match gate {
            Gate::Ok => {}
            Gate::Illegal => return Err(illegal),
            Gate::Virtual => return Err(Exception::virtual_insn(raw)),
        }
        if self.virt && level == 1 && VS_COPIES.contains(&csr) {
            let vs = csr + 0x100;
            return Ok((lookup(vs).ok_or(illegal)?, vs));
        }
        Ok((entry, csr))
    }

    /// A Zicsr access of CSR `csr`: reads it and, with `write`, replaces it with
    /// `write(old)`; returns the value read (Unpriv spec "Zicsr"). `Err` is the exception
    /// to raise. Registers with an atomic read-modify-write (IMSIC files, `*topei`,
    /// `mip`) do it in one step.
    pub fn csr_op(
        &mut self,
        csr: u16,
        raw: u32,
        write: Option<&dyn Fn(u64) -> u64>,
    ) -> Result<u64, Exception> {
        let (entry, n) = self.csr_gate(csr, write.is_some(), raw)?;
        let Some(f) = write else {
            return Ok((entry.read)(self, n));
        };
        if let Some(rmw) = entry.rmw {
            return Ok(rmw(self, n, f));
        }
        let old = (entry.read)(self, n);
        if let Some(w) = entry.write {
            w(self, n, f(old));
        }
        Ok(old)
    }

    /// Reads CSR `csr` as a Zicsr instruction that does not write it.
    pub fn csr_read(&mut self, csr: u16, raw: u32) -> Result<u64, Exception> {
        self.csr_op(csr, raw, None)
    }

    /// Writes `value` to CSR `csr` as `csrrw` does.
    pub fn csr_write(&mut self, csr: u16, value: u64, raw: u32) -> Result<(), Exception> {
        self.csr_op(csr, raw, Some(&|_| value)).map(|_| ())
    }

    /// Floating point is enabled: FS on, and with V=1 in `vsstatus` too (H chapter,
    /// "vsstatus").
    pub fn fp_enabled(&self) -> bool {
        self.csr.mstatus & mstatus::FS != 0 && (!self.virt || self.csr.vsstatus & mstatus::FS != 0)
    }

    /// Marks the floating-point state dirty: `mstatus.FS`, and with V=1 `vsstatus.FS`.
    #[inline]
    pub fn fs_dirty(&mut self) {
        self.csr.mstatus |= mstatus::FS;
        if self.virt {
            self.csr.vsstatus |= mstatus::FS;
        }
    }

    /// `mip` as software reads it now: a comparator written since the last sample
    /// must show at once.
    fn mip_now(&mut self) -> u64 {
        self.update_timers();
        self.mip()
    }

    /// `mideleg`: with H the VS-level interrupts and SGEI are read-only one (H chapter,
    /// "mideleg": required for SGEI when GEILEN is nonzero, left open otherwise;
    /// Rivet, like QEMU, delegates it whatever GEILEN is).
    pub fn mideleg(&self) -> u64 {
        let mut m = self.csr.mideleg;
        if self.exts.has(Ext::H) {
            m |= VS_INTERRUPTS | irq::SGEIP;
        }
        m
    }

    /// The bits of `hie`/`hip` (and the H bits of `mie`/`mip`): the VS-level
    /// interrupts and SGEI. `hie.SGEIE` is writable even while GEILEN is 0 (allowed:
    /// the H chapter requires only the bits whose interrupt can become pending to be
    /// writable; QEMU does the same).
    fn hie_mask(&self) -> u64 {
        if self.exts.has(Ext::H) {
            VS_INTERRUPTS | irq::SGEIP
        } else {
            0
        }
    }

    /// `hstatus.VGEIN`.
    pub fn vgein(&self) -> u64 {
        (self.csr.hstatus & hstatus::VGEIN) >> hstatus::VGEIN_SHIFT
    }

    /// The guest interrupt file `hstatus.VGEIN` selects, if it is implemented.
    pub fn guest_file(&self) -> Option<&File> {
        self.imsic.as_deref()?.guest(self.vgein())
    }

    /// The bits of `mvip` with `mvien` all zero: aliases of mip's software-writable
    /// SSIP, SEIP and (while Sstc does not own it) STIP.
    fn mvip_mask(&self) -> u64 {
        let mut m = irq::SSIP | irq::SEIP;
        if self.csr.menvcfg & menvcfg::STCE == 0 {
            m |= irq::STIP;
        }
        m
    }

    /// Bits GEILEN:1 of `hgeie`/`hgeip`.
    fn hgeie_mask(&self) -> u64 {
        ((1u64 << self.geilen) - 1) << 1
    }

    /// `hgeip`: the outputs of the IMSIC's guest interrupt files.
    pub fn hgeip(&self) -> u64 {
        self.signals.hgeip() & self.hgeie_mask()
    }

    /// `henvcfg` as it takes effect: PBMTE, STCE and ADUE read as zero while `menvcfg`
    /// has them clear (Svpbmt, Sstc, Svadu specs; as QEMU does).
    pub fn henvcfg(&self) -> u64 {
        let gated = menvcfg::PBMTE | menvcfg::STCE | menvcfg::ADUE;
        self.csr.henvcfg & (!gated | self.csr.menvcfg)
    }

    fn henvcfg_writable(&self) -> u64 {
        let mut w = menvcfg::S_WRITABLE;
        for (ext, bit) in [
            (Ext::Svadu, menvcfg::ADUE),
            (Ext::Svpbmt, menvcfg::PBMTE),
            (Ext::Sstc, menvcfg::STCE),
        ] {
            if self.exts.has(ext) {
                w |= bit;
            }
        }
        w
    }

    /// `time`: with V=1 it reads `time + htimedelta` (H chapter, "htimedelta").
    pub fn time(&self) -> u64 {
        let t = self.shared.aclint.mtime();
        if self.virt {
            t.wrapping_add(self.csr.htimedelta)
        } else {
            t
        }
    }

    fn set_mstatus(&mut self, v: u64) {
        // SUM, MPRV, MPP and MPV only select among L1 tables; MXR changes what entries
        // grant.
        let flush = (v ^ self.csr.mstatus) & mstatus::MXR;
        self.csr.mstatus = v;
        if flush != 0 {
            self.data_regime_changed();
        }
    }

    fn pmp_changed(&mut self) {
        self.tlb.flush_l1();
        // Chained exits skip the fetch check, which PMP may now fail.
        self.link_epoch += 1;
    }

    fn write_satp(&mut self, value: u64) {
        // Priv spec 12.1.11: a write with an unsupported MODE has no effect. MODE (4
        // bits), ASID (ASIDLEN = 16) and PPN (44 bits) fill all 64 bits.
        if !self.atp_mode_supported(value) {
            return;
        }
        if value != self.csr.satp {
            self.csr.satp = value;
            self.satp_changed();
        }
    }

    /// Whether the MODE field of a `satp`, `vsatp` or `hgatp` value is one the hart
    /// implements: Bare, and the paged modes up to the machine's largest.
    fn atp_mode_supported(&self, value: u64) -> bool {
        let mode = value >> atp::MODE_SHIFT;
        mode == 0 || (8..=self.max_satp_mode).contains(&mode)
    }

    /// `vsatp`, by its number or as `satp` with V=1: a write of an unsupported mode is
    /// ignored as for `satp` (H chapter, "vsatp": allowed with V=0, required with V=1).
    fn write_vsatp(&mut self, value: u64) {
        if !self.atp_mode_supported(value) {
            return;
        }
        if value != self.csr.vsatp {
            self.csr.vsatp = value;
            self.guest_space_changed();
        }
    }

    /// `hgatp` (H chapter, "hgatp"): Bare, Sv39x4, Sv48x4 and Sv57x4. "A write to hgatp
    /// with an unsupported MODE value is not ignored as it is for satp. Instead, the
    /// fields of hgatp are WARL": MODE keeps its old value and VMID and PPN are written
    /// (QEMU ignores the whole write). VMID is 14 bits and kept with MODE = Bare, which
    /// is how hypervisors measure VMIDLEN; bits 59:58 are zero; PPN[1:0] read as zero
    /// in the x4 modes, whose root table is 16 KiB-aligned.
    fn write_hgatp(&mut self, value: u64) {
        let mode = if self.atp_mode_supported(value) {
            value >> atp::MODE_SHIFT
        } else {
            self.csr.hgatp >> atp::MODE_SHIFT
        };
        let mut ppn = value & atp::PPN_MASK;
        if mode != 0 {
            ppn &= !3;
        }
        let v = mode << atp::MODE_SHIFT
            | (value >> atp::VMID_SHIFT & atp::VMID_MASK) << atp::VMID_SHIFT
            | ppn;
        if v != self.csr.hgatp {
            self.csr.hgatp = v;
            self.guest_space_changed();
        }
    }
}

fn with_sd(ms: u64) -> u64 {
    let dirty = ms & mstatus::FS == mstatus::FS || ms & mstatus::XS == mstatus::XS;
    if dirty {
        ms | mstatus::SD
    } else {
        ms & !mstatus::SD
    }
}

/// xtvec MODE is WARL: 0 (direct) and 1 (vectored) only; other values keep the old
/// register, as QEMU does.
fn legal_tvec(old: u64, new: u64) -> u64 {
    if new & 3 < 2 {
        new
    } else {
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hart::testutil::{self, csrr, csrw};
    use rivet_jit::arch::{cause, ExtSet};

    /// The instruction bits a trap reports in `xtval` (any CSR instruction will do).
    const RAW: u32 = 0x1234_5073;

    /// The cause of the exception a read (`write` false) or write of `csr` raises in the
    /// hart's current mode, after checking that `xtval` gets the instruction bits.
    fn fault(h: &mut Hart, csr: u16, write: bool) -> Option<u64> {
        let r = if write {
            h.csr_write(csr, 0, RAW)
        } else {
            h.csr_read(csr, RAW).map(|_| ())
        };
        r.err().map(|e| {
            assert_eq!(e.tval, u64::from(RAW), "tval of CSR {csr:#x}");
            e.cause
        })
    }

    /// Every hypervisor and VS CSR Rivet implements (`vstimecmp` belongs to Sstc too).
    const H_CSRS: [u16; 22] = [
        num::HSTATUS,
        num::HEDELEG,
        num::HIDELEG,
        num::HIE,
        num::HTIMEDELTA,
        num::HCOUNTEREN,
        num::HGEIE,
        num::HENVCFG,
        num::HTVAL,
        num::HIP,
        num::HVIP,
        num::HTINST,
        num::HGATP,
        num::VSSTATUS,
        num::VSIE,
        num::VSTVEC,
        num::VSSCRATCH,
        num::VSEPC,
        num::VSCAUSE,
        num::VSTVAL,
        num::VSIP,
        num::VSATP,
    ];

    #[test]
    fn h_and_vs_csrs_keep_only_their_writable_bits() {
        let mut h = testutil::hart();
        // menvcfg enables every henvcfg bit that depends on it.
        csrw(&mut h, num::MENVCFG, u64::MAX);
        let env = menvcfg::FIOM
            | menvcfg::CBIE
            | menvcfg::CBCFE
            | menvcfg::CBZE
            | menvcfg::ADUE
            | menvcfg::PBMTE
            | menvcfg::STCE;
        let vs_view = mstatus::SIE
            | mstatus::SPIE
            | mstatus::SPP
            | mstatus::FS
            | mstatus::SUM
            | mstatus::MXR
            | mstatus::SD;
        // (CSR, read after writing all ones, read after writing zero). H chapter:
        // hstatus keeps VSXL = 64 and, with GEILEN = 0, VGEIN = 0; hedeleg's writable
        // bits are those of table "Bits of hedeleg that must be writable"; hideleg, hie
        // and hvip hold the VS-level interrupts 10, 6, 2; hgeie has no bit without
        // guest external interrupt files; vsstatus keeps UXL = 64; vsepc bit 0 is zero
        // (IALIGN = 16).
        let cases = [
            (
                num::HSTATUS,
                hstatus::WRITABLE | hstatus::VSXL64,
                hstatus::VSXL64,
            ),
            (num::HEDELEG, 0xb1ff, 0),
            (num::HIDELEG, 0x444, 0),
            (num::HIE, 0x1444, 0),
            (num::HVIP, 0x444, 0),
            (num::HTIMEDELTA, u64::MAX, 0),
            (num::HCOUNTEREN, 7, 0),
            (num::HGEIE, 0, 0),
            (num::HENVCFG, env, 0),
            (num::HTVAL, u64::MAX, 0),
            (num::HTINST, u64::MAX, 0),
            (
                num::VSSTATUS,
                vs_view | mstatus::VS_RESET,
                mstatus::VS_RESET,
            ),
            (num::VSSCRATCH, u64::MAX, 0),
            (num::VSEPC, !1, 0),
            (num::VSCAUSE, u64::MAX, 0),
            (num::VSTVAL, u64::MAX, 0),
            (num::VSTIMECMP, u64::MAX, 0),
            (num::MTVAL2, u64::MAX, 0),
            (num::MTINST, u64::MAX, 0),
        ];
        for (n, ones, zero) in cases {
            csrw(&mut h, n, u64::MAX);
            assert_eq!(csrr(&mut h, n), ones, "CSR {n:#x} after all ones");
            csrw(&mut h, n, 0);
            assert_eq!(csrr(&mut h, n), zero, "CSR {n:#x} after zero");
        }
        // hip: only VSSIP is writable (an alias of hvip.VSSIP).
        csrw(&mut h, num::HIP, u64::MAX);
        assert_eq!(csrr(&mut h, num::HIP), irq::VSSIP);
        assert_eq!(csrr(&mut h, num::HVIP), irq::VSSIP);
        csrw(&mut h, num::HIP, 0);
        assert_eq!(csrr(&mut h, num::HVIP), 0);
        // vstvec: MODE is WARL (direct or vectored); a reserved mode keeps the register.
        csrw(&mut h, num::VSTVEC, 0x8000_0101);
        assert_eq!(csrr(&mut h, num::VSTVEC), 0x8000_0101);
        csrw(&mut h, num::VSTVEC, 0x8000_0202);
        assert_eq!(csrr(&mut h, num::VSTVEC), 0x8000_0101);
        // hgeip is read-only, even for M.
        assert_eq!(fault(&mut h, num::HGEIP, true), Some(cause::ILLEGAL_INSN));
        assert_eq!(csrr(&mut h, num::HGEIP), 0);
        // With guest interrupt files, hgeie bits GEILEN:1 become writable.
        h.geilen = 3;
        csrw(&mut h, num::HGEIE, u64::MAX);
        assert_eq!(csrr(&mut h, num::HGEIE), 0b1110);
    }

    #[test]
    fn mstatus_gains_mpv_and_gva_only_with_h() {
        let mut h = testutil::hart();
        csrw(&mut h, num::MSTATUS, mstatus::MPV | mstatus::GVA);
        let ms = csrr(&mut h, num::MSTATUS);
        assert_eq!(
            ms & (mstatus::MPV | mstatus::GVA),
            mstatus::MPV | mstatus::GVA
        );
        // They are M-level fields: sstatus does not show them.
        let ss = csrr(&mut h, num::SSTATUS);
        assert_eq!(ss & (mstatus::MPV | mstatus::GVA), 0);
        let mut h = testutil::hart();
        h.exts = ExtSet::CPU.without(Ext::H);
        csrw(&mut h, num::MSTATUS, mstatus::MPV | mstatus::GVA);
        assert_eq!(
            csrr(&mut h, num::MSTATUS) & (mstatus::MPV | mstatus::GVA),
            0
        );
    }

    #[test]
    fn mideleg_holds_the_vs_interrupts_read_only_one() {
        // H chapter, "mideleg": bits 10, 6, 2 read-only one, and bit 12 with GEILEN > 0
        // (Rivet, like QEMU, also with GEILEN = 0, which the spec leaves open).
        let mut h = testutil::hart();
        csrw(&mut h, num::MIDELEG, 0);
        assert_eq!(csrr(&mut h, num::MIDELEG), 0x1444);
        csrw(&mut h, num::MIDELEG, u64::MAX);
        assert_eq!(csrr(&mut h, num::MIDELEG), 0x1666);
        h.geilen = 1;
        assert_eq!(csrr(&mut h, num::MIDELEG), 0x1666);
        let mut h = testutil::hart();
        h.exts = ExtSet::CPU.without(Ext::H);
        csrw(&mut h, num::MIDELEG, 0);
        assert_eq!(csrr(&mut h, num::MIDELEG), 0);
        csrw(&mut h, num::MIDELEG, u64::MAX);
        assert_eq!(csrr(&mut h, num::MIDELEG), 0x222);
    }

    #[test]
    fn medeleg_gains_ecall_from_vs_and_the_guest_causes_with_h() {
        // ecall from VS (10), guest-page faults and virtual instruction (20-23) become
        // delegable; ecall from M (11) never is.
        let mut h = testutil::hart();
        csrw(&mut h, num::MEDELEG, u64::MAX);
        let m = csrr(&mut h, num::MEDELEG);
        assert_eq!(m, 0xf0_b7ff);
        assert_ne!(m & (1 << cause::ECALL_VS), 0);
        assert_eq!(m & (1 << cause::ECALL_M), 0);
        for c in 20..=23 {
            assert_ne!(m & (1 << c), 0, "cause {c}");
        }
        h.exts = ExtSet::CPU.without(Ext::H);
        csrw(&mut h, num::MEDELEG, u64::MAX);
        assert_eq!(csrr(&mut h, num::MEDELEG), 0xb3ff);
    }

    #[test]
    fn mie_and_mip_gain_the_hypervisor_interrupt_bits() {
        // SGEIE is writable whatever GEILEN is (as in QEMU; allowed).
        let mut h = testutil::hart();
        csrw(&mut h, num::MIE, u64::MAX);
        assert_eq!(csrr(&mut h, num::MIE), 0x1eee);
        // mip: SSIP, STIP (without Sstc's STCE), SEIP and VSSIP (hvip's) are writable;
        // VSEIP and VSTIP are read-only in mip (H chapter, "mip and mie").
        csrw(&mut h, num::MIP, u64::MAX);
        assert_eq!(csrr(&mut h, num::MIP), 0x226);
        assert_eq!(csrr(&mut h, num::HVIP), irq::VSSIP);
        csrw(&mut h, num::MIP, 0);
        assert_eq!(csrr(&mut h, num::MIP), 0);
        let mut h = testutil::hart();
        h.exts = ExtSet::CPU.without(Ext::H);
        csrw(&mut h, num::MIE, u64::MAX);
        assert_eq!(csrr(&mut h, num::MIE), 0xaaa);
        csrw(&mut h, num::MIP, u64::MAX);
        assert_eq!(csrr(&mut h, num::MIP), 0x222);
    }

    #[test]
    fn vssip_is_one_bit_seen_through_hvip_hip_mip_and_vsip() {
        // H chapter, "hip": hip.VSSIP aliases hvip.VSSIP; "mip and mie": mip's too;
        // "vsip and vsie": vsip.SSIP aliases hip.VSSIP while hideleg bit 2 is set, and
        // is read-only zero otherwise.
        let mut h = testutil::hart();
        csrw(&mut h, num::HIDELEG, irq::VSSIP);
        csrw(&mut h, num::HVIP, irq::VSSIP);
        assert_eq!(csrr(&mut h, num::HIP), irq::VSSIP);
        assert_eq!(csrr(&mut h, num::MIP) & irq::VSSIP, irq::VSSIP);
        assert_eq!(csrr(&mut h, num::VSIP), irq::SSIP);
        csrw(&mut h, num::HIP, 0);
        assert_eq!(csrr(&mut h, num::HVIP), 0);
        assert_eq!(csrr(&mut h, num::VSIP), 0);
        csrw(&mut h, num::MIP, irq::VSSIP);
        assert_eq!(csrr(&mut h, num::HVIP), irq::VSSIP);
        csrw(&mut h, num::VSIP, 0);
        assert_eq!(csrr(&mut h, num::HVIP), 0);
        csrw(&mut h, num::VSIP, irq::SSIP);
        assert_eq!(csrr(&mut h, num::HVIP), irq::VSSIP);
        csrw(&mut h, num::HIDELEG, 0);
        assert_eq!(csrr(&mut h, num::VSIP), 0, "read-only zero undelegated");
        csrw(&mut h, num::VSIP, 0);
        assert_eq!(
            csrr(&mut h, num::HVIP),
            irq::VSSIP,
            "write ignored undelegated"
        );
    }

    #[test]
    fn vseip_and_vstip_in_hip_and_vsip_are_read_only_views_of_hvip() {
        let mut h = testutil::hart();
        csrw(&mut h, num::HIDELEG, 0x444);
        csrw(&mut h, num::HVIP, irq::VSEIP | irq::VSTIP);
        assert_eq!(csrr(&mut h, num::HIP), irq::VSEIP | irq::VSTIP);
        // VS sees them at the S positions 9 and 5.
        assert_eq!(csrr(&mut h, num::VSIP), irq::SEIP | irq::STIP);
        csrw(&mut h, num::HIP, 0);
        csrw(&mut h, num::VSIP, 0);
        assert_eq!(csrr(&mut h, num::HIP), irq::VSEIP | irq::VSTIP);
        assert_eq!(csrr(&mut h, num::HVIP), irq::VSEIP | irq::VSTIP);
        // Only the delegated ones show in vsip.
        csrw(&mut h, num::HIDELEG, irq::VSTIP);
        assert_eq!(csrr(&mut h, num::VSIP), irq::STIP);
    }

    #[test]
    fn hie_mie_and_vsie_enable_bits_alias() {
        let mut h = testutil::hart();
        // VSEI and VSTI delegated to VS, VSSI not.
        csrw(&mut h, num::HIDELEG, irq::VSEIP | irq::VSTIP);
        csrw(&mut h, num::HIE, u64::MAX);
        assert_eq!(csrr(&mut h, num::HIE), 0x1444, "no S bits in hie");
        assert_eq!(csrr(&mut h, num::MIE), 0x1444);
        assert_eq!(csrr(&mut h, num::VSIE), irq::SEIP | irq::STIP);
        csrw(&mut h, num::VSIE, 0);
        assert_eq!(
            csrr(&mut h, num::HIE),
            irq::VSSIP | irq::SGEIP,
            "VSSIE and SGEIE are not vsie's to clear"
        );
        csrw(&mut h, num::VSIE, u64::MAX);
        assert_eq!(csrr(&mut h, num::HIE), 0x1444);
        csrw(&mut h, num::MIE, 0);
        assert_eq!(csrr(&mut h, num::HIE), 0);
        assert_eq!(csrr(&mut h, num::VSIE), 0);
    }

    #[test]
    fn hgatp_keeps_a_14_bit_vmid_with_bare_and_a_16k_aligned_root() {
        // H chapter, "hgatp": VMIDLEN is found by writing all ones with MODE = Bare;
        // bits 59:58 are zero; PPN[1:0] read as zero in the x4 modes.
        let mut h = testutil::hart();
        csrw(&mut h, num::HGATP, (1 << 60) - 1);
        let v = csrr(&mut h, num::HGATP);
        assert_eq!(v >> 60, 0);
        assert_eq!(v >> atp::VMID_SHIFT & 0x3fff, 0x3fff);
        assert_eq!(v >> 58 & 3, 0);
        for mode in [8u64, 9, 10] {
            csrw(&mut h, num::HGATP, mode << 60 | 0x3fff << 44 | 0x8_0003);
            assert_eq!(
                csrr(&mut h, num::HGATP),
                mode << 60 | 0x3fff << 44 | 0x8_0000,
                "mode {mode}"
            );
        }
    }

    #[test]
    fn hgatp_keeps_its_mode_but_takes_the_other_fields_of_an_unsupported_mode() {
        // H chapter, "hgatp": unlike satp, such a write is not ignored; the fields are
        // WARL. KVM's probe (write Sv57x4, Sv48x4, Sv39x4 and keep the first that reads
        // back) still sees an unsupported mode as absent.
        let mut h = testutil::hart();
        h.max_satp_mode = 8;
        csrw(&mut h, num::HGATP, 8 << 60 | 1 << 44 | 0x8_0000);
        csrw(&mut h, num::HGATP, 9 << 60 | 2 << 44 | 0x9_0003);
        assert_eq!(csrr(&mut h, num::HGATP), 8 << 60 | 2 << 44 | 0x9_0000);
        csrw(&mut h, num::HGATP, 0);
        for mode in [10u64, 9, 5, 1, 15] {
            csrw(&mut h, num::HGATP, mode << 60 | 3 << 44 | 0x9_0003);
            assert_eq!(csrr(&mut h, num::HGATP), 3 << 44 | 0x9_0003, "mode {mode}");
        }
        csrw(&mut h, num::HGATP, 8 << 60);
        assert_eq!(csrr(&mut h, num::HGATP) >> 60, 8);
    }

    #[test]
    fn vsatp_ignores_a_write_of_an_unsupported_mode() {
        // H chapter, "vsatp": with V=0 such a write may be ignored; with V=1 (through
        // satp) it must be, and no write to vsatp is effected.
        let mut h = testutil::hart();
        h.max_satp_mode = 8;
        let sv39 = 8 << 60 | 0xabcd << 44 | 0x8_1234;
        csrw(&mut h, num::VSATP, sv39);
        assert_eq!(csrr(&mut h, num::VSATP), sv39);
        for mode in [1u64, 5, 9, 10, 15] {
            csrw(&mut h, num::VSATP, mode << 60 | 0x777);
            assert_eq!(csrr(&mut h, num::VSATP), sv39, "mode {mode}");
        }
        h.set_mode(Priv::S, true);
        h.csr_write(num::SATP, 9 << 60 | 0x42, RAW).unwrap();
        assert_eq!(h.csr.vsatp, sv39);
        h.csr_write(num::SATP, 0, RAW).unwrap();
        assert_eq!(h.csr.vsatp, 0);
        assert_eq!(h.csr.satp, 0, "the HS satp is not reached");
    }

    #[test]
    fn henvcfg_bits_read_zero_while_menvcfg_has_them_clear() {
        // Svpbmt, Svadu, Sstc: henvcfg.PBMTE/ADUE/STCE are read-only zero while the
        // menvcfg bit is zero.
        let gated = menvcfg::PBMTE | menvcfg::ADUE | menvcfg::STCE;
        let mut h = testutil::hart();
        csrw(&mut h, num::HENVCFG, u64::MAX);
        assert_eq!(csrr(&mut h, num::HENVCFG), menvcfg::S_WRITABLE);
        assert_eq!(h.henvcfg() & gated, 0);
        csrw(&mut h, num::MENVCFG, gated);
        csrw(&mut h, num::HENVCFG, u64::MAX);
        assert_eq!(csrr(&mut h, num::HENVCFG), menvcfg::S_WRITABLE | gated);
        csrw(&mut h, num::MENVCFG, menvcfg::STCE);
        assert_eq!(
            csrr(&mut h, num::HENVCFG),
            menvcfg::S_WRITABLE | menvcfg::STCE
        );
        assert_eq!(h.henvcfg() & gated, menvcfg::STCE);
    }

    #[test]
    fn with_v1_the_s_numbers_reach_the_vs_copies() {
        let mut h = testutil::hart();
        csrw(&mut h, num::MENVCFG, menvcfg::STCE);
        csrw(&mut h, num::HENVCFG, menvcfg::STCE);
        csrw(&mut h, num::MCOUNTEREN, counteren::TM);
        csrw(&mut h, num::HCOUNTEREN, counteren::TM);
        csrw(&mut h, num::HIDELEG, VS_INTERRUPTS);
        let sv39 = 8 << 60 | 0x42;
        // (S CSR, value written in VS, what VS reads back through the S number).
        let cases = [
            (num::SSTATUS, mstatus::SUM, mstatus::SUM | mstatus::VS_RESET),
            (num::SIE, irq::SSIP, irq::SSIP),
            (num::STVEC, 0x8000_1000, 0x8000_1000),
            (num::SSCRATCH, 0x1234, 0x1234),
            (num::SEPC, 0x8000_2000, 0x8000_2000),
            (num::SCAUSE, 13, 13),
            (num::STVAL, 0xdead, 0xdead),
            (num::SIP, irq::SSIP, irq::SSIP),
            (num::STIMECMP, 1 << 62, 1 << 62),
            (num::SATP, sv39, sv39),
        ];
        for (s, value, seen) in cases {
            h.set_mode(Priv::S, false);
            let hs_before = h.csr_read(s, RAW).unwrap();
            h.set_mode(Priv::S, true);
            h.csr_write(s, value, RAW).unwrap();
            assert_eq!(h.csr_read(s, RAW).unwrap(), seen, "{s:#x} in VS");
            h.set_mode(Priv::S, false);
            assert_eq!(
                h.csr_read(s + 0x100, RAW).unwrap(),
                seen,
                "VS copy of {s:#x}"
            );
            assert_eq!(h.csr_read(s, RAW).unwrap(), hs_before, "HS {s:#x}");
        }
        // senvcfg and scounteren have no VS copy: VS reaches the HS registers.
        h.set_mode(Priv::S, true);
        h.csr_write(num::SENVCFG, menvcfg::CBZE, RAW).unwrap();
        h.csr_write(num::SCOUNTEREN, counteren::CY, RAW).unwrap();
        h.set_mode(Priv::S, false);
        assert_eq!(h.csr_read(num::SENVCFG, RAW).unwrap(), menvcfg::CBZE);
        assert_eq!(h.csr_read(num::SCOUNTEREN, RAW).unwrap(), counteren::CY);
    }

    #[test]
    fn without_h_the_hypervisor_and_vs_csrs_are_illegal() {
        let mut h = testutil::hart();
        h.exts = ExtSet::CPU.without(Ext::H);
        for n in H_CSRS
            .into_iter()
            .chain([num::HGEIP, num::MTVAL2, num::MTINST])
        {
            assert_eq!(fault(&mut h, n, false), Some(cause::ILLEGAL_INSN), "{n:#x}");
            assert_eq!(fault(&mut h, n, true), Some(cause::ILLEGAL_INSN), "{n:#x}");
        }
        assert_eq!(fault(&mut h, num::SSTATUS, false), None);
    }

    #[test]
    fn vstimecmp_needs_both_h_and_sstc() {
        for missing in [Ext::H, Ext::Sstc] {
            let mut h = testutil::hart();
            h.exts = ExtSet::CPU.without(missing);
            for write in [false, true] {
                let f = fault(&mut h, num::VSTIMECMP, write);
                assert_eq!(f, Some(cause::ILLEGAL_INSN), "without {missing:?}");
            }
        }
    }

    #[test]
    fn vs_and_vu_accesses_to_hypervisor_and_vs_csrs_are_virtual() {
        // H chapter, "Trap Cause Codes": an access HS-mode could make, assuming
        // mstatus.TVM = 0, raises a virtual-instruction exception.
        let mut h = testutil::hart();
        csrw(&mut h, num::MENVCFG, menvcfg::STCE);
        csrw(&mut h, num::MCOUNTEREN, counteren::TM);
        csrw(&mut h, num::MSTATUS, mstatus::TVM);
        for virt_mode in [Priv::S, Priv::U] {
            h.set_mode(virt_mode, true);
            for n in H_CSRS.into_iter().chain([num::VSTIMECMP]) {
                assert_eq!(fault(&mut h, n, false), Some(cause::VIRTUAL_INSN), "{n:#x}");
                assert_eq!(fault(&mut h, n, true), Some(cause::VIRTUAL_INSN), "{n:#x}");
            }
            // hgeip may be read by HS but written by nobody.
            assert_eq!(fault(&mut h, num::HGEIP, false), Some(cause::VIRTUAL_INSN));
            assert_eq!(fault(&mut h, num::HGEIP, true), Some(cause::ILLEGAL_INSN));
        }
    }

    #[test]
    fn vs_and_vu_accesses_hs_could_not_make_are_illegal() {
        // H chapter, "Trap Cause Codes": only HS-qualified accesses are virtual. Sstc:
        // with menvcfg.STCE or mcounteren.TM clear, stimecmp and vstimecmp are illegal
        // in every mode but M, VS and VU included.
        let mut h = testutil::hart();
        let (ill, vi) = (Some(cause::ILLEGAL_INSN), Some(cause::VIRTUAL_INSN));
        csrw(&mut h, num::HENVCFG, u64::MAX);
        csrw(&mut h, num::HCOUNTEREN, counteren::TM);
        for (menv, mcen) in [(0, counteren::TM), (menvcfg::STCE, 0)] {
            csrw(&mut h, num::MENVCFG, menv);
            csrw(&mut h, num::MCOUNTEREN, mcen);
            for p in [Priv::S, Priv::U] {
                h.set_mode(p, true);
                for write in [false, true] {
                    assert_eq!(fault(&mut h, num::VSTIMECMP, write), ill, "{p:?}");
                    assert_eq!(fault(&mut h, num::STIMECMP, write), ill, "{p:?}");
                }
                h.set_mode(Priv::M, false);
            }
        }
        // Allowed to HS, the same accesses are virtual (stimecmp from VS works).
        csrw(&mut h, num::MENVCFG, menvcfg::STCE);
        csrw(&mut h, num::MCOUNTEREN, counteren::TM);
        h.set_mode(Priv::U, true);
        assert_eq!(fault(&mut h, num::STIMECMP, false), vi);
        assert_eq!(fault(&mut h, num::VSTIMECMP, false), vi);
        h.set_mode(Priv::S, true);
        assert_eq!(fault(&mut h, num::VSTIMECMP, true), vi);
        assert_eq!(fault(&mut h, num::STIMECMP, false), None);
    }

    #[test]
    fn m_level_csrs_from_vs_and_vu_are_illegal() {
        let mut h = testutil::hart();
        for virt_mode in [Priv::S, Priv::U] {
            h.set_mode(virt_mode, true);
            for n in [
                num::MSTATUS,
                num::MEPC,
                num::MTVAL2,
                num::MTINST,
                num::MENVCFG,
                num::PMPCFG0,
                num::MCYCLE,
            ] {
                assert_eq!(fault(&mut h, n, false), Some(cause::ILLEGAL_INSN), "{n:#x}");
                assert_eq!(fault(&mut h, n, true), Some(cause::ILLEGAL_INSN), "{n:#x}");
            }
            assert_eq!(
                fault(&mut h, num::MHARTID, false),
                Some(cause::ILLEGAL_INSN)
            );
        }
    }

    #[test]
    fn vu_accesses_to_supervisor_csrs_are_virtual() {
        let s_csrs = [
            num::SSTATUS,
            num::SIE,
            num::STVEC,
            num::SCOUNTEREN,
            num::SENVCFG,
            num::SSCRATCH,
            num::SEPC,
            num::SCAUSE,
            num::STVAL,
            num::SIP,
            num::SATP,
        ];
        let mut h = testutil::hart();
        // TVM is assumed zero for the HS-qualified rule, so satp stays virtual.
        csrw(&mut h, num::MSTATUS, mstatus::TVM);
        h.set_mode(Priv::U, true);
        for n in s_csrs {
            assert_eq!(fault(&mut h, n, false), Some(cause::VIRTUAL_INSN), "{n:#x}");
            assert_eq!(fault(&mut h, n, true), Some(cause::VIRTUAL_INSN), "{n:#x}");
        }
        // From U with V=0 they are illegal.
        h.set_mode(Priv::U, false);
        for n in s_csrs {
            assert_eq!(fault(&mut h, n, false), Some(cause::ILLEGAL_INSN), "{n:#x}");
        }
    }

    #[test]
    fn writes_to_read_only_csrs_are_illegal_even_with_v1() {
        let mut h = testutil::hart();
        csrw(&mut h, num::MCOUNTEREN, 7);
        csrw(&mut h, num::HCOUNTEREN, 7);
        csrw(&mut h, num::SCOUNTEREN, 7);
        for virt_mode in [Priv::S, Priv::U] {
            h.set_mode(virt_mode, true);
            for n in [num::CYCLE, num::TIME, num::INSTRET] {
                assert_eq!(fault(&mut h, n, false), None, "{n:#x} read");
                assert_eq!(fault(&mut h, n, true), Some(cause::ILLEGAL_INSN), "{n:#x}");
            }
        }
    }

    #[test]
    fn counters_follow_mcounteren_then_hcounteren_then_scounteren() {
        // H chapter, "hcounteren" and "Trap Cause Codes".
        let mut h = testutil::hart();
        let go = |h: &mut Hart, m: u64, hc: u64, s: u64, p: Priv, v: bool| {
            csrw(h, num::MCOUNTEREN, m);
            csrw(h, num::HCOUNTEREN, hc);
            csrw(h, num::SCOUNTEREN, s);
            h.set_mode(p, v);
            let r = [num::CYCLE, num::TIME, num::INSTRET].map(|n| fault(h, n, false));
            assert!(r.iter().all(|c| *c == r[0]), "{r:?}");
            h.set_mode(Priv::M, false);
            r[0]
        };
        let (ill, vi) = (Some(cause::ILLEGAL_INSN), Some(cause::VIRTUAL_INSN));
        assert_eq!(go(&mut h, 7, 0, 7, Priv::S, true), vi, "VS, hcounteren off");
        assert_eq!(
            go(&mut h, 0, 7, 7, Priv::S, true),
            ill,
            "VS, mcounteren off"
        );
        assert_eq!(
            go(&mut h, 7, 7, 0, Priv::S, true),
            None,
            "VS ignores scounteren"
        );
        assert_eq!(go(&mut h, 7, 7, 0, Priv::U, true), vi, "VU, scounteren off");
        assert_eq!(go(&mut h, 7, 0, 7, Priv::U, true), vi, "VU, hcounteren off");
        assert_eq!(
            go(&mut h, 0, 7, 7, Priv::U, true),
            ill,
            "VU, mcounteren off"
        );
        assert_eq!(go(&mut h, 7, 7, 7, Priv::U, true), None, "VU, all on");
        assert_eq!(
            go(&mut h, 7, 0, 0, Priv::U, false),
            ill,
            "U, scounteren off"
        );
        assert_eq!(
            go(&mut h, 7, 0, 0, Priv::S, false),
            None,
            "HS ignores hcounteren"
        );
        // hpmcounter3 has no enable bit to set (read-only zero): illegal everywhere.
        csrw(&mut h, num::MCOUNTEREN, u64::MAX);
        csrw(&mut h, num::HCOUNTEREN, u64::MAX);
        h.set_mode(Priv::S, true);
        assert_eq!(fault(&mut h, num::HPMCOUNTER3, false), ill);
    }

    #[test]
    fn satp_traps_follow_vtvm_in_vs_and_tvm_in_hs() {
        let mut h = testutil::hart();
        let (ill, vi) = (Some(cause::ILLEGAL_INSN), Some(cause::VIRTUAL_INSN));
        csrw(&mut h, num::HSTATUS, hstatus::VTVM);
        h.set_mode(Priv::S, true);
        assert_eq!(fault(&mut h, num::SATP, false), vi);
        assert_eq!(fault(&mut h, num::SATP, true), vi);
        // VTVM does not reach HS; TVM does not reach VS (H chapter, "mstatus").
        h.set_mode(Priv::S, false);
        assert_eq!(fault(&mut h, num::SATP, false), None);
        assert_eq!(fault(&mut h, num::HGATP, false), None);
        csrw(&mut h, num::HSTATUS, 0);
        csrw(&mut h, num::MSTATUS, mstatus::TVM);
        assert_eq!(fault(&mut h, num::SATP, false), ill);
        assert_eq!(fault(&mut h, num::SATP, true), ill);
        assert_eq!(fault(&mut h, num::HGATP, false), ill);
        assert_eq!(fault(&mut h, num::HGATP, true), ill);
        // TVM leaves vsatp alone.
        assert_eq!(fault(&mut h, num::VSATP, true), None);
        h.set_mode(Priv::S, true);
        assert_eq!(fault(&mut h, num::SATP, false), None);
        h.set_mode(Priv::M, false);
        assert_eq!(fault(&mut h, num::HGATP, true), None);
    }

    #[test]
    fn stimecmp_in_vs_needs_henvcfg_stce_and_hcounteren_tm() {
        // Sstc: menvcfg.STCE or mcounteren.TM clear makes stimecmp illegal below M;
        // with V=1, henvcfg.STCE or hcounteren.TM clear makes it virtual.
        let mut h = testutil::hart();
        let (ill, vi) = (Some(cause::ILLEGAL_INSN), Some(cause::VIRTUAL_INSN));
        let go = |h: &mut Hart, menv: u64, mcen: u64, henv: u64, hcen: u64| {
            csrw(h, num::MENVCFG, menv);
            csrw(h, num::MCOUNTEREN, mcen);
            csrw(h, num::HENVCFG, henv);
            csrw(h, num::HCOUNTEREN, hcen);
            h.set_mode(Priv::S, true);
            let r = (
                fault(h, num::STIMECMP, false),
                fault(h, num::STIMECMP, true),
            );
            h.set_mode(Priv::M, false);
            assert_eq!(r.0, r.1);
            r.0
        };
        let (stce, tm) = (menvcfg::STCE, counteren::TM);
        assert_eq!(go(&mut h, stce, tm, stce, tm), None);
        assert_eq!(go(&mut h, stce, tm, 0, tm), vi, "henvcfg.STCE clear");
        assert_eq!(go(&mut h, stce, tm, stce, 0), vi, "hcounteren.TM clear");
        assert_eq!(go(&mut h, 0, tm, stce, tm), ill, "menvcfg.STCE clear");
        assert_eq!(go(&mut h, stce, 0, stce, tm), ill, "mcounteren.TM clear");
    }

    #[test]
    fn fp_csrs_need_both_fs_fields_and_are_never_virtual() {
        // H chapter, "Trap Cause Codes": FS deviates from the HS-qualified rule.
        let mut h = testutil::hart();
        let fs_initial = mstatus::FS & (1 << mstatus::FS_SHIFT);
        csrw(&mut h, num::MSTATUS, fs_initial);
        h.csr.vsstatus = 0;
        h.set_mode(Priv::S, true);
        assert_eq!(fault(&mut h, num::FFLAGS, false), Some(cause::ILLEGAL_INSN));
        h.csr.vsstatus = fs_initial;
        h.csr.mstatus = 0;
        assert_eq!(fault(&mut h, num::FCSR, true), Some(cause::ILLEGAL_INSN));
        h.csr.mstatus = fs_initial;
        h.csr_write(num::FFLAGS, 1, RAW).unwrap();
        // Modifying FP state with V=1 makes both fields Dirty (H chapter, "vsstatus").
        assert_eq!(h.csr.mstatus & mstatus::FS, mstatus::FS);
        assert_eq!(h.csr.vsstatus & mstatus::FS, mstatus::FS);
    }

    #[test]
    fn time_reads_time_plus_htimedelta_with_v1() {
        // H chapter, "htimedelta": VS and VU read time + htimedelta (wrapping).
        let mut h = testutil::hart();
        csrw(&mut h, num::MCOUNTEREN, counteren::TM);
        csrw(&mut h, num::HCOUNTEREN, counteren::TM);
        csrw(&mut h, num::SCOUNTEREN, counteren::TM);
        csrw(&mut h, num::HTIMEDELTA, 1 << 50);
        let far = 1 << 49;
        h.set_mode(Priv::S, false);
        assert!(h.csr_read(num::TIME, RAW).unwrap() < far);
        for p in [Priv::S, Priv::U] {
            h.set_mode(p, true);
            let t = h.csr_read(num::TIME, RAW).unwrap();
            assert!((1 << 50..(1 << 50) + far).contains(&t), "{t:#x}");
        }
        // A negative delta wraps below zero.
        csrw(&mut h, num::HTIMEDELTA, 0u64.wrapping_sub(1 << 50));
        h.set_mode(Priv::S, true);
        assert!(h.csr_read(num::TIME, RAW).unwrap() > u64::MAX - (1 << 50));
    }

    #[test]
    fn every_number_is_listed_once_and_ranges_are_ordered() {
        for c in CSRS {
            assert!(c.lo <= c.hi, "{:#x}", c.lo);
        }
        let mut seen = std::collections::HashSet::new();
        for c in CSRS {
            for n in c.lo..=c.hi {
                assert!(seen.insert(n), "CSR {n:#x} listed twice");
            }
        }
        assert!(lookup(num::HSTATUS).is_some());
        assert!(lookup(0x7ff).is_none());
        // Every VS copy exists.
        for s in VS_COPIES {
            assert!(lookup(s + 0x100).is_some(), "VS copy of {s:#x}");
        }
    }
}
