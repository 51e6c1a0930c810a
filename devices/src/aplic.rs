//! Advanced Platform-Level Interrupt Controller (RISC-V AIA specification 1.0, chapter
//! "Advanced Platform-Level Interrupt Controller (APLIC)"), with the domain hierarchy of
//! QEMU's virt board: the root domain at machine level and one supervisor-level child
//! (child index 0), both serving the same harts with the same hart index numbers.
//!
//! Each domain has its own control region (the board maps two windows, QEMU's virt at
//! [`VIRT_M_BASE`] and [`VIRT_S_BASE`]); both reach one shared state.
//!
//! | offset                | register                                                |
//! |-----------------------|---------------------------------------------------------|
//! | 0x0000                | `domaincfg`                                             |
//! | 0x0004 + 4 * (i - 1)  | `sourcecfg[i]`                                          |
//! | 0x1bc0 .. 0x1bcc      | `mmsiaddrcfg(h)`, `smsiaddrcfg(h)` (root domain only)   |
//! | 0x1c00 + 4 * k        | `setip[k]`; 0x1cdc `setipnum`                           |
//! | 0x1d00 + 4 * k        | `in_clrip[k]`; 0x1ddc `clripnum`                        |
//! | 0x1e00 + 4 * k        | `setie[k]`; 0x1edc `setienum`                           |
//! | 0x1f00 + 4 * k        | `clrie[k]`; 0x1fdc `clrienum`                           |
//! | 0x2000, 0x2004        | `setipnum_le`, `setipnum_be`                            |
//! | 0x3000                | `genmsi`                                                |
//! | 0x3004 + 4 * (i - 1)  | `target[i]`                                             |
//! | 0x4000 + 32 * h       | IDC of hart index h: `idelivery`, `iforce` (+4),        |
//! |                       | `ithreshold` (+8), `topi` (+0x18), `claimi` (+0x1c)     |
//!
//! Registers are 32 bits wide; other access sizes and misaligned accesses read 0 and
//! write nothing (the spec allows ignoring them when no access fault can be raised;
//! QEMU accepts only aligned 4-byte accesses). Reserved bytes read 0.
//!
//! Where the spec leaves a choice, Rivet takes QEMU's (`hw/intc/riscv_aplic.c`): 96
//! sources and 3 priority bits on the virt board, little-endian only (`domaincfg.BE`
//! reads 0), an 11-bit EIID, a 6-bit guest index in the supervisor domain, hart index
//! numbers equal to the index of the hart in the list given to [`Aplic::new`], IDC
//! structures only for those harts, a `sourcecfg` write that finds the rectified input
//! high sets the pending bit, a `target` register that keeps its value while its source
//! is inactive (meanwhile it reads 0 and ignores writes), extempore MSIs sent at once
//! (`genmsi` Busy always reads 0), and MSI addresses whose guest index is cut to LHXS
//! bits.
//!
//! Where QEMU departs from the spec, Rivet follows the spec: a level-sensitive source in
//! direct delivery mode is pending exactly while its rectified input is high (QEMU keeps
//! it pending after the line drops until a claim); a source not delegated to the child
//! domain is unimplemented there (its registers read 0), and the child's configuration
//! of a source starts from zero whenever the root delegates it or takes it back;
//! reserved bits read 0 in `target` and `genmsi`; the reserved source modes 2 and 3
//! are WARL-mapped to Inactive.
//!
//! Lock order: APLIC state, then the MSI sink's own locks (an IMSIC), then the hart
//! signal words. MSIs are sent with the APLIC state held, so that they leave in order
//! (AIA "Synchronizing interactions between a hart and the APLIC"); an MSI sink must
//! never call back into the APLIC.

use crate::bus::MmioDevice;
use crate::irq::{HartSignals, IrqLine, MsiSink, MEIP, SEIP};
use std::sync::{Arc, Mutex, MutexGuard};

pub const DOMAINCFG: u64 = 0x0000;
/// `sourcecfg[i]` is at `SOURCECFG_BASE + 4 * (i - 1)`.
pub const SOURCECFG_BASE: u64 = 0x0004;
pub const MMSIADDRCFG: u64 = 0x1bc0;
pub const MMSIADDRCFGH: u64 = 0x1bc4;
pub const SMSIADDRCFG: u64 = 0x1bc8;
pub const SMSIADDRCFGH: u64 = 0x1bcc;
pub const SETIP_BASE: u64 = 0x1c00;
pub const SETIPNUM: u64 = 0x1cdc;
pub const IN_CLRIP_BASE: u64 = 0x1d00;
pub const CLRIPNUM: u64 = 0x1ddc;
pub const SETIE_BASE: u64 = 0x1e00;
pub const SETIENUM: u64 = 0x1edc;
pub const CLRIE_BASE: u64 = 0x1f00;
pub const CLRIENUM: u64 = 0x1fdc;
pub const SETIPNUM_LE: u64 = 0x2000;
pub const SETIPNUM_BE: u64 = 0x2004;
pub const GENMSI: u64 = 0x3000;
/// `target[i]` is at `TARGET_BASE + 4 * (i - 1)`.
pub const TARGET_BASE: u64 = 0x3004;
pub const IDC_BASE: u64 = 0x4000;
pub const IDC_SIZE: u64 = 32;
pub const IDELIVERY: u64 = 0x00;
pub const IFORCE: u64 = 0x04;
pub const ITHRESHOLD: u64 = 0x08;
pub const TOPI: u64 = 0x18;
pub const CLAIMI: u64 = 0x1c;

/// Most sources an APLIC has (spec: identities 1 to 1023).
pub const MAX_SOURCES: u32 = 1023;
/// Most harts a domain indexes (spec: hart index numbers 0 to 2^14 - 1).
pub const MAX_HARTS: usize = 1 << 14;

/// Sources on QEMU's virt board (`VIRT_IRQCHIP_NUM_SOURCES`): sources 1 to 96, the
/// device tree's `riscv,num-sources`. Unlike the PLIC's count, source 0 is not included.
pub const VIRT_NUM_SOURCES: u32 = 96;
/// IPRIOLEN on QEMU's virt board (`VIRT_IRQCHIP_NUM_PRIO_BITS`).
pub const VIRT_IPRIO_BITS: u32 = 3;
/// Where QEMU's virt board maps the machine-level (root) domain.
pub const VIRT_M_BASE: u64 = 0x0c00_0000;
/// Where QEMU's virt board maps the supervisor-level domain.
pub const VIRT_S_BASE: u64 = 0x0d00_0000;
/// The window QEMU's virt board maps for each domain, whatever its hart count
/// (`APLIC_SIZE(VIRT_CPUS_MAX)`, room for 512 harts).
pub const VIRT_WINDOW_SIZE: u64 = window_size(512);
/// The machine-level IMSIC interrupt files of QEMU's virt board: hart h at
/// `VIRT_IMSIC_M_BASE + h * 0x1000`.
pub const VIRT_IMSIC_M_BASE: u64 = 0x2400_0000;
/// The supervisor-level IMSIC files of QEMU's virt board: hart h's S file at
/// `VIRT_IMSIC_S_BASE + h * 2^ceil(log2(guests + 1)) * 0x1000`, its guest file g at
/// `+ g * 0x1000`.
pub const VIRT_IMSIC_S_BASE: u64 = 0x2800_0000;

/// The control region of a domain with IDC structures for `harts` harts, as QEMU sizes
/// it (`APLIC_SIZE`): 16 KiB of registers and the IDC array rounded up to 16 KiB.
pub const fn window_size(harts: usize) -> u64 {
    IDC_BASE + (IDC_SIZE * harts as u64).next_multiple_of(0x4000)
}

const DOMAINCFG_RO: u32 = 0x8000_0000;
const DOMAINCFG_IE: u32 = 1 << 8;
const DOMAINCFG_DM: u32 = 1 << 2;

const SOURCECFG_D: u32 = 1 << 10;
const SOURCECFG_CHILD: u32 = 0x3ff;
const SOURCECFG_SM: u32 = 0x7;

const MSIADDRCFGH_L: u32 = 1 << 31;
const MSIADDRCFGH_PPN: u32 = 0xfff;
const MMSIADDRCFGH_MASK: u32 =
    MSIADDRCFGH_L | 0x1f << 24 | 0x7 << 20 | 0x7 << 16 | 0xf << 12 | MSIADDRCFGH_PPN;
const SMSIADDRCFGH_MASK: u32 = 0x7 << 20 | MSIADDRCFGH_PPN;

const TARGET_HART_SHIFT: u32 = 18;
const TARGET_HART: u32 = 0x3fff << TARGET_HART_SHIFT;
const TARGET_GUEST_SHIFT: u32 = 12;
const TARGET_GUEST: u32 = 0x3f << TARGET_GUEST_SHIFT;
const TARGET_EIID: u32 = 0x7ff;

const TOPI_ID_SHIFT: u32 = 16;

const ROOT: usize = 0;
const CHILD: usize = 1;

/// One of the APLIC's two interrupt domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// The root domain: machine level, drives MEIP or sends MSIs to M-level files.
    Machine,
    /// The child domain: supervisor level, drives SEIP or sends MSIs to S-level and
    /// guest files.
    Supervisor,
}

impl Domain {
    fn index(self) -> usize {
        match self {
            Domain::Machine => ROOT,
            Domain::Supervisor => CHILD,
        }
    }
}

/// The delivery modes a domain implements (`domaincfg.DM` is WARL). QEMU's virt board
/// builds its APLIC for one mode: `aia=aplic` is [`Delivery::Direct`], `aia=aplic-imsic`
/// is [`Delivery::Msi`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// DM is read-only 0: interrupts are signalled on MEIP / SEIP through IDCs.
    Direct,
    /// DM is read-only 1: interrupts are forwarded as MSIs.
    Msi,
    /// DM is writable and starts at 0.
    Both,
}

/// Values of the root domain's MSI address registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsiAddrCfg {
    pub mmsiaddrcfg: u32,
    pub mmsiaddrcfgh: u32,
    pub smsiaddrcfg: u32,
    pub smsiaddrcfgh: u32,
}

/// The smallest `b` with `2^b >= count` (QEMU's `imsic_num_bits`).
fn index_bits(count: u64) -> u32 {
    count.max(1).next_power_of_two().trailing_zeros()
}

impl MsiAddrCfg {
    /// What OpenSBI programs from the device tree of a single-socket board whose
    /// M-level interrupt files start at `m_base`, one page per hart, and whose S-level
    /// files start at `s_base`, each hart's S file followed by its `guests` guest files
    /// and the group padded to a power of two: LHXW = ceil(log2(harts)), S-level LHXS =
    /// ceil(log2(guests + 1)), no hart groups, unlocked.
    pub fn for_imsics(m_base: u64, s_base: u64, harts: usize, guests: u32) -> Self {
        let lhxw = index_bits(harts as u64).min(0xf);
        let lhxs = index_bits(u64::from(guests) + 1).min(0x7);
        let (m_ppn, s_ppn) = (m_base >> 12, s_base >> 12);
        Self {
            mmsiaddrcfg: m_ppn as u32,
            mmsiaddrcfgh: (m_ppn >> 32) as u32 & MSIADDRCFGH_PPN | lhxw << 12,
            smsiaddrcfg: s_ppn as u32,
            smsiaddrcfgh: (s_ppn >> 32) as u32 & MSIADDRCFGH_PPN | lhxs << 20,
        }
    }

    /// [`MsiAddrCfg::for_imsics`] with the IMSIC layout of QEMU's virt board.
    pub fn virt(harts: usize, guests: u32) -> Self {
        Self::for_imsics(VIRT_IMSIC_M_BASE, VIRT_IMSIC_S_BASE, harts, guests)
    }

    /// The same values with `mmsiaddrcfgh.L` set: guest writes can no longer move them.
    pub const fn locked(mut self) -> Self {
        self.mmsiaddrcfgh |= MSIADDRCFGH_L;
        self
    }
}

/// How an APLIC is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AplicConfig {
    /// Sources `1..=num_sources` (1 to [`MAX_SOURCES`]; the device tree's
    /// `riscv,num-sources`).
    pub num_sources: u32,
    /// IPRIOLEN, the width of priority numbers and `ithreshold` (1 to 8).
    pub iprio_bits: u32,
    pub delivery: Delivery,
    /// What the root domain's MSI address registers hold at reset. `None` leaves them
    /// zero, as QEMU's virt board does under TCG, where firmware (OpenSBI) programs them
    /// from the device tree; `Some(MsiAddrCfg::virt(..))` starts from the values it
    /// writes, for software that expects them set. Ignored for [`Delivery::Direct`],
    /// whose APLIC does not implement the registers.
    pub msi_addr: Option<MsiAddrCfg>,
}

impl AplicConfig {
    /// The APLIC of QEMU's virt board (`-M virt,aia=aplic` for [`Delivery::Direct`],
    /// `aia=aplic-imsic` for [`Delivery::Msi`]).
    pub const fn virt(delivery: Delivery) -> Self {
        Self {
            num_sources: VIRT_NUM_SOURCES,
            iprio_bits: VIRT_IPRIO_BITS,
            delivery,
            msi_addr: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AplicError {
    #[error("An APLIC has 1 to {MAX_SOURCES} sources, not {0}")]
    Sources(u32),
    #[error("APLIC priority numbers are 1 to 8 bits wide, not {0}")]
    PriorityBits(u32),
    #[error("An APLIC domain serves at most {MAX_HARTS} harts, not {0}")]
    TooManyHarts(usize),
    #[error("APLIC source {id} does not exist (sources are 1 to {last})")]
    NoSource { id: u32, last: u32 },
    #[error("The saved APLIC state does not fit this APLIC: {0}")]
    StateShape(&'static str),
}

/// The state of one interrupt domain, as its registers show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainState {
    /// IE and DM (the read-only byte 0x80 is not kept).
    pub domaincfg: u32,
    /// `sourcecfg[i]` at index i; index 0 stays 0.
    pub sourcecfg: Vec<u32>,
    /// `target[i]` at index i, kept while the source is inactive.
    pub target: Vec<u32>,
    /// Pending and enable bits, source i at bit i % 32 of word i / 32.
    pub pending: Vec<u32>,
    pub enabled: Vec<u32>,
    /// Per IDC structure.
    pub idelivery: Vec<u32>,
    pub iforce: Vec<u32>,
    pub ithreshold: Vec<u32>,
    /// Hart index and EIID of the last extempore MSI.
    pub genmsi: u32,
}

/// Everything an APLIC holds: [`Aplic::save`] returns it, [`Aplic::restore`] takes it
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AplicState {
    /// The level of each source's input wire, source i at bit i % 32 of word i / 32.
    pub input: Vec<u32>,
    pub msi_addr: MsiAddrCfg,
    /// The root (machine-level) domain, then the supervisor-level one.
    pub domains: [DomainState; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Inactive,
    Detached,
    Edge1,
    Edge0,
    Level1,
    Level0,
}

impl Mode {
    /// The source mode `sourcecfg` selects; a delegated source is inactive here.
    fn of(cfg: u32) -> Mode {
        if cfg & SOURCECFG_D != 0 {
            return Mode::Inactive;
        }
        match cfg & SOURCECFG_SM {
            1 => Mode::Detached,
            4 => Mode::Edge1,
            5 => Mode::Edge0,
            6 => Mode::Level1,
            7 => Mode::Level0,
            _ => Mode::Inactive,
        }
    }

    fn is_level(self) -> bool {
        matches!(self, Mode::Level1 | Mode::Level0)
    }

    /// AIA "Source configurations": the wire XOR inversion for edge and level modes,
    /// zero for inactive and detached sources.
    fn rectify(self, wire: bool) -> bool {
        match self {
            Mode::Inactive | Mode::Detached => false,
            Mode::Edge1 | Mode::Level1 => wire,
            Mode::Edge0 | Mode::Level0 => !wire,
        }
    }
}

fn bit(set: &[u32], id: u32) -> bool {
    set.get((id / 32) as usize)
        .is_some_and(|w| w & (1 << (id % 32)) != 0)
}

fn set_bit(set: &mut [u32], id: u32, on: bool) {
    if let Some(w) = set.get_mut((id / 32) as usize) {
        if on {
            *w |= 1 << (id % 32);
        } else {
            *w &= !(1 << (id % 32));
        }
    }
}

/// The positions of the bits set in `word`, lowest first.
fn bits(mut word: u32) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        (word != 0).then(|| {
            let b = word.trailing_zeros();
            word &= word - 1;
            b
        })
    })
}

impl DomainState {
    fn msi(&self) -> bool {
        self.domaincfg & DOMAINCFG_DM != 0
    }

    fn ie(&self) -> bool {
        self.domaincfg & DOMAINCFG_IE != 0
    }

    fn mode(&self, id: u32) -> Mode {
        self.sourcecfg
            .get(id as usize)
            .map_or(Mode::Inactive, |&c| Mode::of(c))
    }

    fn target(&self, id: u32) -> u32 {
        self.target.get(id as usize).copied().unwrap_or(0)
    }

    fn forget(&mut self, id: u32) {
        set_bit(&mut self.pending, id, false);
        set_bit(&mut self.enabled, id, false);
    }
}

struct Inner {
    harts: Vec<Arc<HartSignals>>,
    msi: Arc<dyn MsiSink>,
    config: AplicConfig,
    /// Bit-set words covering sources 0..=num_sources.
    words: usize,
    st: Mutex<AplicState>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, AplicState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn iprio_mask(&self) -> u32 {
        (1 << self.config.iprio_bits) - 1
    }

    fn msi_capable(&self) -> bool {
        self.config.delivery != Delivery::Direct
    }

    fn source(&self, id: u32) -> bool {
        (1..=self.config.num_sources).contains(&id)
    }

    /// Whether source `id` exists in domain `d`: every source exists in the root; the
    /// child sees only those the root delegates to it (AIA "Interrupt domains").
    fn visible(&self, st: &AplicState, d: usize, id: u32) -> bool {
        self.source(id)
            && (d == ROOT || {
                let cfg = st.domains[ROOT].sourcecfg[id as usize];
                cfg & SOURCECFG_D != 0 && cfg & SOURCECFG_CHILD == 0
            })
    }

    fn active(&self, st: &AplicState, d: usize, id: u32) -> bool {
        self.visible(st, d, id) && st.domains[d].mode(id) != Mode::Inactive
    }

    /// The domain in which source `id` is active, if any.
    fn owner(&self, st: &AplicState, id: u32) -> Option<usize> {
        [ROOT, CHILD].into_iter().find(|&d| self.active(st, d, id))
    }

    fn initial(&self) -> AplicState {
        let n = self.config.num_sources as usize + 1;
        let dm = if self.config.delivery == Delivery::Msi {
            DOMAINCFG_DM
        } else {
            0
        };
        let domain = |d: usize| {
            let mut target = vec![self.legal_target(d, dm != 0, 0); n];
            target[0] = 0;
            DomainState {
                domaincfg: dm,
                sourcecfg: vec![0; n],
                target,
                pending: vec![0; self.words],
                enabled: vec![0; self.words],
                idelivery: vec![0; self.harts.len()],
                iforce: vec![0; self.harts.len()],
                ithreshold: vec![0; self.harts.len()],
                genmsi: 0,
            }
        };
        let msi_addr = match self.config.msi_addr {
            Some(cfg) if self.msi_capable() => MsiAddrCfg {
                mmsiaddrcfg: cfg.mmsiaddrcfg,
                mmsiaddrcfgh: cfg.mmsiaddrcfgh & MMSIADDRCFGH_MASK,
                smsiaddrcfg: cfg.smsiaddrcfg,
                smsiaddrcfgh: cfg.smsiaddrcfgh & SMSIADDRCFGH_MASK,
            },
            _ => MsiAddrCfg::default(),
        };
        AplicState {
            input: vec![0; self.words],
            msi_addr,
            domains: [domain(ROOT), domain(CHILD)],
        }
    }

    /// A `target` value as the register keeps it (AIA "Interrupt targets"): a 14-bit
    /// hart index, and in direct mode a nonzero IPRIO of IPRIOLEN bits (0 becomes 1),
    /// in MSI mode an 11-bit EIID and, at supervisor level only, a 6-bit guest index.
    fn legal_target(&self, d: usize, msi: bool, value: u32) -> u32 {
        let hart = value & TARGET_HART;
        if msi {
            let guest = if d == CHILD { value & TARGET_GUEST } else { 0 };
            hart | guest | value & TARGET_EIID
        } else {
            hart | (value & self.iprio_mask()).max(1)
        }
    }

    /// The MSI address for hart index `hart` and guest index `guest` of domain `d` (AIA
    /// "Addresses and data for outgoing MSIs"). A supervisor-level domain takes the
    /// base PPN and LHXS from `smsiaddrcfg(h)`, the other fields from `mmsiaddrcfgh`.
    fn msi_addr(&self, st: &AplicState, d: usize, hart: u32, guest: u32) -> u64 {
        let cfg = &st.msi_addr;
        let mh = cfg.mmsiaddrcfgh;
        let (lhxw, hhxw, hhxs) = ((mh >> 12) & 0xf, (mh >> 16) & 0x7, (mh >> 24) & 0x1f);
        let (lo, hi) = if d == ROOT {
            (cfg.mmsiaddrcfg, mh)
        } else {
            (cfg.smsiaddrcfg, cfg.smsiaddrcfgh)
        };
        let lhxs = (hi >> 20) & 0x7;
        let base = u64::from(hi & MSIADDRCFGH_PPN) << 32 | u64::from(lo);
        let mask = |bits: u32| (1u64 << bits) - 1;
        let group = (u64::from(hart) >> lhxw) & mask(hhxw);
        let index = u64::from(hart) & mask(lhxw);
        // As QEMU, a guest index too wide for LHXS does not spill into the hart bits.
        let ppn = base | group << (hhxs + 12) | index << lhxs | (u64::from(guest) & mask(lhxs));
        ppn << 12
    }

    fn send(&self, st: &AplicState, d: usize, hart: u32, guest: u32, eiid: u32) {
        let addr = self.msi_addr(st, d, hart, guest);
        self.msi.msi(addr, eiid);
    }

    /// AIA "Interrupt forwarding by MSIs": every pending and enabled source of an MSI
    /// mode domain whose IE is set leaves as an MSI, and its pending bit clears.
    fn forward(&self, st: &mut AplicState, d: usize) {
        let dom = &st.domains[d];
        if !dom.msi() || !dom.ie() {
            return;
        }
        for w in 0..self.words {
            let ready = st.domains[d].pending[w] & st.domains[d].enabled[w];
            for id in bits(ready).map(|b| w as u32 * 32 + b) {
                set_bit(&mut st.domains[d].pending, id, false);
                let t = st.domains[d].target(id);
                let guest = (t & TARGET_GUEST) >> TARGET_GUEST_SHIFT;
                self.send(st, d, t >> TARGET_HART_SHIFT, guest, t & TARGET_EIID);
            }
        }
    }

    /// `topi` of IDC `h` in domain `d` (AIA "Top interrupt"): the pending and enabled
    /// source aimed at hart index `h` with the smallest priority number below a nonzero
    /// threshold, the lowest identity among equals; its identity and priority.
    fn topi(&self, st: &AplicState, d: usize, h: usize) -> u32 {
        let dom = &st.domains[d];
        let Some(&threshold) = dom.ithreshold.get(h) else {
            return 0;
        };
        let mut best: Option<(u32, u32)> = None;
        for w in 0..self.words {
            let ready = dom.pending[w] & dom.enabled[w];
            for id in bits(ready).map(|b| w as u32 * 32 + b) {
                let t = dom.target(id);
                if (t >> TARGET_HART_SHIFT) as usize != h {
                    continue;
                }
                let prio = t & self.iprio_mask();
                if threshold != 0 && prio >= threshold {
                    continue;
                }
                if best.is_none_or(|(p, _)| prio < p) {
                    best = Some((prio, id));
                }
            }
        }
        best.map_or(0, |(prio, id)| id << TOPI_ID_SHIFT | prio)
    }

    /// AIA "Interrupt delivery and handling": in direct mode each IDC asserts its
    /// hart's external interrupt at the domain's level while IE and `idelivery` are set
    /// and `iforce` or `topi` is not zero.
    fn drive(&self, st: &AplicState, d: usize) {
        // An APLIC built for MSI delivery only has no IDCs: the harts' external
        // interrupt signals belong to their IMSICs, which it must not pull down.
        if self.config.delivery == Delivery::Msi {
            return;
        }
        let dom = &st.domains[d];
        let on = !dom.msi() && dom.ie();
        let mask = if d == ROOT { MEIP } else { SEIP };
        for (h, hart) in self.harts.iter().enumerate() {
            let level =
                on && dom.idelivery[h] != 0 && (dom.iforce[h] != 0 || self.topi(st, d, h) != 0);
            hart.set_level(mask, level);
        }
    }

    /// Re-evaluates both domains after any change.
    fn update(&self, st: &mut AplicState) {
        for d in [ROOT, CHILD] {
            self.forward(st, d);
            self.drive(st, d);
        }
    }

    fn set_input(&self, id: u32, high: bool) {
        let mut st = self.lock();
        let was = bit(&st.input, id);
        set_bit(&mut st.input, id, high);
        if was == high {
            return;
        }
        let Some(d) = self.owner(&st, id) else {
            return;
        };
        let dom = &mut st.domains[d];
        let mode = dom.mode(id);
        let (before, now) = (mode.rectify(was), mode.rectify(high));
        // AIA "Precise effects on interrupt-pending bits".
        match mode {
            Mode::Edge1 | Mode::Edge0 if !before && now => set_bit(&mut dom.pending, id, true),
            Mode::Level1 | Mode::Level0 if dom.msi() => {
                if now != before {
                    set_bit(&mut dom.pending, id, now);
                }
            }
            Mode::Level1 | Mode::Level0 => set_bit(&mut dom.pending, id, now),
            _ => return,
        }
        self.update(&mut st);
    }

    /// A write to `setip`/`setipnum` asks to set source `id`'s pending bit.
    fn request_pending(&self, st: &mut AplicState, d: usize, id: u32) {
        if !self.active(st, d, id) {
            return;
        }
        let wire = bit(&st.input, id);
        let dom = &mut st.domains[d];
        let mode = dom.mode(id);
        // A level source's pending bit follows its input in direct mode; in MSI mode a
        // write may set it only while the input is asserted.
        if mode.is_level() && (!dom.msi() || !mode.rectify(wire)) {
            return;
        }
        set_bit(&mut dom.pending, id, true);
    }

    /// A write to `in_clrip`/`clripnum` asks to clear source `id`'s pending bit.
    fn clear_pending(&self, st: &mut AplicState, d: usize, id: u32) {
        if !self.active(st, d, id) {
            return;
        }
        let dom = &mut st.domains[d];
        if dom.mode(id).is_level() && !dom.msi() {
            return;
        }
        set_bit(&mut dom.pending, id, false);
    }

    fn set_enabled(&self, st: &mut AplicState, d: usize, id: u32, on: bool) {
        if self.active(st, d, id) {
            set_bit(&mut st.domains[d].enabled, id, on);
        }
    }

    fn write_sourcecfg(&self, st: &mut AplicState, d: usize, id: u32, value: u32) {
        if !self.visible(st, d, id) {
            return;
        }
        let new = if value & SOURCECFG_D != 0 {
            // A leaf domain cannot delegate: the whole register becomes zero.
            if d == CHILD {
                0
            } else {
                SOURCECFG_D | value & SOURCECFG_CHILD
            }
        } else {
            match value & SOURCECFG_SM {
                2 | 3 => 0,
                sm => sm,
            }
        };
        let old = std::mem::replace(&mut st.domains[d].sourcecfg[id as usize], new);
        if d == ROOT {
            let to_child = |cfg: u32| cfg & SOURCECFG_D != 0 && cfg & SOURCECFG_CHILD == 0;
            if to_child(old) != to_child(new) {
                // The source appears in the child, or vanishes from it: either way its
                // configuration there starts from zero (AIA "Source configurations").
                let child = &mut st.domains[CHILD];
                child.sourcecfg[id as usize] = 0;
                child.forget(id);
            }
        }
        let wire = bit(&st.input, id);
        let dom = &mut st.domains[d];
        let mode = Mode::of(new);
        match mode {
            Mode::Inactive => dom.forget(id),
            // A level source's pending bit is its rectified input (in MSI mode it may
            // be set, as QEMU does, and must be clear while the input is low).
            _ if mode.is_level() => set_bit(&mut dom.pending, id, mode.rectify(wire)),
            _ if mode.rectify(wire) => set_bit(&mut dom.pending, id, true),
            _ => {}
        }
    }

    fn write_domaincfg(&self, st: &mut AplicState, d: usize, value: u32) {
        let dom = &st.domains[d];
        let dm = if self.config.delivery == Delivery::Both {
            value & DOMAINCFG_DM
        } else {
            dom.domaincfg & DOMAINCFG_DM
        };
        let changed = dm != dom.domaincfg & DOMAINCFG_DM;
        st.domains[d].domaincfg = value & DOMAINCFG_IE | dm;
        if changed {
            // The targets of a domain whose DM changes become UNSPECIFIED: they keep
            // their hart index, with priority 1 or EIID 0. A level source in direct
            // mode is pending exactly while its input is asserted.
            for id in 1..=self.config.num_sources {
                let hart = st.domains[d].target[id as usize] & TARGET_HART;
                st.domains[d].target[id as usize] = self.legal_target(d, dm != 0, hart);
                let mode = st.domains[d].mode(id);
                if dm == 0 && mode.is_level() && self.active(st, d, id) {
                    let asserted = mode.rectify(bit(&st.input, id));
                    set_bit(&mut st.domains[d].pending, id, asserted);
                }
            }
        }
    }

    fn write_msi_addr(&self, st: &mut AplicState, offset: u64, value: u32) {
        let cfg = &mut st.msi_addr;
        if cfg.mmsiaddrcfgh & MSIADDRCFGH_L != 0 {
            return;
        }
        match offset {
            MMSIADDRCFG => cfg.mmsiaddrcfg = value,
            MMSIADDRCFGH => cfg.mmsiaddrcfgh = value & MMSIADDRCFGH_MASK,
            SMSIADDRCFG => cfg.smsiaddrcfg = value,
            _ => cfg.smsiaddrcfgh = value & SMSIADDRCFGH_MASK,
        }
    }

    /// The IDC structure `offset` falls in, when domain `d` delivers directly and the
    /// structure belongs to a hart; and the register offset within it.
    fn idc(&self, st: &AplicState, d: usize, offset: u64) -> Option<(usize, u64)> {
        let h = usize::try_from((offset - IDC_BASE) / IDC_SIZE).ok()?;
        (!st.domains[d].msi() && h < self.harts.len()).then_some((h, offset % IDC_SIZE))
    }

    fn claim(&self, st: &mut AplicState, d: usize, h: usize) -> u32 {
        let top = self.topi(st, d, h);
        let dom = &mut st.domains[d];
        if top == 0 {
            // A spurious claim withdraws a forced interrupt.
            dom.iforce[h] = 0;
        } else {
            let id = top >> TOPI_ID_SHIFT;
            // Claiming clears an edge or detached source; a level source stays pending
            // while its input is asserted.
            if !dom.mode(id).is_level() {
                set_bit(&mut dom.pending, id, false);
            }
        }
        self.update(st);
        top
    }

    /// Bit-set word `k` of a `setip`/`in_clrip`/`setie` group, if the sources exist.
    fn word(&self, k: u64) -> Option<usize> {
        usize::try_from(k).ok().filter(|&k| k < self.words)
    }

    fn read32(&self, d: usize, offset: u64) -> u32 {
        let mut st = self.lock();
        let st = &mut *st;
        let dom = &st.domains[d];
        match offset {
            DOMAINCFG => DOMAINCFG_RO | dom.domaincfg,
            0x4..0x1000 => {
                let id = (offset / 4) as u32;
                if self.visible(st, d, id) {
                    dom.sourcecfg[id as usize]
                } else {
                    0
                }
            }
            MMSIADDRCFG..=SMSIADDRCFGH if d == ROOT && self.msi_capable() => match offset {
                MMSIADDRCFG => st.msi_addr.mmsiaddrcfg,
                MMSIADDRCFGH => st.msi_addr.mmsiaddrcfgh,
                SMSIADDRCFG => st.msi_addr.smsiaddrcfg,
                _ => st.msi_addr.smsiaddrcfgh,
            },
            SETIP_BASE..0x1c80 => self
                .word((offset - SETIP_BASE) / 4)
                .map_or(0, |k| dom.pending[k]),
            IN_CLRIP_BASE..0x1d80 => {
                let Some(k) = self.word((offset - IN_CLRIP_BASE) / 4) else {
                    return 0;
                };
                (0..32)
                    .filter(|&b| {
                        let id = k as u32 * 32 + b;
                        self.active(st, d, id) && dom.mode(id).rectify(bit(&st.input, id))
                    })
                    .fold(0, |acc, b| acc | 1 << b)
            }
            SETIE_BASE..0x1e80 => self
                .word((offset - SETIE_BASE) / 4)
                .map_or(0, |k| dom.enabled[k]),
            GENMSI if dom.msi() => dom.genmsi,
            0x3004..0x4000 => {
                let id = ((offset - TARGET_BASE) / 4 + 1) as u32;
                if self.active(st, d, id) {
                    dom.target(id)
                } else {
                    0
                }
            }
            IDC_BASE.. => match self.idc(st, d, offset) {
                Some((h, IDELIVERY)) => dom.idelivery[h],
                Some((h, IFORCE)) => dom.iforce[h],
                Some((h, ITHRESHOLD)) => dom.ithreshold[h],
                Some((h, TOPI)) => self.topi(st, d, h),
                Some((h, CLAIMI)) => self.claim(st, d, h),
                _ => 0,
            },
            // setipnum, clripnum, setienum, clrienum, clrie, setipnum_le/_be, and
            // everything reserved.
            _ => 0,
        }
    }

    fn write32(&self, d: usize, offset: u64, value: u32) {
        let mut st = self.lock();
        let st = &mut *st;
        match offset {
            DOMAINCFG => self.write_domaincfg(st, d, value),
            0x4..0x1000 => self.write_sourcecfg(st, d, (offset / 4) as u32, value),
            MMSIADDRCFG..=SMSIADDRCFGH if d == ROOT && self.msi_capable() => {
                // Only the address of later MSIs changes: nothing to re-evaluate.
                return self.write_msi_addr(st, offset, value);
            }
            SETIP_BASE..0x1c80
            | IN_CLRIP_BASE..0x1d80
            | SETIE_BASE..0x1e80
            | CLRIE_BASE..0x1f80 => {
                let group = offset & !0xff;
                let k = (offset & 0xff) / 4;
                let Some(k) = self.word(k) else {
                    return;
                };
                for id in bits(value).map(|b| k as u32 * 32 + b) {
                    match group {
                        SETIP_BASE => self.request_pending(st, d, id),
                        IN_CLRIP_BASE => self.clear_pending(st, d, id),
                        SETIE_BASE => self.set_enabled(st, d, id, true),
                        _ => self.set_enabled(st, d, id, false),
                    }
                }
            }
            SETIPNUM | SETIPNUM_LE => self.request_pending(st, d, value),
            SETIPNUM_BE => self.request_pending(st, d, value.swap_bytes()),
            CLRIPNUM => self.clear_pending(st, d, value),
            SETIENUM => self.set_enabled(st, d, value, true),
            CLRIENUM => self.set_enabled(st, d, value, false),
            GENMSI if st.domains[d].msi() => {
                // AIA "Generate MSI": sent at once, even with IE clear, at the domain's
                // level (guest index 0); Busy never shows.
                let dom = &mut st.domains[d];
                dom.genmsi = value & (TARGET_HART | TARGET_EIID);
                self.send(st, d, value >> TARGET_HART_SHIFT, 0, value & TARGET_EIID);
                return;
            }
            0x3004..0x4000 => {
                let id = ((offset - TARGET_BASE) / 4 + 1) as u32;
                if !self.active(st, d, id) {
                    return;
                }
                let t = self.legal_target(d, st.domains[d].msi(), value);
                st.domains[d].target[id as usize] = t;
            }
            IDC_BASE.. => {
                let iprio = self.iprio_mask();
                let Some((h, reg)) = self.idc(st, d, offset) else {
                    return;
                };
                let dom = &mut st.domains[d];
                match reg {
                    IDELIVERY => dom.idelivery[h] = value & 1,
                    IFORCE => dom.iforce[h] = value & 1,
                    ITHRESHOLD => dom.ithreshold[h] = value & iprio,
                    _ => return,
                }
            }
            _ => return,
        }
        self.update(st);
    }
}

/// An APLIC with a machine-level root domain and a supervisor-level child, serving
/// `harts.len()` harts in direct delivery mode and any hart index in MSI mode.
pub struct Aplic {
    inner: Arc<Inner>,
    windows: [Arc<AplicWindow>; 2],
}

impl Aplic {
    /// An APLIC configured by `config`. In direct mode, IDC h of each domain drives MEIP
    /// (root) or SEIP (child) of `harts[h]`; in MSI mode, messages go to `msi`.
    pub fn new(
        config: AplicConfig,
        harts: Vec<Arc<HartSignals>>,
        msi: Arc<dyn MsiSink>,
    ) -> Result<Arc<Self>, AplicError> {
        if !(1..=MAX_SOURCES).contains(&config.num_sources) {
            return Err(AplicError::Sources(config.num_sources));
        }
        if !(1..=8).contains(&config.iprio_bits) {
            return Err(AplicError::PriorityBits(config.iprio_bits));
        }
        if harts.len() > MAX_HARTS {
            return Err(AplicError::TooManyHarts(harts.len()));
        }
        let mut inner = Inner {
            harts,
            msi,
            config,
            words: (config.num_sources as usize + 1).div_ceil(32),
            st: Mutex::new(AplicState {
                input: Vec::new(),
                msi_addr: MsiAddrCfg::default(),
                domains: [ROOT, CHILD].map(|_| DomainState {
                    domaincfg: 0,
                    sourcecfg: Vec::new(),
                    target: Vec::new(),
                    pending: Vec::new(),
                    enabled: Vec::new(),
                    idelivery: Vec::new(),
                    iforce: Vec::new(),
                    ithreshold: Vec::new(),
                    genmsi: 0,
                }),
            }),
        };
        *inner.st.get_mut().unwrap_or_else(|e| e.into_inner()) = inner.initial();
        let inner = Arc::new(inner);
        inner.update(&mut inner.lock());
        let windows = [ROOT, CHILD].map(|domain| {
            Arc::new(AplicWindow {
                inner: inner.clone(),
                domain,
            })
        });
        Ok(Arc::new(Self { inner, windows }))
    }

    /// The control region of `domain`, for the board to map.
    pub fn window(&self, domain: Domain) -> Arc<AplicWindow> {
        self.windows[domain.index()].clone()
    }

    /// The control region each domain needs for this APLIC's harts; a board may map a
    /// larger one (QEMU's virt maps [`VIRT_WINDOW_SIZE`]).
    pub fn window_size(&self) -> u64 {
        window_size(self.inner.harts.len())
    }

    /// Number of sources (source 0 not included).
    pub fn num_sources(&self) -> u32 {
        self.inner.config.num_sources
    }

    /// The input wire of source `id`. Whether it is edge- or level-sensitive, and in
    /// which domain, is the guest's choice (`sourcecfg`).
    pub fn line(&self, id: u32) -> Result<Arc<dyn IrqLine>, AplicError> {
        if !self.inner.source(id) {
            return Err(AplicError::NoSource {
                id,
                last: self.inner.config.num_sources,
            });
        }
        Ok(Arc::new(AplicLine {
            inner: self.inner.clone(),
            id,
        }))
    }

    /// A copy of the whole state.
    pub fn save(&self) -> AplicState {
        self.inner.lock().clone()
    }

    /// Takes back a state [`Aplic::save`] returned (from an APLIC built the same way),
    /// then drives the outputs it implies. Register values are made legal on the way in;
    /// a state of another shape is refused and changes nothing.
    pub fn restore(&self, state: &AplicState) -> Result<(), AplicError> {
        let inner = &self.inner;
        let n = inner.config.num_sources as usize + 1;
        let harts = inner.harts.len();
        if state.input.len() != inner.words {
            return Err(AplicError::StateShape("input words"));
        }
        for dom in &state.domains {
            if dom.sourcecfg.len() != n || dom.target.len() != n {
                return Err(AplicError::StateShape("sources"));
            }
            if dom.pending.len() != inner.words || dom.enabled.len() != inner.words {
                return Err(AplicError::StateShape("pending or enable words"));
            }
            if dom.idelivery.len() != harts
                || dom.iforce.len() != harts
                || dom.ithreshold.len() != harts
            {
                return Err(AplicError::StateShape("IDC structures"));
            }
        }
        let mut st = inner.lock();
        *st = inner.initial();
        // Replay the state through the register semantics, so that whatever comes in
        // obeys the invariants a guest could reach.
        st.input.clone_from(&state.input);
        if inner.msi_capable() {
            st.msi_addr = MsiAddrCfg {
                mmsiaddrcfg: state.msi_addr.mmsiaddrcfg,
                mmsiaddrcfgh: state.msi_addr.mmsiaddrcfgh & MMSIADDRCFGH_MASK,
                smsiaddrcfg: state.msi_addr.smsiaddrcfg,
                smsiaddrcfgh: state.msi_addr.smsiaddrcfgh & SMSIADDRCFGH_MASK,
            };
        }
        for d in [ROOT, CHILD] {
            let saved = &state.domains[d];
            // IE stays clear until the end: nothing leaves while the state is half built.
            inner.write_domaincfg(&mut st, d, saved.domaincfg & DOMAINCFG_DM);
            for id in 1..=inner.config.num_sources {
                let i = id as usize;
                inner.write_sourcecfg(&mut st, d, id, saved.sourcecfg[i]);
                let msi = st.domains[d].msi();
                st.domains[d].target[i] = inner.legal_target(d, msi, saved.target[i]);
                if !inner.active(&st, d, id) {
                    continue;
                }
                let asserted = st.domains[d].mode(id).rectify(bit(&st.input, id));
                let dom = &mut st.domains[d];
                let pending = match (dom.mode(id).is_level(), msi) {
                    // A level source in direct mode is pending while its input is
                    // asserted, and in MSI mode never while it is not.
                    (true, false) => asserted,
                    (true, true) => asserted && bit(&saved.pending, id),
                    (false, _) => bit(&saved.pending, id),
                };
                set_bit(&mut dom.pending, id, pending);
                set_bit(&mut dom.enabled, id, bit(&saved.enabled, id));
            }
            let iprio = inner.iprio_mask();
            let dom = &mut st.domains[d];
            for h in 0..harts {
                dom.idelivery[h] = saved.idelivery[h] & 1;
                dom.iforce[h] = saved.iforce[h] & 1;
                dom.ithreshold[h] = saved.ithreshold[h] & iprio;
            }
            dom.genmsi = saved.genmsi & (TARGET_HART | TARGET_EIID);
        }
        for d in [ROOT, CHILD] {
            let dm = st.domains[d].domaincfg & DOMAINCFG_DM;
            st.domains[d].domaincfg = dm | state.domains[d].domaincfg & DOMAINCFG_IE;
        }
        inner.update(&mut st);
        Ok(())
    }

    /// Back to the power-on state (AIA "Reset"), MSI address presets included.
    pub fn reset(&self) {
        let mut st = self.inner.lock();
        *st = self.inner.initial();
        self.inner.update(&mut st);
    }
}

/// The control region of one domain.
pub struct AplicWindow {
    inner: Arc<Inner>,
    domain: usize,
}

impl MmioDevice for AplicWindow {
    fn read(&self, _hart: usize, offset: u64, size: u8) -> u64 {
        if size != 4 || !offset.is_multiple_of(4) {
            return 0;
        }
        u64::from(self.inner.read32(self.domain, offset))
    }

    fn write(&self, _hart: usize, offset: u64, size: u8, value: u64) {
        if size != 4 || !offset.is_multiple_of(4) {
            return;
        }
        self.inner.write32(self.domain, offset, value as u32)
    }
}

struct AplicLine {
    inner: Arc<Inner>,
    id: u32,
}

impl IrqLine for AplicLine {
    fn set_level(&self, high: bool) {
        self.inner.set_input(self.id, high);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::RecordingMsi;

    const D: u32 = SOURCECFG_D;
    const DETACHED: u32 = 1;
    const EDGE1: u32 = 4;
    const EDGE0: u32 = 5;
    const LEVEL1: u32 = 6;
    const LEVEL0: u32 = 7;
    const IE: u32 = DOMAINCFG_IE;

    struct Rig {
        aplic: Arc<Aplic>,
        m: Arc<AplicWindow>,
        s: Arc<AplicWindow>,
        harts: Vec<Arc<HartSignals>>,
        msis: Arc<RecordingMsi>,
    }

    fn rig_with(config: AplicConfig, harts: usize) -> Rig {
        let sigs: Vec<_> = (0..harts).map(|_| Arc::new(HartSignals::new())).collect();
        let msis = Arc::new(RecordingMsi::default());
        let aplic = Aplic::new(config, sigs.clone(), msis.clone()).unwrap();
        Rig {
            m: aplic.window(Domain::Machine),
            s: aplic.window(Domain::Supervisor),
            aplic,
            harts: sigs,
            msis,
        }
    }

    fn rig(delivery: Delivery, harts: usize) -> Rig {
        rig_with(AplicConfig::virt(delivery), harts)
    }

    fn rd(w: &AplicWindow, off: u64) -> u32 {
        w.read(0, off, 4) as u32
    }

    fn wr(w: &AplicWindow, off: u64, v: u32) {
        w.write(0, off, 4, u64::from(v));
    }

    fn sourcecfg(id: u32) -> u64 {
        SOURCECFG_BASE + 4 * u64::from(id - 1)
    }

    fn target(id: u32) -> u64 {
        TARGET_BASE + 4 * u64::from(id - 1)
    }

    fn idc(hart: u64, reg: u64) -> u64 {
        IDC_BASE + IDC_SIZE * hart + reg
    }

    fn pending(w: &AplicWindow, id: u32) -> bool {
        rd(w, SETIP_BASE + 4 * u64::from(id / 32)) >> (id % 32) & 1 != 0
    }

    fn enabled(w: &AplicWindow, id: u32) -> bool {
        rd(w, SETIE_BASE + 4 * u64::from(id / 32)) >> (id % 32) & 1 != 0
    }

    fn input(w: &AplicWindow, id: u32) -> bool {
        rd(w, IN_CLRIP_BASE + 4 * u64::from(id / 32)) >> (id % 32) & 1 != 0
    }

    /// Source `id` in mode `sm` of the root domain, aimed at hart index 0 with priority
    /// 1 (direct) or EIID `id` (MSI), enabled.
    fn active(w: &AplicWindow, id: u32, sm: u32) {
        wr(w, sourcecfg(id), sm);
        let msi = rd(w, DOMAINCFG) & DOMAINCFG_DM != 0;
        wr(w, target(id), if msi { id } else { 1 });
        wr(w, SETIENUM, id);
    }

    /// Delegates source `id` to the supervisor domain.
    fn delegate(r: &Rig, id: u32) {
        wr(&r.m, sourcecfg(id), D);
    }

    /// Turns on direct delivery to hart index `h` in domain window `w`.
    fn deliver(w: &AplicWindow, h: u64) {
        wr(w, DOMAINCFG, IE);
        wr(w, idc(h, IDELIVERY), 1);
    }

    /// The address of hart `h`'s S-level file or guest file `g` on QEMU's virt board.
    fn virt_s_file(h: u64, g: u64, guests: u64) -> u64 {
        let mut bits = 0;
        while (1 << bits) < guests + 1 {
            bits += 1;
        }
        VIRT_IMSIC_S_BASE + h * (1 << bits) * 0x1000 + g * 0x1000
    }

    #[test]
    fn domaincfg_holds_ie_and_the_delivery_mode() {
        let r = rig(Delivery::Direct, 1);
        assert_eq!(rd(&r.m, DOMAINCFG), 0x8000_0000);
        wr(&r.m, DOMAINCFG, u32::MAX);
        assert_eq!(
            rd(&r.m, DOMAINCFG),
            0x8000_0100,
            "DM and BE are read-only 0"
        );
        assert_eq!(rd(&r.s, DOMAINCFG), 0x8000_0000, "each domain has its own");
        wr(&r.m, DOMAINCFG, 0);
        assert_eq!(rd(&r.m, DOMAINCFG), 0x8000_0000);

        let r = rig(Delivery::Msi, 1);
        assert_eq!(rd(&r.m, DOMAINCFG), 0x8000_0004);
        assert_eq!(rd(&r.s, DOMAINCFG), 0x8000_0004);
        wr(&r.m, DOMAINCFG, 0);
        assert_eq!(rd(&r.m, DOMAINCFG), 0x8000_0004, "DM is read-only 1");

        let r = rig(Delivery::Both, 1);
        assert_eq!(rd(&r.s, DOMAINCFG), 0x8000_0000);
        wr(&r.s, DOMAINCFG, IE | DOMAINCFG_DM | 1);
        assert_eq!(rd(&r.s, DOMAINCFG), 0x8000_0104);
        wr(&r.s, DOMAINCFG, 0);
        assert_eq!(rd(&r.s, DOMAINCFG), 0x8000_0000);
    }

    #[test]
    fn sourcecfg_keeps_legal_values() {
        let r = rig(Delivery::Direct, 1);
        for (write, read) in [
            (0xffff_fbff, LEVEL0),
            (2, 0),
            (3, 0),
            (DETACHED, DETACHED),
            (EDGE1 | 0x100, EDGE1),
            (0x7ff, 0x7ff),
            (u32::MAX, 0x7ff),
            (D, D),
            (0, 0),
        ] {
            wr(&r.m, sourcecfg(1), write);
            assert_eq!(rd(&r.m, sourcecfg(1)), read, "wrote {write:#x}");
        }
        wr(&r.m, sourcecfg(96), LEVEL1);
        assert_eq!(rd(&r.m, sourcecfg(96)), LEVEL1);
        for off in [sourcecfg(97), sourcecfg(1023), 0x1000] {
            wr(&r.m, off, LEVEL1);
            assert_eq!(rd(&r.m, off), 0, "no source behind {off:#x}");
        }
        // The leaf domain cannot delegate: the register becomes zero.
        delegate(&r, 2);
        wr(&r.s, sourcecfg(2), LEVEL1);
        wr(&r.s, sourcecfg(2), D | LEVEL1);
        assert_eq!(rd(&r.s, sourcecfg(2)), 0);
        wr(&r.s, sourcecfg(2), EDGE0);
        assert_eq!(rd(&r.s, sourcecfg(2)), EDGE0);
    }

    #[test]
    fn a_delegated_source_is_zero_in_the_root_and_lives_in_the_child() {
        let r = rig(Delivery::Direct, 1);
        let line = r.aplic.line(5).unwrap();
        active(&r.m, 5, EDGE1);
        wr(&r.m, target(5), 2);
        wr(&r.m, SETIPNUM, 5);
        assert!(pending(&r.m, 5) && enabled(&r.m, 5));

        delegate(&r, 5);
        assert_eq!(rd(&r.m, sourcecfg(5)), D);
        assert!(!pending(&r.m, 5) && !enabled(&r.m, 5));
        assert_eq!(rd(&r.m, target(5)), 0);
        wr(&r.m, SETIPNUM, 5);
        wr(&r.m, SETIENUM, 5);
        wr(&r.m, target(5), 3);
        assert!(!pending(&r.m, 5) && !enabled(&r.m, 5));
        assert_eq!(rd(&r.m, target(5)), 0);

        // The child sees the source from zero and configures it.
        assert_eq!(rd(&r.s, sourcecfg(5)), 0);
        active(&r.s, 5, EDGE1);
        assert_eq!(rd(&r.s, sourcecfg(5)), EDGE1);
        assert_eq!(rd(&r.s, target(5)), 1);
        line.set_level(true);
        assert!(pending(&r.s, 5) && input(&r.s, 5));
        assert!(!pending(&r.m, 5) && !input(&r.m, 5));
        deliver(&r.s, 0);
        assert_eq!(r.harts[0].pending(), SEIP);

        // Taken back, the source leaves the child and comes back to the root.
        wr(&r.m, sourcecfg(5), LEVEL1);
        assert_eq!(rd(&r.s, sourcecfg(5)), 0);
        assert!(!pending(&r.s, 5) && !enabled(&r.s, 5));
        assert_eq!(r.harts[0].pending(), 0);
        assert!(pending(&r.m, 5), "the line is still high");
        delegate(&r, 5);
        assert_eq!(
            rd(&r.s, sourcecfg(5)),
            0,
            "delegated again, it starts from zero"
        );

        // A source the root keeps does not exist in the child.
        wr(&r.s, sourcecfg(6), EDGE1);
        wr(&r.s, SETIENUM, 6);
        assert_eq!(rd(&r.s, sourcecfg(6)), 0);
        assert!(!enabled(&r.s, 6));

        // Only child index 0 exists: a source delegated elsewhere is active nowhere.
        let seven = r.aplic.line(7).unwrap();
        wr(&r.m, sourcecfg(7), D | 1);
        assert_eq!(rd(&r.m, sourcecfg(7)), D | 1);
        wr(&r.s, sourcecfg(7), EDGE1);
        assert_eq!(rd(&r.s, sourcecfg(7)), 0);
        seven.set_level(true);
        assert!(!pending(&r.m, 7) && !pending(&r.s, 7));
    }

    #[test]
    fn edge_sources_latch_edges_until_cleared() {
        let r = rig(Delivery::Direct, 1);
        let three = r.aplic.line(3).unwrap();
        active(&r.m, 3, EDGE1);
        assert!(!pending(&r.m, 3));
        three.set_level(true);
        assert!(pending(&r.m, 3) && input(&r.m, 3));
        three.set_level(false);
        assert!(pending(&r.m, 3) && !input(&r.m, 3));
        wr(&r.m, CLRIPNUM, 3);
        assert!(!pending(&r.m, 3));
        three.set_level(true);
        assert!(pending(&r.m, 3));
        wr(&r.m, IN_CLRIP_BASE, 1 << 3);
        assert!(!pending(&r.m, 3), "in_clrip clears");
        three.set_level(true);
        assert!(!pending(&r.m, 3), "no edge without a change");
        wr(&r.m, SETIPNUM, 3);
        assert!(pending(&r.m, 3));
        wr(&r.m, CLRIPNUM, 3);
        wr(&r.m, SETIP_BASE, 1 << 3);
        assert!(pending(&r.m, 3));

        // Edge0 is inverted: a low wire is an asserted input, and the falling edge
        // interrupts. Configured while the wire is low, the source becomes pending.
        let four = r.aplic.line(4).unwrap();
        active(&r.m, 4, EDGE0);
        assert!(input(&r.m, 4) && pending(&r.m, 4));
        wr(&r.m, CLRIPNUM, 4);
        four.set_level(true);
        assert!(!pending(&r.m, 4) && !input(&r.m, 4));
        four.set_level(false);
        assert!(pending(&r.m, 4));
    }

    #[test]
    fn level_sources_follow_their_input_in_direct_mode() {
        let r = rig(Delivery::Direct, 1);
        let eight = r.aplic.line(8).unwrap();
        active(&r.m, 8, LEVEL1);
        eight.set_level(true);
        assert!(pending(&r.m, 8));
        wr(&r.m, CLRIPNUM, 8);
        wr(&r.m, IN_CLRIP_BASE, 1 << 8);
        assert!(pending(&r.m, 8), "clrip cannot clear a level source");
        eight.set_level(false);
        assert!(!pending(&r.m, 8), "the request is withdrawn with the line");
        wr(&r.m, SETIPNUM, 8);
        wr(&r.m, SETIP_BASE, 1 << 8);
        assert!(!pending(&r.m, 8), "setip cannot set a level source");

        let nine = r.aplic.line(9).unwrap();
        active(&r.m, 9, LEVEL0);
        assert!(
            pending(&r.m, 9) && input(&r.m, 9),
            "a low wire asserts Level0"
        );
        nine.set_level(true);
        assert!(!pending(&r.m, 9) && !input(&r.m, 9));
        // Switching the mode re-reads the wire.
        wr(&r.m, sourcecfg(9), LEVEL1);
        assert!(pending(&r.m, 9));
    }

    #[test]
    fn inactive_and_detached_sources_ignore_their_wire() {
        let r = rig(Delivery::Direct, 1);
        let ten = r.aplic.line(10).unwrap();
        ten.set_level(true);
        wr(&r.m, SETIPNUM, 10);
        wr(&r.m, SETIENUM, 10);
        wr(&r.m, target(10), 5);
        assert!(!pending(&r.m, 10) && !enabled(&r.m, 10) && !input(&r.m, 10));
        assert_eq!(rd(&r.m, target(10)), 0);

        let eleven = r.aplic.line(11).unwrap();
        active(&r.m, 11, DETACHED);
        eleven.set_level(true);
        eleven.set_level(false);
        eleven.set_level(true);
        assert!(!pending(&r.m, 11) && !input(&r.m, 11));
        wr(&r.m, SETIPNUM, 11);
        assert!(pending(&r.m, 11));
        wr(&r.m, CLRIPNUM, 11);
        assert!(!pending(&r.m, 11));

        // Made inactive, a source loses its pending and enable bits for good.
        wr(&r.m, SETIPNUM, 11);
        wr(&r.m, sourcecfg(11), 0);
        assert!(!pending(&r.m, 11) && !enabled(&r.m, 11));
        wr(&r.m, sourcecfg(11), DETACHED);
        assert!(!pending(&r.m, 11) && !enabled(&r.m, 11));
    }

    #[test]
    fn enable_bits_exist_only_for_active_sources() {
        let r = rig(Delivery::Direct, 1);
        for id in 1..=96 {
            wr(&r.m, sourcecfg(id), DETACHED);
        }
        wr(&r.m, SETIE_BASE, u32::MAX);
        assert_eq!(rd(&r.m, SETIE_BASE), 0xffff_fffe, "source 0 does not exist");
        wr(&r.m, SETIE_BASE + 12, u32::MAX);
        assert_eq!(rd(&r.m, SETIE_BASE + 12), 1, "source 96 is the last");
        wr(&r.m, SETIE_BASE + 16, u32::MAX);
        assert_eq!(rd(&r.m, SETIE_BASE + 16), 0);
        wr(&r.m, CLRIE_BASE, 0xf0);
        assert_eq!(rd(&r.m, SETIE_BASE), 0xffff_ff0e);
        assert_eq!(rd(&r.m, CLRIE_BASE), 0, "clrie reads 0");
        wr(&r.m, CLRIENUM, 40);
        assert!(!enabled(&r.m, 40));
        wr(&r.m, SETIENUM, 40);
        assert!(enabled(&r.m, 40));
        wr(&r.m, CLRIE_BASE + 4, u32::MAX);
        assert_eq!(rd(&r.m, SETIE_BASE + 4), 0);
        wr(&r.m, SETIENUM, 0);
        wr(&r.m, SETIENUM, 97);
        assert_eq!(rd(&r.m, SETIE_BASE + 12), 1);
        wr(&r.m, sourcecfg(3), 0);
        wr(&r.m, SETIE_BASE, u32::MAX);
        assert_eq!(rd(&r.m, SETIE_BASE), 0xffff_fff6, "source 3 is inactive");
        // The pending bits follow the same rules.
        wr(&r.m, SETIP_BASE, u32::MAX);
        assert_eq!(rd(&r.m, SETIP_BASE), 0xffff_fff6);
        wr(&r.m, IN_CLRIP_BASE, u32::MAX);
        assert_eq!(rd(&r.m, SETIP_BASE), 0);
        for off in [
            SETIPNUM,
            CLRIPNUM,
            SETIENUM,
            CLRIENUM,
            SETIPNUM_LE,
            SETIPNUM_BE,
        ] {
            assert_eq!(rd(&r.m, off), 0, "{off:#x} reads 0");
        }
    }

    #[test]
    fn direct_targets_hold_a_hart_index_and_a_nonzero_priority() {
        let r = rig(Delivery::Direct, 1);
        wr(&r.m, sourcecfg(1), DETACHED);
        assert_eq!(rd(&r.m, target(1)), 1, "hart 0, priority 1 at reset");
        for (write, read) in [
            (u32::MAX, 0xfffc_0007),
            (1 << 18, (1 << 18) | 1),
            (0x105, 5),
            (0x8, 1),
        ] {
            wr(&r.m, target(1), write);
            assert_eq!(rd(&r.m, target(1)), read, "wrote {write:#x}");
        }
        // Inactive, the register reads 0 and keeps its value for later.
        wr(&r.m, target(1), (3 << 18) | 6);
        wr(&r.m, sourcecfg(1), 0);
        assert_eq!(rd(&r.m, target(1)), 0);
        wr(&r.m, target(1), 2);
        wr(&r.m, sourcecfg(1), EDGE1);
        assert_eq!(rd(&r.m, target(1)), (3 << 18) | 6);
    }

    #[test]
    fn msi_targets_hold_hart_guest_and_eiid() {
        let r = rig(Delivery::Msi, 1);
        wr(&r.m, sourcecfg(1), DETACHED);
        assert_eq!(rd(&r.m, target(1)), 0);
        wr(&r.m, target(1), u32::MAX);
        assert_eq!(
            rd(&r.m, target(1)),
            0xfffc_07ff,
            "no guest index at M level"
        );
        delegate(&r, 2);
        wr(&r.s, sourcecfg(2), DETACHED);
        wr(&r.s, target(2), u32::MAX);
        assert_eq!(rd(&r.s, target(2)), 0xffff_f7ff, "bit 11 is reserved");

        // Switching DM makes the targets legal in the new mode.
        let r = rig(Delivery::Both, 1);
        wr(&r.m, sourcecfg(1), DETACHED);
        wr(&r.m, DOMAINCFG, DOMAINCFG_DM);
        wr(&r.m, target(1), (2 << 18) | 0x400);
        wr(&r.m, DOMAINCFG, 0);
        assert_eq!(rd(&r.m, target(1)), (2 << 18) | 1);
    }

    #[test]
    fn idc_registers() {
        let r = rig(Delivery::Direct, 2);
        for w in [&r.m, &r.s] {
            wr(w, idc(1, IDELIVERY), u32::MAX);
            wr(w, idc(1, IFORCE), u32::MAX);
            wr(w, idc(1, ITHRESHOLD), u32::MAX);
            assert_eq!(rd(w, idc(1, IDELIVERY)), 1);
            assert_eq!(rd(w, idc(1, IFORCE)), 1);
            assert_eq!(rd(w, idc(1, ITHRESHOLD)), 7);
            assert_eq!(rd(w, idc(0, ITHRESHOLD)), 0);
            wr(w, idc(1, TOPI), u32::MAX);
            wr(w, idc(1, 0x0c), u32::MAX);
            assert_eq!(rd(w, idc(1, TOPI)), 0);
            assert_eq!(rd(w, idc(1, 0x0c)), 0);
            // Hart index 2 has no hart.
            wr(w, idc(2, IDELIVERY), 1);
            assert_eq!(rd(w, idc(2, IDELIVERY)), 0);
        }
        // In MSI mode the IDC structures are not there.
        let r = rig(Delivery::Msi, 2);
        wr(&r.m, idc(0, IDELIVERY), 1);
        assert_eq!(rd(&r.m, idc(0, IDELIVERY)), 0);
    }

    #[test]
    fn topi_orders_by_priority_then_identity_and_claimi_takes_it() {
        let r = rig(Delivery::Direct, 1);
        for (id, prio) in [(3, 2), (5, 1), (7, 1)] {
            active(&r.m, id, EDGE1);
            wr(&r.m, target(id), prio);
            wr(&r.m, SETIPNUM, id);
        }
        assert_eq!(rd(&r.m, idc(0, TOPI)), (5 << 16) | 1);
        assert_eq!(rd(&r.m, idc(0, CLAIMI)), (5 << 16) | 1);
        assert!(!pending(&r.m, 5), "a claim clears an edge source");
        assert_eq!(rd(&r.m, idc(0, CLAIMI)), (7 << 16) | 1);
        assert_eq!(rd(&r.m, idc(0, TOPI)), (3 << 16) | 2);
        // A threshold of P hides priority numbers P and above.
        wr(&r.m, idc(0, ITHRESHOLD), 2);
        assert_eq!(rd(&r.m, idc(0, TOPI)), 0);
        wr(&r.m, idc(0, ITHRESHOLD), 3);
        assert_eq!(rd(&r.m, idc(0, TOPI)), (3 << 16) | 2);
        wr(&r.m, idc(0, ITHRESHOLD), 0);
        // Disabled or aimed elsewhere, a source is not a candidate.
        wr(&r.m, CLRIENUM, 3);
        assert_eq!(rd(&r.m, idc(0, TOPI)), 0);
        wr(&r.m, SETIENUM, 3);
        wr(&r.m, target(3), (1 << 18) | 2);
        assert_eq!(rd(&r.m, idc(0, TOPI)), 0);
        wr(&r.m, target(3), 2);
        assert_eq!(rd(&r.m, idc(0, CLAIMI)), (3 << 16) | 2);
        assert_eq!(rd(&r.m, idc(0, CLAIMI)), 0);
    }

    #[test]
    fn direct_delivery_drives_meip_and_seip_of_the_right_hart() {
        let r = rig(Delivery::Direct, 2);
        active(&r.m, 1, EDGE1);
        wr(&r.m, target(1), (1 << 18) | 1);
        wr(&r.m, SETIPNUM, 1);
        assert_eq!(r.harts[1].pending(), 0, "IE and idelivery are clear");
        deliver(&r.m, 1);
        assert_eq!(r.harts[1].pending(), MEIP);
        assert_eq!(r.harts[0].pending(), 0);
        wr(&r.m, idc(1, IDELIVERY), 0);
        assert_eq!(r.harts[1].pending(), 0);
        wr(&r.m, idc(1, IDELIVERY), 1);
        assert_eq!(r.harts[1].pending(), MEIP);
        wr(&r.m, DOMAINCFG, 0);
        assert_eq!(r.harts[1].pending(), 0);
        wr(&r.m, DOMAINCFG, IE);
        assert_eq!(r.harts[1].pending(), MEIP);
        assert_eq!(rd(&r.m, idc(1, CLAIMI)), (1 << 16) | 1);
        assert_eq!(r.harts[1].pending(), 0);

        // The supervisor domain drives SEIP.
        delegate(&r, 2);
        active(&r.s, 2, EDGE1);
        deliver(&r.s, 0);
        wr(&r.s, SETIPNUM, 2);
        assert_eq!(r.harts[0].pending(), SEIP);
        assert_eq!(r.harts[1].pending(), 0);
        assert_eq!(rd(&r.s, idc(0, CLAIMI)), (2 << 16) | 1);
        assert_eq!(r.harts[0].pending(), 0);

        // iforce makes a spurious interrupt; claiming it (0) withdraws it.
        deliver(&r.m, 0);
        wr(&r.m, idc(0, IFORCE), 1);
        assert_eq!(r.harts[0].pending(), MEIP);
        assert_eq!(rd(&r.m, idc(0, TOPI)), 0);
        assert_eq!(rd(&r.m, idc(0, CLAIMI)), 0);
        assert_eq!(rd(&r.m, idc(0, IFORCE)), 0);
        assert_eq!(r.harts[0].pending(), 0);

        // A claim leaves a level source pending while its line is high.
        let four = r.aplic.line(4).unwrap();
        active(&r.m, 4, LEVEL1);
        four.set_level(true);
        assert_eq!(r.harts[0].pending(), MEIP);
        assert_eq!(rd(&r.m, idc(0, CLAIMI)), (4 << 16) | 1);
        assert_eq!(r.harts[0].pending(), MEIP);
        four.set_level(false);
        assert_eq!(r.harts[0].pending(), 0);
        assert!(r.msis.take().is_empty(), "direct mode sends no MSI");
    }

    #[test]
    fn msi_addresses_match_the_virt_imsic_layout() {
        for harts in [1, 2, 4] {
            for guests in 0..=3 {
                let cfg = MsiAddrCfg::virt(harts, guests);
                // Once with the registers preset, once programmed as OpenSBI does.
                for preset in [true, false] {
                    let mut config = AplicConfig::virt(Delivery::Msi);
                    config.msi_addr = preset.then_some(cfg);
                    let r = rig_with(config, harts);
                    if !preset {
                        wr(&r.m, MMSIADDRCFG, cfg.mmsiaddrcfg);
                        wr(&r.m, MMSIADDRCFGH, cfg.mmsiaddrcfgh);
                        wr(&r.m, SMSIADDRCFG, cfg.smsiaddrcfg);
                        wr(&r.m, SMSIADDRCFGH, cfg.smsiaddrcfgh);
                    }
                    assert_eq!(rd(&r.m, MMSIADDRCFG), cfg.mmsiaddrcfg);
                    assert_eq!(rd(&r.m, MMSIADDRCFGH), cfg.mmsiaddrcfgh);
                    assert_eq!(rd(&r.m, SMSIADDRCFG), cfg.smsiaddrcfg);
                    assert_eq!(rd(&r.m, SMSIADDRCFGH), cfg.smsiaddrcfgh);
                    active(&r.m, 1, EDGE1);
                    delegate(&r, 2);
                    active(&r.s, 2, EDGE1);
                    wr(&r.m, DOMAINCFG, IE);
                    wr(&r.s, DOMAINCFG, IE);
                    for h in 0..harts as u32 {
                        let eiid = 0x40 + h;
                        wr(&r.m, target(1), (h << 18) | eiid);
                        wr(&r.m, SETIPNUM, 1);
                        let m_file = VIRT_IMSIC_M_BASE + u64::from(h) * 0x1000;
                        assert_eq!(r.msis.take(), [(m_file, eiid)], "M file of hart {h}");
                        assert!(!pending(&r.m, 1), "forwarding clears the pending bit");
                        for g in 0..=guests {
                            let eiid = 0x7ff - g;
                            wr(&r.s, target(2), (h << 18) | (g << 12) | eiid);
                            wr(&r.s, SETIPNUM, 2);
                            let file = virt_s_file(u64::from(h), u64::from(g), u64::from(guests));
                            assert_eq!(
                                r.msis.take(),
                                [(file, eiid)],
                                "{harts} harts, {guests} guests: hart {h} guest {g}"
                            );
                            assert!(!pending(&r.s, 2));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn msis_leave_only_when_pending_enabled_and_ie() {
        let mut config = AplicConfig::virt(Delivery::Msi);
        config.msi_addr = Some(MsiAddrCfg::virt(1, 0));
        let r = rig_with(config, 1);
        let file = VIRT_IMSIC_M_BASE;
        wr(&r.m, sourcecfg(1), EDGE1);
        wr(&r.m, target(1), 5);
        wr(&r.m, SETIPNUM, 1);
        wr(&r.m, DOMAINCFG, IE);
        assert!(r.msis.take().is_empty(), "not enabled");
        assert!(pending(&r.m, 1));
        wr(&r.m, DOMAINCFG, 0);
        wr(&r.m, SETIENUM, 1);
        assert!(r.msis.take().is_empty(), "IE is clear");
        wr(&r.m, DOMAINCFG, IE);
        assert_eq!(r.msis.take(), [(file, 5)]);
        assert!(!pending(&r.m, 1));

        // A level source is forwarded once per assertion (AIA "Special consideration
        // for level-sensitive interrupt sources").
        let two = r.aplic.line(2).unwrap();
        active(&r.m, 2, LEVEL1);
        wr(&r.m, target(2), 6);
        two.set_level(true);
        assert_eq!(r.msis.take(), [(file, 6)]);
        two.set_level(true);
        assert!(r.msis.take().is_empty());
        wr(&r.m, SETIPNUM, 2);
        assert_eq!(
            r.msis.take(),
            [(file, 6)],
            "setipnum re-sends while asserted"
        );
        two.set_level(false);
        wr(&r.m, SETIPNUM, 2);
        assert!(r.msis.take().is_empty(), "not while deasserted");
        two.set_level(true);
        assert_eq!(r.msis.take(), [(file, 6)]);
        // Held back by IE, the pending bit clears with the line or by clrip.
        wr(&r.m, DOMAINCFG, 0);
        two.set_level(false);
        two.set_level(true);
        assert!(pending(&r.m, 2));
        two.set_level(false);
        assert!(!pending(&r.m, 2));
        two.set_level(true);
        wr(&r.m, CLRIPNUM, 2);
        assert!(!pending(&r.m, 2));
        assert!(r.msis.take().is_empty());
        // Delivery mode changes: switching to MSI forwards what is pending.
        let mut config = AplicConfig::virt(Delivery::Both);
        config.msi_addr = Some(MsiAddrCfg::virt(2, 0));
        let r = rig_with(config, 2);
        active(&r.m, 3, EDGE1);
        wr(&r.m, SETIPNUM, 3);
        wr(&r.m, DOMAINCFG, IE);
        assert!(r.msis.take().is_empty());
        wr(&r.m, target(3), (1 << 18) | 1);
        wr(&r.m, DOMAINCFG, IE | DOMAINCFG_DM);
        assert_eq!(
            r.msis.take(),
            [(VIRT_IMSIC_M_BASE + 0x1000, 0)],
            "the hart index is kept, the EIID starts at 0"
        );
    }

    #[test]
    fn genmsi_sends_an_extempore_msi() {
        let mut config = AplicConfig::virt(Delivery::Msi);
        config.msi_addr = Some(MsiAddrCfg::virt(2, 1));
        let r = rig_with(config, 2);
        // Busy and guest index bits are not kept; IE does not matter.
        wr(&r.m, GENMSI, (1 << 18) | (1 << 12) | (0x3f << 12) | 42);
        assert_eq!(r.msis.take(), [(VIRT_IMSIC_M_BASE + 0x1000, 42)]);
        assert_eq!(rd(&r.m, GENMSI), (1 << 18) | 42);
        wr(&r.s, GENMSI, (1 << 18) | 7);
        assert_eq!(r.msis.take(), [(virt_s_file(1, 0, 1), 7)]);
        assert_eq!(rd(&r.s, GENMSI), (1 << 18) | 7);

        let r = rig(Delivery::Direct, 1);
        wr(&r.m, GENMSI, (1 << 18) | 42);
        assert_eq!(rd(&r.m, GENMSI), 0);
        assert!(r.msis.take().is_empty());
    }

    #[test]
    fn msi_address_registers_live_in_the_root_and_lock() {
        let r = rig(Delivery::Msi, 1);
        for off in [MMSIADDRCFG, MMSIADDRCFGH, SMSIADDRCFG, SMSIADDRCFGH] {
            assert_eq!(rd(&r.m, off), 0);
        }
        wr(&r.m, MMSIADDRCFG, u32::MAX);
        wr(&r.m, MMSIADDRCFGH, 0x7fff_ffff);
        wr(&r.m, SMSIADDRCFG, u32::MAX);
        wr(&r.m, SMSIADDRCFGH, u32::MAX);
        assert_eq!(rd(&r.m, MMSIADDRCFG), u32::MAX);
        assert_eq!(rd(&r.m, MMSIADDRCFGH), 0x1f77_ffff);
        assert_eq!(rd(&r.m, SMSIADDRCFG), u32::MAX);
        assert_eq!(rd(&r.m, SMSIADDRCFGH), 0x0070_0fff);
        // The supervisor domain does not implement them.
        for off in [MMSIADDRCFG, MMSIADDRCFGH, SMSIADDRCFG, SMSIADDRCFGH] {
            wr(&r.s, off, 0x1234);
            assert_eq!(rd(&r.s, off), 0);
        }
        // L locks all four.
        wr(&r.m, MMSIADDRCFGH, MSIADDRCFGH_L | 0x12);
        assert_eq!(rd(&r.m, MMSIADDRCFGH), 0x8000_0012);
        for off in [MMSIADDRCFG, MMSIADDRCFGH, SMSIADDRCFG, SMSIADDRCFGH] {
            wr(&r.m, off, 0);
        }
        assert_eq!(rd(&r.m, MMSIADDRCFG), u32::MAX);
        assert_eq!(rd(&r.m, MMSIADDRCFGH), 0x8000_0012);
        assert_eq!(rd(&r.m, SMSIADDRCFGH), 0x0070_0fff);

        // Preset and locked, the registers keep the virt board's values.
        let mut config = AplicConfig::virt(Delivery::Msi);
        let cfg = MsiAddrCfg::virt(4, 3);
        assert_eq!(cfg.mmsiaddrcfg, 0x24000);
        assert_eq!(cfg.mmsiaddrcfgh, 2 << 12, "LHXW = 2 for 4 harts");
        assert_eq!(cfg.smsiaddrcfg, 0x28000);
        assert_eq!(cfg.smsiaddrcfgh, 2 << 20, "LHXS = 2 for S + 3 guest files");
        config.msi_addr = Some(cfg.locked());
        let r = rig_with(config, 4);
        wr(&r.m, MMSIADDRCFG, 0);
        assert_eq!(rd(&r.m, MMSIADDRCFG), 0x24000);
        assert_eq!(rd(&r.m, MMSIADDRCFGH), 0x8000_2000);

        // An APLIC without MSI delivery has none of them.
        let r = rig(Delivery::Direct, 1);
        wr(&r.m, MMSIADDRCFG, 0x1234);
        assert_eq!(rd(&r.m, MMSIADDRCFG), 0);
    }

    #[test]
    fn setipnum_le_and_be() {
        let r = rig(Delivery::Direct, 1);
        active(&r.m, 3, EDGE1);
        wr(&r.m, SETIPNUM_LE, 3);
        assert!(pending(&r.m, 3));
        wr(&r.m, CLRIPNUM, 3);
        wr(&r.m, SETIPNUM_BE, 3);
        assert!(!pending(&r.m, 3), "3 big-endian is no source");
        wr(&r.m, SETIPNUM_BE, 0x0300_0000);
        assert!(pending(&r.m, 3));
        wr(&r.m, CLRIPNUM, 3);
        wr(&r.m, SETIPNUM, 0x0300_0000);
        assert!(!pending(&r.m, 3), "setipnum is little-endian (BE = 0)");
    }

    #[test]
    fn only_aligned_words_reach_registers() {
        let r = rig(Delivery::Direct, 1);
        active(&r.m, 3, EDGE1);
        for size in [1, 2, 8] {
            assert_eq!(r.m.read(0, DOMAINCFG, size), 0);
            r.m.write(0, DOMAINCFG, size, u64::from(IE));
            r.m.write(0, SETIPNUM, size, 3);
        }
        assert_eq!(r.m.read(0, DOMAINCFG + 1, 4), 0);
        assert_eq!(r.m.read(0, sourcecfg(3) + 2, 4), 0);
        r.m.write(0, SETIPNUM + 1, 4, 3);
        r.m.write(0, SETIPNUM + 2, 4, 3);
        assert_eq!(rd(&r.m, DOMAINCFG), 0x8000_0000);
        assert!(!pending(&r.m, 3));
        // The upper half of an 8-byte value is not a register.
        r.m.write(0, SETIPNUM, 4, 3 | 1 << 32);
        assert!(pending(&r.m, 3));
    }

    #[test]
    fn save_and_restore_round_trip() {
        let mut config = AplicConfig::virt(Delivery::Both);
        config.msi_addr = Some(MsiAddrCfg::virt(2, 1));
        let r = rig_with(config, 2);
        let lines: Vec<_> = (1..=96).map(|id| r.aplic.line(id).unwrap()).collect();
        active(&r.m, 1, LEVEL1);
        active(&r.m, 2, EDGE0);
        active(&r.m, 3, DETACHED);
        wr(&r.m, target(3), (1 << 18) | 4);
        wr(&r.m, SETIPNUM, 3);
        wr(&r.m, sourcecfg(4), D | 3);
        for id in 10..20 {
            delegate(&r, id);
            active(&r.s, id, [EDGE1, LEVEL0][id as usize % 2]);
        }
        wr(&r.s, SETIPNUM, 11);
        wr(&r.s, CLRIENUM, 13);
        lines[0].set_level(true);
        lines[11].set_level(true);
        deliver(&r.m, 1);
        deliver(&r.s, 0);
        wr(&r.m, idc(0, ITHRESHOLD), 3);
        wr(&r.s, idc(1, IFORCE), 1);
        wr(&r.s, idc(1, IDELIVERY), 1);
        wr(&r.m, SMSIADDRCFG, 0x5555);
        let saved = r.aplic.save();
        assert_ne!(
            saved,
            Aplic::new(config, vec![], Arc::new(RecordingMsi::default()))
                .unwrap()
                .save()
        );

        let copy = rig_with(config, 2);
        copy.aplic.restore(&saved).unwrap();
        assert_eq!(copy.aplic.save(), saved);
        for h in 0..2 {
            assert_eq!(copy.harts[h].pending(), r.harts[h].pending(), "hart {h}");
        }
        assert_eq!(copy.harts[1].pending(), MEIP | SEIP);
        assert_eq!(copy.harts[0].pending(), SEIP);
        assert_eq!(rd(&copy.m, idc(1, CLAIMI)), (3 << 16) | 4);

        // A state of another shape is refused.
        let small = rig_with(config, 1);
        let before = small.aplic.save();
        assert!(matches!(
            small.aplic.restore(&saved),
            Err(AplicError::StateShape(_))
        ));
        assert_eq!(small.aplic.save(), before);

        // Reset returns to the power-on state and lowers the lines.
        r.aplic.reset();
        assert_eq!(rd(&r.m, DOMAINCFG), 0x8000_0000);
        assert_eq!(rd(&r.m, sourcecfg(1)), 0);
        assert_eq!(rd(&r.m, SMSIADDRCFG), 0x28000, "back to the preset");
        assert_eq!(r.harts[1].pending(), 0);
        assert_eq!(r.harts[0].pending(), 0);
    }

    #[test]
    fn bad_host_configuration_is_an_error() {
        let r = rig(Delivery::Direct, 1);
        assert!(r.aplic.line(0).is_err());
        assert_eq!(
            r.aplic.line(97).err(),
            Some(AplicError::NoSource { id: 97, last: 96 })
        );
        assert!(r.aplic.line(96).is_ok());
        assert_eq!(r.aplic.num_sources(), 96);
        let new = |sources, bits| {
            let mut c = AplicConfig::virt(Delivery::Direct);
            c.num_sources = sources;
            c.iprio_bits = bits;
            Aplic::new(c, vec![], Arc::new(crate::irq::NoMsi)).err()
        };
        assert_eq!(new(0, 3), Some(AplicError::Sources(0)));
        assert_eq!(new(1024, 3), Some(AplicError::Sources(1024)));
        assert_eq!(new(1023, 3), None);
        assert_eq!(new(1, 8), None);
        assert_eq!(new(96, 0), Some(AplicError::PriorityBits(0)));
        assert_eq!(new(96, 9), Some(AplicError::PriorityBits(9)));
        let harts: Vec<_> = (0..=MAX_HARTS)
            .map(|_| Arc::new(HartSignals::new()))
            .collect();
        let c = AplicConfig::virt(Delivery::Direct);
        assert_eq!(
            Aplic::new(c, harts, Arc::new(crate::irq::NoMsi)).err(),
            Some(AplicError::TooManyHarts(MAX_HARTS + 1))
        );
    }

    #[test]
    fn window_sizes_follow_qemu() {
        assert_eq!(window_size(0), 0x4000);
        assert_eq!(window_size(1), 0x8000);
        assert_eq!(window_size(512), 0x8000);
        assert_eq!(window_size(513), 0xc000);
        assert_eq!(VIRT_WINDOW_SIZE, 0x8000);
        assert_eq!(rig(Delivery::Direct, 4).aplic.window_size(), 0x8000);
    }

    #[test]
    fn one_bit_priorities_are_always_one() {
        let mut c = AplicConfig::virt(Delivery::Direct);
        c.iprio_bits = 1;
        let r = rig_with(c, 1);
        wr(&r.m, sourcecfg(1), DETACHED);
        wr(&r.m, target(1), 0);
        assert_eq!(rd(&r.m, target(1)), 1);
        wr(&r.m, target(1), 0xfe);
        assert_eq!(rd(&r.m, target(1)), 1);
        wr(&r.m, idc(0, ITHRESHOLD), 0xff);
        assert_eq!(rd(&r.m, idc(0, ITHRESHOLD)), 1);
    }

    #[test]
    fn uart_interrupt_reaches_the_hart_through_the_supervisor_domain() {
        use crate::uart16550::Uart16550;
        let r = rig(Delivery::Direct, 1);
        let uart = Uart16550::new(r.aplic.line(10).unwrap(), Box::new(std::io::sink()));
        delegate(&r, 10);
        active(&r.s, 10, LEVEL1);
        deliver(&r.s, 0);
        uart.write(0, 1, 1, 1); // IER.ERBFI
        assert_eq!(r.harts[0].pending(), 0);
        uart.push_input(b"k");
        assert_eq!(r.harts[0].pending(), SEIP);
        assert_eq!(rd(&r.s, idc(0, CLAIMI)), (10 << 16) | 1);
        assert_eq!(uart.read(0, 0, 1), u64::from(b'k'));
        assert_eq!(r.harts[0].pending(), 0, "the UART lowered its line");
    }

    #[test]
    fn no_access_panics() {
        for delivery in [Delivery::Direct, Delivery::Msi, Delivery::Both] {
            let r = rig(delivery, 2);
            let lines: Vec<_> = (1..=96).map(|id| r.aplic.line(id).unwrap()).collect();
            for w in [&r.m, &r.s] {
                wr(w, DOMAINCFG, IE | DOMAINCFG_DM);
                let probes = (0..0x4100)
                    .chain(VIRT_WINDOW_SIZE - 8..VIRT_WINDOW_SIZE + 8)
                    .chain([u64::MAX - 3, u64::MAX]);
                for off in probes {
                    for size in [1, 2, 4, 8] {
                        w.write(0, off, size, u64::MAX);
                        w.read(0, off, size);
                        w.write(1, off, size, off);
                        w.read(5, off, size);
                    }
                    if off % 97 == 0 {
                        lines[(off / 97) as usize % 96].set_level(off % 2 == 0);
                    }
                }
            }
            r.msis.take();
        }
    }
}
