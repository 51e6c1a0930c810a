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

/// Interrupt numbers from this value up are VS-level interrupts whose cause (the
/// number minus this) `vstopi` already gives, such as one `hvictl` injects (AIA spec,
/// "Interrupt traps to VS-mode").
const VS_TOP: u64 = 64;

/// `*topi` of the highest of `pending` by default priority, with the simplified IPRIO
/// of 1 that an all-zero priority array allows (AIA spec, "mtopi").
fn top_of(pending: u64) -> u64 {
    highest(pending).map_or(0, |i| i << 16 | 1)
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
        let aia_vs = self.virt && self.exts.has(Ext::Ssaia);
        if pending == 0 && !aia_vs {
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
        let vs_enabled =
            self.virt && (self.prv == Priv::U || self.csr.vsstatus & mstatus::SIE != 0);
        if !vs_enabled {
            return None;
        }
        if aia_vs {
            // With the AIA, an interrupt is pending at VS level iff vstopi is not zero
            // (AIA spec, "Interrupt traps to VS-mode").
            let top = self.vstopi();
            return (top != 0).then_some(VS_TOP + (top >> 16));
        }
        highest(pending & mideleg & self.csr.hideleg)
    }

    /// `mtopi`: the highest-priority interrupt pending and enabled for M (AIA spec,
    /// "mtopi"); MIE does not matter.
    pub fn mtopi(&self) -> u64 {
        top_of(self.mip() & self.csr.mie & !self.mideleg())
    }

    /// `stopi`: the same for HS level, delegated by `mideleg` and not by `hideleg`.
    pub fn stopi(&self) -> u64 {
        top_of(self.mip() & self.csr.mie & self.mideleg() & !self.csr.hideleg)
    }

    /// `vstopi` (AIA spec, "vstopi"): the highest-priority candidate among a virtual
    /// supervisor external interrupt (priority from the guest file's `vstopei`, or
    /// `hvictl.IPRIO` with no guest file, else 256), the other pending and enabled VS
    /// interrupts (`hviprio1/2` are zero: default priority, below SEI) while
    /// `hvictl.VTI` = 0, or the interrupt `hvictl` names while VTI = 1 and IID != 9.
    pub fn vstopi(&self) -> u64 {
        use super::csr::hvictl;
        let pending = self.mip() & self.csr.mie & self.mideleg() & self.csr.hideleg;
        let ctl = self.csr.hvictl;
        let vti = ctl & hvictl::VTI != 0;
        let iid = (ctl & hvictl::IID) >> hvictl::IID_SHIFT;
        let iprio = ctl & hvictl::IPRIO;
        // (rank, tie-break, code, priority number): lower wins. A priority number of 0
        // ranks by default order: above SEI (rank 0) or below everything (rank 257).
        let mut best: Option<(u64, u64, u64, u64)> = None;
        let mut offer = |c: (u64, u64, u64, u64)| {
            if best.is_none_or(|b| (c.0, c.1) < (b.0, b.1)) {
                best = Some(c);
            }
        };
        if pending & irq::VSEIP != 0 {
            let file_top = self.guest_file().map_or(0, |f| u64::from(f.top()));
            let prio = if file_top != 0 {
                file_top
            } else if self.vgein() == 0 && iid == 9 && iprio != 0 {
                iprio
            } else {
                256
            };
            offer((prio, 1, 9, prio));
        }
        if !vti {
            for (bit, code, tie) in [(irq::VSSIP, 1, 2), (irq::VSTIP, 5, 3)] {
                if pending & bit != 0 {
                    offer((257, tie, code, 0));
                }
            }
        } else if iid != 9 {
            let below_sei = ctl & hvictl::DPR != 0;
            let rank = match (iprio, below_sei) {
                (0, false) => 0,
                (0, true) => 257,
                (p, _) => p,
            };
            offer((rank, if below_sei { 2 } else { 0 }, iid, iprio));
        }
        let Some((rank, _, code, prio)) = best else {
            return 0;
        };
        let shown = if ctl & hvictl::IPRIOM == 0 {
            1
        } else {
            match prio {
                1..=255 => prio,
                0 if rank == 0 => 0,
                _ => 255,
            }
        };
        code << 16 | shown
    }

    /// Whether any locally enabled interrupt is pending: what wakes WFI regardless of
    /// the global enables and of delegation (Priv spec 3.3.3), `hvictl`'s too.
    pub fn wfi_wakeup(&self) -> bool {
        self.mip() & self.csr.mie != 0 || (self.exts.has(Ext::Ssaia) && self.vstopi() != 0)
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
        // A VS-level interrupt vstopi reported: its cause is already VS's.
        let vs_top = is_interrupt && code >= VS_TOP;
        let bit = 1u64.checked_shl(code as u32).unwrap_or(0);
        let (deleg, hdeleg) = if is_interrupt {
            (self.mideleg(), self.csr.hideleg)
        } else {
            (self.csr.medeleg, self.csr.hedeleg)
        };
        let to_hs = vs_top || (self.prv != Priv::M && deleg & bit != 0);
        let to_vs = vs_top || (to_hs && self.virt && hdeleg & bit != 0);
        let irq_flag = if is_interrupt { 1 << 63 } else { 0 };
        let gva = !is_interrupt && (e.gva || (self.virt && tval_is_address(code)));
        let epc = self.pc;
        let has_h = self.exts.has(Ext::H);
        if to_vs {
            // H chapter, "Trap Entry": only vsstatus, vsepc, vscause and vstval change;
            // VS sees the VS-level interrupts 10, 6, 2 as 9, 5, 1.
            let cause = match code {
                _ if vs_top => code - VS_TOP,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hart::csr::num;
    use crate::hart::testutil::{self, csrr, csrw};
    use rivet_jit::arch::ExtSet;

    /// A load guest-page fault at guest virtual 0x5008, guest physical 0x9_0008, raised
    /// by an `ld a0, 8(a1)` (transformed: 0x3503).
    const GPF: Exception = Exception {
        cause: cause::LOAD_GUEST_PAGE_FAULT,
        tval: 0x5008,
        gpa: 0x9_0008,
        tinst: 0x3503,
        gva: true,
    };

    /// A hart with distinct trap vectors and `pc`, in mode (`p`, `virt`).
    fn hart_in(p: Priv, virt: bool) -> Hart {
        let mut h = testutil::hart();
        csrw(&mut h, num::MTVEC, 0x8000_0100);
        csrw(&mut h, num::STVEC, 0x8000_0200);
        csrw(&mut h, num::VSTVEC, 0x8000_0300);
        h.pc = 0x4000_1234;
        h.set_mode(p, virt);
        h
    }

    fn mode(h: &Hart) -> (Priv, bool) {
        (h.prv, h.virt)
    }

    #[test]
    fn traps_from_vs_and_vu_into_m_record_mpv_mpp_gva_and_the_gpa() {
        // H chapter, "Trap Entry": MPV = V, MPP = the nominal privilege; GVA for an
        // address trap; mtval2 = GPA >> 2; mtinst.
        for (p, mpp) in [(Priv::S, 1), (Priv::U, 0)] {
            let mut h = hart_in(p, true);
            h.raise(GPF);
            assert_eq!(mode(&h), (Priv::M, false));
            assert_eq!(h.pc, 0x8000_0100);
            let ms = h.csr.mstatus;
            assert_ne!(ms & mstatus::MPV, 0);
            assert_eq!(ms >> mstatus::MPP_SHIFT & 3, mpp);
            assert_ne!(ms & mstatus::GVA, 0);
            assert_eq!(csrr(&mut h, num::MCAUSE), cause::LOAD_GUEST_PAGE_FAULT);
            assert_eq!(csrr(&mut h, num::MEPC), 0x4000_1234);
            assert_eq!(csrr(&mut h, num::MTVAL), 0x5008);
            assert_eq!(csrr(&mut h, num::MTVAL2), 0x9_0008 >> 2);
            assert_eq!(csrr(&mut h, num::MTINST), 0x3503);
            // An ecall from there is no address trap: GVA, mtval2 and mtinst are zero.
            h.set_mode(p, true);
            h.raise(Exception::new(cause::ECALL_VS, 0));
            let ms = h.csr.mstatus;
            assert_eq!(ms & mstatus::GVA, 0);
            assert_ne!(ms & mstatus::MPV, 0);
            assert_eq!((h.csr.mtval2, h.csr.mtinst), (0, 0));
        }
        // From HS: MPV = 0.
        let mut h = hart_in(Priv::S, false);
        h.csr.mstatus |= mstatus::MPV;
        h.raise(Exception::new(cause::ECALL_S, 0));
        assert_eq!(h.csr.mstatus & mstatus::MPV, 0);
        assert_eq!(h.csr.mstatus >> mstatus::MPP_SHIFT & 3, 1);
    }

    #[test]
    fn traps_from_vs_and_vu_into_hs_record_spv_spvp_gva_htval_htinst() {
        // H chapter, "Trap Entry" and "hstatus": SPV = V, SPVP = SPP = the nominal
        // privilege, GVA, htval = GPA >> 2, htinst; V becomes 0.
        for (p, spp) in [(Priv::S, true), (Priv::U, false)] {
            let mut h = hart_in(p, true);
            csrw(&mut h, num::MEDELEG, 1 << cause::LOAD_GUEST_PAGE_FAULT);
            let vsstatus = h.csr.vsstatus;
            h.raise(GPF);
            assert_eq!(mode(&h), (Priv::S, false));
            assert_eq!(h.pc, 0x8000_0200);
            let hs = h.csr.hstatus;
            assert_ne!(hs & hstatus::SPV, 0);
            assert_eq!(hs & hstatus::SPVP != 0, spp);
            assert_eq!(h.csr.mstatus & mstatus::SPP != 0, spp);
            assert_ne!(hs & hstatus::GVA, 0);
            assert_eq!(csrr(&mut h, num::SCAUSE), cause::LOAD_GUEST_PAGE_FAULT);
            assert_eq!(csrr(&mut h, num::SEPC), 0x4000_1234);
            assert_eq!(csrr(&mut h, num::STVAL), 0x5008);
            assert_eq!(csrr(&mut h, num::HTVAL), 0x9_0008 >> 2);
            assert_eq!(csrr(&mut h, num::HTINST), 0x3503);
            assert_eq!(h.csr.vsstatus, vsstatus, "VS state untouched");
            assert_eq!(h.csr.mstatus & mstatus::MPV, 0);
        }
    }

    #[test]
    fn traps_from_hs_and_u_into_hs_clear_spv_and_leave_spvp() {
        // H chapter, "Trap Entry": with V=0 before the trap SPVP is left unchanged.
        for (p, spvp) in [
            (Priv::S, hstatus::SPVP),
            (Priv::U, hstatus::SPVP),
            (Priv::U, 0),
        ] {
            let mut h = hart_in(p, false);
            csrw(
                &mut h,
                num::MEDELEG,
                1 << cause::LOAD_GUEST_PAGE_FAULT | 1 << 8 | 1 << 9,
            );
            csrw(&mut h, num::HSTATUS, hstatus::SPV | hstatus::GVA | spvp);
            let ecall = if p == Priv::S {
                cause::ECALL_S
            } else {
                cause::ECALL_U
            };
            h.csr.htval = 77;
            h.raise(Exception::new(ecall, 0));
            assert_eq!(mode(&h), (Priv::S, false));
            let hs = h.csr.hstatus;
            assert_eq!(hs & (hstatus::SPV | hstatus::GVA), 0);
            assert_eq!(hs & hstatus::SPVP, spvp);
            assert_eq!(h.csr.htval, 0, "htval is zero for other traps");
            // An HLV from HS that faults: SPV = 0 but GVA = 1 (H chapter, "hstatus").
            h.set_mode(p, false);
            h.raise(GPF);
            let hs = h.csr.hstatus;
            assert_eq!(hs & (hstatus::SPV | hstatus::GVA), hstatus::GVA);
            assert_eq!(hs & hstatus::SPVP, spvp);
            assert_eq!(h.csr.htval, 0x9_0008 >> 2);
        }
    }

    #[test]
    fn a_trap_into_vs_writes_only_the_vs_registers() {
        // H chapter, "Trap Entry": hstatus and the HS-level sstatus are not modified and
        // V stays 1; vsstatus SPP, SPIE, SIE, vsepc, vscause, vstval are written.
        for (p, spp) in [(Priv::S, true), (Priv::U, false)] {
            let mut h = hart_in(p, true);
            csrw(&mut h, num::MEDELEG, 1 << cause::LOAD_PAGE_FAULT);
            csrw(&mut h, num::HEDELEG, 1 << cause::LOAD_PAGE_FAULT);
            csrw(&mut h, num::HSTATUS, hstatus::GVA | hstatus::SPVP);
            h.csr.htval = 0x11;
            h.csr.htinst = 0x22;
            h.csr.sepc = 0x33;
            h.csr.scause = 0x44;
            h.csr.stval = 0x55;
            h.csr.vsstatus |= mstatus::SIE;
            let (mstatus_before, hstatus_before) = (h.csr.mstatus, h.csr.hstatus);
            let e = Exception {
                gva: true,
                ..Exception::new(cause::LOAD_PAGE_FAULT, 0x5008)
            };
            h.raise(e);
            assert_eq!(mode(&h), (Priv::S, true));
            assert_eq!(h.pc, 0x8000_0300);
            let vs = h.csr.vsstatus;
            assert_eq!(vs & mstatus::SPP != 0, spp);
            assert_eq!(vs & (mstatus::SPIE | mstatus::SIE), mstatus::SPIE);
            assert_eq!(h.csr.vscause, cause::LOAD_PAGE_FAULT);
            assert_eq!(h.csr.vsepc, 0x4000_1234);
            assert_eq!(h.csr.vstval, 0x5008);
            assert_eq!(
                (h.csr.mstatus, h.csr.hstatus),
                (mstatus_before, hstatus_before)
            );
            assert_eq!((h.csr.htval, h.csr.htinst), (0x11, 0x22));
            assert_eq!((h.csr.sepc, h.csr.scause, h.csr.stval), (0x33, 0x44, 0x55));
        }
    }

    #[test]
    fn guest_faults_cannot_be_delegated_to_vs() {
        // hedeleg bits 20-23 are read-only zero: a guest-page fault from VS stops in HS.
        let mut h = hart_in(Priv::S, true);
        csrw(&mut h, num::MEDELEG, u64::MAX);
        csrw(&mut h, num::HEDELEG, u64::MAX);
        h.raise(GPF);
        assert_eq!(mode(&h), (Priv::S, false));
        // An ecall from VS does not go to VS either (hedeleg bit 10 is zero).
        h.set_mode(Priv::S, true);
        h.raise(Exception::new(cause::ECALL_VS, 0));
        assert_eq!(mode(&h), (Priv::S, false));
        assert_eq!(h.csr.scause, cause::ECALL_VS);
    }

    #[test]
    fn vs_level_interrupts_reach_vs_as_their_s_level_causes() {
        // H chapter, "hideleg": interrupts 10, 6, 2 delegated to VS become 9, 5, 1,
        // also in vscause (and so in the vectored trap address).
        for (irq, seen) in [(10u64, 9u64), (6, 5), (2, 1)] {
            let mut h = hart_in(Priv::U, true);
            csrw(&mut h, num::HIDELEG, 0x444);
            csrw(&mut h, num::VSTVEC, 0x8000_0301);
            h.interrupt(irq);
            assert_eq!(mode(&h), (Priv::S, true));
            assert_eq!(h.csr.vscause, 1 << 63 | seen);
            assert_eq!(h.pc, 0x8000_0300 + 4 * seen);
        }
        // Not delegated by hideleg: HS takes it under its own number, and htinst and
        // htval are zero for an interrupt.
        let mut h = hart_in(Priv::U, true);
        h.csr.htinst = 5;
        h.interrupt(10);
        assert_eq!(mode(&h), (Priv::S, false));
        assert_eq!(h.csr.scause, 1 << 63 | 10);
        assert_eq!((h.csr.htinst, h.csr.htval), (0, 0));
        assert_ne!(h.csr.hstatus & hstatus::SPV, 0);
    }

    #[test]
    fn mret_enters_v1_only_with_mpv_and_mpp_below_m() {
        // H chapter, "Trap Return": V = MPV unless MPP = 3; MRET clears MPV and MPP.
        let go = |mpp: u64, mpv: bool| {
            let mut h = hart_in(Priv::M, false);
            let v = if mpv { mstatus::MPV } else { 0 };
            csrw(
                &mut h,
                num::MSTATUS,
                mpp << mstatus::MPP_SHIFT | v | mstatus::MPRV,
            );
            csrw(&mut h, num::MEPC, 0x4000_0000);
            h.mret();
            assert_eq!(h.pc, 0x4000_0000);
            assert_eq!(h.csr.mstatus & (mstatus::MPV | mstatus::MPP), 0);
            (mode(&h), h.csr.mstatus & mstatus::MPRV != 0)
        };
        assert_eq!(go(1, true), ((Priv::S, true), false));
        assert_eq!(go(0, true), ((Priv::U, true), false));
        assert_eq!(go(1, false), ((Priv::S, false), false));
        assert_eq!(
            go(3, true),
            ((Priv::M, false), true),
            "MPV ignored, MPRV kept"
        );
    }

    #[test]
    fn sret_from_hs_returns_to_v_spv_and_clears_spv() {
        // H chapter, "Trap Return": SRET with V=0 goes to (SPV, SPP), then SPV = 0.
        for (spv, spp, to) in [
            (true, true, (Priv::S, true)),
            (true, false, (Priv::U, true)),
            (false, true, (Priv::S, false)),
            (false, false, (Priv::U, false)),
        ] {
            let mut h = hart_in(Priv::S, false);
            csrw(&mut h, num::HSTATUS, if spv { hstatus::SPV } else { 0 });
            let spp_bit = if spp { mstatus::SPP } else { 0 };
            csrw(&mut h, num::MSTATUS, spp_bit | mstatus::SPIE);
            csrw(&mut h, num::SEPC, 0x4000_0000);
            let vsstatus = h.csr.vsstatus;
            h.sret();
            assert_eq!(mode(&h), to);
            assert_eq!(h.pc, 0x4000_0000);
            assert_eq!(h.csr.hstatus & hstatus::SPV, 0);
            let ms = h.csr.mstatus;
            assert_eq!(ms & (mstatus::SPP | mstatus::SIE), mstatus::SIE);
            assert_eq!(h.csr.vsstatus, vsstatus);
        }
    }

    #[test]
    fn sret_in_vs_uses_vsstatus_and_vsepc_and_stays_virtual() {
        for (spp, to) in [(true, Priv::S), (false, Priv::U)] {
            let mut h = hart_in(Priv::S, true);
            h.csr.vsstatus |= mstatus::SPIE | if spp { mstatus::SPP } else { 0 };
            h.csr.vsepc = 0x1000;
            h.csr.sepc = 0x2000;
            csrw(&mut h, num::HSTATUS, hstatus::SPV);
            let (ms, hs) = (h.csr.mstatus, h.csr.hstatus);
            h.sret();
            assert_eq!(mode(&h), (to, true));
            assert_eq!(h.pc, 0x1000);
            let vs = h.csr.vsstatus;
            assert_eq!(vs & (mstatus::SPP | mstatus::SIE), mstatus::SIE);
            assert_eq!((h.csr.mstatus, h.csr.hstatus), (ms, hs));
        }
    }

    #[test]
    fn hs_interrupts_are_taken_in_vs_whatever_the_sie_bits() {
        // H chapter, "hip": an interrupt for HS traps whenever the mode is less
        // privileged than HS.
        let mut h = hart_in(Priv::S, true);
        csrw(&mut h, num::MIDELEG, irq::SEIP);
        csrw(&mut h, num::MIE, irq::SEIP);
        csrw(&mut h, num::MIP, irq::SEIP);
        h.csr.mstatus &= !mstatus::SIE;
        h.csr.vsstatus &= !mstatus::SIE;
        assert_eq!(h.pending_interrupt(), Some(9));
        h.set_mode(Priv::U, true);
        assert_eq!(h.pending_interrupt(), Some(9));
        // In HS it waits for sstatus.SIE.
        h.set_mode(Priv::S, false);
        assert_eq!(h.pending_interrupt(), None);
        h.csr.mstatus |= mstatus::SIE;
        assert_eq!(h.pending_interrupt(), Some(9));
        // M-level interrupts come first.
        csrw(&mut h, num::MIE, irq::SEIP | irq::MTIP);
        h.timer.mtip = true;
        h.set_mode(Priv::S, true);
        assert_eq!(h.pending_interrupt(), Some(7));
    }

    #[test]
    fn vs_interrupts_need_v1_and_vsstatus_sie_in_vs() {
        let mut h = hart_in(Priv::S, false);
        csrw(&mut h, num::HIDELEG, irq::VSSIP);
        csrw(&mut h, num::HIE, irq::VSSIP);
        csrw(&mut h, num::HVIP, irq::VSSIP);
        h.csr.mstatus |= mstatus::SIE;
        assert_eq!(h.pending_interrupt(), None, "never taken with V=0");
        h.set_mode(Priv::U, false);
        assert_eq!(h.pending_interrupt(), None);
        h.set_mode(Priv::M, false);
        assert_eq!(h.pending_interrupt(), None);
        h.set_mode(Priv::S, true);
        h.csr.vsstatus &= !mstatus::SIE;
        assert_eq!(h.pending_interrupt(), None, "VS with vsstatus.SIE clear");
        h.csr.vsstatus |= mstatus::SIE;
        assert_eq!(h.pending_interrupt(), Some(2));
        h.csr.vsstatus &= !mstatus::SIE;
        h.set_mode(Priv::U, true);
        assert_eq!(h.pending_interrupt(), Some(2), "always enabled in VU");
        // Not delegated by hideleg, the VS-level interrupt is HS's and is taken at once
        // with V=1, and with V=0 in HS under sstatus.SIE.
        csrw(&mut h, num::HIDELEG, 0);
        assert_eq!(h.pending_interrupt(), Some(2));
        h.set_mode(Priv::S, false);
        assert_eq!(h.pending_interrupt(), Some(2));
    }

    #[test]
    fn interrupts_for_hs_follow_the_h_priority_order() {
        // H chapter, "hip": SEI, SSI, STI, SGEI, VSEI, VSSI, VSTI.
        let mut h = hart_in(Priv::U, true);
        csrw(&mut h, num::MIDELEG, 0x222);
        csrw(&mut h, num::MIE, 0x666);
        csrw(&mut h, num::HVIP, 0x444);
        assert_eq!(h.pending_interrupt(), Some(10));
        csrw(&mut h, num::HVIP, irq::VSSIP | irq::VSTIP);
        assert_eq!(h.pending_interrupt(), Some(2));
        csrw(&mut h, num::MIP, irq::STIP);
        assert_eq!(h.pending_interrupt(), Some(5));
        csrw(&mut h, num::MIP, irq::STIP | irq::SEIP);
        assert_eq!(h.pending_interrupt(), Some(9));
    }

    #[test]
    fn without_h_traps_leave_the_h_fields_alone() {
        let mut h = hart_in(Priv::S, false);
        h.exts = ExtSet::CPU.without(Ext::H);
        h.csr.mtval2 = 0x99;
        h.raise(GPF);
        assert_eq!(h.csr.mstatus & (mstatus::GVA | mstatus::MPV), 0);
        assert_eq!(h.csr.mtval2, 0x99);
    }
}
