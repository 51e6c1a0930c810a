//! Synchronous exceptions and interrupts, and how a hart takes them and returns from
//! them (Priv spec 3.1.6.1, 3.1.9, 3.3.1-3.3.2, 12.1.1; the H chapter's "Traps": trap
//! entry into M, HS and VS, trap return, and what each writes).

use rivet_jit::arch::Ext;

use super::csr::{hstatus, mstatus};
use super::{Hart, Priv};
use rivet_devices::irq;

pub use rivet_jit::arch::cause;

/// A synchronous exception: its cause code and the values the trap writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub cause: u64,
    /// `xtval`: the faulting address, or the instruction bits.
    pub tval: u64,
    /// The guest physical address of a guest-page fault (`mtval2`/`htval` get it
    /// shifted right by 2), or 0.
    pub gpa: u64,
    /// `mtinst`/`htinst`: zero, a transformed instruction or a pseudoinstruction (H
    /// chapter, "Transformed Instruction or Pseudoinstruction").
    pub tinst: u64,
    /// `tval` is a guest virtual address (the access ran with two-stage translation):
    /// the trap sets `mstatus.GVA`/`hstatus.GVA`.
    pub gva: bool,
}

impl Exception {
    pub fn new(cause: u64, tval: u64) -> Self {
        Self {
            cause,
            tval,
            gpa: 0,
            tinst: 0,
            gva: false,
        }
    }

    pub fn illegal(raw: u32) -> Self {
        Self::new(cause::ILLEGAL_INSN, u64::from(raw))
    }

    /// A virtual-instruction exception: `tval` as for illegal instruction (H chapter,
    /// "Trap Cause Codes").
    pub fn virtual_insn(raw: u32) -> Self {
        Self::new(cause::VIRTUAL_INSN, u64::from(raw))
    }

    /// Whether this exception reports a load, store or AMO access (the causes for
    /// which `xtinst` may hold the transformed instruction).
    pub fn is_data_access(&self) -> bool {
        matches!(
            self.cause,
            cause::LOAD_MISALIGNED
                | cause::LOAD_ACCESS
                | cause::STORE_MISALIGNED
                | cause::STORE_ACCESS
                | cause::LOAD_PAGE_FAULT
                | cause::STORE_PAGE_FAULT
                | cause::LOAD_GUEST_PAGE_FAULT
                | cause::STORE_GUEST_PAGE_FAULT
        )
    }
}

/// Whether `xtval` of this cause holds an address (for GVA: H chapter, "hstatus").
fn tval_is_address(cause: u64) -> bool {
    matches!(
        cause,
        cause::INSN_MISALIGNED
            | cause::INSN_ACCESS
            | cause::BREAKPOINT
            | cause::LOAD_MISALIGNED
            | cause::LOAD_ACCESS
            | cause::STORE_MISALIGNED
            | cause::STORE_ACCESS
            | cause::INSN_PAGE_FAULT
            | cause::LOAD_PAGE_FAULT
            | cause::STORE_PAGE_FAULT
            | cause::INSN_GUEST_PAGE_FAULT
            | cause::LOAD_GUEST_PAGE_FAULT
            | cause::STORE_GUEST_PAGE_FAULT
    )
}

/// Interrupts in decreasing priority (Priv spec 3.1.9 and the H chapter, "hip"): MEI,
/// MSI, MTI, SEI, SSI, STI, SGEI, VSEI, VSSI, VSTI.
const PRIORITY: [u64; 10] = [11, 3, 7, 9, 1, 5, 12, 10, 2, 6];

fn highest(pending: u64) -> Option<u64> {
    PRIORITY.into_iter().find(|&b| pending & (1 << b) != 0)
}

impl Hart {
    /// The interrupt this hart must take now, if any. An interrupt goes to M unless
    /// `mideleg` delegates it, to HS unless `hideleg` delegates it further, else to
    /// VS. It is enabled for M in M with MIE and always below M; for HS in HS with SIE
    /// and always in U, VS and VU; for VS only with V=1, in VS with `vsstatus.SIE`
    /// and always in VU (Priv spec 3.1.6.1; H chapter, "hip"). Interrupts for a more
    /// privileged mode are taken first.
    pub fn pending_interrupt(&self) -> Option<u64> {
        let pending = self.mip() & self.csr.mie;
        if pending == 0 {
            return None;
        }
        let mideleg = self.mideleg();
        let to_m = pending & !mideleg;
        let m_enabled = self.prv != Priv::M || self.csr.mstatus & mstatus::MIE != 0;
        if m_enabled && to_m != 0 {
            return highest(to_m);
        }
        let to_hs = pending & mideleg & !self.csr.hideleg;
        let hs_enabled = match (self.prv, self.virt) {
            (Priv::M, _) => false,
            (Priv::S, false) => self.csr.mstatus & mstatus::SIE != 0,
            _ => true,
        };
        if hs_enabled && to_hs != 0 {
            return highest(to_hs);
        }
        let to_vs = pending & mideleg & self.csr.hideleg;
        let vs_enabled =
            self.virt && (self.prv == Priv::U || self.csr.vsstatus & mstatus::SIE != 0);
        if vs_enabled && to_vs != 0 {
            return highest(to_vs);
        }
        None
    }

    /// Whether any locally enabled interrupt is pending: what wakes WFI regardless of
    /// the global enables and of delegation (Priv spec 3.3.3).
    pub fn wfi_wakeup(&self) -> bool {
        self.mip() & self.csr.mie != 0
    }

    /// Enters the trap handler for an exception at `self.pc`.
    pub fn raise(&mut self, e: Exception) {
        self.take_trap(e, false);
    }

    /// Enters the trap handler for interrupt number `irq`.
    pub fn interrupt(&mut self, irq: u64) {
        self.take_trap(Exception::new(irq, 0), true);
    }

    fn take_trap(&mut self, e: Exception, is_interrupt: bool) {
        if !is_interrupt {
            match e.cause {
                cause::INSN_GUEST_PAGE_FAULT
                | cause::LOAD_GUEST_PAGE_FAULT
                | cause::STORE_GUEST_PAGE_FAULT => self.stats.guest_page_faults += 1,
                cause::VIRTUAL_INSN => self.stats.virtual_insns += 1,
                _ => {}
            }
        }
        // An LR reservation does not survive a trap (Unpriv spec "Zalrsc": an SC after
        // a trap may fail; failing it keeps harts deterministic).
        self.reservation = None;
        let code = e.cause;
        let bit = 1u64.checked_shl(code as u32).unwrap_or(0);
        let (deleg, hdeleg) = if is_interrupt {
            (self.mideleg(), self.csr.hideleg)
        } else {
            (self.csr.medeleg, self.csr.hedeleg)
        };
        let to_hs = self.prv != Priv::M && deleg & bit != 0;
        let to_vs = to_hs && self.virt && hdeleg & bit != 0;
        let irq_flag = if is_interrupt { 1 << 63 } else { 0 };
        let gva = !is_interrupt && (e.gva || (self.virt && tval_is_address(code)));
        let epc = self.pc;
        let has_h = self.exts.has(Ext::H);
        if to_vs {
            // H chapter, "Trap Entry": only vsstatus, vsepc, vscause and vstval change;
            // VS sees the VS-level interrupts 10, 6, 2 as 9, 5, 1.
            let cause = match code {
                10 | 6 | 2 if is_interrupt => code - 1,
                _ => code,
            };
            self.csr.vscause = cause | irq_flag;
            self.csr.vsepc = epc;
            self.csr.vstval = e.tval;
            let vs = self.csr.vsstatus;
            let mut s = vs & !(mstatus::SPIE | mstatus::SPP | mstatus::SIE);
            if vs & mstatus::SIE != 0 {
                s |= mstatus::SPIE;
            }
            if self.prv == Priv::S {
                s |= mstatus::SPP;
            }
            self.csr.vsstatus = s;
            self.pc = trap_vector(self.csr.vstvec, cause, is_interrupt);
            self.set_mode(Priv::S, true);
        } else if to_hs {
            if has_h {
                let mut hs = self.csr.hstatus & !(hstatus::SPV | hstatus::GVA);
                if self.virt {
                    hs |= hstatus::SPV;
                    // SPVP changes only on traps from V=1.
                    hs &= !hstatus::SPVP;
                    if self.prv == Priv::S {
                        hs |= hstatus::SPVP;
                    }
                }
                if gva {
                    hs |= hstatus::GVA;
                }
                self.csr.hstatus = hs;
                self.csr.htval = e.gpa >> 2;
                self.csr.htinst = e.tinst;
            }
            self.csr.scause = code | irq_flag;
            self.csr.sepc = epc;
            self.csr.stval = e.tval;
            let ms = self.csr.mstatus;
            let mut s = ms & !(mstatus::SPIE | mstatus::SPP | mstatus::SIE);
            if ms & mstatus::SIE != 0 {
                s |= mstatus::SPIE;
            }
            if self.prv == Priv::S {
                s |= mstatus::SPP;
            }
            self.csr.mstatus = s;
            self.pc = trap_vector(self.csr.stvec, code, is_interrupt);
            self.set_mode(Priv::S, false);
        } else {
            let ms = self.csr.mstatus;
            let mut s = ms & !(mstatus::MPIE | mstatus::MPP | mstatus::MIE);
            if ms & mstatus::MIE != 0 {
                s |= mstatus::MPIE;
            }
            s |= (self.prv as u64) << mstatus::MPP_SHIFT;
            if has_h {
                s &= !(mstatus::MPV | mstatus::GVA);
                if self.virt {
                    s |= mstatus::MPV;
                }
                if gva {
                    s |= mstatus::GVA;
                }
                self.csr.mtval2 = e.gpa >> 2;
                self.csr.mtinst = e.tinst;
            }
            self.csr.mstatus = s;
            self.csr.mcause = code | irq_flag;
            self.csr.mepc = epc;
            self.csr.mtval = e.tval;
            self.pc = trap_vector(self.csr.mtvec, code, is_interrupt);
            self.set_mode(Priv::M, false);
        }
    }

    /// MRET (Priv spec 3.3.2; H chapter, "Trap Return": V becomes MPV unless MPP = M).
    pub fn mret(&mut self) {
        let ms = self.csr.mstatus;
        let mpp = Priv::from_bits((ms >> mstatus::MPP_SHIFT) & 3);
        let virt = mpp != Priv::M && ms & mstatus::MPV != 0;
        let mut s = ms & !(mstatus::MIE | mstatus::MPP | mstatus::MPV);
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
        self.set_mode(mpp, virt);
    }

    /// SRET (Priv spec 3.3.2; H chapter, "Trap Return"): with V=0 it returns to V =
    /// `hstatus.SPV`; in VS-mode it uses `vsstatus` and `vsepc` and stays in V=1.
    pub fn sret(&mut self) {
        if self.virt {
            let vs = self.csr.vsstatus;
            let spp = if vs & mstatus::SPP != 0 {
                Priv::S
            } else {
                Priv::U
            };
            let mut s = vs & !(mstatus::SIE | mstatus::SPP);
            if vs & mstatus::SPIE != 0 {
                s |= mstatus::SIE;
            }
            s |= mstatus::SPIE;
            self.csr.vsstatus = s;
            self.pc = self.csr.vsepc;
            self.set_mode(spp, true);
            return;
        }
        let ms = self.csr.mstatus;
        let spp = if ms & mstatus::SPP != 0 {
            Priv::S
        } else {
            Priv::U
        };
        let virt = self.exts.has(Ext::H) && self.csr.hstatus & hstatus::SPV != 0;
        self.csr.hstatus &= !hstatus::SPV;
        let mut s = ms & !(mstatus::SIE | mstatus::SPP | mstatus::MPRV);
        if ms & mstatus::SPIE != 0 {
            s |= mstatus::SIE;
        }
        s |= mstatus::SPIE;
        self.csr.mstatus = s;
        self.pc = self.csr.sepc;
        self.set_mode(spp, virt);
    }

    /// The full `mip` as software reads it: software-written bits (with `hvip`), device
    /// lines, the timer comparisons, and the guest external interrupts selected by
    /// `hstatus.VGEIN` and enabled by `hgeie` (H chapter, "hip").
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
        if self.timer.vstip {
            mip |= irq::VSTIP;
        }
        let hgeip = self.hgeip();
        if hgeip != 0 {
            let vgein = (self.csr.hstatus & hstatus::VGEIN) >> hstatus::VGEIN_SHIFT;
            if hgeip >> vgein & 1 != 0 && vgein != 0 {
                mip |= irq::VSEIP;
            }
            if hgeip & self.csr.hgeie != 0 {
                mip |= irq::SGEIP;
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
