//! The Incoming MSI Controller (RISC-V AIA specification, chapter "Incoming MSI
//! Controller"): per hart, a machine-level and a supervisor-level interrupt file and
//! GEILEN guest interrupt files, each a page with `seteipnum_le`/`seteipnum_be`, laid
//! out as on QEMU's virt board with `aia=aplic-imsic`:
//!
//! | window | page of |
//! |--------|---------|
//! | [`VIRT_M_BASE`] + hart * 0x1000 | hart's machine-level file |
//! | [`VIRT_S_BASE`] + hart * 2^k * 0x1000 | hart's supervisor-level file, then guest file g at + g * 0x1000 (2^k > GEILEN) |
//!
//! The files' state lives in atomics shared by the MMIO windows (written by any thread:
//! another hart, the APLIC, a device thread) and the hart that owns them (its
//! `*iselect`/`*ireg` and `*topei` CSRs). After every change a file recomputes its
//! output and drives the hart's signal: MEIP for the machine-level file, SEIP for the
//! supervisor-level one, bit g of `hgeip` for guest file g (spec, "Interrupt delivery
//! and handling"); raising a signal kicks the hart.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::bus::MmioDevice;
use crate::irq::{HartSignals, MsiSink, MEIP, SEIP};

/// Interrupt identities per file, as QEMU's virt board (`VIRT_IRQCHIP_NUM_MSIS`): 1 to
/// 255.
pub const NUM_IDS: u32 = 255;
const WORDS: usize = (NUM_IDS as usize + 1) / 64;
/// Base of the machine-level files on the virt board (`VIRT_IMSIC_M`).
pub const VIRT_M_BASE: u64 = 0x2400_0000;
/// Base of the supervisor-level and guest files on the virt board (`VIRT_IMSIC_S`).
pub const VIRT_S_BASE: u64 = 0x2800_0000;
/// Most guest files per hart QEMU's virt board offers (`VIRT_IRQCHIP_MAX_GUESTS`).
pub const MAX_GUESTS: u8 = 7;
const PAGE: u64 = 0x1000;

/// Indirectly accessed file registers (spec, "CSRs for external interrupts via an
/// IMSIC"): `*iselect` numbers.
pub mod iselect {
    pub const EIDELIVERY: u64 = 0x70;
    pub const EITHRESHOLD: u64 = 0x72;
    pub const EIP0: u64 = 0x80;
    pub const EIP63: u64 = 0xbf;
    pub const EIE0: u64 = 0xc0;
    pub const EIE63: u64 = 0xff;
    /// The external-interrupt range of `*iselect`.
    pub const FIRST: u64 = 0x70;
    pub const LAST: u64 = 0xff;
}

/// Why an indirect access to a file register cannot be made: the hart raises an
/// illegal-instruction exception (a virtual-instruction one from VS-mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IndirectError {
    /// `eip1`, `eip3`, ... and `eie1`, ... do not exist with XLEN = 64.
    #[error("Odd eip/eie register {0:#x} does not exist on RV64")]
    Odd(u64),
    /// Not in 0x70-0xFF.
    #[error("Register {0:#x} is not an interrupt-file register")]
    NotFile(u64),
}

/// Which of the hart's signals a file drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Machine,
    Supervisor,
    /// Guest file 1..=GEILEN.
    Guest(u8),
}

/// One interrupt file.
pub struct File {
    level: Level,
    /// 0: delivery disabled; 1: enabled (0x40000000, PLIC/APLIC delivery, is not
    /// supported).
    eidelivery: AtomicU32,
    eithreshold: AtomicU32,
    eip: [AtomicU64; WORDS],
    eie: [AtomicU64; WORDS],
    signals: Arc<HartSignals>,
}

/// A plain copy of a file's state (save/restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileState {
    pub eidelivery: u32,
    pub eithreshold: u32,
    pub eip: [u64; WORDS],
    pub eie: [u64; WORDS],
}

/// Bits of the eip/eie words that are implemented identities (bit 0 of word 0, identity
/// 0, never is).
const fn valid_mask(word: usize) -> u64 {
    if word == 0 {
        !1
    } else {
        u64::MAX
    }
}

impl File {
    fn new(level: Level, signals: Arc<HartSignals>) -> Self {
        Self {
            level,
            eidelivery: AtomicU32::new(0),
            eithreshold: AtomicU32::new(0),
            eip: Default::default(),
            eie: Default::default(),
            signals,
        }
    }

    /// The identity `*topei` reports: the lowest pending and enabled identity below a
    /// nonzero threshold, or 0 (spec, "Top external interrupt CSRs").
    pub fn top(&self) -> u32 {
        let threshold = self.eithreshold.load(Ordering::Acquire);
        for w in 0..WORDS {
            let ready = self.eip[w].load(Ordering::Acquire) & self.eie[w].load(Ordering::Acquire);
            if ready != 0 {
                let id = (w as u32) * 64 + ready.trailing_zeros();
                return if threshold == 0 || id < threshold {
                    id
                } else {
                    0
                };
            }
        }
        0
    }

    /// The value of the `*topei` CSR: identity in bits 26:16 and again in 10:0.
    pub fn topei(&self) -> u64 {
        let id = u64::from(self.top());
        id << 16 | id
    }

    /// A write of `*topei`: claims the identity the CSR reads now. Returns the value
    /// read (what a CSR instruction that reads and writes returns).
    pub fn claim(&self) -> u64 {
        let id = self.top();
        if id != 0 {
            self.eip[id as usize / 64].fetch_and(!(1 << (id % 64)), Ordering::AcqRel);
            self.update();
        }
        u64::from(id) << 16 | u64::from(id)
    }

    /// An MSI with data `id`: sets its pending bit when `id` is an implemented identity.
    pub fn set_pending(&self, id: u32) {
        if (1..=NUM_IDS).contains(&id) {
            self.eip[id as usize / 64].fetch_or(1 << (id % 64), Ordering::AcqRel);
            self.update();
        }
    }

    /// Whether the file signals an interrupt to its hart.
    pub fn output(&self) -> bool {
        self.eidelivery.load(Ordering::Acquire) == 1 && self.top() != 0
    }

    /// Recomputes the output and drives the hart's signal.
    fn update(&self) {
        let high = self.output();
        match self.level {
            Level::Machine => self.signals.set_level(MEIP, high),
            Level::Supervisor => self.signals.set_level(SEIP, high),
            Level::Guest(g) => self.signals.set_hgeip(1 << g, high),
        }
    }

    fn word(sel: u64) -> Result<(bool, usize), IndirectError> {
        let (eie, k) = match sel {
            iselect::EIP0..=iselect::EIP63 => (false, sel - iselect::EIP0),
            iselect::EIE0..=iselect::EIE63 => (true, sel - iselect::EIE0),
            _ => return Err(IndirectError::NotFile(sel)),
        };
        if k % 2 == 1 {
            return Err(IndirectError::Odd(sel));
        }
        Ok((eie, (k / 2) as usize))
    }

    /// Reads the register `sel` (0x70-0xFF) selects.
    pub fn read(&self, sel: u64) -> Result<u64, IndirectError> {
        match sel {
            iselect::EIDELIVERY => Ok(u64::from(self.eidelivery.load(Ordering::Acquire))),
            iselect::EITHRESHOLD => Ok(u64::from(self.eithreshold.load(Ordering::Acquire))),
            0x71 | 0x73..=0x7f => Ok(0),
            _ => {
                let (eie, w) = Self::word(sel)?;
                let array = if eie { &self.eie } else { &self.eip };
                Ok(array.get(w).map_or(0, |a| a.load(Ordering::Acquire)))
            }
        }
    }

    /// Atomically replaces the register `sel` selects with `f(old)`; returns the old
    /// value. An MSI that arrives meanwhile is never lost: eip words change by
    /// compare-and-swap.
    pub fn modify(&self, sel: u64, f: impl Fn(u64) -> u64) -> Result<u64, IndirectError> {
        let old = match sel {
            iselect::EIDELIVERY => {
                let old = u64::from(self.eidelivery.load(Ordering::Acquire));
                // WARL: 0 and 1 only.
                let new = f(old);
                if new <= 1 {
                    self.eidelivery.store(new as u32, Ordering::Release);
                }
                old
            }
            iselect::EITHRESHOLD => {
                let old = u64::from(self.eithreshold.load(Ordering::Acquire));
                // WLRL over 0..=NUM_IDS: keep the implemented bits.
                let new = f(old) & 0x7ff;
                if new <= u64::from(NUM_IDS) {
                    self.eithreshold.store(new as u32, Ordering::Release);
                }
                old
            }
            0x71 | 0x73..=0x7f => 0,
            _ => {
                let (eie, w) = Self::word(sel)?;
                let array = if eie { &self.eie } else { &self.eip };
                let Some(a) = array.get(w) else {
                    return Ok(0);
                };
                let mask = valid_mask(w);
                a.fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                    Some((cur & !mask) | (f(cur) & mask))
                })
                .unwrap_or_else(|v| v)
            }
        };
        self.update();
        Ok(old)
    }

    pub fn save(&self) -> FileState {
        FileState {
            eidelivery: self.eidelivery.load(Ordering::Acquire),
            eithreshold: self.eithreshold.load(Ordering::Acquire),
            eip: std::array::from_fn(|w| self.eip[w].load(Ordering::Acquire)),
            eie: std::array::from_fn(|w| self.eie[w].load(Ordering::Acquire)),
        }
    }

    pub fn restore(&self, s: &FileState) {
        self.eidelivery
            .store(s.eidelivery.min(1), Ordering::Release);
        self.eithreshold
            .store(s.eithreshold.min(NUM_IDS), Ordering::Release);
        for w in 0..WORDS {
            self.eip[w].store(s.eip[w] & valid_mask(w), Ordering::Release);
            self.eie[w].store(s.eie[w] & valid_mask(w), Ordering::Release);
        }
        self.update();
    }
}

/// The interrupt files of one hart: machine, supervisor, and guests 1..=GEILEN.
pub struct HartFiles {
    pub m: File,
    pub s: File,
    /// Index g - 1 holds guest file g.
    pub guests: Vec<File>,
}

impl HartFiles {
    pub fn new(signals: Arc<HartSignals>, guests: u8) -> Self {
        Self {
            m: File::new(Level::Machine, signals.clone()),
            s: File::new(Level::Supervisor, signals.clone()),
            guests: (1..=guests)
                .map(|g| File::new(Level::Guest(g), signals.clone()))
                .collect(),
        }
    }

    /// GEILEN: the number of guest files.
    pub fn geilen(&self) -> u8 {
        self.guests.len() as u8
    }

    /// Guest file `g` (1-based), if implemented.
    pub fn guest(&self, g: u64) -> Option<&File> {
        usize::try_from(g)
            .ok()
            .and_then(|g| g.checked_sub(1))
            .and_then(|i| self.guests.get(i))
    }
}

/// The IMSICs of a machine: every hart's files, and the two windows of the virt board.
pub struct Imsic {
    harts: Vec<Arc<HartFiles>>,
    /// log2 of the pages per hart in the supervisor window (S file and guests).
    s_shift: u32,
}

impl Imsic {
    /// Files for every hart with `guests` guest files each (at most [`MAX_GUESTS`]).
    pub fn new(harts: &[Arc<HartSignals>], guests: u8) -> Arc<Self> {
        let guests = guests.min(MAX_GUESTS);
        Arc::new(Self {
            harts: harts
                .iter()
                .map(|s| Arc::new(HartFiles::new(s.clone(), guests)))
                .collect(),
            s_shift: Self::guest_bits(guests),
        })
    }

    /// Bits of the guest index in a supervisor-window address: ceil(log2(guests + 1)),
    /// the device tree's `riscv,guest-index-bits`.
    pub const fn guest_bits(guests: u8) -> u32 {
        let n = guests as u32 + 1;
        if n <= 1 {
            0
        } else {
            32 - (n - 1).leading_zeros()
        }
    }

    /// The files of hart `h`.
    pub fn hart(&self, h: usize) -> Option<Arc<HartFiles>> {
        self.harts.get(h).cloned()
    }

    pub fn harts(&self) -> usize {
        self.harts.len()
    }

    /// Sizes of the machine- and supervisor-level windows of `harts` harts with
    /// `guests` guest files each: a page per machine-level file; per hart, its
    /// supervisor-level file and guest files padded to a power of two.
    pub const fn window_sizes(harts: usize, guests: u8) -> (u64, u64) {
        let m = if harts == 0 { 1 } else { harts as u64 } * PAGE;
        (m, m << Self::guest_bits(guests))
    }

    /// Size of the machine-level window.
    pub fn m_window_size(&self) -> u64 {
        Self::window_sizes(self.harts.len(), 0).0
    }

    /// Size of the supervisor-level window.
    pub fn s_window_size(&self) -> u64 {
        Self::window_sizes(self.harts.len(), 0).1 << self.s_shift
    }

    /// The device of the machine-level window.
    pub fn m_window(self: &Arc<Self>) -> Arc<dyn MmioDevice> {
        Arc::new(Window {
            imsic: self.clone(),
            supervisor: false,
        })
    }

    /// The device of the supervisor-level window.
    pub fn s_window(self: &Arc<Self>) -> Arc<dyn MmioDevice> {
        Arc::new(Window {
            imsic: self.clone(),
            supervisor: true,
        })
    }

    /// The file whose page is at `offset` of a window.
    fn file_at(&self, supervisor: bool, offset: u64) -> Option<&File> {
        let page = offset / PAGE;
        if !supervisor {
            return self.harts.get(usize::try_from(page).ok()?).map(|h| &h.m);
        }
        let hart = usize::try_from(page >> self.s_shift).ok()?;
        let g = page & ((1 << self.s_shift) - 1);
        let files = self.harts.get(hart)?;
        if g == 0 {
            Some(&files.s)
        } else {
            files.guest(g)
        }
    }

    /// A 32-bit write to offset `at` of a file page: `seteipnum_le` (0) takes the
    /// identity in little-endian order, `seteipnum_be` (4) in big-endian order; other
    /// words are read-only zeros.
    fn write_page(file: &File, at: u64, value: u32) {
        match at {
            0 => file.set_pending(value),
            4 => file.set_pending(value.swap_bytes()),
            _ => {}
        }
    }

    fn write(&self, supervisor: bool, offset: u64, size: u8, value: u64) {
        // Only naturally aligned 32-bit writes (spec, "Memory region for an interrupt
        // file"); anything else is ignored.
        if size != 4 || !offset.is_multiple_of(4) {
            return;
        }
        if let Some(f) = self.file_at(supervisor, offset) {
            Self::write_page(f, offset % PAGE, value as u32);
        }
    }
}

/// MSIs from the APLIC (or any bus master) by physical address on the virt board.
impl MsiSink for Imsic {
    fn msi(&self, addr: u64, data: u32) {
        let m_end = VIRT_M_BASE + self.m_window_size();
        let s_end = VIRT_S_BASE + self.s_window_size();
        if (VIRT_M_BASE..m_end).contains(&addr) {
            self.write(false, addr - VIRT_M_BASE, 4, u64::from(data));
        } else if (VIRT_S_BASE..s_end).contains(&addr) {
            self.write(true, addr - VIRT_S_BASE, 4, u64::from(data));
        }
    }
}

/// One of the two windows of the files on the bus.
struct Window {
    imsic: Arc<Imsic>,
    supervisor: bool,
}

impl MmioDevice for Window {
    /// Every readable word of a file page reads zero.
    fn read(&self, _hart: usize, _offset: u64, _size: u8) -> u64 {
        0
    }

    fn write(&self, _hart: usize, offset: u64, size: u8, value: u64) {
        self.imsic.write(self.supervisor, offset, size, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::SGEIP;

    fn machine(harts: usize, guests: u8) -> (Arc<Imsic>, Vec<Arc<HartSignals>>) {
        let signals: Vec<_> = (0..harts).map(|_| Arc::new(HartSignals::new())).collect();
        (Imsic::new(&signals, guests), signals)
    }

    #[test]
    fn an_msi_sets_pending_and_delivery_drives_the_signal() {
        let (imsic, sig) = machine(2, 0);
        let f = imsic.hart(1).unwrap();
        let m = imsic.m_window();
        m.write(0, 0x1000, 4, 7);
        assert_eq!(f.m.read(iselect::EIP0).unwrap(), 1 << 7);
        assert_eq!(f.m.top(), 0, "not enabled");
        f.m.modify(iselect::EIE0, |v| v | 1 << 7).unwrap();
        assert_eq!(f.m.top(), 7);
        assert_eq!(sig[1].pending() & MEIP, 0, "eidelivery is 0");
        f.m.modify(iselect::EIDELIVERY, |_| 1).unwrap();
        assert_ne!(sig[1].pending() & MEIP, 0);
        assert_eq!(sig[0].pending(), 0, "another hart's signal");
        // Claim through *topei.
        assert_eq!(f.m.claim(), 7 << 16 | 7);
        assert_eq!(sig[1].pending() & MEIP, 0);
        assert_eq!(f.m.claim(), 0, "nothing left");
    }

    #[test]
    fn lowest_identity_wins_and_threshold_masks() {
        let (imsic, sig) = machine(1, 0);
        let f = imsic.hart(0).unwrap();
        f.s.modify(iselect::EIDELIVERY, |_| 1).unwrap();
        for id in [200, 65, 9] {
            f.s.set_pending(id);
        }
        f.s.modify(iselect::EIE0, |_| u64::MAX).unwrap();
        f.s.modify(iselect::EIE0 + 2, |_| u64::MAX).unwrap();
        f.s.modify(iselect::EIE0 + 6, |_| u64::MAX).unwrap();
        assert_eq!(f.s.top(), 9);
        assert_ne!(sig[0].pending() & SEIP, 0);
        // Identities at or above a nonzero threshold do not signal.
        f.s.modify(iselect::EITHRESHOLD, |_| 9).unwrap();
        assert_eq!(f.s.top(), 0);
        assert_eq!(sig[0].pending() & SEIP, 0);
        f.s.modify(iselect::EITHRESHOLD, |_| 66).unwrap();
        assert_eq!(f.s.top(), 9);
        f.s.claim();
        assert_eq!(f.s.top(), 65);
        f.s.claim();
        assert_eq!(f.s.top(), 0, "200 is above the threshold");
        f.s.modify(iselect::EITHRESHOLD, |_| 0).unwrap();
        assert_eq!(f.s.topei(), 200 << 16 | 200);
    }

    #[test]
    fn registers_follow_the_rv64_layout() {
        let (imsic, _) = machine(1, 0);
        let f = imsic.hart(0).unwrap();
        // Identity 0 does not exist; odd eip/eie do not exist on RV64.
        f.m.modify(iselect::EIP0, |_| u64::MAX).unwrap();
        assert_eq!(f.m.read(iselect::EIP0).unwrap(), !1);
        assert_eq!(f.m.read(iselect::EIP0 + 1), Err(IndirectError::Odd(0x81)));
        assert_eq!(f.m.read(iselect::EIE0 + 3), Err(IndirectError::Odd(0xc3)));
        assert_eq!(f.m.read(0x30), Err(IndirectError::NotFile(0x30)));
        // Reserved 0x71, 0x73-0x7f read zero and ignore writes.
        f.m.modify(0x71, |_| 5).unwrap();
        assert_eq!(f.m.read(0x71).unwrap(), 0);
        // eip words past the 255 identities (eip4 and up) read zero.
        assert_eq!(f.m.read(iselect::EIP0 + 8).unwrap(), 0);
        // eidelivery holds 0 or 1 only; eithreshold 0..=255.
        f.m.modify(iselect::EIDELIVERY, |_| 0x4000_0000).unwrap();
        assert_eq!(f.m.read(iselect::EIDELIVERY).unwrap(), 0);
        f.m.modify(iselect::EITHRESHOLD, |_| 300).unwrap();
        assert_eq!(f.m.read(iselect::EITHRESHOLD).unwrap(), 0);
        f.m.modify(iselect::EITHRESHOLD, |_| 255).unwrap();
        assert_eq!(f.m.read(iselect::EITHRESHOLD).unwrap(), 255);
        // Identities past 255 are not implemented: the MSI is ignored.
        f.m.set_pending(256);
        f.m.set_pending(0);
        assert_eq!(f.m.save().eip, [!1, 0, 0, 0]);
    }

    #[test]
    fn supervisor_window_has_guest_files_after_each_s_file() {
        for guests in 0..=MAX_GUESTS {
            let (imsic, sig) = machine(3, guests);
            let k = Imsic::guest_bits(guests);
            assert!(1 << k > guests, "{guests} guests in {k} bits");
            assert!(guests == 0 || 1 << (k - 1) <= guests);
            let s = imsic.s_window();
            for h in 0..3u64 {
                let files = imsic.hart(h as usize).unwrap();
                assert_eq!(files.geilen(), guests);
                for g in 0..=u64::from(guests) {
                    let off = ((h << k) + g) * 0x1000;
                    s.write(0, off, 4, 3 + g);
                    let f = if g == 0 {
                        &files.s
                    } else {
                        files.guest(g).unwrap()
                    };
                    assert_eq!(
                        f.read(iselect::EIP0).unwrap(),
                        1 << (3 + g),
                        "hart {h} guest {g}"
                    );
                }
            }
            // Guest file signals go to hgeip, not mip.
            if guests > 0 {
                let files = imsic.hart(2).unwrap();
                let g = files.guest(u64::from(guests)).unwrap();
                g.modify(iselect::EIE0, |_| u64::MAX).unwrap();
                g.modify(iselect::EIDELIVERY, |_| 1).unwrap();
                assert_eq!(sig[2].hgeip(), 1 << guests);
                assert_eq!(sig[2].pending() & (SEIP | SGEIP), 0);
                g.claim();
                assert_eq!(sig[2].hgeip(), 0);
            }
            assert_eq!(imsic.s_window_size(), (3 * 0x1000) << k);
        }
    }

    #[test]
    fn big_endian_port_and_odd_accesses() {
        let (imsic, _) = machine(1, 1);
        let m = imsic.m_window();
        m.write(0, 4, 4, 0x0500_0000);
        let f = imsic.hart(0).unwrap();
        assert_eq!(f.m.read(iselect::EIP0).unwrap(), 1 << 5);
        // Not 32-bit, misaligned, or a read-only word: ignored; reads are zero.
        m.write(0, 0, 8, 6);
        m.write(0, 2, 4, 6);
        m.write(0, 8, 4, 6);
        assert_eq!(f.m.read(iselect::EIP0).unwrap(), 1 << 5);
        assert_eq!(m.read(0, 0, 4), 0);
        // The S window of a machine with one guest file: hart 0's guest 1 at 0x1000;
        // the page for guest index 2 does not exist.
        let s = imsic.s_window();
        s.write(0, 0x1000, 4, 9);
        assert_eq!(f.guest(1).unwrap().read(iselect::EIP0).unwrap(), 1 << 9);
        assert!(f.guest(2).is_none());
    }

    #[test]
    fn msis_by_physical_address_reach_the_files() {
        let (imsic, _) = machine(2, 3);
        imsic.msi(VIRT_M_BASE + 0x1000, 4);
        imsic.msi(VIRT_S_BASE + (1 << 2) * 0x1000 + 3 * 0x1000, 6);
        imsic.msi(0x1000_0000, 7);
        let f = imsic.hart(1).unwrap();
        assert_eq!(f.m.read(iselect::EIP0).unwrap(), 1 << 4);
        assert_eq!(f.guest(3).unwrap().read(iselect::EIP0).unwrap(), 1 << 6);
    }

    #[test]
    fn save_and_restore_round_trip() {
        let (imsic, sig) = machine(1, 0);
        let f = imsic.hart(0).unwrap();
        f.m.set_pending(3);
        f.m.modify(iselect::EIE0, |_| 1 << 3).unwrap();
        f.m.modify(iselect::EIDELIVERY, |_| 1).unwrap();
        let saved = f.m.save();
        f.m.claim();
        f.m.modify(iselect::EIDELIVERY, |_| 0).unwrap();
        assert_eq!(sig[0].pending() & MEIP, 0);
        f.m.restore(&saved);
        assert_eq!(f.m.save(), saved);
        assert_ne!(sig[0].pending() & MEIP, 0);
    }
}
