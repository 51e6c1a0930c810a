//! One RISC-V hart: architectural state, CSRs, traps, memory access and timers. The
//! interpreter ([`crate::engine`]) and, later, compiled code run on this state.

#[cfg(test)]
mod aia_tests;
pub mod csr;
pub mod fp;
pub mod memory;
pub mod mmu;
pub mod pmp;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tinst;
pub mod tlb;
pub mod trap;

use std::sync::Arc;

use rivet_devices::aclint::Aclint;
use rivet_devices::bus::Bus;
use rivet_devices::clock::Clock;
use rivet_devices::irq::{HartSignals, Wake};
use rivet_devices::power::PowerControl;
use rivet_devices::ram::GuestRam;

use csr::Csrs;

/// Privilege modes (Priv spec 1.2), numbered as in `mstatus.MPP`.
pub use mmu::Priv;

impl Priv {
    /// Decodes a 2-bit MPP value; the reserved value 2 cannot be stored (WARL).
    pub fn from_bits(b: u64) -> Self {
        match b & 3 {
            0 => Priv::U,
            1 => Priv::S,
            _ => Priv::M,
        }
    }
}

/// What all harts of a machine share.
pub struct Shared {
    pub ram: Arc<GuestRam>,
    pub bus: Bus,
    /// The host clock: ACLINT hands `mtimecmp` to harts in these ticks.
    pub clock: Clock,
    /// The ACLINT owns the guest-visible `mtime` (the guest may write it).
    pub aclint: Arc<Aclint>,
    pub power: Arc<PowerControl>,
    /// Device windows that lie inside RAM (HTIF's tohost/fromhost): pages overlapping
    /// them never get L1 entries.
    pub mmio_in_ram: Vec<std::ops::Range<u64>>,
    /// Wakes the machine's timer loop when a hart publishes an earlier deadline (see
    /// `crate::runtime`).
    pub timer_loop: Wake,
}

impl Shared {
    /// Whether the 4 KiB page at `page` holds a device window.
    pub fn page_has_mmio(&self, page: u64) -> bool {
        self.mmio_in_ram
            .iter()
            .any(|r| r.start < page + 0x1000 && page < r.end)
    }
}

/// LR reservation: address, size and the value LR read. SC succeeds by a host
/// compare-exchange against that value, which is atomic across host threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub addr: u64,
    pub size: u8,
    pub value: u64,
}

/// What a hart did that a hypervisor user wants to know (`--stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HartStats {
    /// Entries into V=1 (xRET to VS or VU) and exits from it (traps to HS or M).
    pub guest_entries: u64,
    pub guest_exits: u64,
    /// Guest-page faults (causes 20, 21, 23) and virtual-instruction exceptions.
    pub guest_page_faults: u64,
    pub virtual_insns: u64,
    /// HFENCE.VVMA and HFENCE.GVMA (HINVAL included), and SFENCE.VMA with V=1.
    pub hfence_vvma: u64,
    pub hfence_gvma: u64,
    pub guest_sfence: u64,
    /// Interrupts claimed through `mtopei`, `stopei` and `vstopei` (the last: from a
    /// guest interrupt file, directly by a VS-mode guest or by its hypervisor).
    pub imsic_claims: [u64; 3],
    /// The TLB's counters.
    pub tlb: tlb::TlbStats,
}

impl HartStats {
    pub fn add(&mut self, o: &HartStats) {
        self.guest_entries += o.guest_entries;
        self.guest_exits += o.guest_exits;
        self.guest_page_faults += o.guest_page_faults;
        self.virtual_insns += o.virtual_insns;
        self.hfence_vvma += o.hfence_vvma;
        self.hfence_gvma += o.hfence_gvma;
        self.guest_sfence += o.guest_sfence;
        for (a, b) in self.imsic_claims.iter_mut().zip(o.imsic_claims) {
            *a += b;
        }
        self.tlb.add(&o.tlb);
    }
}

/// Timer comparison state, re-evaluated at slice boundaries and on CSR/mtimecmp writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timers {
    pub mtip: bool,
    pub stip: bool,
    /// Sstc's VS timer: `vstimecmp` against `time + htimedelta` (H chapter, "hip").
    pub vstip: bool,
    /// The earliest clock tick at which a timer interrupt changes (u64::MAX: none).
    pub next_deadline: u64,
}

/// `#[repr(C)]`: compiled code reaches the fields of the first group through offsets
/// that [`crate::engine::tier1`] computes with `offset_of!` (the layout it hands the backend).
#[repr(C)]
pub struct Hart {
    // The state compiled code touches directly comes first.
    pub x: [u64; 32],
    pub f: [u64; 32],
    pub pc: u64,
    pub instret: u64,
    /// Host address of the L1 TLB table of the current data regime (see
    /// [`Hart::refresh_l1_data`]); kept as an integer so the hart stays `Send`.
    pub l1_data: usize,
    /// The L1 table of instruction fetches at the current privilege, and the engine's
    /// table of compiled blocks by pc (compiled code chains indirect jumps through
    /// them).
    pub l1_exec: usize,
    pub fast_table: usize,
    /// Where the JIT's helper thunks leave a helper's status.
    pub helper_status: u64,
    /// Block chaining (see `rivet_jit::backend`): the address of the chain key in
    /// [`HartSignals`], and the link cell of the last exit that did not chain.
    pub chain_key: usize,
    pub last_exit: usize,
    /// Bumped whenever code or PMP may have changed, which unlinks every chained exit
    /// (the dispatcher arms the chain key with it).
    pub link_epoch: u64,
    pub prv: Priv,
    /// The virtualization mode V (H chapter, "Privilege Modes"): with `prv`, the mode
    /// the hart runs in (HS/U when 0, VS/VU when 1). Compiled code reads it next to
    /// `prv`.
    pub virt: bool,
    /// Set by `fence.i`: the engine drops decoded and compiled code at the end of the
    /// block (never while compiled code of that block runs).
    pub code_flush_pending: bool,
    cycle_offset: u64,
    pub csr: Csrs,
    pub pmp: pmp::Pmp,
    pub tlb: Box<tlb::Tlb>,
    pub reservation: Option<Reservation>,
    pub timer: Timers,
    pub hartid: u64,
    /// The number of guest external interrupt files (H chapter, "hgeip": GEILEN).
    pub geilen: u8,
    /// The hart's IMSIC interrupt files, on machines with `aia=aplic-imsic`.
    pub imsic: Option<Arc<rivet_devices::imsic::HartFiles>>,
    /// The largest `satp.MODE` the hart implements (8 Sv39, 9 Sv48, 10 Sv57; the x4
    /// modes of `hgatp` follow it).
    pub max_satp_mode: u64,
    /// The extensions this hart implements: decode rejects the others.
    pub exts: rivet_jit::arch::ExtSet,
    pub signals: Arc<HartSignals>,
    pub shared: Arc<Shared>,
    /// Set when the hart executed WFI and no interrupt was pending.
    pub waiting: bool,
    /// Bumped whenever virtual-to-physical translations may have changed.
    pub tlb_epoch: u64,
    /// Device (MMIO) loads and stores performed; `--lockstep` does not replay blocks
    /// that touched a device.
    pub mmio_accesses: u64,
    pub stats: HartStats,
}

/// The architectural state of a hart that one block can change, for `--lockstep`
/// (memory, TLB contents and timers excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchState {
    pub x: [u64; 32],
    pub f: [u64; 32],
    pub pc: u64,
    pub instret: u64,
    pub prv: Priv,
    pub virt: bool,
    pub csr: Csrs,
    pub pmp: pmp::Pmp,
    pub cycle_offset: u64,
    pub reservation: Option<Reservation>,
    pub waiting: bool,
    pub code_flush_pending: bool,
}

impl Hart {
    pub fn arch_state(&self) -> ArchState {
        ArchState {
            x: self.x,
            f: self.f,
            pc: self.pc,
            instret: self.instret,
            prv: self.prv,
            virt: self.virt,
            csr: self.csr.clone(),
            pmp: self.pmp.clone(),
            cycle_offset: self.cycle_offset,
            reservation: self.reservation,
            waiting: self.waiting,
            code_flush_pending: self.code_flush_pending,
        }
    }

    /// Puts back a state taken by [`Hart::arch_state`]. The TLB keeps its entries, so
    /// the caller only restores states of the same address space (satp unchanged, or
    /// changed and changed back by re-executing the same block).
    pub fn restore_arch_state(&mut self, s: &ArchState) {
        let satp_changed = self.csr.satp != s.csr.satp;
        let guest_changed = self.csr.vsatp != s.csr.vsatp || self.csr.hgatp != s.csr.hgatp;
        // What L1 entries grant depends on MXR, MPRV/MPP and PMP (see
        // `data_regime_changed`); privilege and SUM select tables.
        let grants = csr::mstatus::MXR | csr::mstatus::MPRV | (3 << csr::mstatus::MPP_SHIFT);
        let regime_changed = (self.csr.mstatus ^ s.csr.mstatus) & grants != 0
            || (self.csr.vsstatus ^ s.csr.vsstatus) & csr::mstatus::MXR != 0
            || self.pmp != s.pmp;
        self.x = s.x;
        self.f = s.f;
        self.pc = s.pc;
        self.instret = s.instret;
        self.prv = s.prv;
        self.virt = s.virt;
        self.csr = s.csr.clone();
        self.pmp = s.pmp.clone();
        self.cycle_offset = s.cycle_offset;
        self.reservation = s.reservation;
        self.waiting = s.waiting;
        self.code_flush_pending = s.code_flush_pending;
        if satp_changed {
            self.satp_changed();
        }
        if guest_changed {
            self.guest_space_changed();
        }
        if regime_changed {
            self.data_regime_changed();
        }
    }

    pub fn new(hartid: u64, signals: Arc<HartSignals>, shared: Arc<Shared>) -> Self {
        Self {
            x: [0; 32],
            f: [0; 32],
            pc: 0,
            instret: 0,
            l1_data: 0,
            l1_exec: 0,
            fast_table: 0,
            helper_status: 0,
            chain_key: signals.chain_key() as *const _ as usize,
            last_exit: 0,
            link_epoch: 1,
            prv: Priv::M,
            virt: false,
            code_flush_pending: false,
            cycle_offset: 0,
            csr: Csrs::reset(),
            pmp: pmp::Pmp::default(),
            tlb: Box::new(tlb::Tlb::new()),
            reservation: None,
            timer: Timers {
                next_deadline: u64::MAX,
                ..Timers::default()
            },
            hartid,
            geilen: 0,
            imsic: None,
            max_satp_mode: 10,
            exts: rivet_jit::arch::ExtSet::CPU,
            signals,
            shared,
            waiting: false,
            tlb_epoch: 0,
            mmio_accesses: 0,
            stats: HartStats::default(),
        }
    }

    /// `mcycle`: Rivet counts one cycle per retired instruction.
    pub fn cycle(&self) -> u64 {
        self.instret.wrapping_add(self.cycle_offset)
    }

    fn set_cycle(&mut self, value: u64) {
        // The writing instruction itself still retires afterwards.
        self.cycle_offset = value.wrapping_sub(self.instret).wrapping_sub(1);
    }

    /// Enters privilege `p` with virtualization mode `virt`. Each mode has its own L1
    /// tables: nothing to flush.
    pub fn set_mode(&mut self, p: Priv, virt: bool) {
        if virt != self.virt {
            if virt {
                self.stats.guest_entries += 1;
            } else {
                self.stats.guest_exits += 1;
            }
        }
        self.prv = p;
        self.virt = virt;
    }

    /// The hart's statistics, with the TLB's.
    pub fn stats(&self) -> HartStats {
        HartStats {
            tlb: self.tlb.stats(),
            ..self.stats
        }
    }

    /// Re-evaluates MTIP/STIP against `mtime` and computes the next deadline.
    pub fn update_timers(&mut self) {
        // mtimecmp arrives in clock ticks; stimecmp is in guest mtime ticks.
        let now = self.shared.clock.mtime();
        let mtimecmp = self.signals.mtimecmp();
        self.timer.mtip = now >= mtimecmp;
        let mut next = u64::MAX;
        if !self.timer.mtip {
            next = mtimecmp;
        }
        let stce = self.csr.menvcfg & csr::menvcfg::STCE != 0;
        self.timer.stip = false;
        if stce {
            // Compared at the same instant as `mtimecmp`; the deadline does not depend
            // on `now`, so republishing it does not wake the timer loop again.
            let (fired, at) = self.shared.aclint.compare(now, self.csr.stimecmp);
            self.timer.stip = fired;
            if !fired {
                next = next.min(at);
            }
        }
        self.timer.vstip = false;
        if stce && self.henvcfg() & csr::menvcfg::STCE != 0 {
            // vstimecmp is compared with time + htimedelta (wrapping): the guest's
            // time reaches it when the host's reaches vstimecmp - htimedelta.
            let cmp = self.csr.vstimecmp;
            let (fired, at) = self
                .shared
                .aclint
                .compare_offset(now, cmp, self.csr.htimedelta);
            self.timer.vstip = fired;
            if !fired {
                next = next.min(at);
            }
        }
        self.timer.next_deadline = next;
        if self.signals.publish_deadline(next) {
            self.shared.timer_loop.kick();
        }
    }

    /// Points `l1_data` at the L1 table of the data regime now in effect (privilege,
    /// MPRV/MPP and SUM select it).
    #[inline]
    pub fn refresh_l1_data(&mut self) {
        let data = self.tlb.table(self.data_regime());
        let fetch = self.tlb.table(self.fetch_regime());
        let base = self.tlb.l1_base();
        self.l1_data = base + data * tlb::L1_REGIME_BYTES;
        self.l1_exec = base + fetch * tlb::L1_REGIME_BYTES;
    }

    #[inline]
    pub fn set_x(&mut self, r: u8, v: u64) {
        if r != 0 {
            self.x[usize::from(r)] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::csr::{menvcfg, num};
    use super::testutil::{self, csrr, csrw};
    use rivet_devices::irq::VSTIP;

    #[test]
    fn vstimecmp_against_time_plus_htimedelta_drives_vstip() {
        // Sstc with the H chapter ("hip", "htimedelta"): hip.VSTIP is set while
        // time + htimedelta >= vstimecmp, if menvcfg.STCE and henvcfg.STCE are set;
        // it shows in hip and mip with V=0 as well, and never in hvip.
        let mut h = testutil::hart();
        let far = 1 << 62;
        let vstip = |h: &mut super::Hart| csrr(h, num::HIP) & VSTIP != 0;
        csrw(&mut h, num::MENVCFG, menvcfg::STCE);
        csrw(&mut h, num::HENVCFG, menvcfg::STCE);
        csrw(&mut h, num::VSTIMECMP, far);
        assert!(!vstip(&mut h));
        csrw(&mut h, num::HTIMEDELTA, far);
        assert!(vstip(&mut h));
        assert_eq!(csrr(&mut h, num::MIP) & VSTIP, VSTIP);
        assert_eq!(csrr(&mut h, num::HVIP), 0);
        csrw(&mut h, num::VSTIMECMP, far + (1 << 40));
        assert!(!vstip(&mut h), "vstimecmp moved past the guest's time");
        csrw(&mut h, num::VSTIMECMP, far);
        assert!(vstip(&mut h));
        csrw(&mut h, num::HENVCFG, 0);
        assert!(!vstip(&mut h), "henvcfg.STCE clear");
        csrw(&mut h, num::HENVCFG, menvcfg::STCE);
        assert!(vstip(&mut h));
        csrw(&mut h, num::MENVCFG, 0);
        assert!(!vstip(&mut h), "menvcfg.STCE clear");
        // time + htimedelta wraps (a negative delta): the sum is compared, unsigned.
        csrw(&mut h, num::MENVCFG, menvcfg::STCE);
        csrw(&mut h, num::HENVCFG, menvcfg::STCE);
        csrw(&mut h, num::HTIMEDELTA, 0u64.wrapping_sub(1 << 40));
        csrw(&mut h, num::VSTIMECMP, 1 << 63);
        assert!(vstip(&mut h));
        // The VS timer is the guest's: it leaves the HS timer (STIP) alone.
        assert_eq!(csrr(&mut h, num::MIP) & rivet_devices::irq::STIP, 0);
    }

    #[test]
    fn the_vs_timer_deadline_is_vstimecmp_minus_htimedelta() {
        // The timer loop must wake the hart when the guest's time (time + htimedelta)
        // reaches vstimecmp: at host tick vstimecmp - htimedelta.
        let mut h = testutil::hart();
        csrw(&mut h, num::MENVCFG, menvcfg::STCE);
        csrw(&mut h, num::HENVCFG, menvcfg::STCE);
        let cmp = 1_000_000_000;
        csrw(&mut h, num::VSTIMECMP, cmp);
        assert_eq!(h.timer.next_deadline, cmp);
        csrw(&mut h, num::HTIMEDELTA, cmp / 2);
        assert_eq!(h.timer.next_deadline, cmp / 2);
        // Without henvcfg.STCE the VS timer sets no deadline.
        csrw(&mut h, num::HENVCFG, 0);
        assert_eq!(h.timer.next_deadline, u64::MAX);
    }
}
