//! The two-level TLB of one hart.
//!
//! **L1** ([`L1Tlb`]): one direct-mapped table of [`L1_ENTRIES`] per translation regime
//! and, for the regimes that translate, per kept address space (the HS-level satp
//! spaces in [`S_SLOTS`] slots, the guests' vsatp+hgatp spaces in [`V_SLOTS`]);
//! `#[repr(C)]` so compiled code probes it inline ([`Tlb::table`] picks the table):
//!
//! ```text
//! entry = l1 + table * L1_REGIME_BYTES + ((vaddr >> 12) & (L1_ENTRIES - 1)) * 32
//! hit   = entry.{read,write,exec} == vaddr & l1_tag_mask(size)
//! host  = vaddr + entry.addend
//! ```
//!
//! A tag is the page-aligned virtual address, or [`INVALID_TAG`] for a permission the
//! entry does not grant. [`l1_tag_mask`] keeps the low address bits below the access
//! size, so a misaligned access never hits and takes the slow path. L1 entries exist only
//! for RAM pages whose whole 4 KiB have uniform PMP permission; MMIO never hits L1.
//!
//! **L2**: per hart, [`L2_SETS`] x [`L2_WAYS`], entries tagged (stage, VMID, ASID, mode,
//! page base, page size, global) holding the physical page and the leaf's R/W/X/U bits,
//! so the permissions of any privilege/SUM/MXR combination are derived on lookup. The
//! VS stage's entries hold the whole two-stage translation (guest virtual to physical,
//! as the H chapter's note on HFENCE.GVMA describes "more common" implementations):
//! both leaves' bits, the size of the smaller page, and the size of the VS-stage page
//! that `sfence.vma`/`hfence.vvma` by address drop. SUM selects the regime
//! ([`Regime::SSum`], [`Regime::VSSum`]) and needs no flush; a change of MXR, of PMP or
//! of MPRV's effect only needs [`Tlb::flush_l1`]. A `satp` write switches to the L1
//! tables kept for its ASID (a `vsatp`/`hgatp` write to those of its ASID and VMID), or
//! clears the oldest slot's for a new one ([`Tlb::set_space`]); translations not in L1
//! refill from L2 without walking, and global ones straight from another slot's table
//! ([`Tlb::share_global`]). Faulting translations are never cached.
//!
//! Flushes follow `sfence.vma` (Priv spec, "Supervisor Memory-Management Fence
//! Instruction"), `hfence.vvma` and `hfence.gvma` (H chapter, "Hypervisor
//! Memory-Management Fence Instructions") and drop only what their operands name, in
//! both levels: an HS `sfence.vma` leaves every guest translation alone, a VS one (or
//! `hfence.vvma`) drops only the current VMID's.

use super::mmu::{pte, pte_perms, Access, Mode, Perms, Priv, Translation, PAGE_SHIFT};
use std::mem::offset_of;

/// log2 of the entries per L1 table.
pub const L1_BITS: u32 = 10;
pub const L1_ENTRIES: usize = 1 << L1_BITS;
/// log2 of `size_of::<L1Entry>()`.
pub const L1_ENTRY_SHIFT: u32 = 5;
/// Bytes of one regime's L1 table.
pub const L1_REGIME_BYTES: usize = L1_ENTRIES << L1_ENTRY_SHIFT;
pub const L2_SETS: usize = 512;

/// Superpages listed per regime before flushes by address scan every entry in use.
const L1_SUPER_MAX: usize = 64;

/// The indices of the set bits of `bits` (L1 entries in use).
fn live_entries(bits: [u64; L1_ENTRIES / 64]) -> impl Iterator<Item = usize> {
    bits.into_iter().enumerate().flat_map(|(w, mut b)| {
        std::iter::from_fn(move || {
            (b != 0).then(|| {
                let i = b.trailing_zeros() as usize;
                b &= b - 1;
                w * 64 + i
            })
        })
    })
}
pub const L2_WAYS: usize = 4;
/// A tag that no probe matches: bit 11 is set, and [`l1_tag_mask`] always clears it.
pub const INVALID_TAG: u64 = u64::MAX;

const PAGE_MASK: u64 = (1 << PAGE_SHIFT) - 1;

/// A translation regime: which L1 table an access uses. Each privilege/V/SUM
/// combination that translates differently has its own table, so changing privilege
/// or virtualization mode never flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Regime {
    /// M-mode (and MPRV with MPP=M): physical addresses.
    M = 0,
    /// HS-mode through satp, SUM = 0.
    S = 1,
    /// HS-mode through satp, SUM = 1.
    SSum = 2,
    /// U-mode through satp.
    U = 3,
    /// VS-mode through vsatp and hgatp, `vsstatus.SUM` = 0.
    VS = 4,
    /// VS-mode through vsatp and hgatp, `vsstatus.SUM` = 1.
    VSSum = 5,
    /// VU-mode through vsatp and hgatp.
    VU = 6,
}

/// Number of regimes.
pub const REGIMES: usize = 7;

impl Regime {
    pub const ALL: [Regime; REGIMES] = [
        Regime::M,
        Regime::S,
        Regime::SSum,
        Regime::U,
        Regime::VS,
        Regime::VSSum,
        Regime::VU,
    ];

    /// The regime of an access with effective privilege `privilege` and
    /// virtualization mode `virt`; `sum` is the SUM bit in effect (`mstatus.SUM` with
    /// V=0, `vsstatus.SUM` with V=1).
    pub const fn of(privilege: Priv, virt: bool, sum: bool) -> Regime {
        match (privilege, virt) {
            (Priv::M, _) => Regime::M,
            (Priv::S, false) if sum => Regime::SSum,
            (Priv::S, false) => Regime::S,
            (Priv::U, false) => Regime::U,
            (Priv::S, true) if sum => Regime::VSSum,
            (Priv::S, true) => Regime::VS,
            (Priv::U, true) => Regime::VU,
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    /// The translation stage (address space) whose entries this regime uses; `None`
    /// for M, which is not translated.
    pub const fn stage(self) -> Option<Stage> {
        match self {
            Regime::M => None,
            Regime::S | Regime::SSum | Regime::U => Some(Stage::S),
            Regime::VS | Regime::VSSum | Regime::VU => Some(Stage::VS),
        }
    }

    pub const fn privilege(self) -> Priv {
        match self {
            Regime::M => Priv::M,
            Regime::S | Regime::SSum | Regime::VS | Regime::VSSum => Priv::S,
            Regime::U | Regime::VU => Priv::U,
        }
    }

    pub const fn sum(self) -> bool {
        matches!(self, Regime::SSum | Regime::VSSum)
    }

    /// Two-stage translation (V=1).
    pub const fn virt(self) -> bool {
        matches!(self, Regime::VS | Regime::VSSum | Regime::VU)
    }

    /// The regime's table within a slot's three.
    const fn sub(self) -> usize {
        match self {
            Regime::M | Regime::S | Regime::VS => 0,
            Regime::SSum | Regime::VSSum => 1,
            Regime::U | Regime::VU => 2,
        }
    }
}

/// A translation stage: an independent set of page tables with its own root register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Stage {
    /// satp (HS-mode / S-mode with V=0).
    S = 0,
    /// vsatp (VS-stage of a guest, V=1); its entries hold whole two-stage translations.
    VS = 1,
    /// hgatp (G-stage: guest physical -> physical).
    G = 2,
}

pub const STAGES: usize = 3;

/// The address space a stage's root register currently selects. Its root PPN is not part
/// of it: the ASID names the address space (Priv spec, satp), and software must fence
/// when it reuses an ASID for other page tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Space {
    pub mode: Mode,
    pub asid: u16,
    /// hgatp.VMID for the VS and G stages; 0 for the S stage.
    pub vmid: u16,
}

impl Space {
    pub const BARE: Space = Space {
        mode: Mode::Bare,
        asid: 0,
        vmid: 0,
    };
}

/// The MXR bits in effect: `mstatus.MXR` (both stages) and `vsstatus.MXR` (the VS
/// stage only: H chapter, "Two-Stage Address Translation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mxr {
    pub hs: bool,
    pub vs: bool,
}

/// One L1 entry, laid out for inline probes by compiled code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct L1Entry {
    /// Page-aligned virtual address when loads may use this entry, else [`INVALID_TAG`].
    pub read: u64,
    pub write: u64,
    pub exec: u64,
    /// Host address minus guest virtual address of the page (wrapping).
    pub addend: u64,
}

impl L1Entry {
    pub const INVALID: L1Entry = L1Entry {
        read: INVALID_TAG,
        write: INVALID_TAG,
        exec: INVALID_TAG,
        addend: 0,
    };
    pub const READ_OFFSET: usize = offset_of!(L1Entry, read);
    pub const WRITE_OFFSET: usize = offset_of!(L1Entry, write);
    pub const EXEC_OFFSET: usize = offset_of!(L1Entry, exec);
    pub const ADDEND_OFFSET: usize = offset_of!(L1Entry, addend);

    /// The offset of the tag an access compares against.
    pub const fn tag_offset(access: Access) -> usize {
        match access {
            Access::Read => Self::READ_OFFSET,
            Access::Write => Self::WRITE_OFFSET,
            Access::Exec => Self::EXEC_OFFSET,
        }
    }

    const fn tag(&self, access: Access) -> u64 {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Exec => self.exec,
        }
    }
}

const _: () = assert!(std::mem::size_of::<L1Entry>() == 1 << L1_ENTRY_SHIFT);

/// HS-level address spaces (satp ASIDs) whose L1 tables a hart keeps: switching back
/// to one of them (a context switch between processes with their own ASIDs) finds its
/// L1 entries still there, as the spec lets a TLB keep them until `sfence.vma`.
pub const S_SLOTS: usize = 4;
/// Guest address spaces (vsatp ASID and hgatp VMID) kept the same way: a hypervisor
/// switching between virtual machines, or a guest between its processes, finds its
/// entries again.
pub const V_SLOTS: usize = 4;

/// L1 tables per hart: M's, then S, S with SUM and U for each kept HS-level space, then
/// VS, VS with SUM and VU for each kept guest space.
pub const L1_TABLES: usize = 1 + 3 * (S_SLOTS + V_SLOTS);
const V_BASE: usize = 1 + 3 * S_SLOTS;

/// One L1 table (see [`Tlb::table`]).
pub type L1Table = [L1Entry; L1_ENTRIES];

/// The L1 index of `vaddr`.
pub const fn l1_index(vaddr: u64) -> usize {
    ((vaddr >> PAGE_SHIFT) as usize) & (L1_ENTRIES - 1)
}

/// What a probe masks `vaddr` with before comparing it with a tag: the page number plus
/// the bits that must be zero for an access of `size` bytes to be naturally aligned.
pub const fn l1_tag_mask(size: u64) -> u64 {
    !PAGE_MASK | (size.saturating_sub(1) & 0x7ff)
}

/// The result of a translation: what an L1 entry is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Physical address of the translated virtual address.
    pub paddr: u64,
    /// log2 of the size of the page the mapping belongs to (with two stages, the
    /// smaller of their pages).
    pub page_shift: u8,
    /// log2 of the first-stage page a flush by address drops whole (`page_shift` for
    /// one stage).
    pub span_shift: u8,
    /// Permissions of the regime on the page (W only on dirty pages).
    pub perms: Perms,
    pub global: bool,
}

impl Mapping {
    /// An untranslated access (M-mode, Bare).
    pub const fn identity(addr: u64) -> Mapping {
        Mapping {
            paddr: addr,
            page_shift: PAGE_SHIFT as u8,
            span_shift: PAGE_SHIFT as u8,
            perms: Perms::RWX,
            global: false,
        }
    }
}

/// [`Leaf::bits`] of a translation whose first stage is Bare: every access is allowed
/// by it (the V bit's position, never set in stored leaf bits otherwise).
pub const BARE_FIRST: u8 = pte::V as u8;

/// A successful walk, as the TLB caches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub paddr: u64,
    pub page_shift: u8,
    pub span_shift: u8,
    /// Permissions of the walked regime (both stages applied).
    pub perms: Perms,
    /// The first-stage leaf's R, W, X, U bits in PTE positions, W only if D; or
    /// [`BARE_FIRST`].
    pub bits: u8,
    /// The G-stage leaf's R, W, X bits (W only if D); R, W and X without a G stage.
    pub gbits: u8,
    pub global: bool,
    /// Whether the TLB may keep it (a walk happened; the identity mapping is not kept).
    pub cache: bool,
}

/// R, W and X in PTE positions.
const RWX_BITS: u8 = (pte::R | pte::W | pte::X) as u8;

impl Leaf {
    /// The leaf bits of a walk's `pte` as L2 keeps them: R, W, X, U; W only if D.
    pub fn pte_bits(pte: u64) -> u8 {
        let mut bits = (pte & (pte::R | pte::W | pte::X | pte::U)) as u8;
        if pte & pte::D == 0 {
            bits &= !(pte::W as u8);
        }
        bits
    }

    /// A one-stage walk (satp, or the G stage alone).
    pub fn one_stage(t: &Translation) -> Leaf {
        Leaf {
            paddr: t.paddr,
            page_shift: t.page_shift,
            span_shift: t.page_shift,
            perms: t.perms,
            bits: Self::pte_bits(t.pte),
            gbits: RWX_BITS,
            global: t.global,
            cache: t.pte_addr.is_some(),
        }
    }

    /// A two-stage walk: the VS stage's translation (`first`, the identity when vsatp
    /// is Bare) and the G stage's of its result (`second`, the identity when hgatp is
    /// Bare). The mapping covers the smaller of the two pages; a flush by guest virtual
    /// address drops the whole VS-stage page.
    pub fn two_stage(first: &Translation, second: &Translation) -> Leaf {
        let walked = |t: &Translation| t.pte_addr.is_some();
        let size = |t: &Translation| if walked(t) { t.page_shift } else { 64 };
        let page_shift = match size(first).min(size(second)) {
            64 => PAGE_SHIFT as u8,
            s => s,
        };
        Leaf {
            paddr: second.paddr,
            page_shift,
            span_shift: if walked(first) {
                first.page_shift
            } else {
                page_shift
            },
            perms: first.perms & second.perms,
            bits: if walked(first) {
                Self::pte_bits(first.pte)
            } else {
                BARE_FIRST
            },
            gbits: if walked(second) {
                Self::pte_bits(second.pte) & RWX_BITS
            } else {
                RWX_BITS
            },
            global: first.global,
            cache: walked(first) || walked(second),
        }
    }

    fn mapping(&self) -> Mapping {
        Mapping {
            paddr: self.paddr,
            page_shift: self.page_shift,
            span_shift: self.span_shift,
            perms: self.perms,
            global: self.global,
        }
    }
}

/// The permissions that stored leaf bits give `regime` (see [`Leaf`]).
fn leaf_perms(bits: u8, gbits: u8, regime: Regime, mxr: Mxr) -> Perms {
    let first_mxr = mxr.hs || (regime.virt() && mxr.vs);
    let first = if bits & BARE_FIRST != 0 {
        Perms::RWX
    } else {
        pte_perms(u64::from(bits), regime.privilege(), regime.sum(), first_mxr)
    };
    if !regime.virt() {
        return first;
    }
    // G-stage permissions are those of a U-mode access (H chapter, "Guest Physical
    // Address Translation"); only mstatus.MXR applies to them.
    first & pte_perms(u64::from(gbits) | pte::U, Priv::U, false, mxr.hs)
}

/// Counters for tests and statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlbStats {
    pub walks: u64,
    pub l2_hits: u64,
    pub l1_fills: u64,
    /// L1 entries copied from another address space's table ([`Tlb::share_global`]).
    pub l1_shared: u64,
    /// Walks and L2 hits of two-stage (V=1) translations.
    pub guest_walks: u64,
    pub guest_l2_hits: u64,
}

impl TlbStats {
    pub fn add(&mut self, o: &TlbStats) {
        self.walks += o.walks;
        self.l2_hits += o.l2_hits;
        self.l1_fills += o.l1_fills;
        self.l1_shared += o.l1_shared;
        self.guest_walks += o.guest_walks;
        self.guest_l2_hits += o.guest_l2_hits;
    }
}

/// Side information of an L1 entry that flushes and code-page tracking need.
#[derive(Debug, Clone, Copy)]
struct L1Meta {
    /// Virtual base of the whole first-stage page (superpage) the entry was made from.
    vbase: u64,
    /// Physical address of the entry's 4 KiB page.
    pframe: u64,
    /// log2 of that first-stage page's size; 0 for an empty entry.
    shift: u8,
    global: bool,
    asid: u16,
    vmid: u16,
}

const EMPTY_META: L1Meta = L1Meta {
    vbase: 0,
    pframe: 0,
    shift: 0,
    global: false,
    asid: 0,
    vmid: 0,
};

/// Page sizes an L2 entry can have; a lookup probes one set per size in use.
const L2_SHIFTS: [u8; 6] = [12, 16, 21, 30, 39, 48];
const L2_EMPTY: u8 = 0xff;

#[derive(Debug, Clone, Copy)]
struct L2Entry {
    vbase: u64,
    pbase: u64,
    asid: u16,
    vmid: u16,
    /// [`Stage`] as u8, or [`L2_EMPTY`].
    stage: u8,
    mode: Mode,
    shift: u8,
    /// log2 of the first-stage page (>= `shift`): what a flush by address drops.
    span: u8,
    global: bool,
    /// See [`Leaf::bits`] and [`Leaf::gbits`].
    bits: u8,
    gbits: u8,
}

const EMPTY_L2: L2Entry = L2Entry {
    vbase: 0,
    pbase: 0,
    asid: 0,
    vmid: 0,
    stage: L2_EMPTY,
    mode: Mode::Bare,
    shift: 0,
    span: 0,
    global: false,
    bits: 0,
    gbits: 0,
};

impl L2Entry {
    fn matches(&self, stage: Stage, space: &Space, vbase: u64, shift: u8) -> bool {
        self.stage == stage as u8
            && self.shift == shift
            && self.vbase == vbase
            && self.mode == space.mode
            && self.vmid == space.vmid
            && (self.global || self.asid == space.asid)
    }
}

/// What a flush drops: entries of `stage` that match every given operand.
#[derive(Debug, Clone, Copy)]
struct Filter {
    stage: Stage,
    vmid: Option<u16>,
    /// Only non-global entries of this ASID (global entries survive an ASID flush).
    asid: Option<u16>,
    /// Only entries whose (first-stage) page contains this address.
    vaddr: Option<u64>,
}

impl Filter {
    fn hits(&self, vmid: u16, asid: u16, global: bool, vbase: u64, span: u8) -> bool {
        self.vmid.is_none_or(|v| v == vmid)
            && self.asid.is_none_or(|a| !global && a == asid)
            && self.vaddr.is_none_or(|va| {
                let m = !((1u64 << span) - 1);
                va & m == vbase & m
            })
    }

    fn is_everything(&self) -> bool {
        self.vmid.is_none() && self.asid.is_none() && self.vaddr.is_none()
    }
}

fn l2_set(vbase: u64, class: usize) -> usize {
    let v = vbase >> L2_SHIFTS[class];
    let h = v ^ (v >> 9) ^ (v >> 18) ^ (class as u64).wrapping_mul(0x9e37_79b9);
    (h as usize) & (L2_SETS - 1)
}

/// The address spaces one kind of slot (HS-level or guest) keeps L1 tables for.
#[derive(Debug, Clone, Copy)]
struct Slots {
    /// The first L1 table of slot 0.
    base: usize,
    /// The slot in use.
    cur: usize,
    /// The space each slot's tables belong to.
    space: [Option<Space>; S_SLOTS],
    /// The slot the next new space replaces (round robin).
    next: usize,
    /// The page-table roots each slot's entries were made from (see [`Tlb::set_root`]).
    root: [(u64, u64); S_SLOTS],
}

const _: () = assert!(S_SLOTS == V_SLOTS);

impl Slots {
    const fn new(base: usize) -> Slots {
        Slots {
            base,
            cur: 0,
            space: [Some(Space::BARE), None, None, None],
            next: 1,
            root: [(0, 0); S_SLOTS],
        }
    }

    fn tables(&self, k: usize) -> std::ops::Range<usize> {
        self.base + 3 * k..self.base + 3 * (k + 1)
    }

    fn all_tables(&self) -> std::ops::Range<usize> {
        self.base..self.base + 3 * S_SLOTS
    }
}

/// One hart's TLB. Its L1 tables are one heap block ([`Tlb::l1_base`]) that compiled
/// code indexes by table number.
pub struct Tlb {
    /// `l1[table][index]`: [`L1_TABLES`] tables, contiguous.
    l1: Box<[L1Table]>,
    meta: Vec<L1Meta>,
    /// Per table: the pages larger than 4 KiB (virtual base, log2 size) that L1
    /// entries came from, since the table was last cleared; a flush by an address
    /// inside one must scan every entry in use, not just the one the address indexes.
    /// `None`: too many to list.
    l1_super: [Option<Vec<(u64, u8)>>; L1_TABLES],
    /// Per table: a bit per L1 entry in use, so clears and flushes visit only those
    /// (Linux flushes often, and most flushes find few entries).
    l1_live: [[u64; L1_ENTRIES / 64]; L1_TABLES],
    /// The HS-level (satp) and guest (vsatp + hgatp) slots.
    s: Slots,
    v: Slots,
    l2: Vec<L2Entry>,
    l2_victim: Vec<u8>,
    /// Bit `c`: some L2 entry may have page size `L2_SHIFTS[c]`.
    l2_classes: u8,
    /// The first-stage pages (VMID, virtual base, log2 size) of VS-stage L2 entries
    /// smaller than them (their G-stage page was smaller): such entries sit in the sets
    /// of their own pages, so a flush by a guest virtual address inside one of these
    /// pages must scan all of L2. `None`: too many to list (every such flush scans).
    /// A guest kernel's superpages over 4 KiB G-stage pages are the usual case; the
    /// flushes of user pages it issues all the time then stay cheap.
    l2_split: Option<Vec<(u16, u64, u8)>>,
    spaces: [Space; STAGES],
    stats: TlbStats,
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

impl Tlb {
    /// The host address of table 0 of the L1; table `t` is `t * L1_REGIME_BYTES`
    /// further.
    pub fn l1_base(&self) -> usize {
        self.l1.as_ptr() as usize
    }

    /// An empty TLB with every stage in Bare mode.
    pub fn new() -> Self {
        Self {
            l1: vec![[L1Entry::INVALID; L1_ENTRIES]; L1_TABLES].into_boxed_slice(),
            meta: vec![EMPTY_META; L1_TABLES * L1_ENTRIES],
            l1_super: std::array::from_fn(|_| Some(Vec::new())),
            l1_live: [[0; L1_ENTRIES / 64]; L1_TABLES],
            s: Slots::new(1),
            v: Slots::new(V_BASE),
            l2: vec![EMPTY_L2; L2_SETS * L2_WAYS],
            l2_victim: vec![0; L2_SETS],
            l2_classes: 0,
            l2_split: Some(Vec::new()),
            spaces: [Space::BARE; STAGES],
            stats: TlbStats::default(),
        }
    }

    pub fn stats(&self) -> TlbStats {
        self.stats
    }

    /// The L1 fast path: the host address of an access of `size` bytes at `vaddr`, when
    /// an L1 entry grants it and it is naturally aligned.
    #[inline]
    pub fn probe(&self, regime: Regime, vaddr: u64, size: u64, access: Access) -> Option<*mut u8> {
        let e = &self.l1[self.table(regime)][l1_index(vaddr)];
        (e.tag(access) == vaddr & l1_tag_mask(size))
            .then(|| std::ptr::with_exposed_provenance_mut(vaddr.wrapping_add(e.addend) as usize))
    }

    pub fn space(&self, stage: Stage) -> Space {
        self.spaces[stage as usize]
    }

    fn slots(&mut self, stage: Stage) -> Option<&mut Slots> {
        match stage {
            Stage::S => Some(&mut self.s),
            Stage::VS => Some(&mut self.v),
            Stage::G => None,
        }
    }

    /// The page-table roots the current space of `stage` now uses (satp's PPN for the
    /// S stage; vsatp's and hgatp's for the VS stage). The ASID (and VMID) names the
    /// address space, and L2 keeps entries by them until software fences; L1 is
    /// cleared when the roots under the current slot change, as QEMU clears its TLB on
    /// satp changes, so software that reuses an ASID for new page tables without a
    /// fence behaves here as it does there (in L1).
    pub fn set_root(&mut self, stage: Stage, root: (u64, u64)) {
        let Some(slots) = self.slots(stage) else {
            return;
        };
        let k = slots.cur;
        if slots.root[k] != root {
            slots.root[k] = root;
            for t in slots.tables(k) {
                self.clear_table(t);
            }
        }
    }

    /// The L1 table `regime` uses now.
    #[inline]
    pub fn table(&self, regime: Regime) -> usize {
        match regime {
            Regime::M => 0,
            Regime::S | Regime::SSum | Regime::U => self.s.base + 3 * self.s.cur + regime.sub(),
            Regime::VS | Regime::VSSum | Regime::VU => self.v.base + 3 * self.v.cur + regime.sub(),
        }
    }

    /// The L1 tables that hold translations of `stage`.
    fn tables_of(&self, stage: Stage) -> std::ops::Range<usize> {
        match stage {
            Stage::S => self.s.all_tables(),
            Stage::VS => self.v.all_tables(),
            Stage::G => 0..0,
        }
    }

    /// A write of `satp` (or of `vsatp`/`hgatp`): makes `space` current for `stage`.
    /// For the S and VS stages, the L1 tables of a space kept in a slot come back into
    /// use; a new space takes the oldest slot, whose tables are cleared. L2 keeps the
    /// entries of other address spaces.
    pub fn set_space(&mut self, stage: Stage, space: Space) {
        self.spaces[stage as usize] = space;
        let Some(slots) = self.slots(stage) else {
            return;
        };
        if let Some(k) = slots.space.iter().position(|s| *s == Some(space)) {
            slots.cur = k;
            return;
        }
        let k = slots.next;
        slots.next = (k + 1) % S_SLOTS;
        slots.space[k] = Some(space);
        slots.cur = k;
        slots.root[k] = (0, 0);
        let tables = slots.tables(k);
        for t in tables {
            self.clear_table(t);
        }
    }

    /// Whether accesses of `stage` are translated at all (V=1 translates unless both
    /// vsatp and hgatp are Bare).
    fn translated(&self, stage: Stage) -> bool {
        let mode = |s: Stage| self.spaces[s as usize].mode;
        match stage {
            Stage::S | Stage::G => mode(stage) != Mode::Bare,
            Stage::VS => mode(Stage::VS) != Mode::Bare || mode(Stage::G) != Mode::Bare,
        }
    }

    /// The slow path after an L1 miss: L2, then `walk` (whose result is cached in L2).
    /// `mxr` gives the MXR bits in effect. M-mode and Bare give the identity mapping
    /// without calling `walk`. The caller checks PMP on the physical address and, for
    /// RAM, fills L1 with [`Tlb::fill_l1`].
    pub fn translate<E>(
        &mut self,
        regime: Regime,
        vaddr: u64,
        access: Access,
        mxr: Mxr,
        walk: impl FnOnce() -> Result<Leaf, E>,
    ) -> Result<Mapping, E> {
        let Some(stage) = regime.stage() else {
            return Ok(Mapping::identity(vaddr));
        };
        if !self.translated(stage) {
            return Ok(Mapping::identity(vaddr));
        }
        if let Some(m) = self.lookup(regime, vaddr, mxr) {
            // A hit without the permission may be a store to a page not yet dirty: only
            // a walk can set D (or raise the fault).
            if m.perms.allows(access) {
                self.stats.l2_hits += 1;
                if stage == Stage::VS {
                    self.stats.guest_l2_hits += 1;
                }
                return Ok(m);
            }
        }
        self.stats.walks += 1;
        if stage == Stage::VS {
            self.stats.guest_walks += 1;
        }
        let leaf = walk()?;
        if leaf.cache {
            self.insert(stage, vaddr, &leaf);
        }
        Ok(leaf.mapping())
    }

    /// Looks `vaddr` up in L2 for the current address space of `regime`'s stage.
    pub fn lookup(&self, regime: Regime, vaddr: u64, mxr: Mxr) -> Option<Mapping> {
        let stage = regime.stage()?;
        let space = self.spaces[stage as usize];
        for (class, &shift) in L2_SHIFTS.iter().enumerate() {
            if self.l2_classes & (1 << class) == 0 {
                continue;
            }
            let mask = (1u64 << shift) - 1;
            let vbase = vaddr & !mask;
            let set = l2_set(vbase, class);
            let ways = &self.l2[set * L2_WAYS..][..L2_WAYS];
            if let Some(e) = ways.iter().find(|e| e.matches(stage, &space, vbase, shift)) {
                return Some(Mapping {
                    paddr: e.pbase | (vaddr & mask),
                    page_shift: shift,
                    span_shift: e.span,
                    perms: leaf_perms(e.bits, e.gbits, regime, mxr),
                    global: e.global,
                });
            }
        }
        None
    }

    /// Caches a successful walk of `vaddr` in the current address space of `stage`.
    pub fn insert(&mut self, stage: Stage, vaddr: u64, t: &Leaf) {
        let Some(class) = L2_SHIFTS.iter().position(|&s| s == t.page_shift) else {
            return;
        };
        let space = self.spaces[stage as usize];
        let shift = t.page_shift;
        let mask = (1u64 << shift) - 1;
        let vbase = vaddr & !mask;
        let entry = L2Entry {
            vbase,
            pbase: t.paddr & !mask,
            asid: space.asid,
            vmid: space.vmid,
            stage: stage as u8,
            mode: space.mode,
            shift,
            span: t.span_shift.max(shift),
            global: t.global,
            bits: t.bits,
            gbits: t.gbits,
        };
        if entry.span != shift {
            let page = (entry.vmid, vaddr & !((1u64 << entry.span) - 1), entry.span);
            if let Some(list) = &mut self.l2_split {
                if !list.contains(&page) {
                    if list.len() < L1_SUPER_MAX {
                        list.push(page);
                    } else {
                        self.l2_split = None;
                    }
                }
            }
        }
        let set = l2_set(vbase, class);
        let ways = &self.l2[set * L2_WAYS..][..L2_WAYS];
        let way = ways
            .iter()
            .position(|e| e.matches(stage, &space, vbase, shift))
            .or_else(|| ways.iter().position(|e| e.stage == L2_EMPTY))
            .unwrap_or_else(|| {
                let v = usize::from(self.l2_victim[set]) % L2_WAYS;
                self.l2_victim[set] = ((v + 1) % L2_WAYS) as u8;
                v
            });
        self.l2[set * L2_WAYS + way] = entry;
        self.l2_classes |= 1 << class;
    }

    /// Makes the L1 entry of `vaddr` in `regime` from `m`, granting `m.perms & allow`.
    /// `host_page` is the host address of the RAM page holding `m.paddr` (4 KiB aligned
    /// in guest terms, the whole page inside RAM); `allow` is what PMP grants on the
    /// whole page ([`super::pmp::Pmp::page_perms`]), minus W for pages holding
    /// translated code.
    pub fn fill_l1(
        &mut self,
        regime: Regime,
        vaddr: u64,
        m: &Mapping,
        host_page: *mut u8,
        allow: Perms,
    ) {
        let perms = m.perms & allow;
        let page = vaddr & !PAGE_MASK;
        let tag = |p: Perms| if perms.contains(p) { page } else { INVALID_TAG };
        let (r, i) = (self.table(regime), l1_index(vaddr));
        self.l1_live[r][i / 64] |= 1 << (i % 64);
        self.l1[r][i] = L1Entry {
            read: tag(Perms::R),
            write: tag(Perms::W),
            exec: tag(Perms::X),
            addend: (host_page.expose_provenance() as u64).wrapping_sub(page),
        };
        let space = regime
            .stage()
            .map_or(Space::BARE, |s| self.spaces[s as usize]);
        let shift = m.span_shift.max(m.page_shift).clamp(PAGE_SHIFT as u8, 63);
        self.meta[r * L1_ENTRIES + i] = L1Meta {
            vbase: vaddr & !((1u64 << shift) - 1),
            pframe: m.paddr & !PAGE_MASK,
            shift,
            global: m.global,
            asid: space.asid,
            vmid: space.vmid,
        };
        if shift > PAGE_SHIFT as u8 {
            self.note_superpage(r, (vaddr & !((1u64 << shift) - 1), shift));
        }
        self.stats.l1_fills += 1;
    }

    /// After an L1 miss of `vaddr` for `access` in `regime`: when the same regime's
    /// table of another kept address space (same translation mode, and for guests the
    /// same VMID) holds a global translation of the page granting `access`, copies
    /// that entry into the current table and returns true. A global mapping is one
    /// that exists in every address space (Priv spec, "Sv32: Page-Based 32-bit
    /// Virtual-Memory Systems", the G bit; a guest's global mappings are global within
    /// its VMID), and every flush that could drop it drops it from all slots alike, so
    /// the copy is as current as the original. The kernel's pages are global: after a
    /// switch to a new process they come back here without an L2 lookup or a PMP check.
    pub fn share_global(&mut self, regime: Regime, vaddr: u64, access: Access) -> bool {
        let Some(stage) = regime.stage() else {
            return false;
        };
        let slots = match stage {
            Stage::S => self.s,
            Stage::VS => self.v,
            Stage::G => return false,
        };
        let cur = self.table(regime);
        let i = l1_index(vaddr);
        let page = vaddr & !PAGE_MASK;
        let now = self.spaces[stage as usize];
        let from = (0..S_SLOTS)
            .filter(|&k| {
                k != slots.cur
                    && slots.space[k].is_some_and(|s| s.mode == now.mode && s.vmid == now.vmid)
            })
            .map(|k| slots.base + 3 * k + regime.sub())
            .find(|&r| {
                let m = &self.meta[r * L1_ENTRIES + i];
                m.shift != 0 && m.global && self.l1[r][i].tag(access) == page
            });
        let Some(r) = from else {
            return false;
        };
        self.l1[cur][i] = self.l1[r][i];
        let m = self.meta[r * L1_ENTRIES + i];
        self.meta[cur * L1_ENTRIES + i] = m;
        self.l1_live[cur][i / 64] |= 1 << (i % 64);
        if m.shift > PAGE_SHIFT as u8 {
            self.note_superpage(cur, (m.vbase, m.shift));
        }
        self.stats.l1_shared += 1;
        true
    }

    /// Lists a superpage an entry of table `r` came from (see `l1_super`).
    fn note_superpage(&mut self, r: usize, page: (u64, u8)) {
        if let Some(list) = &mut self.l1_super[r] {
            if !list.contains(&page) {
                if list.len() < L1_SUPER_MAX {
                    list.push(page);
                } else {
                    self.l1_super[r] = None;
                }
            }
        }
    }

    /// `sfence.vma rs1, rs2` with V=0: `vaddr` is rs1 (`None` for x0), `asid` is rs2
    /// (`None` for x0). Priv spec, "Supervisor Memory-Management Fence Instruction":
    /// - x0, x0: every HS-level translation, global ones included;
    /// - x0, asid: the non-global translations of that ASID;
    /// - vaddr, x0: the translations of the page holding vaddr, in every address space,
    ///   global ones included (a superpage holding vaddr goes whole);
    /// - vaddr, asid: the non-global translations of that ASID for the page of vaddr.
    ///
    /// Guest translations stay (H chapter, "Memory-Management Fences": with V=0 the
    /// fence orders only HS-level translation).
    pub fn sfence_vma(&mut self, vaddr: Option<u64>, asid: Option<u16>) {
        self.flush(Filter {
            stage: Stage::S,
            vmid: None,
            asid,
            vaddr,
        });
    }

    /// `hfence.vvma rs1, rs2` (and `sfence.vma` with V=1): as [`Tlb::sfence_vma`] for the
    /// VS stage of the guest `vmid` (the current hgatp.VMID).
    pub fn hfence_vvma(&mut self, vmid: u16, vaddr: Option<u64>, asid: Option<u16>) {
        self.flush(Filter {
            stage: Stage::VS,
            vmid: Some(vmid),
            asid,
            vaddr,
        });
    }

    /// `hfence.gvma rs1, rs2`: G-stage translations of guest physical address `gpa`
    /// (rs1 << 2; `None` for x0) of `vmid` (`None` for x0). VS-stage entries hold
    /// combined translations that may depend on any G-stage entry, so every VS-stage
    /// entry of the affected VMIDs goes too (the H chapter's note: "a common technique
    /// is to flush all entries that match the HFENCE.GVMA's VMID argument").
    pub fn hfence_gvma(&mut self, vmid: Option<u16>, gpa: Option<u64>) {
        self.flush(Filter {
            stage: Stage::G,
            vmid,
            asid: None,
            vaddr: gpa,
        });
        self.flush(Filter {
            stage: Stage::VS,
            vmid,
            asid: None,
            vaddr: None,
        });
    }

    /// Drops every translation of every stage, in both levels.
    pub fn flush_all(&mut self) {
        self.flush_l1();
        self.l2.fill(EMPTY_L2);
        self.l2_classes = 0;
        self.l2_split = Some(Vec::new());
    }

    /// Drops every L1 entry of every regime (SUM/MXR/MPRV/PMP changes); L2 stays.
    pub fn flush_l1(&mut self) {
        for t in 0..L1_TABLES {
            self.clear_table(t);
        }
    }

    /// Revokes write permission from every L1 entry onto the 4 KiB physical page holding
    /// `paddr`, so stores to it take the slow path (the page holds translated code).
    pub fn protect_code_page(&mut self, paddr: u64) {
        let frame = paddr & !PAGE_MASK;
        for (r, table) in self.l1.iter_mut().enumerate() {
            let meta = &self.meta[r * L1_ENTRIES..][..L1_ENTRIES];
            for (e, m) in table.iter_mut().zip(meta) {
                if m.shift != 0 && m.pframe == frame {
                    e.write = INVALID_TAG;
                }
            }
        }
    }

    fn clear_table(&mut self, r: usize) {
        for i in live_entries(std::mem::take(&mut self.l1_live[r])) {
            self.l1[r][i] = L1Entry::INVALID;
            self.meta[r * L1_ENTRIES + i] = EMPTY_META;
        }
        self.l1_super[r] = Some(Vec::new());
    }

    fn flush(&mut self, f: Filter) {
        // L2.
        let stage = f.stage as u8;
        let hit =
            |e: &L2Entry| e.stage == stage && f.hits(e.vmid, e.asid, e.global, e.vbase, e.span);
        let in_split = |va: u64| match &self.l2_split {
            Some(list) => list.iter().any(|&(vmid, base, span)| {
                f.vmid.is_none_or(|v| v == vmid) && va & !((1u64 << span) - 1) == base
            }),
            None => true,
        };
        let scan_all = match f.vaddr {
            None => true,
            Some(va) => f.stage == Stage::VS && in_split(va),
        };
        if let (Some(va), false) = (f.vaddr, scan_all) {
            for (class, &shift) in L2_SHIFTS.iter().enumerate() {
                if self.l2_classes & (1 << class) != 0 {
                    let set = l2_set(va & !((1u64 << shift) - 1), class);
                    for e in &mut self.l2[set * L2_WAYS..][..L2_WAYS] {
                        if hit(e) {
                            *e = EMPTY_L2;
                        }
                    }
                }
            }
        } else {
            for e in &mut self.l2 {
                if hit(e) {
                    *e = EMPTY_L2;
                }
            }
            // A flush of a whole VMID (or of every guest) leaves none of its split pages.
            if f.stage == Stage::VS && f.vaddr.is_none() && f.asid.is_none() {
                match (&mut self.l2_split, f.vmid) {
                    (Some(list), Some(vmid)) => list.retain(|&(v, _, _)| v != vmid),
                    // Other guests' split pages are not listed: keep scanning.
                    (None, Some(_)) => {}
                    (split, None) => *split = Some(Vec::new()),
                }
            }
        }

        // L1 tables of the regimes that use this stage, in every slot.
        for r in self.tables_of(f.stage) {
            if f.is_everything() {
                self.clear_table(r);
                continue;
            }
            let live = self.l1_live[r];
            let in_super = |va: u64| match &self.l1_super[r] {
                Some(list) => list
                    .iter()
                    .any(|&(base, shift)| va & !((1u64 << shift) - 1) == base),
                None => true,
            };
            let candidates: &mut dyn Iterator<Item = usize> = match f.vaddr {
                Some(va) if !in_super(va) => &mut std::iter::once(l1_index(va)),
                _ => &mut live_entries(live),
            };
            for i in candidates {
                let m = &mut self.meta[r * L1_ENTRIES + i];
                if m.shift != 0 && f.hits(m.vmid, m.asid, m.global, m.vbase, m.shift) {
                    *m = EMPTY_META;
                    self.l1[r][i] = L1Entry::INVALID;
                    self.l1_live[r][i / 64] &= !(1 << (i % 64));
                }
            }
        }
    }

    #[cfg(test)]
    fn l2_entries(&self, stage: Stage) -> usize {
        self.l2.iter().filter(|e| e.stage == stage as u8).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hart::mmu::{walk, Fault, RamPtes, WalkRequest};
    use rivet_devices::ram::GuestRam;

    /// A fake page table: (asid, vbase, shift, pbase, leaf bits, global).
    struct Fake {
        maps: Vec<(u16, u64, u8, u64, u64, bool)>,
    }

    const RWXAD: u64 = pte::R | pte::W | pte::X | pte::A | pte::D;

    impl Fake {
        fn walk(
            &self,
            asid: u16,
            regime: Regime,
            va: u64,
            access: Access,
        ) -> Result<Translation, Fault> {
            let &(_, _, shift, pbase, bits, global) = self
                .maps
                .iter()
                .find(|m| (m.0 == asid || m.5) && va & !((1u64 << m.2) - 1) == m.1)
                .ok_or(Fault::Page)?;
            let perms = pte_perms(bits, regime.privilege(), regime.sum(), false);
            if !perms.allows(access) {
                return Err(Fault::Page);
            }
            let mask = (1u64 << shift) - 1;
            Ok(Translation {
                paddr: pbase | (va & mask),
                page_shift: shift,
                perms: if bits & pte::D == 0 {
                    perms.without(Perms::W)
                } else {
                    perms
                },
                global,
                pte: bits | pte::V,
                pte_addr: Some(0x1000),
                pbmt: crate::hart::mmu::Pbmt::Pma,
            })
        }
    }

    /// A TLB plus a host buffer standing in for RAM, and helpers that run the hart's slow
    /// path: translate, then fill L1.
    struct Rig {
        tlb: Tlb,
        fake: Fake,
        ram: Vec<u8>,
    }

    const SV39: Space = Space {
        mode: Mode::Sv39,
        asid: 1,
        vmid: 0,
    };

    impl Rig {
        fn new(maps: Vec<(u16, u64, u8, u64, u64, bool)>) -> Self {
            let mut tlb = Tlb::new();
            tlb.set_space(Stage::S, SV39);
            Rig {
                tlb,
                fake: Fake { maps },
                ram: vec![0; 0x1000],
            }
        }

        fn asid(&mut self, asid: u16) {
            self.tlb.set_space(Stage::S, Space { asid, ..SV39 });
        }

        /// Translates and fills L1 (every page maps onto the same host buffer).
        fn access(&mut self, regime: Regime, va: u64, access: Access) -> Result<u64, Fault> {
            let asid = self.tlb.space(Stage::S).asid;
            let fake = &self.fake;
            let m = self.tlb.translate(regime, va, access, Mxr::default(), || {
                fake.walk(asid, regime, va, access)
                    .map(|t| Leaf::one_stage(&t))
            })?;
            let host = self.ram.as_mut_ptr();
            self.tlb.fill_l1(regime, va, &m, host, Perms::RWX);
            Ok(m.paddr)
        }

        fn hits(&self, regime: Regime, va: u64) -> bool {
            self.tlb.probe(regime, va, 8, Access::Read).is_some()
        }

        fn walks(&self) -> u64 {
            self.tlb.stats().walks
        }
    }

    #[test]
    fn l1_probe_checks_tag_permission_and_alignment() {
        let mut rig = Rig::new(vec![(
            1,
            0x4000_0000,
            12,
            0x8000_0000,
            pte::R | pte::A,
            false,
        )]);
        rig.access(Regime::S, 0x4000_0010, Access::Read).unwrap();
        let host = rig.ram.as_mut_ptr();
        let t = &rig.tlb;
        assert_eq!(
            t.probe(Regime::S, 0x4000_0ff8, 8, Access::Read),
            Some(host.wrapping_add(0xff8))
        );
        assert_eq!(
            t.probe(Regime::S, 0x4000_0003, 1, Access::Read),
            Some(host.wrapping_add(3))
        );
        assert_eq!(
            t.probe(Regime::S, 0x4000_0004, 8, Access::Read),
            None,
            "misaligned"
        );
        assert_eq!(
            t.probe(Regime::S, 0x4000_0002, 2, Access::Read),
            Some(host.wrapping_add(2))
        );
        assert_eq!(
            t.probe(Regime::S, 0x4000_0008, 8, Access::Write),
            None,
            "not writable"
        );
        assert_eq!(
            t.probe(Regime::S, 0x4000_0008, 8, Access::Exec),
            None,
            "not executable"
        );
        // Same L1 index, other page.
        assert_eq!(t.probe(Regime::S, 0x4010_0008, 8, Access::Read), None);
        // Another regime has its own table.
        assert_eq!(t.probe(Regime::U, 0x4000_0008, 8, Access::Read), None);
        assert_eq!(t.probe(Regime::SSum, 0x4000_0008, 8, Access::Read), None);
        // An invalid tag matches no address, even all ones.
        assert_eq!(t.probe(Regime::M, !7, 8, Access::Read), None);
        assert_eq!(t.probe(Regime::M, u64::MAX, 1, Access::Read), None);
    }

    #[test]
    fn global_entries_pass_to_a_new_address_space_and_others_do_not() {
        let mut rig = Rig::new(vec![
            (1, 0x1000, 12, 0x8000_0000, RWXAD, true),
            (1, 0x2000, 12, 0x8000_1000, RWXAD, false),
            (
                1,
                0x4000_0000,
                21,
                0x8020_0000,
                pte::R | pte::X | pte::A,
                true,
            ),
        ]);
        for va in [0x1000, 0x2000, 0x4000_3000] {
            rig.access(Regime::S, va, Access::Read).unwrap();
        }
        rig.asid(2);
        assert!(!rig.hits(Regime::S, 0x1000), "a new space starts empty");
        assert!(rig.tlb.share_global(Regime::S, 0x1000, Access::Read));
        assert!(rig.hits(Regime::S, 0x1000));
        assert!(
            !rig.tlb.share_global(Regime::S, 0x2000, Access::Read),
            "not global"
        );
        // Only what the entry grants, only in its own regime.
        assert!(!rig.tlb.share_global(Regime::S, 0x4000_3000, Access::Write));
        assert!(!rig
            .tlb
            .share_global(Regime::SSum, 0x4000_3000, Access::Read));
        assert!(rig.tlb.share_global(Regime::S, 0x4000_3000, Access::Exec));
        assert_eq!(rig.tlb.stats().l1_shared, 2);
        // The copy of a superpage entry goes with a flush of another page of it.
        rig.tlb.sfence_vma(Some(0x4010_0000), None);
        assert!(rig
            .tlb
            .probe(Regime::S, 0x4000_3000, 4, Access::Exec)
            .is_none());
        // A flush of the page drops the copy and the original alike.
        rig.tlb.sfence_vma(Some(0x1000), None);
        assert!(!rig.hits(Regime::S, 0x1000));
        rig.asid(1);
        assert!(!rig.hits(Regime::S, 0x1000));
        assert!(!rig.tlb.share_global(Regime::S, 0x1000, Access::Read));
    }

    #[test]
    fn pmp_allow_limits_l1_permissions() {
        let mut tlb = Tlb::new();
        let mut buf = [0u8; 16];
        let m = Mapping::identity(0x8000_0000);
        tlb.fill_l1(Regime::M, 0x8000_0000, &m, buf.as_mut_ptr(), Perms::RX);
        assert!(tlb.probe(Regime::M, 0x8000_0000, 4, Access::Exec).is_some());
        assert!(tlb
            .probe(Regime::M, 0x8000_0000, 4, Access::Write)
            .is_none());
    }

    #[test]
    fn sfence_all_drops_every_s_stage_entry_but_not_m() {
        let mut rig = Rig::new(vec![
            (1, 0x1000, 12, 0x8000_0000, RWXAD, false),
            (1, 0x2000, 12, 0x8000_1000, RWXAD, true),
        ]);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        rig.access(Regime::U, 0x2000, Access::Read).unwrap_err(); // not a U page
        rig.access(Regime::S, 0x2000, Access::Read).unwrap();
        let mut buf = [0u8; 8];
        let m = Mapping::identity(0x9000);
        rig.tlb
            .fill_l1(Regime::M, 0x9000, &m, buf.as_mut_ptr(), Perms::RWX);
        assert_eq!(rig.walks(), 3);
        rig.tlb.sfence_vma(None, None);
        assert!(!rig.hits(Regime::S, 0x1000));
        assert!(!rig.hits(Regime::S, 0x2000));
        assert!(rig.hits(Regime::M, 0x9000), "M-mode is not translated");
        assert_eq!(rig.tlb.l2_entries(Stage::S), 0);
        rig.access(Regime::S, 0x2000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 4);
    }

    #[test]
    fn sfence_asid_keeps_global_entries_and_other_asids() {
        let mut rig = Rig::new(vec![
            (1, 0x1000, 12, 0x8000_0000, RWXAD, false),
            (1, 0x2000, 12, 0x8000_1000, RWXAD, true),
            (2, 0x3000, 12, 0x8000_2000, RWXAD, false),
        ]);
        rig.asid(2);
        rig.access(Regime::S, 0x3000, Access::Read).unwrap();
        rig.asid(1);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        rig.access(Regime::S, 0x2000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 3);
        rig.tlb.sfence_vma(None, Some(1));
        assert!(
            !rig.hits(Regime::S, 0x1000),
            "non-global of ASID 1 gone from L1"
        );
        assert!(rig.hits(Regime::S, 0x2000), "global stays in L1");
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 4, "ASID 1 entry gone from L2");
        rig.asid(2);
        rig.access(Regime::S, 0x3000, Access::Read).unwrap();
        rig.access(Regime::S, 0x2000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 4, "ASID 2 and the global entry stay in L2");
    }

    #[test]
    fn sfence_vaddr_drops_that_page_in_every_asid_including_global() {
        let mut rig = Rig::new(vec![
            (1, 0x1000, 12, 0x8000_0000, RWXAD, false),
            (2, 0x1000, 12, 0x8000_5000, RWXAD, false),
            (1, 0x2000, 12, 0x8000_1000, RWXAD, true),
            (1, 0x3000, 12, 0x8000_2000, RWXAD, false),
        ]);
        rig.asid(2);
        assert_eq!(rig.access(Regime::S, 0x1008, Access::Read), Ok(0x8000_5008));
        rig.asid(1);
        assert_eq!(rig.access(Regime::S, 0x1008, Access::Read), Ok(0x8000_0008));
        rig.access(Regime::S, 0x2000, Access::Read).unwrap();
        rig.access(Regime::S, 0x3000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 4);
        rig.tlb.sfence_vma(Some(0x1abc), None);
        rig.tlb.sfence_vma(Some(0x2000), None);
        assert!(!rig.hits(Regime::S, 0x1000));
        assert!(!rig.hits(Regime::S, 0x2000), "global entries go too");
        assert!(rig.hits(Regime::S, 0x3000));
        rig.access(Regime::S, 0x3000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 4);
        rig.asid(2);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 5, "the ASID 2 translation went too");
    }

    #[test]
    fn sfence_vaddr_asid_drops_only_that_asids_non_global_entry() {
        let mut rig = Rig::new(vec![
            (1, 0x1000, 12, 0x8000_0000, RWXAD, false),
            (2, 0x1000, 12, 0x8000_5000, RWXAD, false),
            (1, 0x2000, 12, 0x8000_1000, RWXAD, true),
        ]);
        rig.asid(2);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        rig.asid(1);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        rig.access(Regime::S, 0x2000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 3);
        rig.tlb.sfence_vma(Some(0x2000), Some(1));
        assert!(rig.hits(Regime::S, 0x2000), "global survives an ASID flush");
        rig.tlb.sfence_vma(Some(0x1000), Some(2));
        assert!(
            rig.hits(Regime::S, 0x1000),
            "ASID 1 survives a flush of ASID 2"
        );
        rig.tlb.flush_l1();
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        rig.access(Regime::S, 0x2000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 3, "L2 kept ASID 1 and the global entry");
        rig.asid(2);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 4, "ASID 2's entry went");
        rig.asid(1);
        rig.tlb.sfence_vma(Some(0x1000), Some(1));
        assert!(!rig.hits(Regime::S, 0x1000));
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 5);
        rig.asid(2);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert_eq!(
            rig.walks(),
            5,
            "ASID 2's new entry survived the flush of ASID 1"
        );
    }

    #[test]
    fn sfence_vaddr_inside_a_superpage_drops_the_whole_superpage() {
        let mut rig = Rig::new(vec![
            (1, 0x4020_0000, 21, 0x8040_0000, RWXAD, false),
            (1, 0x4000_0000, 12, 0x8000_0000, RWXAD, false),
        ]);
        // L1 entries for two 4 KiB pieces of the 2 MiB page and for an unrelated page.
        assert_eq!(
            rig.access(Regime::S, 0x4020_1000, Access::Read),
            Ok(0x8040_1000)
        );
        assert_eq!(
            rig.access(Regime::U, 0x4020_5000, Access::Read),
            Err(Fault::Page)
        );
        assert_eq!(
            rig.access(Regime::S, 0x4020_5000, Access::Read),
            Ok(0x8040_5000)
        );
        rig.access(Regime::S, 0x4000_0000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 3, "the second piece came from L2");
        // Flush an address in the superpage that neither L1 entry indexes.
        rig.tlb.sfence_vma(Some(0x403f_f008), None);
        assert!(!rig.hits(Regime::S, 0x4020_1000));
        assert!(!rig.hits(Regime::S, 0x4020_5000));
        assert!(rig.hits(Regime::S, 0x4000_0000));
        rig.access(Regime::S, 0x4020_1000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 4, "the L2 superpage entry went too");
    }

    #[test]
    fn satp_switch_flushes_l1_and_refills_from_l2_without_walking() {
        let mut rig = Rig::new(vec![
            (1, 0x1000, 12, 0x8000_0000, RWXAD, false),
            (2, 0x1000, 12, 0x8000_5000, RWXAD, false),
        ]);
        assert_eq!(rig.access(Regime::S, 0x1000, Access::Read), Ok(0x8000_0000));
        rig.asid(2);
        assert!(!rig.hits(Regime::S, 0x1000), "satp write drops S-stage L1");
        assert_eq!(rig.access(Regime::S, 0x1000, Access::Read), Ok(0x8000_5000));
        rig.asid(1);
        assert_eq!(rig.access(Regime::S, 0x1000, Access::Read), Ok(0x8000_0000));
        rig.asid(2);
        assert_eq!(rig.access(Regime::S, 0x1000, Access::Read), Ok(0x8000_5000));
        assert_eq!(rig.walks(), 2);
        assert_eq!(rig.tlb.stats().l2_hits, 2);
        // A different mode with the same ASID does not reuse the entries.
        rig.tlb.set_space(
            Stage::S,
            Space {
                mode: Mode::Sv48,
                ..SV39
            },
        );
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 3);
    }

    #[test]
    fn regimes_derive_their_own_permissions_from_l2() {
        let mut rig = Rig::new(vec![(1, 0x1000, 12, 0x8000_0000, RWXAD | pte::U, false)]);
        rig.access(Regime::U, 0x1000, Access::Exec).unwrap();
        // S without SUM may not touch the U page even though L2 has it.
        assert_eq!(
            rig.access(Regime::S, 0x1000, Access::Read),
            Err(Fault::Page)
        );
        assert_eq!(rig.walks(), 2);
        rig.access(Regime::SSum, 0x1000, Access::Write).unwrap();
        assert_eq!(rig.walks(), 2, "SSum served from L2");
        assert!(rig
            .tlb
            .probe(Regime::SSum, 0x1000, 4, Access::Exec)
            .is_none());
        assert!(rig.tlb.probe(Regime::U, 0x1000, 4, Access::Exec).is_some());
        let l = rig.tlb.lookup(Regime::S, 0x1000, Mxr::default()).unwrap();
        assert_eq!(l.perms, Perms::NONE);
    }

    #[test]
    fn store_to_a_clean_page_walks_again() {
        let mut rig = Rig::new(vec![(
            1,
            0x1000,
            12,
            0x8000_0000,
            pte::R | pte::W | pte::A,
            false,
        )]);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert!(rig.tlb.probe(Regime::S, 0x1000, 8, Access::Write).is_none());
        // The fake walker hands out the same clean PTE; the point is that L2 did not
        // answer the store.
        rig.access(Regime::S, 0x1000, Access::Write).unwrap();
        assert_eq!(rig.walks(), 2);
    }

    #[test]
    fn l1_entries_of_an_address_space_survive_switching_away_and_back() {
        let mut rig = Rig::new(vec![
            (1, 0x1000, 12, 0x8000_1000, RWXAD, false),
            (2, 0x1000, 12, 0x8000_2000, RWXAD, false),
            (3, 0x1000, 12, 0x8000_3000, RWXAD, false),
        ]);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        rig.asid(2);
        assert!(!rig.hits(Regime::S, 0x1000), "ASID 2 has its own L1 tables");
        assert_eq!(rig.access(Regime::S, 0x1000, Access::Read), Ok(0x8000_2000));
        rig.asid(1);
        assert!(rig.hits(Regime::S, 0x1000), "ASID 1's entry is still there");
        // A fence for ASID 1 issued while ASID 2 is current reaches ASID 1's tables.
        rig.asid(2);
        rig.tlb.sfence_vma(None, Some(1));
        assert!(rig.hits(Regime::S, 0x1000), "ASID 2's entry survives");
        rig.asid(1);
        assert!(!rig.hits(Regime::S, 0x1000));
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        // Another root under the same ASID starts from empty tables.
        rig.tlb.set_root(Stage::S, (0x1234, 0));
        assert!(!rig.hits(Regime::S, 0x1000));
        // More spaces than slots: the oldest slot is reused and starts empty.
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        for asid in [2, 3, 4, 5] {
            rig.asid(asid);
        }
        rig.asid(1);
        assert!(!rig.hits(Regime::S, 0x1000));
    }

    #[test]
    fn flush_l1_keeps_l2_and_flush_all_drops_both() {
        let mut rig = Rig::new(vec![(1, 0x1000, 12, 0x8000_0000, RWXAD, false)]);
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        rig.tlb.flush_l1();
        assert!(!rig.hits(Regime::S, 0x1000));
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 1);
        rig.tlb.flush_all();
        assert!(!rig.hits(Regime::S, 0x1000));
        rig.access(Regime::S, 0x1000, Access::Read).unwrap();
        assert_eq!(rig.walks(), 2);
    }

    #[test]
    fn code_pages_lose_l1_write_permission_only() {
        let mut rig = Rig::new(vec![
            (1, 0x1000, 12, 0x8000_0000, RWXAD, false),
            (1, 0x7000, 12, 0x8000_0000, RWXAD, false), // an alias of the same frame
            (1, 0x2000, 12, 0x8000_1000, RWXAD, false),
        ]);
        for va in [0x1000, 0x7000, 0x2000] {
            rig.access(Regime::S, va, Access::Write).unwrap();
        }
        rig.tlb.protect_code_page(0x8000_0abc);
        for va in [0x1000, 0x7000] {
            assert!(rig.tlb.probe(Regime::S, va, 8, Access::Write).is_none());
            assert!(rig.tlb.probe(Regime::S, va, 8, Access::Read).is_some());
            assert!(rig.tlb.probe(Regime::S, va, 4, Access::Exec).is_some());
        }
        assert!(rig.tlb.probe(Regime::S, 0x2000, 8, Access::Write).is_some());
    }

    #[test]
    fn bare_and_m_mode_are_identity_without_walks() {
        let mut tlb = Tlb::new();
        let m = tlb
            .translate(
                Regime::S,
                0x8000_1234,
                Access::Write,
                Mxr::default(),
                || Err(Fault::Page),
            )
            .unwrap();
        assert_eq!(m, Mapping::identity(0x8000_1234));
        tlb.set_space(Stage::S, SV39);
        let m = tlb
            .translate(Regime::M, 0x8000_1234, Access::Exec, Mxr::default(), || {
                Err(Fault::Page)
            })
            .unwrap();
        assert_eq!(m.paddr, 0x8000_1234);
        assert_eq!(
            tlb.translate(Regime::U, 0x1234, Access::Read, Mxr::default(), || {
                Err(Fault::Page)
            }),
            Err(Fault::Page)
        );
        assert_eq!(tlb.stats().walks, 1);
    }

    #[test]
    fn hfence_flushes_only_their_stage_and_vmid() {
        let mut tlb = Tlb::new();
        let t = Leaf::one_stage(&Translation {
            paddr: 0x8000_0000,
            page_shift: 12,
            perms: Perms::RWX,
            global: false,
            pte: RWXAD | pte::V,
            pte_addr: Some(0),
            pbmt: crate::hart::mmu::Pbmt::Pma,
        });
        tlb.set_space(Stage::S, SV39);
        tlb.insert(Stage::S, 0x1000, &t);
        for vmid in [1, 2] {
            tlb.set_space(Stage::VS, Space { vmid, ..SV39 });
            tlb.insert(Stage::VS, 0x1000, &t);
            tlb.insert(Stage::VS, 0x2000, &t);
            tlb.set_space(
                Stage::G,
                Space {
                    mode: Mode::Sv39x4,
                    asid: 0,
                    vmid,
                },
            );
            tlb.insert(Stage::G, 0x8000_0000, &t);
        }
        tlb.hfence_vvma(1, Some(0x1000), None);
        assert_eq!(tlb.l2_entries(Stage::VS), 3);
        tlb.hfence_gvma(Some(2), None);
        assert_eq!(tlb.l2_entries(Stage::VS), 1);
        assert_eq!(tlb.l2_entries(Stage::G), 1);
        assert_eq!(tlb.l2_entries(Stage::S), 1);
        tlb.sfence_vma(None, None);
        assert_eq!(tlb.l2_entries(Stage::S), 0);
        assert_eq!(
            tlb.l2_entries(Stage::VS),
            1,
            "sfence with V=0 leaves VS alone"
        );
    }

    /// A leaf for a guest (VS-stage) entry at `pa`, global or not.
    fn guest_leaf(pa: u64, global: bool) -> Leaf {
        Leaf::one_stage(&Translation {
            paddr: pa,
            page_shift: 12,
            perms: Perms::RWX,
            global,
            pte: RWXAD | pte::V,
            pte_addr: Some(0),
            pbmt: crate::hart::mmu::Pbmt::Pma,
        })
    }

    fn guest_space(vmid: u16, asid: u16) -> Space {
        Space {
            mode: Mode::Sv39,
            asid,
            vmid,
        }
    }

    /// Whether L2 holds a translation of `va` for guest address space (`vmid`, `asid`).
    fn guest_has(tlb: &mut Tlb, vmid: u16, asid: u16, va: u64) -> bool {
        tlb.set_space(Stage::VS, guest_space(vmid, asid));
        tlb.lookup(Regime::VS, va, Mxr::default()).is_some()
    }

    #[test]
    fn hfence_vvma_by_address_and_asid_stays_within_its_vmid() {
        // H chapter, "Hypervisor Memory-Management Fence Instructions": HFENCE.VVMA
        // is SFENCE.VMA for the VS stage of one virtual machine.
        let mut tlb = Tlb::new();
        for (vmid, asid, va, global) in [
            (1, 1, 0x1000, false),
            (1, 1, 0x2000, false),
            (1, 1, 0x3000, true),
            (1, 2, 0x1000, false),
            (2, 1, 0x1000, false),
            (2, 1, 0x2000, false),
        ] {
            tlb.set_space(Stage::VS, guest_space(vmid, asid));
            tlb.insert(Stage::VS, va, &guest_leaf(0x8000_0000 + va, global));
        }
        // By address: that page in every ASID of VMID 1, and nothing of VMID 2.
        tlb.hfence_vvma(1, Some(0x1abc), None);
        assert!(!guest_has(&mut tlb, 1, 1, 0x1000));
        assert!(!guest_has(&mut tlb, 1, 2, 0x1000));
        assert!(guest_has(&mut tlb, 1, 1, 0x2000));
        assert!(guest_has(&mut tlb, 2, 1, 0x1000));
        // By ASID: its non-global entries; the global one survives.
        tlb.hfence_vvma(1, None, Some(1));
        assert!(!guest_has(&mut tlb, 1, 1, 0x2000));
        assert!(guest_has(&mut tlb, 1, 1, 0x3000));
        assert!(guest_has(&mut tlb, 2, 1, 0x2000), "VMID 2's ASID 1 stays");
        tlb.hfence_vvma(1, Some(0x3000), Some(1));
        assert!(
            guest_has(&mut tlb, 1, 1, 0x3000),
            "global survives an ASID fence"
        );
        // Everything of VMID 1, global included; VMID 2 and the HS stage stay.
        tlb.set_space(Stage::S, SV39);
        tlb.insert(Stage::S, 0x1000, &guest_leaf(0x8000_0000, false));
        tlb.hfence_vvma(1, None, None);
        assert!(!guest_has(&mut tlb, 1, 1, 0x3000));
        assert!(guest_has(&mut tlb, 2, 1, 0x1000));
        assert!(tlb.lookup(Regime::S, 0x1000, Mxr::default()).is_some());
    }

    #[test]
    fn hfence_gvma_drops_the_guest_translations_of_its_vmid_in_both_levels() {
        // VS-stage entries hold whole two-stage translations, so a G-stage fence by
        // guest physical address must drop every one of the VMID (H chapter, note on
        // HFENCE.GVMA); other VMIDs and the HS stage keep theirs, in L1 as in L2.
        let mut tlb = Tlb::new();
        let mut host = vec![0u8; 0x1000];
        let fill = |tlb: &mut Tlb, host: &mut [u8], vmid: u16, va: u64| {
            tlb.set_space(Stage::VS, guest_space(vmid, 1));
            let leaf = guest_leaf(0x8000_0000 + va, false);
            tlb.insert(Stage::VS, va, &leaf);
            let m = tlb.lookup(Regime::VS, va, Mxr::default()).unwrap();
            tlb.fill_l1(Regime::VS, va, &m, host.as_mut_ptr(), Perms::RWX);
        };
        for (vmid, va) in [(1, 0x1000), (1, 0x7000), (2, 0x1000)] {
            fill(&mut tlb, &mut host, vmid, va);
        }
        tlb.set_space(Stage::S, SV39);
        tlb.insert(Stage::S, 0x1000, &guest_leaf(0x8000_0000, false));
        tlb.set_space(Stage::VS, guest_space(1, 1));
        assert!(tlb.probe(Regime::VS, 0x7000, 8, Access::Read).is_some());
        tlb.hfence_gvma(Some(1), Some(0x8000_1000));
        assert!(tlb.probe(Regime::VS, 0x7000, 8, Access::Read).is_none());
        assert!(!guest_has(&mut tlb, 1, 1, 0x1000));
        assert!(!guest_has(&mut tlb, 1, 1, 0x7000));
        tlb.set_space(Stage::VS, guest_space(2, 1));
        assert!(
            tlb.probe(Regime::VS, 0x1000, 8, Access::Read).is_some(),
            "VMID 2's L1 entry stays"
        );
        assert!(guest_has(&mut tlb, 2, 1, 0x1000));
        assert!(tlb.lookup(Regime::S, 0x1000, Mxr::default()).is_some());
        // Without a VMID operand, every guest's.
        tlb.hfence_gvma(None, Some(0x8000_1000));
        assert!(!guest_has(&mut tlb, 2, 1, 0x1000));
        assert!(tlb.lookup(Regime::S, 0x1000, Mxr::default()).is_some());
    }

    #[test]
    fn l2_under_pressure_never_returns_a_wrong_translation() {
        // 1500 consecutive pages fit in the 2048 slots (the set hash spreads them); 3000
        // do not, and evictions must never produce a wrong translation.
        for (pages, fits) in [(1500u64, true), (3000, false)] {
            let maps = (0..pages)
                .map(|i| (1, i << 12, 12, 0x8000_0000 + (i << 12), RWXAD, false))
                .collect();
            let mut rig = Rig::new(maps);
            for round in 0..2 {
                rig.tlb.flush_l1();
                for i in 0..pages {
                    let va = (i << 12) | 0x18;
                    assert_eq!(
                        rig.access(Regime::S, va, Access::Read),
                        Ok(0x8000_0000 + va),
                        "{pages} pages, round {round}"
                    );
                }
            }
            assert_eq!(
                rig.walks() == pages,
                fits,
                "{pages} pages: {} walks",
                rig.walks()
            );
        }
    }

    /// With real page tables in guest RAM: a satp switch back to an ASID seen before is
    /// served from L2 without walking, and a remap behind an sfence.vma is seen.
    #[test]
    fn real_walks_through_the_tlb() {
        let ram = GuestRam::new(0x8000_0000, 0x10_0000).unwrap();
        // Two address spaces, roots at +0x1000 and +0x4000, each mapping VA 0x1000.
        let build = |root: u64, target: u64| {
            let (l1, l0) = (root + 0x1000, root + 0x2000);
            ram.write(root, 8, ((l1 >> 12) << 10) | pte::V).unwrap();
            ram.write(l1, 8, ((l0 >> 12) << 10) | pte::V).unwrap();
            ram.write(l0 + 8, 8, ((target >> 12) << 10) | RWXAD | pte::V)
                .unwrap();
            l0 + 8
        };
        let leaf_a = build(0x8000_1000, 0x8008_0000);
        build(0x8000_4000, 0x8009_0000);
        let mut tlb = Tlb::new();
        let ptes = RamPtes::new(&ram, None);
        let go = |tlb: &mut Tlb, root: u64| {
            let req = WalkRequest {
                vaddr: 0x1010,
                access: Access::Read,
                mode: Mode::Sv39,
                root_ppn: root >> 12,
                privilege: Priv::S,
                sum: false,
                mxr: false,
                adue: true,
                pbmte: true,
                napot: true,
            };
            tlb.translate(Regime::S, 0x1010, Access::Read, Mxr::default(), || {
                walk(&req, &ptes).map(|t| Leaf::one_stage(&t))
            })
            .map(|m| m.paddr)
        };
        tlb.set_space(Stage::S, Space { asid: 1, ..SV39 });
        assert_eq!(go(&mut tlb, 0x8000_1000), Ok(0x8008_0010));
        tlb.set_space(Stage::S, Space { asid: 2, ..SV39 });
        assert_eq!(go(&mut tlb, 0x8000_4000), Ok(0x8009_0010));
        tlb.set_space(Stage::S, Space { asid: 1, ..SV39 });
        assert_eq!(go(&mut tlb, 0x8000_1000), Ok(0x8008_0010));
        assert_eq!(tlb.stats().walks, 2);
        // Remap ASID 1's page; the cached translation stays until the fence.
        ram.write(leaf_a, 8, ((0x800a_0000u64 >> 12) << 10) | RWXAD | pte::V)
            .unwrap();
        assert_eq!(go(&mut tlb, 0x8000_1000), Ok(0x8008_0010));
        tlb.sfence_vma(Some(0x1000), Some(1));
        assert_eq!(go(&mut tlb, 0x8000_1000), Ok(0x800a_0010));
        assert_eq!(tlb.stats().walks, 3);
    }
}
