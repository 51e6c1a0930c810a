//! Physical Memory Protection (Priv spec, "Physical Memory Protection"): 16 entries,
//! granularity G = 0 (4 bytes), RV64 layout (only the even-numbered pmpcfg CSRs exist).

use super::mmu::{Access, Perms, Priv};

/// Implemented PMP entries.
pub const PMP_ENTRIES: usize = 16;
/// Architectural PMP entries (pmpaddr0..63, pmpcfg0..15); those past [`PMP_ENTRIES`]
/// read as zero and ignore writes.
pub const PMP_MAX_ENTRIES: usize = 64;

const CFG_A_SHIFT: u32 = 3;
const CFG_A: u8 = 3 << CFG_A_SHIFT;
const CFG_L: u8 = 1 << 7;
/// Bits 6:5 are reserved and read as zero.
const CFG_WRITABLE: u8 = 0x9f;
/// RV64 pmpaddr holds bits 55:2 of the address.
const ADDR_MASK: u64 = (1 << 54) - 1;

/// Address-matching mode, the A field of a pmpcfg entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    Off,
    /// Top of range: `pmpaddr[i-1] <= addr >> 2 < pmpaddr[i]`.
    Tor,
    /// Naturally aligned four-byte region.
    Na4,
    /// Naturally aligned power-of-two region of at least eight bytes.
    Napot,
}

impl Matching {
    const fn of(cfg: u8) -> Matching {
        match (cfg & CFG_A) >> CFG_A_SHIFT {
            0 => Matching::Off,
            1 => Matching::Tor,
            2 => Matching::Na4,
            _ => Matching::Napot,
        }
    }
}

/// A PMP CSR number that does not exist: the hart raises an illegal-instruction
/// exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PmpError {
    #[error("pmpcfg{0} does not exist on RV64")]
    OddCfg(usize),
    #[error("PMP CSR index {0} is out of range")]
    OutOfRange(usize),
}

/// One hart's PMP registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pmp {
    cfg: [u8; PMP_ENTRIES],
    addr: [u64; PMP_ENTRIES],
    /// Number of implemented entries (0 or [`PMP_ENTRIES`] in practice).
    entries: usize,
    /// The entries that match something, in priority order: byte range and cfg.
    /// Derived from `cfg` and `addr` after every write ([`Pmp::update`]), so the
    /// matching logic, which runs at every L1 TLB refill, does not decode them again.
    active: Vec<(u128, u128, u8)>,
}

impl Default for Pmp {
    fn default() -> Self {
        Self::new()
    }
}

impl Pmp {
    /// A PMP with all 16 entries implemented, reset to OFF and unlocked (Priv spec:
    /// "the A and L fields of implemented entries reset to zero").
    pub fn new() -> Self {
        Self::with_entries(PMP_ENTRIES)
    }

    /// A PMP with the lowest `entries` entries implemented (at most [`PMP_ENTRIES`]);
    /// with none, PMP never restricts any access.
    pub fn with_entries(entries: usize) -> Self {
        Self {
            cfg: [0; PMP_ENTRIES],
            addr: [0; PMP_ENTRIES],
            entries: entries.min(PMP_ENTRIES),
            active: Vec::new(),
        }
    }

    /// Recomputes `active` from the registers.
    fn update(&mut self) {
        self.active = (0..self.entries)
            .filter_map(|i| self.range(i).map(|(lo, hi)| (lo, hi, self.cfg[i])))
            .collect();
    }

    /// Reads `pmpcfg<index>` (CSR 0x3a0 + index).
    pub fn read_cfg(&self, index: usize) -> Result<u64, PmpError> {
        let first = Self::cfg_first_entry(index)?;
        Ok((0..8).fold(0u64, |v, k| {
            v | u64::from(self.cfg.get(first + k).copied().unwrap_or(0)) << (8 * k)
        }))
    }

    /// Writes `pmpcfg<index>`, byte by byte with the WARL rules of each entry.
    pub fn write_cfg(&mut self, index: usize, value: u64) -> Result<(), PmpError> {
        let first = Self::cfg_first_entry(index)?;
        for k in 0..8 {
            let entry = first + k;
            if entry >= self.entries {
                break;
            }
            if self.cfg[entry] & CFG_L != 0 {
                // Locked entries ignore writes to pmpcfg and pmpaddr until reset.
                continue;
            }
            let cfg = (value >> (8 * k)) as u8 & CFG_WRITABLE;
            // R=0, W=1 is reserved without Smepmp (Priv spec, "Physical Memory
            // Protection CSRs"); the field is WARL. Rivet keeps the written value, as
            // QEMU does, so software reads back what it wrote.
            self.cfg[entry] = cfg;
        }
        self.update();
        Ok(())
    }

    /// Reads `pmpaddr<index>` (CSR 0x3b0 + index).
    pub fn read_addr(&self, index: usize) -> Result<u64, PmpError> {
        if index >= PMP_MAX_ENTRIES {
            return Err(PmpError::OutOfRange(index));
        }
        Ok(if index < self.entries {
            self.addr[index]
        } else {
            0
        })
    }

    /// Writes `pmpaddr<index>`. Ignored when entry `index` is locked, or when entry
    /// `index + 1` is a locked TOR entry, whose bottom this register is (Priv spec,
    /// "Locking and Privilege Mode").
    pub fn write_addr(&mut self, index: usize, value: u64) -> Result<(), PmpError> {
        if index >= PMP_MAX_ENTRIES {
            return Err(PmpError::OutOfRange(index));
        }
        if index >= self.entries || self.cfg[index] & CFG_L != 0 {
            return Ok(());
        }
        if let Some(&next) = self.cfg[..self.entries].get(index + 1) {
            if next & CFG_L != 0 && Matching::of(next) == Matching::Tor {
                return Ok(());
            }
        }
        self.addr[index] = value & ADDR_MASK;
        self.update();
        Ok(())
    }

    /// Whether an access of `size` bytes at `paddr` with effective privilege `privilege`
    /// is allowed.
    ///
    /// The lowest-numbered entry matching any byte decides; it must match every byte or
    /// the access fails whatever its permissions. M-mode accesses obey only locked
    /// entries and succeed when nothing matches; S/U accesses fail when nothing matches
    /// and any entry is implemented (Priv spec, "Priority and Matching Logic").
    pub fn check(&self, paddr: u64, size: u64, access: Access, privilege: Priv) -> bool {
        let lo = u128::from(paddr);
        let hi = lo + u128::from(size.max(1));
        self.decide(lo, hi, privilege).allows(access)
    }

    /// The permissions `privilege` has on every byte of the 4 KiB page holding `paddr`:
    /// what an L1 TLB entry may grant without further PMP checks. Empty when an entry
    /// covers only part of the page (such pages take the slow path on every access).
    pub fn page_perms(&self, paddr: u64, privilege: Priv) -> Perms {
        let lo = u128::from(paddr & !0xfff);
        self.decide(lo, lo + 0x1000, privilege)
    }

    /// Whether PMP never restricts accesses of `privilege`: for M-mode, no entry is
    /// active (even an unlocked entry makes M-mode accesses that straddle its boundary
    /// fail); for S/U, no entry is implemented.
    pub fn is_trivial(&self, privilege: Priv) -> bool {
        match privilege {
            Priv::M => self.cfg[..self.entries]
                .iter()
                .all(|&c| Matching::of(c) == Matching::Off),
            Priv::S | Priv::U => self.entries == 0,
        }
    }

    /// The permissions for the byte range `[lo, hi)`, as the matching logic decides.
    fn decide(&self, lo: u128, hi: u128, privilege: Priv) -> Perms {
        for &(start, end, cfg) in &self.active {
            if hi <= start || end <= lo {
                continue;
            }
            if lo < start || end < hi {
                return Perms::NONE;
            }
            return if privilege == Priv::M && cfg & CFG_L == 0 {
                Perms::RWX
            } else {
                Perms::from_bits(cfg)
            };
        }
        if privilege == Priv::M || self.entries == 0 {
            Perms::RWX
        } else {
            Perms::NONE
        }
    }

    /// The byte range `[start, end)` entry `i` matches; `None` when it matches nothing.
    fn range(&self, i: usize) -> Option<(u128, u128)> {
        let addr = u128::from(self.addr[i]);
        let (start, end) = match Matching::of(self.cfg[i]) {
            Matching::Off => return None,
            Matching::Tor => {
                let below = if i == 0 { 0 } else { self.addr[i - 1] };
                (u128::from(below) << 2, addr << 2)
            }
            Matching::Na4 => (addr << 2, (addr << 2) + 4),
            Matching::Napot => {
                // pmpaddr = base/4 | (size/8 - 1): t trailing ones mean 2^(t+3) bytes.
                let t = self.addr[i].trailing_ones();
                let size = 1u128 << (t + 3);
                let start = (addr << 2) & !(size - 1);
                (start, start + size)
            }
        };
        (start < end).then_some((start, end))
    }

    /// The first entry described by `pmpcfg<index>`: RV64 packs eight entries into each
    /// even-numbered pmpcfg; the odd ones do not exist (Priv spec, "Physical Memory
    /// Protection CSRs").
    fn cfg_first_entry(index: usize) -> Result<usize, PmpError> {
        if index >= PMP_MAX_ENTRIES / 4 {
            Err(PmpError::OutOfRange(index))
        } else if !index.is_multiple_of(2) {
            Err(PmpError::OddCfg(index))
        } else {
            Ok(index * 4)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOR: u64 = 1 << 3;
    const NA4: u64 = 2 << 3;
    const NAPOT: u64 = 3 << 3;
    const L: u64 = 1 << 7;
    const R: u64 = 1;
    const W: u64 = 2;
    const X: u64 = 4;

    fn napot(base: u64, size: u64) -> u64 {
        (base >> 2) | ((size >> 3) - 1)
    }

    #[test]
    fn reset_state_denies_s_and_u_but_not_m() {
        let p = Pmp::new();
        assert!(p.check(0x8000_0000, 8, Access::Read, Priv::M));
        assert!(!p.check(0x8000_0000, 8, Access::Read, Priv::S));
        assert!(!p.check(0x8000_0000, 8, Access::Exec, Priv::U));
        assert!(p.is_trivial(Priv::M));
        assert!(!p.is_trivial(Priv::S));
        let none = Pmp::with_entries(0);
        assert!(none.check(0x8000_0000, 8, Access::Write, Priv::U));
        assert!(none.is_trivial(Priv::U));
    }

    #[test]
    fn napot_matches_its_power_of_two_region() {
        let mut p = Pmp::new();
        p.write_addr(0, napot(0x8000_0000, 0x20_0000)).unwrap();
        p.write_cfg(0, NAPOT | R | X).unwrap();
        assert!(p.check(0x8000_0000, 4, Access::Exec, Priv::S));
        assert!(p.check(0x801f_fff8, 8, Access::Read, Priv::U));
        assert!(!p.check(0x8000_1000, 8, Access::Write, Priv::S));
        assert!(!p.check(0x8020_0000, 1, Access::Read, Priv::S));
        assert!(!p.check(0x7fff_fffc, 4, Access::Read, Priv::S));
        // Smallest NAPOT region: 8 bytes.
        p.write_addr(1, napot(0x1000, 8)).unwrap();
        p.write_cfg(0, (NAPOT | R | X) | ((NAPOT | R) << 8))
            .unwrap();
        assert!(p.check(0x1004, 4, Access::Read, Priv::S));
        assert!(!p.check(0x1008, 4, Access::Read, Priv::S));
        // All ones: the whole 56-bit physical address space.
        p.write_addr(2, u64::MAX).unwrap();
        assert_eq!(p.read_addr(2), Ok((1 << 54) - 1));
        p.write_cfg(
            0,
            (NAPOT | R | X) | ((NAPOT | R) << 8) | ((NAPOT | R | W) << 16),
        )
        .unwrap();
        assert!(p.check((1 << 56) - 8, 8, Access::Write, Priv::U));
    }

    #[test]
    fn tor_uses_the_previous_address_and_entry_0_starts_at_zero() {
        let mut p = Pmp::new();
        p.write_addr(0, 0x1000 >> 2).unwrap();
        p.write_addr(1, 0x3000 >> 2).unwrap();
        p.write_cfg(0, (TOR | R) | ((TOR | R | W) << 8)).unwrap();
        assert!(p.check(0, 8, Access::Read, Priv::S));
        assert!(!p.check(0, 8, Access::Write, Priv::S));
        assert!(p.check(0x1000, 8, Access::Write, Priv::S));
        assert!(p.check(0x2ff8, 8, Access::Write, Priv::S));
        assert!(!p.check(0x3000, 8, Access::Read, Priv::S));
        // An empty TOR range (top below bottom) matches nothing.
        p.write_addr(1, 0x800 >> 2).unwrap();
        assert!(!p.check(0x1000, 4, Access::Read, Priv::S));
    }

    #[test]
    fn na4_matches_four_bytes() {
        let mut p = Pmp::new();
        p.write_addr(0, 0x2004 >> 2).unwrap();
        p.write_cfg(0, NA4 | R).unwrap();
        assert!(p.check(0x2004, 4, Access::Read, Priv::S));
        assert!(!p.check(0x2000, 4, Access::Read, Priv::S));
        assert!(!p.check(0x2008, 1, Access::Read, Priv::S));
    }

    #[test]
    fn lowest_entry_wins_and_partial_matches_fail() {
        let mut p = Pmp::new();
        p.write_addr(0, napot(0x8000_0000, 0x1000)).unwrap();
        p.write_addr(1, napot(0x8000_0000, 0x10_0000)).unwrap();
        p.write_cfg(0, NAPOT | ((NAPOT | R | W | X) << 8)).unwrap();
        assert!(
            !p.check(0x8000_0000, 8, Access::Read, Priv::S),
            "entry 0 denies"
        );
        assert!(
            p.check(0x8000_1000, 8, Access::Read, Priv::S),
            "entry 1 allows"
        );
        // Straddling the end of entry 0: partial match fails, even for M-mode.
        assert!(!p.check(0x8000_0ffc, 8, Access::Read, Priv::S));
        assert!(!p.check(0x8000_0ffc, 8, Access::Read, Priv::M));
        assert!(p.check(0x8000_0ff8, 8, Access::Read, Priv::M));
    }

    #[test]
    fn m_mode_obeys_only_locked_entries() {
        let mut p = Pmp::new();
        p.write_addr(0, napot(0x8000_0000, 0x1000)).unwrap();
        p.write_cfg(0, NAPOT | R).unwrap();
        assert!(p.check(0x8000_0000, 8, Access::Write, Priv::M));
        assert!(!p.is_trivial(Priv::M));
        p.write_cfg(0, NAPOT | R | L).unwrap();
        assert!(!p.check(0x8000_0000, 8, Access::Write, Priv::M));
        assert!(p.check(0x8000_0000, 8, Access::Read, Priv::M));
        assert!(p.check(0x9000_0000, 8, Access::Write, Priv::M), "no match");
    }

    #[test]
    fn locked_entries_ignore_writes() {
        let mut p = Pmp::new();
        p.write_addr(0, 0x1000).unwrap();
        p.write_cfg(0, NA4 | R | L).unwrap();
        p.write_cfg(0, NAPOT | R | W | X).unwrap();
        assert_eq!(p.read_cfg(0), Ok(NA4 | R | L), "cfg stays");
        p.write_addr(0, 0x2000).unwrap();
        assert_eq!(p.read_addr(0), Ok(0x1000), "addr stays");
        // Other entries in the same pmpcfg are still writable.
        p.write_cfg(0, (NA4 | R | L) | ((NA4 | X) << 8)).unwrap();
        assert_eq!(p.read_cfg(0), Ok((NA4 | R | L) | ((NA4 | X) << 8)));
    }

    #[test]
    fn locked_tor_entry_locks_the_previous_address() {
        let mut p = Pmp::new();
        p.write_addr(2, 0x100).unwrap();
        p.write_addr(3, 0x200).unwrap();
        p.write_cfg(0, (TOR | R | L) << 24).unwrap();
        p.write_addr(2, 0x50).unwrap();
        assert_eq!(p.read_addr(2), Ok(0x100));
        // Entry 2 itself is not locked: its cfg can change.
        p.write_cfg(0, ((NA4 | R) << 16) | ((TOR | R | L) << 24))
            .unwrap();
        assert_eq!(p.read_cfg(0).unwrap() >> 16 & 0xff, NA4 | R);
        // A locked NAPOT entry does not lock the address below it.
        let mut p = Pmp::new();
        p.write_cfg(0, (NAPOT | R | L) << 8).unwrap();
        p.write_addr(0, 0x77).unwrap();
        assert_eq!(p.read_addr(0), Ok(0x77));
    }

    #[test]
    fn warl_rules_for_cfg() {
        let mut p = Pmp::new();
        // W without R is reserved but kept as written (as QEMU); bits 6:5 read as zero.
        p.write_cfg(0, W | X | NAPOT | 0x60).unwrap();
        assert_eq!(p.read_cfg(0), Ok(W | X | NAPOT));
        assert_eq!(p.read_cfg(1), Err(PmpError::OddCfg(1)));
        assert_eq!(p.write_cfg(3, 0), Err(PmpError::OddCfg(3)));
        assert_eq!(p.read_cfg(16), Err(PmpError::OutOfRange(16)));
        // Entries past the 16 implemented read as zero and ignore writes.
        p.write_cfg(4, u64::MAX).unwrap();
        assert_eq!(p.read_cfg(4), Ok(0));
        p.write_addr(20, 0x1234).unwrap();
        assert_eq!(p.read_addr(20), Ok(0));
        assert_eq!(p.read_addr(64), Err(PmpError::OutOfRange(64)));
        // pmpcfg2 holds entries 8..15.
        p.write_cfg(2, NA4 | R).unwrap();
        p.write_addr(8, 0x1000 >> 2).unwrap();
        assert!(p.check(0x1000, 4, Access::Read, Priv::S));
    }

    #[test]
    fn page_perms_are_uniform_or_empty() {
        let mut p = Pmp::new();
        // Entry 0: a 64-byte hole in page 0x8000_1000; entry 1: all RAM RWX.
        p.write_addr(0, napot(0x8000_1040, 64)).unwrap();
        p.write_addr(1, napot(0x8000_0000, 0x10_0000)).unwrap();
        p.write_cfg(0, NAPOT | ((NAPOT | R | W | X) << 8)).unwrap();
        assert_eq!(p.page_perms(0x8000_0123, Priv::S), Perms::RWX);
        assert_eq!(p.page_perms(0x8000_1000, Priv::S), Perms::NONE);
        assert_eq!(p.page_perms(0x8000_1000, Priv::M), Perms::NONE);
        assert_eq!(p.page_perms(0x9000_0000, Priv::S), Perms::NONE);
        assert_eq!(p.page_perms(0x9000_0000, Priv::M), Perms::RWX);
        // A region ending mid-page.
        p.write_addr(1, napot(0x8000_0000, 0x800)).unwrap();
        assert_eq!(p.page_perms(0x8000_0000, Priv::S), Perms::NONE);
    }
}
