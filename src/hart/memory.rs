//! Loads, stores, atomics and instruction fetch of one hart: the L1 TLB fast path, and
//! the slow path (translation, PMP, MMIO, misaligned accesses, code-page tracking).

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::csr::{atp, hstatus, menvcfg, mstatus};
use super::mmu::{self, Access};
use super::tlb::{Leaf, Mxr, Regime, Space, Stage};
use super::trap::{cause, Exception};
use super::{Hart, Priv, Reservation};

/// AMO operations (Unpriv spec "Zaamo").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmoOp {
    Swap,
    Add,
    Xor,
    And,
    Or,
    Min,
    Max,
    Minu,
    Maxu,
}

/// Where a translated access goes.
enum Target {
    /// Guest RAM at this host pointer.
    Ram(*mut u8),
    /// A device (or nothing) at this physical address.
    Mmio(u64),
}

fn fault_cause(access: Access, page: bool) -> u64 {
    match (access, page) {
        (Access::Read, true) => cause::LOAD_PAGE_FAULT,
        (Access::Write, true) => cause::STORE_PAGE_FAULT,
        (Access::Exec, true) => cause::INSN_PAGE_FAULT,
        (Access::Read, false) => cause::LOAD_ACCESS,
        (Access::Write, false) => cause::STORE_ACCESS,
        (Access::Exec, false) => cause::INSN_ACCESS,
    }
}

/// The causes of a failed translation, by the kind of access the instruction makes.
fn guest_page_cause(access: Access) -> u64 {
    match access {
        Access::Read => cause::LOAD_GUEST_PAGE_FAULT,
        Access::Write => cause::STORE_GUEST_PAGE_FAULT,
        Access::Exec => cause::INSN_GUEST_PAGE_FAULT,
    }
}

/// The `xtinst` pseudoinstruction of a guest-page fault on a VS-stage PTE access (H
/// chapter, table "Special pseudoinstruction values for guest-page faults", RV64: a
/// 64-bit read, or a write when the walk was updating A/D).
fn walk_pseudoinstruction(access: Access) -> u64 {
    match access {
        Access::Write => 0x0000_3020,
        _ => 0x0000_3000,
    }
}

impl Hart {
    /// The mode loads and stores use: MPRV makes M-mode accesses use MPP and, with H,
    /// MPV (Priv spec 3.1.6.3; H chapter, "mstatus": MPRV does not apply to
    /// instruction fetch).
    #[inline]
    fn data_mode(&self) -> (Priv, bool) {
        if self.prv == Priv::M && self.csr.mstatus & mstatus::MPRV != 0 {
            let mpp = Priv::from_bits((self.csr.mstatus >> mstatus::MPP_SHIFT) & 3);
            let mpv = mpp != Priv::M && self.csr.mstatus & mstatus::MPV != 0;
            (mpp, mpv)
        } else {
            (self.prv, self.virt)
        }
    }

    /// The regime of privilege `p` and virtualization mode `virt`: `vsstatus.SUM`
    /// applies with V=1, `mstatus.SUM` with V=0.
    #[inline]
    fn regime_of(&self, p: Priv, virt: bool) -> Regime {
        let status = if virt {
            self.csr.vsstatus
        } else {
            self.csr.mstatus
        };
        Regime::of(p, virt, status & mstatus::SUM != 0)
    }

    /// The regime instruction fetches translate in.
    #[inline]
    pub fn fetch_regime(&self) -> Regime {
        self.regime_of(self.prv, self.virt)
    }

    #[inline]
    pub fn data_regime(&self) -> Regime {
        let (p, virt) = self.data_mode();
        self.regime_of(p, virt)
    }

    /// The mode of HLV, HLVX and HSV: V=1 at privilege `hstatus.SPVP`, whatever MPRV
    /// says (H chapter, "Hypervisor Virtual-Machine Load and Store Instructions").
    fn hlv_mode(&self) -> (Priv, bool) {
        let p = if self.csr.hstatus & hstatus::SPVP != 0 {
            Priv::S
        } else {
            Priv::U
        };
        (p, true)
    }

    /// Invalidates what depended on the data regime. Privilege and SUM select their own
    /// L1 tables; MXR and the effect of MPRV change what an entry grants.
    pub fn data_regime_changed(&mut self) {
        self.tlb.flush_l1();
    }

    /// A satp write: the S stage now names another address space (L2 keeps the old one).
    pub fn satp_changed(&mut self) {
        let satp = self.csr.satp;
        let mode = mmu::Mode::from_satp_mode(satp >> atp::MODE_SHIFT).unwrap_or(mmu::Mode::Bare);
        self.tlb.set_space(
            Stage::S,
            Space {
                mode,
                asid: (satp >> atp::ASID_SHIFT) as u16,
                vmid: 0,
            },
        );
        self.tlb.set_root(Stage::S, (satp & atp::PPN_MASK, 0));
        self.tlb_epoch += 1;
    }

    /// A write of `vsatp` or `hgatp`: the guest's VS stage (ASID and VMID) and G stage
    /// (VMID) now name other address spaces; L2 keeps the old ones, tagged.
    pub fn guest_space_changed(&mut self) {
        let (vsatp, hgatp) = (self.csr.vsatp, self.csr.hgatp);
        let vmid = (hgatp >> atp::VMID_SHIFT & atp::VMID_MASK) as u16;
        let gmode = mmu::Mode::from_hgatp_mode(hgatp >> atp::MODE_SHIFT).unwrap_or(mmu::Mode::Bare);
        self.tlb.set_space(
            Stage::G,
            Space {
                mode: gmode,
                asid: 0,
                vmid,
            },
        );
        let vmode = mmu::Mode::from_satp_mode(vsatp >> atp::MODE_SHIFT).unwrap_or(mmu::Mode::Bare);
        self.tlb.set_space(
            Stage::VS,
            Space {
                mode: vmode,
                asid: (vsatp >> atp::ASID_SHIFT) as u16,
                vmid,
            },
        );
        self.tlb.set_root(
            Stage::VS,
            (
                vsatp & atp::PPN_MASK,
                hgatp & (atp::PPN_MASK | 0xf << atp::MODE_SHIFT),
            ),
        );
        self.tlb_epoch += 1;
    }

    pub fn tlb_flush_all(&mut self) {
        self.tlb.flush_all();
        self.tlb_epoch += 1;
    }

    /// Decoded-code caches keyed by virtual address compare against this.
    pub fn tlb_epoch(&self) -> u64 {
        self.tlb_epoch
    }

    /// `sfence.vma` (and `sinval.vma`): with V=1 it fences the current guest's VS
    /// stage, as `hfence.vvma` does (H chapter, "Memory-Management Fences").
    pub fn sfence_vma(&mut self, vaddr: Option<u64>, asid: Option<u16>) {
        if self.virt {
            let vmid = self.tlb.space(Stage::VS).vmid;
            self.tlb.hfence_vvma(vmid, vaddr, asid);
            self.stats.guest_sfence += 1;
        } else {
            self.tlb.sfence_vma(vaddr, asid);
        }
        self.tlb_epoch += 1;
    }

    /// `hfence.vvma`: the VS stage of the guest `hgatp.VMID` names.
    pub fn hfence_vvma(&mut self, vaddr: Option<u64>, asid: Option<u16>) {
        let vmid = self.tlb.space(Stage::VS).vmid;
        self.tlb.hfence_vvma(vmid, vaddr, asid);
        self.stats.hfence_vvma += 1;
        self.tlb_epoch += 1;
    }

    /// `hfence.gvma`: `gpa` is rs1 << 2, `vmid` rs2 (each `None` for x0).
    pub fn hfence_gvma(&mut self, gpa: Option<u64>, vmid: Option<u16>) {
        self.tlb.hfence_gvma(vmid, gpa);
        self.stats.hfence_gvma += 1;
        self.tlb_epoch += 1;
    }

    /// What the G stage of the current guest needs.
    fn g_stage(&self) -> mmu::GStage {
        let hgatp = self.csr.hgatp;
        mmu::GStage {
            mode: mmu::Mode::from_hgatp_mode(hgatp >> atp::MODE_SHIFT).unwrap_or(mmu::Mode::Bare),
            root_ppn: hgatp & atp::PPN_MASK,
            adue: self.csr.menvcfg & menvcfg::ADUE != 0,
            pbmte: self.csr.menvcfg & menvcfg::PBMTE != 0,
            mxr: self.csr.mstatus & mstatus::MXR != 0,
        }
    }

    /// The exception a failed translation of `vaddr` raises, for an access of kind
    /// `kind` (what the instruction does: HLVX reads with execute permission and still
    /// faults as a load); `virt`: the access ran with two-stage translation.
    fn walk_exception(f: mmu::Fault, vaddr: u64, kind: Access, virt: bool) -> Exception {
        let mut e = match f {
            mmu::Fault::Access { .. } => Exception::new(fault_cause(kind, false), vaddr),
            mmu::Fault::GuestPage { gpa, implicit } => Exception {
                gpa,
                tinst: implicit.map_or(0, walk_pseudoinstruction),
                ..Exception::new(guest_page_cause(kind), vaddr)
            },
            // A PTE another hart keeps rewriting: Rivet reports a page fault, which
            // the guest's handler resolves by retrying (the walk changed nothing).
            mmu::Fault::Page | mmu::Fault::Retry => Exception::new(fault_cause(kind, true), vaddr),
        };
        e.gva = virt;
        e
    }

    /// Translates `vaddr` for `access` in `mode` (privilege, V), checks PMP, finds the
    /// target, and fills the L1 entry when the page is RAM that PMP grants uniformly.
    /// Faults are reported as accesses of kind `kind`.
    fn translate(
        &mut self,
        vaddr: u64,
        size: u64,
        access: Access,
        mode: (Priv, bool),
        kind: Access,
    ) -> Result<(u64, Target), Exception> {
        let (p, virt) = mode;
        let regime = self.regime_of(p, virt);
        if self.tlb.share_global(regime, vaddr, access) {
            if let Some(host) = self.tlb.probe(regime, vaddr, size, access) {
                if let Some(pa) = self.shared.ram.guest_addr(host) {
                    return Ok((pa, Target::Ram(host)));
                }
            }
        }
        let ms = self.csr.mstatus;
        let mxr = Mxr {
            hs: ms & mstatus::MXR != 0,
            vs: self.csr.vsstatus & mstatus::MXR != 0,
        };
        let ram = &self.shared.ram;
        let pmp = &self.pmp;
        let ptes = mmu::RamPtes::new(ram, Some(pmp));
        let m = if virt {
            let vsatp = self.csr.vsatp;
            let henvcfg = self.henvcfg();
            let req = mmu::WalkRequest {
                vaddr,
                access,
                mode: mmu::Mode::from_satp_mode(vsatp >> atp::MODE_SHIFT)
                    .unwrap_or(mmu::Mode::Bare),
                root_ppn: vsatp & atp::PPN_MASK,
                privilege: p,
                sum: self.csr.vsstatus & mstatus::SUM != 0,
                // mstatus.MXR reaches both stages; vsstatus.MXR only the VS stage.
                mxr: mxr.hs || mxr.vs,
                adue: henvcfg & menvcfg::ADUE != 0,
                pbmte: henvcfg & menvcfg::PBMTE != 0,
                napot: true,
            };
            let g = self.g_stage();
            self.tlb.translate(regime, vaddr, access, mxr, || {
                mmu::walk_two_stage(&req, &g, &ptes).map(|(a, b)| Leaf::two_stage(&a, &b))
            })
        } else {
            let satp = self.csr.satp;
            let req = mmu::WalkRequest {
                vaddr,
                access,
                mode: mmu::Mode::from_satp_mode(satp >> atp::MODE_SHIFT).unwrap_or(mmu::Mode::Bare),
                root_ppn: satp & atp::PPN_MASK,
                privilege: p,
                sum: ms & mstatus::SUM != 0,
                mxr: mxr.hs,
                adue: self.csr.menvcfg & menvcfg::ADUE != 0,
                pbmte: self.csr.menvcfg & menvcfg::PBMTE != 0,
                napot: true,
            };
            self.tlb.translate(regime, vaddr, access, mxr, || {
                mmu::walk(&req, &ptes).map(|t| Leaf::one_stage(&t))
            })
        };
        let m = m.map_err(|f| Self::walk_exception(f, vaddr, kind, virt))?;
        let paddr = m.paddr;
        let pmp_fault = || Exception {
            gva: virt,
            ..Exception::new(fault_cause(kind, false), vaddr)
        };
        // Permissions on the whole page imply them on the access; only a page that a
        // PMP entry splits needs the exact check.
        let allow = self.pmp.page_perms(paddr, p);
        if !allow.allows(access) && !self.pmp.check(paddr, size, access, p) {
            return Err(pmp_fault());
        }
        // HLVX: the physical memory attributes must grant read as well as execute.
        if kind != access && !self.pmp.check(paddr, size, kind, p) {
            return Err(pmp_fault());
        }
        let page = paddr & !0xfff;
        let ram_page = !self.shared.page_has_mmio(page);
        if let Some(host) = self.shared.ram.host_ptr(paddr, size) {
            // RAM, unless a device sits on this page of it (then the bus decides).
            if ram_page || self.shared.bus.find(paddr).is_none() {
                if let Some(host_page) = self.shared.ram.host_ptr(page, 0x1000).filter(|_| ram_page)
                {
                    self.tlb.fill_l1(regime, vaddr, &m, host_page, allow);
                }
                return Ok((paddr, Target::Ram(host)));
            }
        }
        Ok((paddr, Target::Mmio(paddr)))
    }

    /// For the slow path of compiled code: translates the naturally aligned access and
    /// fills its L1 entry; true when L1 now grants it (the caller then performs it
    /// through L1 itself), false when the access must go through [`Hart::load`] or
    /// [`Hart::store`] (a device, a misaligned access, a page PMP splits).
    pub fn refill_l1(&mut self, vaddr: u64, size: u8, access: Access) -> Result<bool, Exception> {
        if vaddr & (u64::from(size) - 1) != 0 {
            return Ok(false);
        }
        let mode = self.data_mode();
        self.translate(vaddr, u64::from(size), access, mode, access)?;
        Ok(self
            .tlb
            .probe(self.data_regime(), vaddr, u64::from(size), access)
            .is_some())
    }

    /// Loads `size` (1, 2, 4, 8) bytes, zero-extended.
    #[inline]
    pub fn load(&mut self, vaddr: u64, size: u8) -> Result<u64, Exception> {
        if let Some(p) = self
            .tlb
            .probe(self.data_regime(), vaddr, u64::from(size), Access::Read)
        {
            // SAFETY: an L1 hit means the whole access lies in one RAM page whose host
            // mapping lives as long as the machine.
            return Ok(unsafe { read_host(p, size) });
        }
        let mode = self.data_mode();
        self.load_slow(vaddr, size, mode, Access::Read)
    }

    /// HLV (`hlvx`: HLVX) of `size` bytes, zero-extended: a load as though V=1 at
    /// privilege `hstatus.SPVP`; HLVX needs execute permission instead of read, and
    /// still faults as a load (H chapter, "Hypervisor Virtual-Machine Load and Store
    /// Instructions").
    pub fn hlv(&mut self, vaddr: u64, size: u8, hlvx: bool) -> Result<u64, Exception> {
        let mode = self.hlv_mode();
        let access = if hlvx { Access::Exec } else { Access::Read };
        self.load_in(vaddr, size, mode, access)
    }

    /// HSV: a store as though V=1 at privilege `hstatus.SPVP`.
    pub fn hsv(&mut self, vaddr: u64, size: u8, value: u64) -> Result<(), Exception> {
        let mode = self.hlv_mode();
        self.store_in(vaddr, size, value, mode)
    }

    /// A load in `mode` needing permission `access` (Read, or Exec for HLVX).
    fn load_in(
        &mut self,
        vaddr: u64,
        size: u8,
        mode: (Priv, bool),
        access: Access,
    ) -> Result<u64, Exception> {
        if access == Access::Read {
            let regime = self.regime_of(mode.0, mode.1);
            if let Some(p) = self.tlb.probe(regime, vaddr, u64::from(size), access) {
                // SAFETY: as in `load`.
                return Ok(unsafe { read_host(p, size) });
            }
        }
        self.load_slow(vaddr, size, mode, access)
    }

    fn load_slow(
        &mut self,
        vaddr: u64,
        size: u8,
        mode: (Priv, bool),
        access: Access,
    ) -> Result<u64, Exception> {
        if vaddr & (u64::from(size) - 1) != 0 {
            // Misaligned loads are performed byte by byte (Unpriv spec 2.6 permits
            // transparent handling); a fault names the byte that faulted.
            let mut v = 0;
            for i in 0..u64::from(size) {
                let b = self
                    .load_in(vaddr.wrapping_add(i), 1, mode, access)
                    .map_err(|e| split_fault(e, vaddr, i))?;
                v |= b << (8 * i);
            }
            return Ok(v);
        }
        match self
            .translate(vaddr, u64::from(size), access, mode, Access::Read)?
            .1
        {
            // SAFETY: translate returned a host pointer valid for `size` bytes.
            Target::Ram(host) => Ok(unsafe { read_host(host, size) }),
            Target::Mmio(pa) => {
                self.mmio_accesses += 1;
                self.shared
                    .bus
                    .read(self.hartid as usize, pa, size)
                    .map_err(|_| Exception {
                        gva: mode.1,
                        ..Exception::new(cause::LOAD_ACCESS, vaddr)
                    })
            }
        }
    }

    /// Stores the low `size` bytes of `value`.
    #[inline]
    pub fn store(&mut self, vaddr: u64, size: u8, value: u64) -> Result<(), Exception> {
        if let Some(p) = self
            .tlb
            .probe(self.data_regime(), vaddr, u64::from(size), Access::Write)
        {
            // SAFETY: as in load.
            unsafe { write_host(p, size, value) };
            return Ok(());
        }
        let mode = self.data_mode();
        self.store_slow(vaddr, size, value, mode)
    }

    fn store_in(
        &mut self,
        vaddr: u64,
        size: u8,
        value: u64,
        mode: (Priv, bool),
    ) -> Result<(), Exception> {
        let regime = self.regime_of(mode.0, mode.1);
        if let Some(p) = self
            .tlb
            .probe(regime, vaddr, u64::from(size), Access::Write)
        {
            // SAFETY: as in load.
            unsafe { write_host(p, size, value) };
            return Ok(());
        }
        self.store_slow(vaddr, size, value, mode)
    }

    fn store_slow(
        &mut self,
        vaddr: u64,
        size: u8,
        value: u64,
        mode: (Priv, bool),
    ) -> Result<(), Exception> {
        if vaddr & (u64::from(size) - 1) != 0 {
            // Check every byte's translation before writing any, so a faulting
            // misaligned store leaves memory unchanged.
            for i in 0..u64::from(size) {
                self.translate(vaddr.wrapping_add(i), 1, Access::Write, mode, Access::Write)
                    .map_err(|e| split_fault(e, vaddr, i))?;
            }
            for i in 0..u64::from(size) {
                self.store_in(vaddr.wrapping_add(i), 1, value >> (8 * i), mode)?;
            }
            return Ok(());
        }
        match self
            .translate(vaddr, u64::from(size), Access::Write, mode, Access::Write)?
            .1
        {
            Target::Ram(host) => {
                // SAFETY: translate returned a host pointer valid for `size` bytes.
                unsafe { write_host(host, size, value) };
                Ok(())
            }
            Target::Mmio(pa) => {
                self.mmio_accesses += 1;
                self.shared
                    .bus
                    .write(self.hartid as usize, pa, size, value)
                    .map_err(|_| Exception {
                        gva: mode.1,
                        ..Exception::new(cause::STORE_ACCESS, vaddr)
                    })
            }
        }
    }

    /// The host pointer for an atomic access, which must be naturally aligned and in RAM
    /// (Unpriv spec "A": misaligned AMOs raise address-misaligned; AMOs to a device
    /// without atomic support raise access fault).
    fn atomic_ptr(&mut self, vaddr: u64, size: u8, read_only: bool) -> Result<*mut u8, Exception> {
        let (mis, acc) = if read_only {
            (cause::LOAD_MISALIGNED, Access::Read)
        } else {
            (cause::STORE_MISALIGNED, Access::Write)
        };
        let mode = self.data_mode();
        if vaddr & (u64::from(size) - 1) != 0 {
            return Err(Exception {
                gva: mode.1,
                ..Exception::new(mis, vaddr)
            });
        }
        match self.translate(vaddr, u64::from(size), acc, mode, acc)?.1 {
            Target::Ram(host) => Ok(host),
            Target::Mmio(_) => Err(Exception {
                gva: mode.1,
                ..Exception::new(fault_cause(acc, false), vaddr)
            }),
        }
    }

    pub fn amo(&mut self, vaddr: u64, size: u8, op: AmoOp, src: u64) -> Result<u64, Exception> {
        let host = self.atomic_ptr(vaddr, size, false)?;
        // SAFETY: atomic_ptr returned a naturally aligned host pointer into guest RAM,
        // valid for `size` bytes; host atomics of that size may alias it.
        /// One AMO on a host atomic of the access width; `$s` is the signed type.
        macro_rules! amo {
            ($atomic:ty, $u:ty, $s:ty) => {{
                // SAFETY: atomic_ptr returned a naturally aligned host pointer into guest
                // RAM, valid for `size` bytes; host atomics of that size may alias it.
                let a = unsafe { &*(host as *const $atomic) };
                let v = src as $u;
                let signed = |f: fn($s, $s) -> $s| {
                    a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                        Some(f(m as $s, v as $s) as $u)
                    })
                    .unwrap_or_else(|m| m)
                };
                let old = match op {
                    AmoOp::Swap => a.swap(v, Ordering::SeqCst),
                    AmoOp::Add => a.fetch_add(v, Ordering::SeqCst),
                    AmoOp::Xor => a.fetch_xor(v, Ordering::SeqCst),
                    AmoOp::And => a.fetch_and(v, Ordering::SeqCst),
                    AmoOp::Or => a.fetch_or(v, Ordering::SeqCst),
                    AmoOp::Min => signed(<$s>::min),
                    AmoOp::Max => signed(<$s>::max),
                    AmoOp::Minu => a.fetch_min(v, Ordering::SeqCst),
                    AmoOp::Maxu => a.fetch_max(v, Ordering::SeqCst),
                };
                old as u64
            }};
        }
        let old = if size == 4 {
            amo!(AtomicU32, u32, i32)
        } else {
            amo!(AtomicU64, u64, i64)
        };
        Ok(old)
    }

    pub fn load_reserved(&mut self, vaddr: u64, size: u8) -> Result<u64, Exception> {
        let host = self.atomic_ptr(vaddr, size, true)?;
        // SAFETY: aligned host pointer into RAM, see atomic_ptr.
        let value = unsafe { atomic_load(host, size) };
        self.reservation = Some(Reservation {
            addr: vaddr,
            size,
            value,
        });
        Ok(value)
    }

    /// SC: 0 on success, 1 on failure. Succeeds iff this hart's reservation covers the
    /// address and memory still holds the value LR read (checked atomically).
    pub fn store_conditional(&mut self, vaddr: u64, size: u8, src: u64) -> Result<u64, Exception> {
        // Alignment and store permission are checked whether or not a reservation is
        // held, as for a store (Unpriv spec "Zalrsc": a misaligned SC raises an
        // exception; Spike checks both before the reservation). QEMU fails an SC
        // without a reservation before checking either; the spec does not allow
        // skipping the fault.
        let host = self.atomic_ptr(vaddr, size, false);
        let Some(r) = self.reservation.take() else {
            return host.map(|_| 1);
        };
        let host = host?;
        if r.addr != vaddr || r.size != size {
            return Ok(1);
        }
        // SAFETY: aligned host pointer into RAM, see atomic_ptr.
        let ok = unsafe {
            if size == 4 {
                (*(host as *const AtomicU32))
                    .compare_exchange(
                        r.value as u32,
                        src as u32,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .is_ok()
            } else {
                (*(host as *const AtomicU64))
                    .compare_exchange(r.value, src, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            }
        };
        Ok(u64::from(!ok))
    }

    /// Whether a cache-block operation may run in the current mode: menvcfg's CBIE,
    /// CBCFE or CBZE gate every mode below M, henvcfg's gate VS and VU, senvcfg's
    /// gate U and VU (Priv spec 3.1.18, 12.1.4; H chapter, "henvcfg"). A bit that M
    /// clears makes the instruction illegal; one that HS (or VS for VU) clears makes
    /// it a virtual instruction.
    fn cbo_gate(&self, field: u64, raw: u32) -> Result<(), Exception> {
        let m = self.csr.menvcfg & field != 0;
        let h = self.henvcfg() & field != 0;
        let s = self.csr.senvcfg & field != 0;
        let ok = match (self.prv, self.virt) {
            (Priv::M, _) => return Ok(()),
            (Priv::S, false) => m,
            (Priv::U, false) => m && s,
            (Priv::S, true) => m && h,
            (Priv::U, true) => m && h && s,
        };
        match (ok, m, self.virt) {
            (true, _, _) => Ok(()),
            (false, true, true) => Err(Exception::virtual_insn(raw)),
            _ => Err(Exception::illegal(raw)),
        }
    }

    /// cbo.clean/flush/inval: caches are not modelled, so only the permission checks
    /// remain (they fault like a store to the block).
    pub fn cbo_manage(&mut self, vaddr: u64, inval: bool, raw: u32) -> Result<(), Exception> {
        let field = if inval { menvcfg::CBIE } else { menvcfg::CBCFE };
        self.cbo_gate(field, raw)?;
        let block = vaddr & !63;
        let mode = self.data_mode();
        match self.translate(block, 1, Access::Write, mode, Access::Write) {
            Ok(_) => Ok(()),
            Err(e) => Err(Exception { tval: vaddr, ..e }),
        }
    }

    /// cbo.zero: zeroes the 64-byte block holding `vaddr`.
    pub fn cbo_zero(&mut self, vaddr: u64, raw: u32) -> Result<(), Exception> {
        self.cbo_gate(menvcfg::CBZE, raw)?;
        let block = vaddr & !63;
        for i in 0..8 {
            self.store(block + 8 * i, 8, 0)
                .map_err(|e| Exception { tval: vaddr, ..e })?;
        }
        Ok(())
    }

    /// The host address of the instruction at `vaddr` when the L1 exec entry maps it.
    #[inline]
    pub fn fetch_host(&self, vaddr: u64) -> Option<*mut u8> {
        self.tlb
            .probe(self.fetch_regime(), vaddr & !1, 2, Access::Exec)
    }

    /// Translates an instruction address to physical.
    pub fn translate_fetch(&mut self, vaddr: u64) -> Result<u64, Exception> {
        if let Some(host) = self.fetch_host(vaddr) {
            if let Some(pa) = self.shared.ram.guest_addr(host) {
                return Ok(pa);
            }
        }
        let mode = (self.prv, self.virt);
        Ok(self
            .translate(vaddr, 2, Access::Exec, mode, Access::Exec)?
            .0)
    }

    /// Reads an instruction parcel at physical `paddr` (for virtual `vaddr`, named in
    /// a fault).
    pub fn fetch_phys_u16(&mut self, paddr: u64, vaddr: u64) -> Result<u16, Exception> {
        match self.shared.ram.read(paddr, 2) {
            Some(v) => Ok(v as u16),
            None => Err(Exception {
                gva: self.virt,
                ..Exception::new(cause::INSN_ACCESS, vaddr)
            }),
        }
    }

    /// Fetches the (possibly page-straddling) instruction at virtual `vaddr`.
    pub fn fetch_insn(&mut self, vaddr: u64) -> Result<u32, Exception> {
        let pa = self.translate_fetch(vaddr)?;
        let lo = self.fetch_phys_u16(pa, vaddr)?;
        if lo & 3 != 3 {
            return Ok(u32::from(lo));
        }
        let v2 = vaddr.wrapping_add(2);
        let pa2 = self.translate_fetch(v2)?;
        let hi = self.fetch_phys_u16(pa2, v2)?;
        Ok(u32::from(lo) | u32::from(hi) << 16)
    }
}

/// The trap value of a fault on byte `i` of a misaligned access at `vaddr`: the
/// access is translated page by page, so the fault names the start of the access in
/// its first page and the start of the page otherwise (as QEMU reports it).
fn split_fault(e: Exception, vaddr: u64, i: u64) -> Exception {
    let at = vaddr.wrapping_add(i);
    let tval = if at & !0xfff == vaddr & !0xfff {
        vaddr
    } else {
        at & !0xfff
    };
    // A guest physical address names the same byte as tval (H chapter, "htval": "the
    // faulting portion of the access"); a walk's PTE address stays as it is.
    let gpa = if e.gpa != 0 && e.tinst == 0 {
        e.gpa.wrapping_sub(at.wrapping_sub(tval))
    } else {
        e.gpa
    };
    Exception { tval, gpa, ..e }
}

/// # Safety
/// `p` must be valid for reads of `size` bytes.
#[inline]
unsafe fn read_host(p: *mut u8, size: u8) -> u64 {
    // SAFETY: guaranteed by the caller; unaligned reads are fine on the host.
    unsafe {
        match size {
            1 => u64::from(*p),
            2 => u64::from(u16::from_le((p as *const u16).read_unaligned())),
            4 => u64::from(u32::from_le((p as *const u32).read_unaligned())),
            _ => u64::from_le((p as *const u64).read_unaligned()),
        }
    }
}

/// # Safety
/// `p` must be valid for writes of `size` bytes.
#[inline]
unsafe fn write_host(p: *mut u8, size: u8, v: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match size {
            1 => *p = v as u8,
            2 => (p as *mut u16).write_unaligned((v as u16).to_le()),
            4 => (p as *mut u32).write_unaligned((v as u32).to_le()),
            _ => (p as *mut u64).write_unaligned(v.to_le()),
        }
    }
}

/// # Safety
/// `p` must be naturally aligned for `size` and valid for reads.
unsafe fn atomic_load(p: *mut u8, size: u8) -> u64 {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match size {
            1 => u64::from((*(p as *const AtomicU8)).load(Ordering::SeqCst)),
            2 => u64::from((*(p as *const AtomicU16)).load(Ordering::SeqCst)),
            4 => u64::from((*(p as *const AtomicU32)).load(Ordering::SeqCst)),
            _ => (*(p as *const AtomicU64)).load(Ordering::SeqCst),
        }
    }
}
