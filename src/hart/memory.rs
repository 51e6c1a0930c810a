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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hart::csr::num;
    use crate::hart::mmu::pte;
    use crate::hart::testutil::{self, csrw, Guest, GPA_TO_PA, R, RAM_BASE, RW, RWX, U, X};

    const GVA: u64 = 0x4000_0000;
    /// The host page the guest's GVA maps onto, and its guest physical address.
    const PA: u64 = RAM_BASE + 0x10_0000;
    const GPA: u64 = PA - GPA_TO_PA;

    /// A hart in VS-mode running a guest (VMID 1) that maps GVA onto PA with VS leaf
    /// flags `vs` and G leaf flags `g`.
    fn guest(vs: u64, g: u64) -> (Hart, Guest) {
        let mut h = testutil::hart();
        let mut guest = Guest::new(&h);
        guest.map(GVA, PA, vs, g);
        guest.install(&mut h, 1);
        h.shared.ram.write(PA, 8, 0x1111).unwrap();
        h.shared.ram.write(PA + 8, 8, 0x2222).unwrap();
        h.set_mode(Priv::S, true);
        (h, guest)
    }

    fn cause_of<T: std::fmt::Debug>(r: Result<T, Exception>) -> u64 {
        r.expect_err("a fault").cause
    }

    #[test]
    fn two_stage_loads_stores_and_fetches_reach_the_host_page() {
        let (mut h, _) = guest(RWX, RWX | U);
        assert_eq!(h.load(GVA + 8, 8), Ok(0x2222));
        h.store(GVA + 16, 4, 0xdead_beef).unwrap();
        assert_eq!(h.shared.ram.read(PA + 16, 4), Some(0xdead_beef));
        // addi a0, a0, 1
        h.shared.ram.write(PA + 0x20, 4, 0x0015_0513).unwrap();
        assert_eq!(h.fetch_insn(GVA + 0x20), Ok(0x0015_0513));
        assert!(h.tlb.stats().guest_walks > 0);
        // VU reaches only U pages of the VS stage.
        h.set_mode(Priv::U, true);
        assert_eq!(cause_of(h.load(GVA, 8)), cause::LOAD_PAGE_FAULT);
        let (mut h, _) = guest(RWX | U, RWX | U);
        h.set_mode(Priv::U, true);
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
    }

    #[test]
    fn a_g_stage_leaf_without_u_is_a_guest_page_fault() {
        // H chapter, "Guest Physical Address Translation": every G-stage access is
        // checked as a U-mode access.
        let (mut h, _) = guest(RWX, RWX);
        let e = h.load(GVA + 8, 8).unwrap_err();
        assert_eq!(e.cause, cause::LOAD_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa, e.gva), (GVA + 8, GPA + 8, true));
        let e = h.store(GVA + 0x10, 8, 0).unwrap_err();
        assert_eq!(e.cause, cause::STORE_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa), (GVA + 0x10, GPA + 0x10));
        let e = h.fetch_insn(GVA + 0x20).unwrap_err();
        assert_eq!(e.cause, cause::INSN_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa, e.tinst), (GVA + 0x20, GPA + 0x20, 0));
    }

    #[test]
    fn g_stage_permissions_give_guest_page_faults_of_the_access_type() {
        let (mut h, _) = guest(RWX, R | U);
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        let e = h.store(GVA, 8, 0).unwrap_err();
        assert_eq!((e.cause, e.gpa), (cause::STORE_GUEST_PAGE_FAULT, GPA));
        assert_eq!(
            cause_of(h.fetch_insn(GVA)),
            cause::INSN_GUEST_PAGE_FAULT,
            "no X in the G stage"
        );
    }

    #[test]
    fn a_vs_table_page_unmapped_in_g_faults_at_the_pte_address_with_0x3000() {
        // H chapter, "htval": the GPA of the implicit access that faulted; "Transformed
        // Instruction or Pseudoinstruction": 0x3000 for a 64-bit read of the walk; the
        // cause is that of the original access.
        let (mut h, mut g) = guest(RWX, RWX | U);
        let leaf = g.vsmap(GVA, GPA, RWX);
        let table = leaf & !0xfff;
        g.gmap(table, table + GPA_TO_PA, 0);
        for (r, c) in [
            (h.load(GVA + 8, 8).map(drop), cause::LOAD_GUEST_PAGE_FAULT),
            (h.store(GVA + 8, 8, 0), cause::STORE_GUEST_PAGE_FAULT),
            (
                h.fetch_insn(GVA + 8).map(drop),
                cause::INSN_GUEST_PAGE_FAULT,
            ),
        ] {
            let e = r.unwrap_err();
            assert_eq!(e.cause, c);
            assert_eq!(
                (e.tval, e.gpa, e.tinst, e.gva),
                (GVA + 8, leaf, 0x3000, true)
            );
        }
    }

    #[test]
    fn an_ad_update_in_a_g_read_only_table_page_faults_with_0x3020() {
        // With Svadu on for the VS stage, setting A or D in a VS PTE is an implicit
        // store, which the G stage must allow (QEMU skips that check).
        let (mut h, mut g) = guest(RWX, RWX | U);
        csrw(&mut h, num::MENVCFG, menvcfg::ADUE);
        csrw(&mut h, num::HENVCFG, menvcfg::ADUE);
        let clean = pte::V | pte::R | pte::W | pte::A;
        let leaf = g.vsmap(GVA, GPA, clean);
        let table = leaf & !0xfff;
        g.gmap(table, table + GPA_TO_PA, R | U);
        // A load needs no update: it works.
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        let e = h.store(GVA + 8, 8, 0).unwrap_err();
        assert_eq!(e.cause, cause::STORE_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa, e.tinst), (GVA + 8, leaf, 0x3020));
        // A load that must set A faults as a load, still with the write pseudoinstruction.
        g.vsmap(GVA, GPA, pte::V | pte::R | pte::W);
        h.tlb_flush_all();
        let e = h.load(GVA, 8).unwrap_err();
        assert_eq!(
            (e.cause, e.gpa, e.tinst),
            (cause::LOAD_GUEST_PAGE_FAULT, leaf, 0x3020)
        );
        // Once the G stage allows the write, the walk sets A and D.
        g.gmap(table, table + GPA_TO_PA, RW | U);
        h.tlb_flush_all();
        h.store(GVA + 8, 8, 5).unwrap();
        let pte = g.pages.read(leaf + GPA_TO_PA);
        assert_eq!(pte & (pte::A | pte::D), pte::A | pte::D);
    }

    #[test]
    fn guest_physical_addresses_past_41_bits_are_guest_page_faults() {
        // H chapter, "Guest Physical Address Translation": for Sv39x4, bits 63:41 of
        // the guest physical address must be zero.
        let mut h = testutil::hart();
        let mut g = Guest::new(&h);
        let high = 1 << 40 | 0x3000;
        g.gmap(high, PA, RWX | U);
        csrw(&mut h, num::HGATP, g.hgatp(1));
        h.shared.ram.write(PA + 8, 8, 0x77).unwrap();
        h.set_mode(Priv::S, true);
        // vsatp Bare: guest virtual = guest physical; bit 40 uses the wide root.
        assert_eq!(h.load(high + 8, 8), Ok(0x77));
        let e = h.load(1 << 41 | 0x3008, 8).unwrap_err();
        assert_eq!(e.cause, cause::LOAD_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa), (1 << 41 | 0x3008, 1 << 41 | 0x3008));
        // The same through a VS-stage mapping onto such an address.
        g.vsmap(GVA, 1 << 45, RWX);
        csrw(&mut h, num::VSATP, g.vsatp(1));
        let e = h.store(GVA + 4, 4, 0).unwrap_err();
        assert_eq!(
            (e.cause, e.gpa),
            (cause::STORE_GUEST_PAGE_FAULT, 1 << 45 | 4)
        );
    }

    #[test]
    fn vs_stage_faults_stay_page_faults_without_a_gpa() {
        let (mut h, _) = guest(RWX, RWX | U);
        let va = GVA + 0x10_0000;
        for (r, c) in [
            (h.load(va, 8).map(drop), cause::LOAD_PAGE_FAULT),
            (h.store(va, 8, 0), cause::STORE_PAGE_FAULT),
            (h.fetch_insn(va).map(drop), cause::INSN_PAGE_FAULT),
        ] {
            let e = r.unwrap_err();
            assert_eq!(e.cause, c);
            assert_eq!((e.tval, e.gpa, e.tinst, e.gva), (va, 0, 0, true));
        }
        // A VS leaf without W faults a store at the VS stage.
        let (mut h, _) = guest(R | pte::X, RWX | U);
        assert_eq!(cause_of(h.store(GVA, 8, 0)), cause::STORE_PAGE_FAULT);
    }

    #[test]
    fn pmp_failures_under_v1_are_access_faults() {
        // H chapter, "Two-Stage Address Translation": PMP applies to the supervisor
        // physical address; its failures are access faults, not guest-page faults
        // (QEMU reports guest-page faults).
        let (mut h, _) = guest(RWX, RWX | U);
        // Entry 0: the data page, no permission (NAPOT 4 KiB); entry 1: everything.
        csrw(&mut h, num::PMPADDR0, PA >> 2 | 0x1ff);
        csrw(&mut h, num::PMPADDR0 + 1, u64::MAX >> 10);
        csrw(&mut h, num::PMPCFG0, 0x18 | 0x1f << 8);
        for (r, c) in [
            (h.load(GVA + 8, 8).map(drop), cause::LOAD_ACCESS),
            (h.store(GVA + 8, 8, 0), cause::STORE_ACCESS),
            (h.fetch_insn(GVA + 8).map(drop), cause::INSN_ACCESS),
        ] {
            let e = r.unwrap_err();
            assert_eq!(e.cause, c);
            assert_eq!((e.tval, e.gpa, e.gva), (GVA + 8, 0, true));
        }
    }

    #[test]
    fn a_misaligned_access_names_the_faulting_portion_in_tval_and_gpa() {
        // H chapter, "Guest-Page Faults": for an access straddling a page, tval is the
        // address a page fault would name (here the second page's start) and the GPA
        // "shall correspond to the exact virtual address written to stval".
        let (mut h, mut g) = guest(RWX, RWX | U);
        g.vsmap(GVA + 0x1000, GPA + 0x5000, RWX);
        let e = h.load(GVA + 0xffc, 8).unwrap_err();
        assert_eq!(e.cause, cause::LOAD_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa), (GVA + 0x1000, GPA + 0x5000));
        let e = h.store(GVA + 0xffe, 4, 0).unwrap_err();
        assert_eq!((e.tval, e.gpa), (GVA + 0x1000, GPA + 0x5000));
        // The first page untouched by the faulting store.
        assert_eq!(h.shared.ram.read(PA + 0xffe, 2), Some(0));
        // An instruction straddling the pages: the second half faults.
        h.shared.ram.write(PA + 0xffe, 2, 0x0003).unwrap();
        let e = h.fetch_insn(GVA + 0xffe).unwrap_err();
        assert_eq!(e.cause, cause::INSN_GUEST_PAGE_FAULT);
        assert_eq!((e.tval, e.gpa), (GVA + 0x1000, GPA + 0x5000));
    }

    #[test]
    fn hlvx_obeys_pmp_read_permission() {
        // H chapter: the supervisor physical memory attributes must grant both execute
        // and read to HLVX; an execute-only PMP region gives a load access fault.
        let (mut h, _) = guest(RWX, RWX | U);
        csrw(&mut h, num::PMPADDR0, PA >> 2 | 0x1ff);
        csrw(&mut h, num::PMPADDR0 + 1, u64::MAX >> 10);
        csrw(&mut h, num::PMPCFG0, 0x1c | 0x1f << 8);
        assert_eq!(h.fetch_insn(GVA), Ok(0x1111));
        h.set_mode(Priv::S, false);
        csrw(&mut h, num::HSTATUS, hstatus::SPVP);
        let e = h.hlv(GVA, 4, true).unwrap_err();
        assert_eq!((e.cause, e.gva), (cause::LOAD_ACCESS, true));
    }

    #[test]
    fn hlv_and_hsv_ignore_mprv() {
        // H chapter, "mstatus": MPRV does not affect HLV, HLVX and HSV.
        let (mut h, _) = guest(RWX, RWX | U);
        h.set_mode(Priv::M, false);
        csrw(&mut h, num::MSTATUS, mstatus::MPRV);
        csrw(&mut h, num::HSTATUS, hstatus::SPVP);
        assert_eq!(h.hlv(GVA + 8, 8, false), Ok(0x2222));
        h.hsv(GVA, 8, 0x5555).unwrap();
        assert_eq!(h.shared.ram.read(PA, 8), Some(0x5555));
    }

    #[test]
    fn hlv_accesses_at_the_privilege_spvp_names() {
        // H chapter, "Hypervisor Virtual-Machine Load and Store Instructions": as VU
        // when SPVP=0, as VS when SPVP=1; vsstatus.SUM applies, sstatus.SUM does not.
        let (mut h, mut g) = guest(RWX | U, RWX | U);
        g.map(GVA + 0x1000, PA, RWX, RWX | U);
        h.set_mode(Priv::S, false);
        csrw(&mut h, num::HSTATUS, 0);
        assert_eq!(h.hlv(GVA, 8, false), Ok(0x1111), "VU on a U page");
        let e = h.hlv(GVA + 0x1000, 8, false).unwrap_err();
        assert_eq!(
            (e.cause, e.gva),
            (cause::LOAD_PAGE_FAULT, true),
            "VU, S page"
        );
        csrw(&mut h, num::HSTATUS, hstatus::SPVP);
        assert_eq!(h.hlv(GVA + 0x1000, 8, false), Ok(0x1111), "VS on an S page");
        csrw(&mut h, num::MSTATUS, mstatus::SUM);
        assert_eq!(
            cause_of(h.hlv(GVA, 8, false)),
            cause::LOAD_PAGE_FAULT,
            "VS on a U page: mstatus.SUM is ignored"
        );
        assert_eq!(cause_of(h.hsv(GVA, 8, 0)), cause::STORE_PAGE_FAULT);
        h.csr.vsstatus |= mstatus::SUM;
        assert_eq!(h.hlv(GVA, 8, false), Ok(0x1111), "with vsstatus.SUM");
        h.hsv(GVA + 8, 8, 0x3333).unwrap();
        assert_eq!(h.shared.ram.read(PA + 8, 8), Some(0x3333));
        assert_eq!((h.prv, h.virt), (Priv::S, false), "the hart stays in HS");
    }

    #[test]
    fn hlvx_needs_execute_permission_instead_of_read() {
        // Execute-only in the VS stage: HLVX reads it, HLV does not unless MXR.
        let (mut h, _) = guest(X, RWX | U);
        h.set_mode(Priv::S, false);
        csrw(&mut h, num::HSTATUS, hstatus::SPVP);
        assert_eq!(h.hlv(GVA, 4, true), Ok(0x1111));
        assert_eq!(cause_of(h.hlv(GVA, 4, false)), cause::LOAD_PAGE_FAULT);
        h.csr.vsstatus |= mstatus::MXR;
        h.data_regime_changed();
        assert_eq!(h.hlv(GVA, 4, false), Ok(0x1111));
        // Readable but not executable: HLVX faults as a load, in the stage that lacks X.
        let (mut h, _) = guest(RW, RWX | U);
        h.set_mode(Priv::S, false);
        csrw(&mut h, num::HSTATUS, hstatus::SPVP);
        assert_eq!(h.hlv(GVA, 4, false), Ok(0x1111));
        assert_eq!(cause_of(h.hlv(GVA, 4, true)), cause::LOAD_PAGE_FAULT);
        let (mut h, _) = guest(RWX, RW | U);
        h.set_mode(Priv::S, false);
        csrw(&mut h, num::HSTATUS, hstatus::SPVP);
        assert_eq!(h.hlv(GVA, 4, false), Ok(0x1111));
        let e = h.hlv(GVA, 4, true).unwrap_err();
        assert_eq!((e.cause, e.gpa), (cause::LOAD_GUEST_PAGE_FAULT, GPA));
    }

    #[test]
    fn mprv_with_mpv_translates_loads_and_stores_in_two_stages() {
        // H chapter, "mstatus": with MPRV=1, explicit accesses use MPV and MPP.
        let (mut h, _) = guest(RWX, RWX | U);
        h.set_mode(Priv::M, false);
        let mpp_s = 1 << mstatus::MPP_SHIFT;
        csrw(&mut h, num::MSTATUS, mstatus::MPRV | mstatus::MPV | mpp_s);
        assert_eq!(h.load(GVA + 8, 8), Ok(0x2222));
        h.store(GVA, 8, 0x4444).unwrap();
        assert_eq!(h.shared.ram.read(PA, 8), Some(0x4444));
        // MPV=0: HS translation, here Bare, so GVA is a physical address outside RAM.
        csrw(&mut h, num::MSTATUS, mstatus::MPRV | mpp_s);
        assert_eq!(cause_of(h.load(GVA + 8, 8)), cause::LOAD_ACCESS);
        // MPRV does not apply to fetches: M fetches the physical address.
        csrw(&mut h, num::MSTATUS, mstatus::MPRV | mstatus::MPV | mpp_s);
        assert_eq!(h.fetch_insn(PA + 8), Ok(0x2222));
    }

    #[test]
    fn vsatp_bare_with_hgatp_paged_translates_guest_physical_addresses() {
        let mut h = testutil::hart();
        let mut g = Guest::new(&h);
        g.gmap(GPA, PA, RWX | U);
        csrw(&mut h, num::HGATP, g.hgatp(3));
        h.shared.ram.write(PA + 8, 8, 0x55).unwrap();
        h.set_mode(Priv::S, true);
        assert_eq!(h.load(GPA + 8, 8), Ok(0x55));
        let e = h.load(GPA + 0x1000, 8).unwrap_err();
        assert_eq!(
            (e.cause, e.gpa),
            (cause::LOAD_GUEST_PAGE_FAULT, GPA + 0x1000)
        );
        // Both Bare: guest physical is host physical.
        csrw(&mut h, num::HGATP, 0);
        assert_eq!(h.load(PA + 8, 8), Ok(0x55));
    }

    #[test]
    fn mstatus_mxr_reaches_the_g_stage_and_vsstatus_mxr_only_the_vs_stage() {
        // H chapter, "Two-Stage Address Translation".
        let set_mxr = |h: &mut Hart, csr: u16, on: bool| {
            let v = if on { mstatus::MXR } else { 0 };
            csrw(h, csr, v);
        };
        // Execute-only in the VS stage: either MXR makes it readable.
        let (mut h, _) = guest(X, RWX | U);
        assert_eq!(cause_of(h.load(GVA, 8)), cause::LOAD_PAGE_FAULT);
        set_mxr(&mut h, num::VSSTATUS, true);
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        set_mxr(&mut h, num::VSSTATUS, false);
        assert_eq!(cause_of(h.load(GVA, 8)), cause::LOAD_PAGE_FAULT);
        set_mxr(&mut h, num::MSTATUS, true);
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        // Execute-only in the G stage: only mstatus.MXR makes it readable.
        let (mut h, _) = guest(RWX, X | U);
        assert_eq!(cause_of(h.load(GVA, 8)), cause::LOAD_GUEST_PAGE_FAULT);
        set_mxr(&mut h, num::VSSTATUS, true);
        assert_eq!(cause_of(h.load(GVA, 8)), cause::LOAD_GUEST_PAGE_FAULT);
        set_mxr(&mut h, num::MSTATUS, true);
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        set_mxr(&mut h, num::MSTATUS, false);
        assert_eq!(
            cause_of(h.load(GVA, 8)),
            cause::LOAD_GUEST_PAGE_FAULT,
            "cached translations obey MXR too"
        );
    }

    #[test]
    fn mstatus_mxr_does_not_make_vs_page_tables_readable_in_the_g_stage() {
        // MXR applies to explicit loads (H chapter, "Hypervisor Virtual-Machine Load and
        // Store Instructions"); the walk's PTE reads are implicit loads checked as such
        // ("Guest Physical Address Translation").
        let (mut h, mut g) = guest(RWX, RWX | U);
        let leaf = g.vsmap(GVA, GPA, RWX);
        let table = leaf & !0xfff;
        g.gmap(table, table + GPA_TO_PA, X | U);
        csrw(&mut h, num::MSTATUS, mstatus::MXR);
        let e = h.load(GVA, 8).unwrap_err();
        assert_eq!(e.cause, cause::LOAD_GUEST_PAGE_FAULT);
        assert_eq!((e.gpa, e.tinst), (leaf, 0x3000));
    }

    #[test]
    fn an_hs_sfence_vma_keeps_guest_translations() {
        // H chapter, "Memory-Management Fences": with V=0 SFENCE.VMA orders only
        // HS-level translation.
        let (mut h, _) = guest(RWX, RWX | U);
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        let walks = h.tlb.stats().guest_walks;
        h.set_mode(Priv::S, false);
        h.sfence_vma(None, None);
        h.tlb.flush_l1();
        h.set_mode(Priv::S, true);
        let hits = h.tlb.stats().guest_l2_hits;
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        assert_eq!(h.tlb.stats().guest_walks, walks, "no walk");
        assert_eq!(h.tlb.stats().guest_l2_hits, hits + 1, "an L2 hit");
    }

    #[test]
    fn hfence_gvma_of_the_gpa_drops_the_guest_translation() {
        let (mut h, mut g) = guest(RWX, RWX | U);
        h.shared.ram.write(PA + 0x1000, 8, 0x9999).unwrap();
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        g.gmap(GPA, PA + 0x1000, RWX | U);
        assert_eq!(h.load(GVA, 8), Ok(0x1111), "cached until the fence");
        // Another VMID's fence, and an HS sfence.vma, leave it.
        h.set_mode(Priv::S, false);
        h.hfence_gvma(Some(GPA), Some(2));
        h.sfence_vma(None, None);
        h.set_mode(Priv::S, true);
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        h.set_mode(Priv::S, false);
        h.hfence_gvma(Some(GPA), Some(1));
        h.set_mode(Priv::S, true);
        assert_eq!(h.load(GVA, 8), Ok(0x9999));
    }

    #[test]
    fn hfence_vvma_fences_the_vmid_in_hgatp_only() {
        // H chapter, "Hypervisor Memory-Management Fence Instructions": HFENCE.VVMA
        // applies to the virtual machine hgatp.VMID names when it executes.
        let (mut h, mut g) = guest(RWX, RWX | U);
        h.shared.ram.write(PA + 0x1000, 8, 0x9999).unwrap();
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        g.map(GVA, PA + 0x1000, RWX, RWX | U);
        // With VMID 2 in hgatp, the fence does not reach VMID 1's translations.
        csrw(&mut h, num::HGATP, g.hgatp(2));
        h.set_mode(Priv::S, false);
        h.hfence_vvma(None, None);
        csrw(&mut h, num::HGATP, g.hgatp(1));
        h.tlb.flush_l1();
        let walks = h.tlb.stats().guest_walks;
        h.set_mode(Priv::S, true);
        assert_eq!(h.load(GVA, 8), Ok(0x1111));
        assert_eq!(h.tlb.stats().guest_walks, walks);
        // With VMID 1 in hgatp it does, by address.
        h.set_mode(Priv::S, false);
        h.hfence_vvma(Some(GVA + 0x10), None);
        h.set_mode(Priv::S, true);
        assert_eq!(h.load(GVA, 8), Ok(0x9999));
    }

    #[test]
    fn guests_keep_their_translations_across_hgatp_switches() {
        // Two virtual machines (VMIDs 1 and 2) map the same guest virtual address onto
        // different pages; switching between them walks nothing once both are cached.
        let mut h = testutil::hart();
        let mut g1 = Guest::new(&h);
        let mut g2 = Guest::with_pages(g1.pages.clone());
        g1.map(GVA, PA, RWX, RWX | U);
        g2.map(GVA, PA + 0x1000, RWX, RWX | U);
        h.shared.ram.write(PA, 8, 1).unwrap();
        h.shared.ram.write(PA + 0x1000, 8, 2).unwrap();
        let switch = |h: &mut Hart, g: &Guest, vmid: u64| {
            csrw(h, num::VSATP, 0);
            csrw(h, num::HGATP, g.hgatp(vmid));
            csrw(h, num::VSATP, g.vsatp(1));
        };
        h.set_mode(Priv::S, true);
        switch(&mut h, &g1, 1);
        assert_eq!(h.load(GVA, 8), Ok(1));
        switch(&mut h, &g2, 2);
        assert_eq!(h.load(GVA, 8), Ok(2));
        let walks = h.tlb.stats().guest_walks;
        assert_eq!(walks, 2);
        for _ in 0..2 {
            switch(&mut h, &g1, 1);
            assert_eq!(h.load(GVA, 8), Ok(1));
            switch(&mut h, &g2, 2);
            h.tlb.flush_l1();
            assert_eq!(h.load(GVA, 8), Ok(2));
        }
        assert_eq!(h.tlb.stats().guest_walks, walks, "L1 and L2 served them");
        assert!(h.tlb.stats().guest_l2_hits >= 2);
    }
}
