//! The page-table walker: Sv39, Sv48 and Sv57 (Priv spec, "Supervisor-Level ISA"), with
//! Svade/Svadu, Svpbmt and Svnapot, and the G-stage formats Sv39x4/Sv48x4/Sv57x4 of the
//! H extension.
//!
//! [`walk`] follows the steps of the Priv spec's "Virtual Address Translation Process"
//! (written for Sv32 and reused by Sv39/48/57 with PTESIZE = 8 and LEVELS = 3/4/5); the
//! step numbers in the comments are the spec's.
//!
//! The walker reads and updates PTEs only through [`PhysMem`]. That is the extension
//! point for two-stage translation: VS-stage PTE addresses are guest-physical, so the
//! hart wraps its RAM [`PhysMem`] in one that first runs a G-stage [`walk`] on each PTE
//! address (reporting [`Fault::GuestPage`] when that fails) and then forwards to RAM.

use super::pmp::Pmp;
use rivet_devices::ram::GuestRam;
use std::sync::atomic::{AtomicU64, Ordering};

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// How many times a walk re-reads a PTE whose A/D update lost a race with another hart
/// before it gives up with [`Fault::Retry`].
pub const MAX_AD_RETRIES: u32 = 64;

/// The kind of an access, which also selects the fault cause the hart raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    /// A store or AMO (AMOs need write permission and fault as stores).
    Write,
    Exec,
}

/// A privilege level as the encoding of `mstatus.MPP` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Priv {
    U = 0,
    S = 1,
    M = 3,
}

/// A set of read/write/execute permissions (bit 0 R, bit 1 W, bit 2 X, as in PTEs shifted
/// right by one and in pmpcfg).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Perms(u8);

impl Perms {
    pub const NONE: Perms = Perms(0);
    pub const R: Perms = Perms(1);
    pub const W: Perms = Perms(2);
    pub const X: Perms = Perms(4);
    pub const RW: Perms = Perms(3);
    pub const RX: Perms = Perms(5);
    pub const RWX: Perms = Perms(7);

    /// The permissions in the low three bits of `bits` (R, W, X).
    pub const fn from_bits(bits: u8) -> Perms {
        Perms(bits & 7)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn allows(self, access: Access) -> bool {
        self.contains(Perms::of(access))
    }

    /// The permission an access needs.
    pub const fn of(access: Access) -> Perms {
        match access {
            Access::Read => Perms::R,
            Access::Write => Perms::W,
            Access::Exec => Perms::X,
        }
    }

    pub const fn without(self, other: Perms) -> Perms {
        Perms(self.0 & !other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitAnd for Perms {
    type Output = Perms;
    fn bitand(self, rhs: Perms) -> Perms {
        Perms(self.0 & rhs.0)
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

impl std::fmt::Debug for Perms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = |p: Perms, ch: char| if self.contains(p) { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(Perms::R, 'r'),
            c(Perms::W, 'w'),
            c(Perms::X, 'x')
        )
    }
}

/// A translation mode: `satp.MODE` (Bare, Sv39, Sv48, Sv57) or `hgatp.MODE` (Bare,
/// Sv39x4, Sv48x4, Sv57x4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Mode {
    Bare = 0,
    Sv39 = 1,
    Sv48 = 2,
    Sv57 = 3,
    Sv39x4 = 4,
    Sv48x4 = 5,
    Sv57x4 = 6,
}

impl Mode {
    /// Decodes `satp.MODE` (bits 63:60). Reserved values give `None`: `satp` is WARL
    /// and a write of an unsupported mode leaves the whole register unchanged (Priv spec,
    /// "Supervisor Address Translation and Protection Register").
    pub const fn from_satp_mode(field: u64) -> Option<Mode> {
        match field {
            0 => Some(Mode::Bare),
            8 => Some(Mode::Sv39),
            9 => Some(Mode::Sv48),
            10 => Some(Mode::Sv57),
            _ => None,
        }
    }

    /// Decodes `hgatp.MODE` (bits 63:60), as [`Mode::from_satp_mode`] does for `satp`.
    pub const fn from_hgatp_mode(field: u64) -> Option<Mode> {
        match field {
            0 => Some(Mode::Bare),
            8 => Some(Mode::Sv39x4),
            9 => Some(Mode::Sv48x4),
            10 => Some(Mode::Sv57x4),
            _ => None,
        }
    }

    /// The value of the `MODE` field of `satp`/`hgatp` for this mode.
    pub const fn field(self) -> u64 {
        match self {
            Mode::Bare => 0,
            Mode::Sv39 | Mode::Sv39x4 => 8,
            Mode::Sv48 | Mode::Sv48x4 => 9,
            Mode::Sv57 | Mode::Sv57x4 => 10,
        }
    }

    /// Page-table levels (0 for Bare).
    pub const fn levels(self) -> u32 {
        match self {
            Mode::Bare => 0,
            Mode::Sv39 | Mode::Sv39x4 => 3,
            Mode::Sv48 | Mode::Sv48x4 => 4,
            Mode::Sv57 | Mode::Sv57x4 => 5,
        }
    }

    /// Whether this is a G-stage mode of the H extension (guest physical -> physical).
    pub const fn is_g_stage(self) -> bool {
        matches!(self, Mode::Sv39x4 | Mode::Sv48x4 | Mode::Sv57x4)
    }

    /// Width of the translated address: 39/48/57 bits, two more for the x4 modes, whose
    /// root table is 16 KiB (H spec, "Guest Physical Address Translation").
    pub const fn va_bits(self) -> u32 {
        match self {
            Mode::Bare => 64,
            _ => 12 + 9 * self.levels() + if self.is_g_stage() { 2 } else { 0 },
        }
    }
}

/// Bits of a Sv39/Sv48/Sv57 page-table entry (Priv spec, "Sv39: Page-Based 39-bit
/// Virtual-Memory System", PTE format).
pub mod pte {
    pub const V: u64 = 1 << 0;
    pub const R: u64 = 1 << 1;
    pub const W: u64 = 1 << 2;
    pub const X: u64 = 1 << 3;
    pub const U: u64 = 1 << 4;
    pub const G: u64 = 1 << 5;
    pub const A: u64 = 1 << 6;
    pub const D: u64 = 1 << 7;
    pub const PPN_SHIFT: u32 = 10;
    /// PPN is bits 53:10 (44 bits).
    pub const PPN_MASK: u64 = (1 << 44) - 1;
    /// Bits 60:54, reserved for future standard use.
    pub const RESERVED: u64 = 0x7f << 54;
    pub const PBMT_SHIFT: u32 = 61;
    pub const PBMT: u64 = 3 << PBMT_SHIFT;
    /// Svnapot's N bit.
    pub const N: u64 = 1 << 63;

    /// The physical page number of `pte`.
    pub const fn ppn(pte: u64) -> u64 {
        (pte >> PPN_SHIFT) & PPN_MASK
    }
}

/// Svpbmt's page-based memory type (Priv spec, "Svpbmt" chapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbmt {
    /// PBMT = 0: the PMAs of the underlying memory apply.
    Pma,
    /// PBMT = 1: non-cacheable, idempotent, weakly ordered main memory.
    Nc,
    /// PBMT = 2: non-cacheable, non-idempotent, strongly ordered I/O.
    Io,
}

/// What the walker needs to know about one access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkRequest {
    pub vaddr: u64,
    pub access: Access,
    /// `satp.MODE` (or `vsatp.MODE`, `hgatp.MODE` for the x4 modes).
    pub mode: Mode,
    /// `satp.PPN`: the physical page number of the root table.
    pub root_ppn: u64,
    /// Effective privilege of the access (after MPRV/MPP). `Priv::M` means the access is
    /// not translated at all. Ignored for G-stage modes, where every access counts as a
    /// U-mode access (H spec, "Guest Physical Address Translation").
    pub privilege: Priv,
    /// `mstatus.SUM`: S-mode may load and store to U pages.
    pub sum: bool,
    /// `mstatus.MXR`: loads may read executable-only pages.
    pub mxr: bool,
    /// Svadu enabled (`menvcfg.ADUE`): the walker sets A/D itself; otherwise (Svade) a
    /// PTE with A=0, or D=0 for a store, raises a page fault.
    pub adue: bool,
    /// Svpbmt enabled (`menvcfg.PBMTE`); otherwise PBMT bits are reserved.
    pub pbmte: bool,
    /// Svnapot implemented; otherwise the N bit is reserved.
    pub napot: bool,
}

/// A successful translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of `vaddr`.
    pub paddr: u64,
    /// log2 of the page size: 12, 16 (Svnapot 64 KiB), 21, 30, 39 or 48.
    pub page_shift: u8,
    /// Permissions this privilege has on the whole page, SUM and MXR applied. W only
    /// when the leaf's D bit is set (already, or by this walk), so that a later store to
    /// a clean page walks again and sets D.
    pub perms: Perms,
    /// The mapping is global (G set in the leaf or in a non-leaf PTE above it).
    pub global: bool,
    /// The leaf PTE as it is in memory after this walk's A/D update.
    pub pte: u64,
    /// Physical address of the leaf PTE; `None` when nothing was translated.
    pub pte_addr: Option<u64>,
    pub pbmt: Pbmt,
}

impl Translation {
    /// The identity translation of an untranslated access (Bare mode or M-mode).
    pub const fn identity(addr: u64) -> Translation {
        Translation {
            paddr: addr,
            page_shift: PAGE_SHIFT as u8,
            perms: Perms::RWX,
            global: false,
            pte: 0,
            pte_addr: None,
            pbmt: Pbmt::Pma,
        }
    }
}

/// Why a translation failed. The hart turns each into the exception of the original
/// access type (instruction/load/store-AMO page fault, access fault, guest-page fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// A page fault (for a G-stage mode: a guest-page fault on the walked address).
    #[error("Page fault")]
    Page,
    /// Reading or updating a PTE violated a PMA or PMP check.
    #[error("Access fault on the page-table entry at {paddr:#x}")]
    Access { paddr: u64 },
    /// A G-stage translation failed (H chapter, "Guest-Page Faults"): of the guest
    /// physical address of the access itself (`implicit: None`), or of a VS-stage PTE
    /// that the walk read (`Some(Access::Read)`) or had to update (`Some(Access::Write)`).
    #[error("Guest-page fault on guest physical address {gpa:#x}")]
    GuestPage { gpa: u64, implicit: Option<Access> },
    /// Another hart kept changing the leaf PTE while this walk tried to set its A/D bits.
    /// Nothing has been changed: the hart re-executes the instruction later.
    #[error("Page-table entry kept changing during the walk")]
    Retry,
}

/// The memory the walker reads PTEs from: RAM behind PMP/PMA checks for a one-stage
/// walk, or a G-stage translation in front of that for the VS stage.
pub trait PhysMem {
    /// Loads the 8-byte PTE at `paddr`: [`Fault::Access`] when PMA/PMP forbid it.
    fn load_pte(&self, paddr: u64) -> Result<u64, Fault>;

    /// Atomically replaces the PTE at `paddr` with `new` if it still holds `old`; returns
    /// whether it did. [`Fault::Access`] when a store there is not allowed.
    fn cas_pte(&self, paddr: u64, old: u64, new: u64) -> Result<bool, Fault>;
}

impl<T: PhysMem + ?Sized> PhysMem for &T {
    fn load_pte(&self, paddr: u64) -> Result<u64, Fault> {
        (**self).load_pte(paddr)
    }
    fn cas_pte(&self, paddr: u64, old: u64, new: u64) -> Result<bool, Fault> {
        (**self).cas_pte(paddr, old, new)
    }
}

/// The permissions a leaf PTE gives an access of privilege `privilege` (Priv spec,
/// "Sv32: Addressing and Memory Protection" and `mstatus` SUM/MXR): U-mode may only use
/// U pages; S-mode may use U pages for loads and stores only when SUM=1 and never
/// executes from them; with MXR, X also grants loads. The D bit is not considered here.
pub const fn pte_perms(pte: u64, privilege: Priv, sum: bool, mxr: bool) -> Perms {
    let user = pte & pte::U != 0;
    let (data_ok, exec_ok) = match privilege {
        Priv::U => (user, user),
        Priv::S | Priv::M => (!user || sum, !user),
    };
    let mut bits = 0;
    if data_ok {
        if pte & pte::R != 0 || (mxr && pte & pte::X != 0) {
            bits |= Perms::R.0;
        }
        if pte & pte::W != 0 {
            bits |= Perms::W.0;
        }
    }
    if exec_ok && pte & pte::X != 0 {
        bits |= Perms::X.0;
    }
    Perms(bits)
}

/// Whether `vaddr` is a valid address for `mode`: for Sv39/48/57 bits 63:VA all equal
/// bit VA-1 (Priv spec, Sv39: "bits 63-39 must all equal bit 38, or else a page-fault
/// exception will occur"); for the x4 modes the bits above the guest physical address
/// width must be zero (H spec, "Guest Physical Address Translation").
pub const fn is_valid_vaddr(mode: Mode, vaddr: u64) -> bool {
    let bits = mode.va_bits();
    if bits >= 64 {
        true
    } else if mode.is_g_stage() {
        vaddr >> bits == 0
    } else {
        let shift = 64 - bits;
        (((vaddr << shift) as i64) >> shift) as u64 == vaddr
    }
}

/// Translates `req.vaddr` by walking the page tables in `mem`.
pub fn walk(req: &WalkRequest, mem: &(impl PhysMem + ?Sized)) -> Result<Translation, Fault> {
    let mode = req.mode;
    let g_stage = mode.is_g_stage();
    if mode == Mode::Bare || (req.privilege == Priv::M && !g_stage) {
        return Ok(Translation::identity(req.vaddr));
    }
    let vaddr = req.vaddr;
    if !is_valid_vaddr(mode, vaddr) {
        return Err(Fault::Page);
    }
    let (privilege, sum) = if g_stage {
        (Priv::U, false)
    } else {
        (req.privilege, req.sum)
    };
    let levels = mode.levels();

    // Step 1: a = satp.ppn × PAGESIZE, i = LEVELS − 1.
    let mut a = (req.root_ppn & pte::PPN_MASK) << PAGE_SHIFT;
    let mut i = levels - 1;
    // G in a non-leaf PTE makes every mapping below it global (Priv spec, Sv32 PTE
    // format). The H spec leaves G unused in G-stage PTEs.
    let mut path_global = false;
    let mut retries = 0;
    loop {
        // Step 2: pte = the PTE at a + va.vpn[i] × PTESIZE; PMA/PMP violations are
        // access faults, which `mem` reports.
        let index_bits = if g_stage && i == levels - 1 { 11 } else { 9 };
        let vpn_i = (vaddr >> (PAGE_SHIFT + 9 * i)) & ((1 << index_bits) - 1);
        let pte_addr = a + vpn_i * 8;
        let pte = mem.load_pte(pte_addr)?;

        // Step 3: invalid, the reserved W-without-R encoding, or reserved bits set.
        if pte & pte::V == 0 || (pte & pte::R == 0 && pte & pte::W != 0) {
            return Err(Fault::Page);
        }
        if pte & pte::RESERVED != 0 {
            return Err(Fault::Page);
        }
        // Svpbmt: PBMT = 3 is reserved; without Svpbmt (menvcfg.PBMTE = 0) any nonzero
        // PBMT is reserved. Without Svnapot, N is reserved.
        let pbmt_bits = (pte >> pte::PBMT_SHIFT) & 3;
        if pbmt_bits == 3 || (pbmt_bits != 0 && !req.pbmte) {
            return Err(Fault::Page);
        }
        if pte & pte::N != 0 && !req.napot {
            return Err(Fault::Page);
        }

        // Step 4: a pointer to the next level unless R or X is set.
        if pte & (pte::R | pte::X) == 0 {
            // In non-leaf PTEs D, A and U are reserved (Priv spec, Sv32 PTE format),
            // as are PBMT (Svpbmt) and N (Svnapot); step 3 faults on reserved bits.
            if pte & (pte::D | pte::A | pte::U | pte::N | pte::PBMT) != 0 {
                return Err(Fault::Page);
            }
            if i == 0 {
                return Err(Fault::Page);
            }
            path_global |= pte & pte::G != 0;
            i -= 1;
            a = pte::ppn(pte) << PAGE_SHIFT;
            continue;
        }

        // Step 5: a leaf. Check R/W/X/U against the privilege, SUM and MXR.
        let perms = pte_perms(pte, privilege, sum, req.mxr);
        if !perms.allows(req.access) {
            return Err(Fault::Page);
        }

        // Step 6: a superpage must be aligned: pte.ppn[i-1:0] = 0.
        let ppn = pte::ppn(pte);
        let mut page_shift = PAGE_SHIFT + 9 * i;
        if ppn & ((1 << (9 * i)) - 1) != 0 {
            return Err(Fault::Page);
        }
        // Svnapot: N on a leaf is only defined at level 0 with ppn[0][3:0] = 0b1000
        // (a 64 KiB page); every other encoding is reserved and page-faults.
        if pte & pte::N != 0 {
            if i != 0 || ppn & 0xf != 0b1000 {
                return Err(Fault::Page);
            }
            page_shift = 16;
        }

        // Step 7: A = 0, or a store to a page with D = 0.
        let store = req.access == Access::Write;
        let mut leaf = pte;
        if pte & pte::A == 0 || (store && pte & pte::D == 0) {
            if !req.adue {
                // Svade: software manages A and D.
                return Err(Fault::Page);
            }
            // Svadu: set A (and D for a store) atomically with the read of step 2; if
            // the PTE changed meanwhile, go back to step 2 (the same PTE, level i).
            let new = pte | pte::A | if store { pte::D } else { 0 };
            if !mem.cas_pte(pte_addr, pte, new)? {
                retries += 1;
                if retries >= MAX_AD_RETRIES {
                    return Err(Fault::Retry);
                }
                continue;
            }
            leaf = new;
        }

        // Step 8: pa.pgoff = va.pgoff; for a superpage (or NAPOT page) the low PPN bits
        // come from the virtual address.
        let offset_mask = (1u64 << page_shift) - 1;
        let paddr = ((ppn << PAGE_SHIFT) & !offset_mask) | (vaddr & offset_mask);
        let granted = if leaf & pte::D == 0 {
            perms.without(Perms::W)
        } else {
            perms
        };
        let pbmt = match pbmt_bits {
            1 => Pbmt::Nc,
            2 => Pbmt::Io,
            _ => Pbmt::Pma,
        };
        return Ok(Translation {
            paddr,
            page_shift: page_shift as u8,
            perms: granted,
            global: !g_stage && (path_global || leaf & pte::G != 0),
            pte: leaf,
            pte_addr: Some(pte_addr),
            pbmt,
        });
    }
}

/// What the G stage of a guest's translation needs (from `hgatp`, `menvcfg` and
/// `mstatus.MXR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GStage {
    /// Bare, Sv39x4, Sv48x4 or Sv57x4.
    pub mode: Mode,
    pub root_ppn: u64,
    /// `menvcfg.ADUE`: hardware A/D updates in G-stage PTEs.
    pub adue: bool,
    /// `menvcfg.PBMTE`.
    pub pbmte: bool,
    /// `mstatus.MXR`, which makes execute-only G-stage pages readable by explicit
    /// loads (not by the walk's own PTE reads).
    pub mxr: bool,
}

impl GStage {
    /// The G-stage translation of guest physical address `gpa` for `access`, every
    /// access counting as a U-mode one (H chapter, "Guest Physical Address
    /// Translation"). `explicit`: MXR applies (an explicit load, not a PTE read).
    pub fn walk(
        &self,
        gpa: u64,
        access: Access,
        explicit: bool,
        mem: &(impl PhysMem + ?Sized),
    ) -> Result<Translation, Fault> {
        let req = WalkRequest {
            vaddr: gpa,
            access,
            mode: self.mode,
            root_ppn: self.root_ppn,
            privilege: Priv::U,
            sum: false,
            mxr: explicit && self.mxr,
            adue: self.adue,
            pbmte: self.pbmte,
            napot: true,
        };
        walk(&req, mem)
    }
}

/// The PTEs of a guest's VS stage: guest physical addresses, each translated by the G
/// stage as an implicit load (reading a PTE) or store (updating A/D) before it reaches
/// RAM (H chapter, "Two-Stage Address Translation": such accesses are "checked as
/// though for an implicit load or store, not for the original access type").
pub struct GuestPtes<'a, M: PhysMem + ?Sized> {
    pub ram: &'a M,
    pub g: GStage,
}

impl<M: PhysMem + ?Sized> GuestPtes<'_, M> {
    fn host(&self, gpa: u64, access: Access) -> Result<u64, Fault> {
        match self.g.walk(gpa, access, false, self.ram) {
            Ok(t) => Ok(t.paddr),
            Err(Fault::Page) => Err(Fault::GuestPage {
                gpa,
                implicit: Some(access),
            }),
            Err(e) => Err(e),
        }
    }
}

impl<M: PhysMem + ?Sized> PhysMem for GuestPtes<'_, M> {
    fn load_pte(&self, gpa: u64) -> Result<u64, Fault> {
        self.ram.load_pte(self.host(gpa, Access::Read)?)
    }

    fn cas_pte(&self, gpa: u64, old: u64, new: u64) -> Result<bool, Fault> {
        self.ram.cas_pte(self.host(gpa, Access::Write)?, old, new)
    }
}

/// A two-stage translation (V=1): the VS stage of `vs` (Bare or paged) with its PTEs
/// read through the G stage, then the G stage on the resulting guest physical address
/// with the access's own type. A G-stage failure of that final step is a guest-page
/// fault on that address (`implicit: None`).
pub fn walk_two_stage(
    vs: &WalkRequest,
    g: &GStage,
    mem: &(impl PhysMem + ?Sized),
) -> Result<(Translation, Translation), Fault> {
    let guest = GuestPtes { ram: mem, g: *g };
    let first = walk(vs, &guest)?;
    let second = match g.walk(first.paddr, vs.access, true, mem) {
        Ok(t) => t,
        Err(Fault::Page) => {
            return Err(Fault::GuestPage {
                gpa: first.paddr,
                implicit: None,
            })
        }
        Err(e) => return Err(e),
    };
    Ok((first, second))
}

/// PTEs in guest RAM, behind an optional PMP.
///
/// Implicit page-table accesses are checked by PMP as S-mode accesses (Priv spec,
/// "Physical Memory Protection and Paging"). PTEs outside RAM (MMIO, holes) give access
/// faults: Rivet's PMAs do not allow page walks there. A/D updates use host atomics on
/// the RAM mapping, so they are atomic with respect to other harts' walks, AMOs and
/// stores to the same PTE.
pub struct RamPtes<'a> {
    ram: &'a GuestRam,
    pmp: Option<&'a Pmp>,
}

impl<'a> RamPtes<'a> {
    pub fn new(ram: &'a GuestRam, pmp: Option<&'a Pmp>) -> Self {
        Self { ram, pmp }
    }

    fn word(&self, paddr: u64, access: Access) -> Result<&AtomicU64, Fault> {
        let fault = Fault::Access { paddr };
        if let Some(pmp) = self.pmp {
            if !pmp.check(paddr, 8, access, Priv::S) {
                return Err(fault);
            }
        }
        let ptr = self.ram.host_ptr(paddr, 8).ok_or(fault)?;
        if !(ptr as usize).is_multiple_of(std::mem::align_of::<AtomicU64>()) {
            return Err(fault);
        }
        // SAFETY: `host_ptr` checked that the 8 bytes at `ptr` lie inside the RAM
        // mapping, which lives as long as `self.ram` (and so as long as the returned
        // reference); `ptr` is aligned for AtomicU64 (checked above). Guest RAM is only
        // ever accessed through raw pointers and atomics, never through Rust references
        // to plain integers, so no `&mut` aliases this word.
        Ok(unsafe { AtomicU64::from_ptr(ptr.cast::<u64>()) })
    }
}

impl PhysMem for RamPtes<'_> {
    fn load_pte(&self, paddr: u64) -> Result<u64, Fault> {
        // Acquire pairs with the Release of another hart's A/D update.
        Ok(u64::from_le(
            self.word(paddr, Access::Read)?.load(Ordering::Acquire),
        ))
    }

    fn cas_pte(&self, paddr: u64, old: u64, new: u64) -> Result<bool, Fault> {
        let word = self.word(paddr, Access::Write)?;
        Ok(word
            .compare_exchange(
                old.to_le(),
                new.to_le(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    const RAM_BASE: u64 = 0x8000_0000;

    /// Builds page tables in a GuestRam, allocating table pages from the top of RAM.
    struct Tables {
        ram: GuestRam,
        next: Cell<u64>,
        root: u64,
    }

    impl Tables {
        fn new() -> Self {
            let ram = GuestRam::new(RAM_BASE, 0x40_0000).unwrap();
            let t = Tables {
                next: Cell::new(ram.end()),
                root: 0,
                ram,
            };
            let root = t.alloc();
            Tables { root, ..t }
        }

        fn alloc(&self) -> u64 {
            let p = self.next.get() - PAGE_SIZE;
            self.next.set(p);
            p
        }

        fn ptes(&self) -> RamPtes<'_> {
            RamPtes::new(&self.ram, None)
        }

        fn read(&self, paddr: u64) -> u64 {
            self.ram.read(paddr, 8).unwrap()
        }

        /// Maps `vaddr` with a leaf at `level` (0 = 4 KiB) holding `leaf` (flags and PPN
        /// as given, V is added). Returns the leaf PTE's address.
        fn map(&self, levels: u32, vaddr: u64, level: u32, leaf: u64) -> u64 {
            let mut table = self.root;
            let mut i = levels - 1;
            loop {
                let idx = (vaddr >> (12 + 9 * i)) & 0x1ff;
                let addr = table + idx * 8;
                if i == level {
                    self.ram.write(addr, 8, leaf | pte::V).unwrap();
                    return addr;
                }
                let cur = self.read(addr);
                table = if cur & pte::V != 0 {
                    pte::ppn(cur) << 12
                } else {
                    let t = self.alloc();
                    self.ram.write(addr, 8, ((t >> 12) << 10) | pte::V).unwrap();
                    t
                };
                i -= 1;
            }
        }

        fn req(&self, mode: Mode, vaddr: u64, access: Access) -> WalkRequest {
            WalkRequest {
                vaddr,
                access,
                mode,
                root_ppn: self.root >> 12,
                privilege: Priv::S,
                sum: false,
                mxr: false,
                adue: true,
                pbmte: true,
                napot: true,
            }
        }
    }

    fn leaf(paddr: u64, flags: u64) -> u64 {
        ((paddr >> 12) << 10) | flags
    }

    const RWXAD: u64 = pte::R | pte::W | pte::X | pte::A | pte::D;

    #[test]
    fn sv39_4k_page_translates_with_offset() {
        let t = Tables::new();
        let at = t.map(3, 0x4000_1000, 0, leaf(0x8010_0000, RWXAD));
        let r = walk(&t.req(Mode::Sv39, 0x4000_1234, Access::Read), &t.ptes()).unwrap();
        assert_eq!(r.paddr, 0x8010_0234);
        assert_eq!(r.page_shift, 12);
        assert_eq!(r.perms, Perms::RWX);
        assert_eq!(r.pte_addr, Some(at));
        assert!(!r.global);
        // A neighbouring page is unmapped.
        let e = walk(&t.req(Mode::Sv39, 0x4000_2000, Access::Read), &t.ptes());
        assert_eq!(e, Err(Fault::Page));
    }

    #[test]
    fn sv48_and_sv57_walk_all_levels() {
        for (mode, levels) in [(Mode::Sv48, 4), (Mode::Sv57, 5)] {
            let t = Tables::new();
            let va = 0x0000_7f12_3456_7000u64 & ((1 << (12 + 9 * levels - 1)) - 1);
            t.map(levels, va, 0, leaf(0x8020_0000, RWXAD));
            let r = walk(&t.req(mode, va | 0x10, Access::Write), &t.ptes()).unwrap();
            assert_eq!(r.paddr, 0x8020_0010, "{mode:?}");
        }
    }

    #[test]
    fn non_canonical_addresses_fault() {
        let t = Tables::new();
        t.map(3, 0x1000, 0, leaf(0x8010_0000, RWXAD));
        assert!(walk(&t.req(Mode::Sv39, 0x1000, Access::Read), &t.ptes()).is_ok());
        // Bit 39 set but bit 38 clear: not sign-extended.
        let bad = 0x0000_0080_0000_1000;
        assert_eq!(
            walk(&t.req(Mode::Sv39, bad, Access::Read), &t.ptes()),
            Err(Fault::Page)
        );
        assert!(is_valid_vaddr(Mode::Sv39, 0xffff_ffc0_0000_0000));
        assert!(!is_valid_vaddr(Mode::Sv39, 0xffff_ff80_0000_0000));
        assert!(is_valid_vaddr(Mode::Sv48, 0xffff_8000_0000_0000));
        assert!(!is_valid_vaddr(Mode::Sv48, 0x0000_8000_0000_0000));
        assert!(is_valid_vaddr(Mode::Sv39x4, (1 << 41) - 1));
        assert!(!is_valid_vaddr(Mode::Sv39x4, 1 << 41));
    }

    #[test]
    fn superpages_need_alignment() {
        let t = Tables::new();
        t.map(3, 0x4020_0000, 1, leaf(0x8040_0000, RWXAD));
        let r = walk(&t.req(Mode::Sv39, 0x4029_abcd, Access::Read), &t.ptes()).unwrap();
        assert_eq!(r.paddr, 0x8049_abcd);
        assert_eq!(r.page_shift, 21);
        // A 2 MiB leaf whose PPN is only 4 KiB aligned is a misaligned superpage.
        t.map(3, 0x4060_0000, 1, leaf(0x8040_1000, RWXAD));
        assert_eq!(
            walk(&t.req(Mode::Sv39, 0x4060_0000, Access::Read), &t.ptes()),
            Err(Fault::Page)
        );
        // 1 GiB leaf.
        t.map(3, 0x8000_0000, 2, leaf(0x4000_0000, RWXAD));
        let r = walk(&t.req(Mode::Sv39, 0x8123_4567, Access::Read), &t.ptes()).unwrap();
        assert_eq!((r.paddr, r.page_shift), (0x4123_4567, 30));
    }

    #[test]
    fn reserved_encodings_fault() {
        let cases: [(u64, &str); 6] = [
            (pte::W | pte::A | pte::D, "W without R"),
            (pte::R | pte::A | (1 << 54), "reserved bit 54"),
            (pte::R | pte::A | (1 << 60), "reserved bit 60"),
            (pte::R | pte::A | (3 << 61), "PBMT = 3"),
            (pte::R | pte::A | pte::N, "N on a non-NAPOT PPN"),
            (
                pte::R | pte::W | pte::X | pte::A | pte::D | pte::N | (1 << 12),
                "N, ppn 0001",
            ),
        ];
        for (flags, what) in cases {
            let t = Tables::new();
            t.map(3, 0x1000, 0, leaf(0x8010_0000, flags));
            let r = walk(&t.req(Mode::Sv39, 0x1000, Access::Read), &t.ptes());
            assert_eq!(r, Err(Fault::Page), "{what}");
        }
    }

    #[test]
    fn pbmt_needs_pbmte() {
        let t = Tables::new();
        t.map(3, 0x1000, 0, leaf(0x8010_0000, RWXAD | (2 << 61)));
        let mut req = t.req(Mode::Sv39, 0x1000, Access::Read);
        assert_eq!(walk(&req, &t.ptes()).unwrap().pbmt, Pbmt::Io);
        req.pbmte = false;
        assert_eq!(walk(&req, &t.ptes()), Err(Fault::Page));
    }

    #[test]
    fn napot_64k_pages() {
        let t = Tables::new();
        // ppn[3:0] = 0b1000 marks a 64 KiB page whose base is ppn with those bits clear.
        let ppn = (0x8030_0000u64 >> 12) | 0b1000;
        let at = t.map(3, 0x5_0000 + 0x3000, 0, (ppn << 10) | RWXAD | pte::N);
        let mut req = t.req(Mode::Sv39, 0x5_3abc, Access::Read);
        let r = walk(&req, &t.ptes()).unwrap();
        assert_eq!((r.paddr, r.page_shift), (0x8030_3abc, 16));
        assert_eq!(r.pte_addr, Some(at));
        req.napot = false;
        assert_eq!(walk(&req, &t.ptes()), Err(Fault::Page));
        // N on a 2 MiB leaf is reserved.
        let t = Tables::new();
        t.map(3, 0x20_0000, 1, leaf(0x8040_0000, RWXAD | pte::N));
        let r = walk(&t.req(Mode::Sv39, 0x20_0000, Access::Read), &t.ptes());
        assert_eq!(r, Err(Fault::Page));
    }

    #[test]
    fn non_leaf_reserved_bits_and_running_out_of_levels() {
        for bad in [pte::A, pte::D, pte::U, pte::N, 1 << 61] {
            let t = Tables::new();
            t.map(3, 0x1000, 0, leaf(0x8010_0000, RWXAD));
            let root_pte = t.read(t.root);
            t.ram.write(t.root, 8, root_pte | bad).unwrap();
            let r = walk(&t.req(Mode::Sv39, 0x1000, Access::Read), &t.ptes());
            assert_eq!(r, Err(Fault::Page), "non-leaf bit {bad:#x}");
        }
        // A level-0 PTE that points further down.
        let t = Tables::new();
        t.map(3, 0x1000, 0, leaf(0x8010_0000, 0));
        let r = walk(&t.req(Mode::Sv39, 0x1000, Access::Read), &t.ptes());
        assert_eq!(r, Err(Fault::Page));
    }

    #[test]
    fn privilege_sum_and_mxr() {
        let t = Tables::new();
        t.map(3, 0x1000, 0, leaf(0x8010_0000, RWXAD | pte::U));
        t.map(3, 0x2000, 0, leaf(0x8011_0000, RWXAD));
        t.map(3, 0x3000, 0, leaf(0x8012_0000, pte::X | pte::A));
        let go = |va, access, privilege, sum, mxr| {
            let mut r = t.req(Mode::Sv39, va, access);
            r.privilege = privilege;
            r.sum = sum;
            r.mxr = mxr;
            walk(&r, &t.ptes()).map(|t| t.perms)
        };
        // S on a U page: nothing without SUM, RW with SUM, never X.
        assert_eq!(
            go(0x1000, Access::Read, Priv::S, false, false),
            Err(Fault::Page)
        );
        assert_eq!(
            go(0x1000, Access::Read, Priv::S, true, false),
            Ok(Perms::RW)
        );
        assert_eq!(
            go(0x1000, Access::Exec, Priv::S, true, false),
            Err(Fault::Page)
        );
        // U on a U page: all; U on an S page: nothing.
        assert_eq!(
            go(0x1000, Access::Exec, Priv::U, false, false),
            Ok(Perms::RWX)
        );
        assert_eq!(
            go(0x2000, Access::Read, Priv::U, true, false),
            Err(Fault::Page)
        );
        // X-only page: readable only with MXR.
        assert_eq!(
            go(0x3000, Access::Read, Priv::S, false, false),
            Err(Fault::Page)
        );
        assert_eq!(
            go(0x3000, Access::Read, Priv::S, false, true),
            Ok(Perms::RX)
        );
        assert_eq!(
            go(0x3000, Access::Write, Priv::S, false, true),
            Err(Fault::Page)
        );
        // M-mode and Bare are not translated.
        assert_eq!(
            go(0x7000, Access::Write, Priv::M, false, false),
            Ok(Perms::RWX)
        );
    }

    #[test]
    fn svade_faults_on_clear_a_or_d() {
        let t = Tables::new();
        t.map(3, 0x1000, 0, leaf(0x8010_0000, pte::R | pte::W));
        t.map(3, 0x2000, 0, leaf(0x8011_0000, pte::R | pte::W | pte::A));
        let go = |va, access| {
            let mut r = t.req(Mode::Sv39, va, access);
            r.adue = false;
            walk(&r, &t.ptes())
        };
        assert_eq!(go(0x1000, Access::Read), Err(Fault::Page));
        // A set, D clear: reads work but do not get W; a store faults.
        assert_eq!(go(0x2000, Access::Read).unwrap().perms, Perms::R);
        assert_eq!(go(0x2000, Access::Write), Err(Fault::Page));
    }

    #[test]
    fn svadu_sets_a_then_d() {
        let t = Tables::new();
        let at = t.map(3, 0x1000, 0, leaf(0x8010_0000, pte::R | pte::W));
        let r = walk(&t.req(Mode::Sv39, 0x1000, Access::Read), &t.ptes()).unwrap();
        assert_eq!(r.perms, Perms::R, "W needs D");
        assert_eq!(t.read(at) & (pte::A | pte::D), pte::A);
        let r = walk(&t.req(Mode::Sv39, 0x1000, Access::Write), &t.ptes()).unwrap();
        assert_eq!(r.perms, Perms::RW);
        assert_eq!(t.read(at) & (pte::A | pte::D), pte::A | pte::D);
        assert_eq!(r.pte, t.read(at));
    }

    #[test]
    fn global_bit_is_inherited_from_non_leaf() {
        let t = Tables::new();
        t.map(3, 0x1000, 0, leaf(0x8010_0000, RWXAD));
        assert!(
            !walk(&t.req(Mode::Sv39, 0x1000, Access::Read), &t.ptes())
                .unwrap()
                .global
        );
        let root_pte = t.read(t.root);
        t.ram.write(t.root, 8, root_pte | pte::G).unwrap();
        assert!(
            walk(&t.req(Mode::Sv39, 0x1000, Access::Read), &t.ptes())
                .unwrap()
                .global
        );
    }

    #[test]
    fn pte_outside_ram_or_denied_by_pmp_is_an_access_fault() {
        let t = Tables::new();
        let mut req = t.req(Mode::Sv39, 0x1000, Access::Exec);
        req.root_ppn = 0x1000_0000 >> 12; // MMIO, not RAM
        assert_eq!(
            walk(&req, &t.ptes()),
            Err(Fault::Access { paddr: 0x1000_0000 })
        );
        t.map(3, 0x1000, 0, leaf(0x8010_0000, RWXAD));
        // A PMP with no entry allowing S-mode reads of the tables.
        let pmp = Pmp::new();
        let req = t.req(Mode::Sv39, 0x1000, Access::Read);
        let r = walk(&req, &RamPtes::new(&t.ram, Some(&pmp)));
        assert_eq!(r, Err(Fault::Access { paddr: t.root }));
    }

    /// A PhysMem whose PTEs another "hart" rewrites just before each of our CASes.
    struct Racy {
        mem: RefCell<HashMap<u64, u64>>,
        races_left: Cell<u32>,
        /// What the other hart writes into the leaf (with RSW bit 8 toggled each time).
        interloper: u64,
        cases: Cell<u32>,
    }

    impl PhysMem for Racy {
        fn load_pte(&self, paddr: u64) -> Result<u64, Fault> {
            Ok(*self.mem.borrow().get(&paddr).unwrap_or(&0))
        }
        fn cas_pte(&self, paddr: u64, old: u64, new: u64) -> Result<bool, Fault> {
            self.cases.set(self.cases.get() + 1);
            let mut mem = self.mem.borrow_mut();
            if self.races_left.get() > 0 {
                self.races_left.set(self.races_left.get() - 1);
                // Toggle an RSW bit so that each interference is a new value.
                let rsw = u64::from(self.cases.get() & 1) << 8;
                mem.insert(paddr, self.interloper | rsw);
            }
            let cur = mem.get(&paddr).copied().unwrap_or(0);
            if cur != old {
                return Ok(false);
            }
            mem.insert(paddr, new);
            Ok(true)
        }
    }

    fn racy(races: u32, interloper: u64) -> (Racy, WalkRequest) {
        // Root at 0x1000, level-1 table at 0x2000, level-0 table at 0x3000, leaf for
        // vaddr 0 at 0x3000.
        let mut mem = HashMap::new();
        mem.insert(0x1000, (0x2u64 << 10) | pte::V);
        mem.insert(0x2000, (0x3u64 << 10) | pte::V);
        mem.insert(0x3000, leaf(0x8000_0000, pte::V | pte::R | pte::W));
        let m = Racy {
            mem: RefCell::new(mem),
            races_left: Cell::new(races),
            interloper,
            cases: Cell::new(0),
        };
        let req = WalkRequest {
            vaddr: 0x10,
            access: Access::Write,
            mode: Mode::Sv39,
            root_ppn: 1,
            privilege: Priv::S,
            sum: false,
            mxr: false,
            adue: true,
            pbmte: false,
            napot: false,
        };
        (m, req)
    }

    #[test]
    fn lost_ad_race_rereads_the_pte() {
        // The other hart remaps the page between our read and our CAS: the walk must
        // use the new PTE, not the one it first read.
        let (m, req) = racy(1, leaf(0x9000_0000, pte::V | pte::R | pte::W | pte::A));
        let r = walk(&req, &m).unwrap();
        assert_eq!(r.paddr, 0x9000_0010);
        assert_eq!(m.cases.get(), 2);
        assert_eq!(m.mem.borrow()[&0x3000] & pte::D, pte::D);
        // The other hart invalidates the PTE: the retried walk page-faults.
        let (m, req) = racy(1, 0);
        assert_eq!(walk(&req, &m), Err(Fault::Page));
    }

    #[test]
    fn endless_ad_race_gives_up() {
        let (m, req) = racy(u32::MAX, leaf(0x9000_0000, pte::V | pte::R | pte::W));
        assert_eq!(walk(&req, &m), Err(Fault::Retry));
        assert_eq!(m.cases.get(), MAX_AD_RETRIES);
    }

    #[test]
    fn sv39x4_has_a_wider_root_and_needs_u() {
        let t = Tables::new();
        // The root of an x4 table is 16 KiB: root indices above 511 land in its later
        // pages, so a guest physical address with bit 40 set needs the 11-bit index.
        let root = RAM_BASE + 0x10_0000;
        let l1 = root + 0x4000;
        let l0 = root + 0x5000;
        let gpa_hi = (1u64 << 40) | 0x1000;
        let idx = (gpa_hi >> 30) & 0x7ff;
        assert!(idx > 0x1ff);
        t.ram
            .write(root + idx * 8, 8, ((l1 >> 12) << 10) | pte::V)
            .unwrap();
        t.ram
            .write(
                l1 + ((gpa_hi >> 21) & 0x1ff) * 8,
                8,
                ((l0 >> 12) << 10) | pte::V,
            )
            .unwrap();
        let leaf_at = l0 + ((gpa_hi >> 12) & 0x1ff) * 8;
        t.ram
            .write(leaf_at, 8, leaf(0x8010_0000, RWXAD | pte::V))
            .unwrap();
        let mut req = t.req(Mode::Sv39x4, gpa_hi | 0x44, Access::Read);
        req.root_ppn = root >> 12;
        assert_eq!(
            walk(&req, &t.ptes()),
            Err(Fault::Page),
            "G-stage leaves need U"
        );
        t.ram
            .write(
                leaf_at,
                8,
                leaf(0x8010_0000, RWXAD | pte::U | pte::V | pte::G),
            )
            .unwrap();
        let r = walk(&req, &t.ptes()).unwrap();
        assert_eq!(r.paddr, 0x8010_0044);
        assert!(!r.global, "G is unused in G-stage PTEs");
        req.vaddr = 1 << 41;
        assert_eq!(walk(&req, &t.ptes()), Err(Fault::Page));
    }
}
