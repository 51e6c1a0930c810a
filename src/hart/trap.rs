//! Synchronous exceptions and interrupts, and how a hart takes them (Priv spec 3.1.6.1,
//! 3.1.9, 3.3.1; 4.1.1 for the S-mode view).

use super::{Hart, Priv};
use crate::hart::csr::mstatus;
use rivet_devices::irq;

/// A synchronous exception: its cause code (Priv spec table 3.6) and trap value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub cause: u64,
    pub tval: u64,
}

pub use rivet_jit::arch::cause;

impl Exception {
    pub fn new(cause: u64, tval: u64) -> Self {
        Self { cause, tval }
    }

    pub fn illegal(raw: u32) -> Self {
        Self::new(cause::ILLEGAL_INSN, u64::from(raw))
    }
}

/// The interrupt bit that is delivered first among `pending` (all enabled): Priv spec
/// 3.1.9 fixes the order MEI, MSI, MTI, SEI, SSI, STI.
fn highest(pending: u64) -> Option<u64> {
    const ORDER: [u64; 6] = [11, 3, 7, 9, 1, 5];
    ORDER.into_iter().find(|&b| pending & (1 << b) != 0)
}

impl Hart {
    /// The interrupt this hart must take now, if any (Priv spec 3.1.6.1: M-level
    /// interrupts are enabled in M only with MIE and always below M; interrupts
    /// delegated to S are enabled below S always and in S with SIE, never in M).
    pub fn pending_interrupt(&self) -> Option<u64> {
        let pending = self.mip() & self.csr.mie;
        if pending == 0 {
            return None;
        }
        let m_enabled = self.prv != Priv::M || self.csr.mstatus & mstatus::MIE != 0;
        let s_enabled = match self.prv {
            Priv::M => false,
            Priv::S => self.csr.mstatus & mstatus::SIE != 0,
            Priv::U => true,
        };
        let to_m = pending & !self.csr.mideleg;
        let to_s = pending & self.csr.mideleg;
        let mut ready = 0;
        if m_enabled {
            ready |= to_m;
        }
        if s_enabled {
            ready |= to_s;
        }
        highest(ready)
    }

    /// Whether any locally enabled interrupt is pending: what wakes WFI regardless of
    /// the global enables (Priv spec 3.3.3).
    pub fn wfi_wakeup(&self) -> bool {
        self.mip() & self.csr.mie != 0
    }

    /// Enters the trap handler for an exception at `self.pc`.
    pub fn raise(&mut self, e: Exception) {
        self.take_trap(e.cause, e.tval, false);
    }

    /// Enters the trap handler for interrupt number `irq`.
    pub fn interrupt(&mut self, irq: u64) {
        self.take_trap(irq, 0, true);
    }

    fn take_trap(&mut self, code: u64, tval: u64, is_interrupt: bool) {
        // An LR reservation does not survive a trap (Unpriv spec "Zalrsc": an SC after
        // a trap may fail; failing it keeps harts deterministic).
        self.reservation = None;
        let deleg = if is_interrupt {
            self.csr.mideleg
        } else {
            self.csr.medeleg
        };
        let to_s = self.prv != Priv::M && deleg & (1 << code) != 0;
        let cause = code | if is_interrupt { 1 << 63 } else { 0 };
        let epc = self.pc;
        let ms = self.csr.mstatus;
        if to_s {
            self.csr.scause = cause;
            self.csr.sepc = epc;
            self.csr.stval = tval;
            let mut s = ms & !(mstatus::SPIE | mstatus::SPP | mstatus::SIE);
            if ms & mstatus::SIE != 0 {
                s |= mstatus::SPIE;
            }
            if self.prv == Priv::S {
                s |= mstatus::SPP;
            }
            self.csr.mstatus = s;
            self.pc = trap_vector(self.csr.stvec, code, is_interrupt);
            self.set_priv(Priv::S);
        } else {
            self.csr.mcause = cause;
            self.csr.mepc = epc;
            self.csr.mtval = tval;
            let mut s = ms & !(mstatus::MPIE | mstatus::MPP | mstatus::MIE);
            if ms & mstatus::MIE != 0 {
                s |= mstatus::MPIE;
            }
            s |= (self.prv as u64) << mstatus::MPP_SHIFT;
            self.csr.mstatus = s;
            self.pc = trap_vector(self.csr.mtvec, code, is_interrupt);
            self.set_priv(Priv::M);
        }
    }

    /// MRET (Priv spec 3.3.2).
    pub fn mret(&mut self) {
        let ms = self.csr.mstatus;
        let mpp = Priv::from_bits((ms >> mstatus::MPP_SHIFT) & 3);
        let mut s = ms & !(mstatus::MIE | mstatus::MPP);
        if ms & mstatus::MPIE != 0 {
            s |= mstatus::MIE;
        }
        s |= mstatus::MPIE;
        // MPP is set to the least-privileged mode; MPRV is cleared when leaving to a
        // mode below M.
        if mpp != Priv::M {
            s &= !mstatus::MPRV;
        }
        self.csr.mstatus = s;
        self.pc = self.csr.mepc;
        self.set_priv(mpp);
    }

    /// SRET (Priv spec 3.3.2).
    pub fn sret(&mut self) {
        let ms = self.csr.mstatus;
        let spp = if ms & mstatus::SPP != 0 {
            Priv::S
        } else {
            Priv::U
        };
        let mut s = ms & !(mstatus::SIE | mstatus::SPP | mstatus::MPRV);
        if ms & mstatus::SPIE != 0 {
            s |= mstatus::SIE;
        }
        s |= mstatus::SPIE;
        self.csr.mstatus = s;
        self.pc = self.csr.sepc;
        self.set_priv(spp);
    }

    /// The full `mip` as software reads it: software-written bits, device lines and
    /// the timer comparisons.
    pub fn mip(&self) -> u64 {
        let mut mip = self.csr.mip | self.signals.pending();
        if self.timer.mtip {
            mip |= irq::MTIP;
        }
        if self.csr.menvcfg & super::csr::menvcfg::STCE != 0 {
            mip &= !irq::STIP;
            if self.timer.stip {
                mip |= irq::STIP;
            }
        }
        mip
    }
}

/// Vectored mode sends interrupts to BASE + 4 * cause (Priv spec 3.1.7).
fn trap_vector(tvec: u64, code: u64, is_interrupt: bool) -> u64 {
    let base = tvec & !3;
    if tvec & 3 == 1 && is_interrupt {
        base + 4 * code
    } else {
        base
    }
}
