//! What the unit tests of the hart share: a hart on a few MiB of RAM with PMP open to
//! every mode, a way to write CSRs as M-mode whatever mode the hart is in, and page
//! tables written straight into its RAM (Sv39 for one stage; Sv39 behind Sv39x4 for a
//! guest's two stages).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use rivet_devices::ram::GuestRam;

use super::csr::num;
use super::mmu::pte;
use super::{Hart, Priv, Shared};

pub const RAM_BASE: u64 = 0x8000_0000;
pub const RAM_SIZE: u64 = 4 << 20;

/// Page-table pages are allocated from here up; tests keep their data pages below.
const TABLES_BASE: u64 = RAM_BASE + RAM_SIZE / 2;

/// Leaf flags: valid, accessed and dirty, with R, W, X as named.
pub const R: u64 = pte::V | pte::R | pte::A | pte::D;
pub const RW: u64 = R | pte::W;
pub const RWX: u64 = RW | pte::X;
pub const X: u64 = pte::V | pte::X | pte::A | pte::D;
pub const U: u64 = pte::U;

/// A hart in M-mode with every extension (H included), 4 MiB of RAM at 0x8000_0000 and
/// no devices. PMP entry 0 grants every mode everything, so S and U accesses reach RAM.
pub fn hart() -> Hart {
    let signals = Arc::new(rivet_devices::irq::HartSignals::new());
    let clock = rivet_devices::clock::Clock::new();
    let shared = Arc::new(Shared {
        ram: Arc::new(GuestRam::new(RAM_BASE, RAM_SIZE).expect("test RAM")),
        bus: rivet_devices::bus::Bus::new(),
        aclint: rivet_devices::aclint::Aclint::new(vec![signals.clone()], clock.clone())
            .expect("one hart"),
        clock,
        power: Arc::new(rivet_devices::power::PowerControl::new()),
        mmio_in_ram: Vec::new(),
        timer_loop: Default::default(),
    });
    let mut h = Hart::new(0, signals, shared);
    // NAPOT over the whole address space, R, W and X.
    csrw(&mut h, num::PMPADDR0, u64::MAX >> 10);
    csrw(&mut h, num::PMPCFG0, 0x1f);
    h
}

/// Writes a CSR as M-mode would, then puts the hart back in the mode it was in.
pub fn csrw(h: &mut Hart, csr: u16, value: u64) {
    let (p, v) = (h.prv, h.virt);
    h.set_mode(Priv::M, false);
    h.csr_write(csr, value, 0)
        .unwrap_or_else(|e| panic!("M-mode write of CSR {csr:#x}: {e:?}"));
    h.set_mode(p, v);
}

/// Reads a CSR as M-mode would.
pub fn csrr(h: &mut Hart, csr: u16) -> u64 {
    let (p, v) = (h.prv, h.virt);
    h.set_mode(Priv::M, false);
    let value = h
        .csr_read(csr, 0)
        .unwrap_or_else(|e| panic!("M-mode read of CSR {csr:#x}: {e:?}"));
    h.set_mode(p, v);
    value
}

/// A leaf or pointer PTE for physical page `pa` with `flags`.
pub const fn pte_to(pa: u64, flags: u64) -> u64 {
    ((pa >> 12) << pte::PPN_SHIFT) | flags
}

/// Page tables in the hart's RAM, allocated upwards from the upper half of it. Clones
/// share the allocator, so two guests' tables never overlap.
#[derive(Clone)]
pub struct Pages {
    pub ram: Arc<GuestRam>,
    next: Rc<Cell<u64>>,
}

impl Pages {
    pub fn new(h: &Hart) -> Self {
        Self {
            ram: h.shared.ram.clone(),
            next: Rc::new(Cell::new(TABLES_BASE)),
        }
    }

    /// `bytes` (4 or 16 KiB) of zeroed RAM aligned to their size.
    pub fn alloc(&mut self, bytes: u64) -> u64 {
        let at = self.next.get().next_multiple_of(bytes);
        self.next.set(at + bytes);
        assert!(at + bytes <= RAM_BASE + RAM_SIZE, "test RAM exhausted");
        self.ram
            .write_bytes(at, &vec![0; bytes as usize])
            .expect("in RAM");
        at
    }

    pub fn read(&self, pa: u64) -> u64 {
        self.ram.read(pa, 8).expect("in RAM")
    }

    pub fn write(&self, pa: u64, value: u64) {
        self.ram.write(pa, 8, value).expect("in RAM");
    }

    /// Sets the 4 KiB leaf of `va` to `leaf` in the Sv39 table at `root` (Sv39x4, whose
    /// root index has two more bits, when `g_stage`), creating the tables on the way;
    /// returns the leaf PTE's physical address.
    pub fn map(&mut self, root: u64, g_stage: bool, va: u64, leaf: u64) -> u64 {
        let mut table = root;
        for level in (0..3).rev() {
            let bits = if g_stage && level == 2 { 11 } else { 9 };
            let at = table + ((va >> (12 + 9 * level)) & ((1 << bits) - 1)) * 8;
            if level == 0 {
                self.write(at, leaf);
                return at;
            }
            let cur = self.read(at);
            table = if cur & pte::V != 0 {
                pte::ppn(cur) << 12
            } else {
                let t = self.alloc(0x1000);
                self.write(at, pte_to(t, pte::V));
                t
            };
        }
        unreachable!()
    }
}

/// Guest physical addresses of a [`Guest`]'s own pages are their host physical address
/// minus this, so a G-stage translation that did not happen shows.
pub const GPA_TO_PA: u64 = 0x7000_0000;

/// A guest's two stages: an Sv39x4 G stage (a 16 KiB root in host RAM) and an Sv39 VS
/// stage whose tables sit in guest pages the G stage maps (read/write, U).
pub struct Guest {
    pub pages: Pages,
    /// Host physical address of the G-stage root.
    pub groot: u64,
    /// Guest physical address of the VS-stage root.
    pub vsroot: u64,
}

impl Guest {
    pub fn new(h: &Hart) -> Self {
        Self::with_pages(Pages::new(h))
    }

    /// A guest whose tables come from `pages` (a clone of another guest's, say).
    pub fn with_pages(mut pages: Pages) -> Self {
        let groot = pages.alloc(0x4000);
        let mut g = Guest {
            pages,
            groot,
            vsroot: 0,
        };
        g.vsroot = g.table_page();
        g
    }

    /// Maps guest physical page `gpa` onto host physical `pa` in the G stage with
    /// `flags` (G-stage leaves need U to be usable at all); returns the leaf's address.
    pub fn gmap(&mut self, gpa: u64, pa: u64, flags: u64) -> u64 {
        self.pages.map(self.groot, true, gpa, pte_to(pa, flags))
    }

    /// A new zeroed guest page for a VS-stage table, mapped read/write by the G stage at
    /// its host address minus [`GPA_TO_PA`]; returns its guest physical address.
    pub fn table_page(&mut self) -> u64 {
        let pa = self.pages.alloc(0x1000);
        let gpa = pa - GPA_TO_PA;
        self.gmap(gpa, pa, RW | U);
        gpa
    }

    /// Sets the VS-stage 4 KiB leaf of guest virtual `gva` to guest physical `gpa` with
    /// `flags`; returns the guest physical address of the leaf PTE.
    pub fn vsmap(&mut self, gva: u64, gpa: u64, flags: u64) -> u64 {
        let mut table = self.vsroot;
        for level in (0..3).rev() {
            let at = table + ((gva >> (12 + 9 * level)) & 0x1ff) * 8;
            if level == 0 {
                self.pages.write(at + GPA_TO_PA, pte_to(gpa, flags));
                return at;
            }
            let cur = self.pages.read(at + GPA_TO_PA);
            table = if cur & pte::V != 0 {
                pte::ppn(cur) << 12
            } else {
                let t = self.table_page();
                self.pages.write(at + GPA_TO_PA, pte_to(t, pte::V));
                t
            };
        }
        unreachable!()
    }

    /// Maps `gva` through both stages onto host physical `pa` (VS leaf `vsflags` to
    /// guest physical `pa - GPA_TO_PA`, G leaf `gflags`).
    pub fn map(&mut self, gva: u64, pa: u64, vsflags: u64, gflags: u64) {
        let gpa = pa - GPA_TO_PA;
        self.vsmap(gva, gpa, vsflags);
        self.gmap(gpa, pa, gflags);
    }

    /// `hgatp` for Sv39x4 at this root with `vmid`.
    pub fn hgatp(&self, vmid: u64) -> u64 {
        8 << 60 | vmid << 44 | self.groot >> 12
    }

    /// `vsatp` for Sv39 at this root with `asid`.
    pub fn vsatp(&self, asid: u64) -> u64 {
        8 << 60 | asid << 44 | self.vsroot >> 12
    }

    /// Points `hgatp` (with `vmid`) and `vsatp` (ASID 1) at these tables.
    pub fn install(&self, h: &mut Hart, vmid: u64) {
        csrw(h, num::HGATP, self.hgatp(vmid));
        csrw(h, num::VSATP, self.vsatp(1));
    }
}
