//! RISC-V ACLINT (spec v1.0): MSWI and MTIMER at the SiFive CLINT-compatible layout QEMU's
//! virt board uses (one 0x10000 window at 0x200_0000), plus the SSWI device.
//!
//! | offset             | register                      |
//! |--------------------|-------------------------------|
//! | 0x0000 + 4 * hart  | msip (bit 0 drives mip.MSIP)  |
//! | 0x4000 + 8 * hart  | mtimecmp                      |
//! | 0xbff8             | mtime                         |
//!
//! Registers take 1, 2, 4 and 8-byte accesses at any offset inside one register, so RV32
//! guests can write either half of `mtimecmp`/`mtime` (ACLINT spec 2.2: "naturally
//! aligned 32-bit accesses" must work; wider support is harmless). An access that
//! straddles two registers reads 0 and writes nothing.
//!
//! MTIP is not polled here: a `mtimecmp` write hands the comparison value to the hart
//! ([`HartSignals::set_mtimecmp`]), which compares it with [`Clock::mtime`] itself. A
//! guest write to `mtime` is kept as an offset from the clock; the hart then receives
//! `mtimecmp` translated into clock ticks, so its comparison stays right, and the hart
//! should read the `time` CSR through [`Aclint::mtime`] (Priv spec 3.2.1: `time` is a
//! read-only shadow of `mtime`).

use crate::bus::MmioDevice;
use crate::clock::Clock;
use crate::irq::{HartSignals, MSIP, SSIP};
use crate::regs::{read_lane, write_lane};
use std::sync::{Arc, Mutex, MutexGuard};

/// Size of the MSWI + MTIMER window.
pub const SIZE: u64 = 0x10000;
pub const MSIP_BASE: u64 = 0x0;
pub const MTIMECMP_BASE: u64 = 0x4000;
pub const MTIME: u64 = 0xbff8;
/// Harts one CLINT-layout window can serve (4095 `mtimecmp` slots below `mtime`).
pub const MAX_HARTS: usize = ((MTIME - MTIMECMP_BASE) / 8) as usize;

/// Size of an SSWI window (ACLINT spec 4: 4095 `setssip` registers).
pub const SSWI_SIZE: u64 = 0x4000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AclintError {
    #[error("An ACLINT serves at most {MAX_HARTS} harts, not {0}")]
    TooManyHarts(usize),
}

enum Reg {
    Msip(usize),
    Mtimecmp(usize),
    Mtime,
}

/// The register holding `offset`, its width and the offset inside it.
fn decode(offset: u64) -> Option<(Reg, u64, u64)> {
    if offset < MTIMECMP_BASE {
        Some((Reg::Msip((offset / 4) as usize), 4, offset % 4))
    } else if offset < MTIME {
        let rel = offset - MTIMECMP_BASE;
        Some((Reg::Mtimecmp((rel / 8) as usize), 8, rel % 8))
    } else if offset < MTIME + 8 {
        Some((Reg::Mtime, 8, offset - MTIME))
    } else {
        None
    }
}

struct State {
    msip: Vec<bool>,
    /// `mtimecmp` as the guest wrote it (in guest `mtime` ticks).
    mtimecmp: Vec<u64>,
    /// Guest `mtime` minus clock ticks.
    offset: i128,
}

/// MSWI + MTIMER of all harts.
pub struct Aclint {
    harts: Vec<Arc<HartSignals>>,
    clock: Clock,
    st: Mutex<State>,
}

/// `cmp` (guest ticks) in clock ticks, saturated: 0 = already due, MAX = never.
fn clock_cmp(cmp: u64, offset: i128) -> u64 {
    (i128::from(cmp) - offset).clamp(0, i128::from(u64::MAX)) as u64
}

impl Aclint {
    pub fn new(harts: Vec<Arc<HartSignals>>, clock: Clock) -> Result<Arc<Self>, AclintError> {
        if harts.len() > MAX_HARTS {
            return Err(AclintError::TooManyHarts(harts.len()));
        }
        for h in &harts {
            h.set_level(MSIP, false);
            h.set_mtimecmp(u64::MAX);
        }
        let n = harts.len();
        Ok(Arc::new(Self {
            harts,
            clock,
            st: Mutex::new(State {
                msip: vec![false; n],
                mtimecmp: vec![u64::MAX; n],
                offset: 0,
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn guest_mtime(&self, offset: i128) -> u64 {
        // Truncation wraps, as a 64-bit counter does.
        (i128::from(self.clock.mtime()) + offset) as u64
    }

    /// The guest-visible `mtime` (what the `time` CSR reads).
    pub fn mtime(&self) -> u64 {
        let off = self.lock().offset;
        self.guest_mtime(off)
    }

    /// A comparator `cmp` in guest `mtime` ticks (`stimecmp`) against guest time at
    /// clock tick `now`: whether it has fired, and the clock tick at which it fires
    /// (saturated). The tick comes from the comparator alone, so a hart that
    /// recomputes it gets the same value, whatever the time of the reading.
    pub fn compare(&self, now: u64, cmp: u64) -> (bool, u64) {
        let off = self.lock().offset;
        let guest_now = (i128::from(now) + off) as u64;
        (guest_now >= cmp, clock_cmp(cmp, off))
    }

    /// As [`Aclint::compare`] for a comparator of `mtime + delta` (wrapping, as the H
    /// extension's `vstimecmp` compares with `time + htimedelta`).
    pub fn compare_offset(&self, now: u64, cmp: u64, delta: u64) -> (bool, u64) {
        let off = self.lock().offset;
        let guest_now = (i128::from(now) + off) as u64;
        let shifted = guest_now.wrapping_add(delta);
        if shifted >= cmp {
            return (true, u64::MAX);
        }
        // The guest mtime at which the shifted time reaches `cmp`.
        let at = guest_now
            .checked_add(cmp - shifted)
            .map_or(u64::MAX, |t| clock_cmp(t, off));
        (false, at)
    }
}

impl MmioDevice for Aclint {
    fn read(&self, _hart: usize, offset: u64, size: u8) -> u64 {
        let Some((reg, width, at)) = decode(offset) else {
            return 0;
        };
        let st = self.lock();
        let value = match reg {
            Reg::Msip(h) => st.msip.get(h).map_or(0, |&p| u64::from(p)),
            Reg::Mtimecmp(h) => st.mtimecmp.get(h).copied().unwrap_or(0),
            Reg::Mtime => self.guest_mtime(st.offset),
        };
        read_lane(value, width, at, size).unwrap_or(0)
    }

    fn write(&self, _hart: usize, offset: u64, size: u8, value: u64) {
        let Some((reg, width, at)) = decode(offset) else {
            return;
        };
        let mut st = self.lock();
        match reg {
            Reg::Msip(h) => {
                let (Some(&old), Some(sig)) = (st.msip.get(h), self.harts.get(h)) else {
                    return;
                };
                let Some(new) = write_lane(u64::from(old), width, at, size, value) else {
                    return;
                };
                let pending = new & 1 != 0;
                st.msip[h] = pending;
                sig.set_level(MSIP, pending);
            }
            Reg::Mtimecmp(h) => {
                let (Some(&old), Some(sig)) = (st.mtimecmp.get(h), self.harts.get(h)) else {
                    return;
                };
                let Some(new) = write_lane(old, width, at, size, value) else {
                    return;
                };
                st.mtimecmp[h] = new;
                sig.set_mtimecmp(clock_cmp(new, st.offset));
            }
            Reg::Mtime => {
                let raw = self.clock.mtime();
                let old = (i128::from(raw) + st.offset) as u64;
                let Some(new) = write_lane(old, width, at, size, value) else {
                    return;
                };
                st.offset = i128::from(new) - i128::from(raw);
                for (sig, &cmp) in self.harts.iter().zip(&st.mtimecmp) {
                    sig.set_mtimecmp(clock_cmp(cmp, st.offset));
                }
            }
        }
    }
}

/// ACLINT SSWI: a write of 1 to hart N's `setssip` register raises its supervisor
/// software interrupt; reads return 0 (ACLINT spec 4.1).
///
/// The interrupt is an edge: this device sets [`SSIP`] in the hart's signal word, and
/// the hart moves it into its own `mip.SSIP` (which software then clears through the CSR)
/// and drops the signal bit with `set_level(SSIP, false)`.
pub struct Sswi {
    harts: Vec<Arc<HartSignals>>,
}

impl Sswi {
    pub fn new(harts: Vec<Arc<HartSignals>>) -> Result<Arc<Self>, AclintError> {
        if harts.len() > MAX_HARTS {
            return Err(AclintError::TooManyHarts(harts.len()));
        }
        Ok(Arc::new(Self { harts }))
    }
}

impl MmioDevice for Sswi {
    fn read(&self, _hart: usize, _offset: u64, _size: u8) -> u64 {
        0
    }

    fn write(&self, _hart: usize, offset: u64, size: u8, value: u64) {
        let Some(sig) = usize::try_from(offset / 4)
            .ok()
            .and_then(|h| self.harts.get(h))
        else {
            return;
        };
        if write_lane(0, 4, offset % 4, size, value).is_some_and(|v| v & 1 != 0) {
            sig.set_level(SSIP, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aclint(n: usize) -> (Arc<Aclint>, Vec<Arc<HartSignals>>) {
        let harts: Vec<_> = (0..n).map(|_| Arc::new(HartSignals::new())).collect();
        (Aclint::new(harts.clone(), Clock::new()).unwrap(), harts)
    }

    #[test]
    fn msip_routes_to_the_addressed_hart() {
        let (a, harts) = aclint(3);
        a.write(0, MSIP_BASE + 4 * 2, 4, 1);
        assert_eq!(harts[2].pending() & MSIP, MSIP);
        assert_eq!(harts[0].pending() & MSIP, 0);
        assert_eq!(harts[1].pending() & MSIP, 0);
        assert_eq!(a.read(1, MSIP_BASE + 8, 4), 1);
        assert_eq!(a.read(1, MSIP_BASE + 4, 4), 0);
        // Only bit 0 is implemented.
        a.write(0, MSIP_BASE + 8, 4, 0xffff_fffe);
        assert_eq!(harts[2].pending() & MSIP, 0);
        assert_eq!(a.read(0, MSIP_BASE + 8, 4), 0);
        // A byte write of the low lane works too.
        a.write(0, MSIP_BASE, 1, 1);
        assert_eq!(harts[0].pending() & MSIP, MSIP);
    }

    #[test]
    fn mtimecmp_halves_and_full_writes() {
        let (a, harts) = aclint(2);
        assert_eq!(a.read(0, MTIMECMP_BASE + 8, 8), u64::MAX);
        a.write(0, MTIMECMP_BASE + 8, 4, 0x5566_7788);
        a.write(0, MTIMECMP_BASE + 12, 4, 0x1122_3344);
        assert_eq!(a.read(0, MTIMECMP_BASE + 8, 8), 0x1122_3344_5566_7788);
        assert_eq!(a.read(0, MTIMECMP_BASE + 12, 4), 0x1122_3344);
        assert_eq!(harts[1].mtimecmp(), 0x1122_3344_5566_7788);
        assert_eq!(harts[0].mtimecmp(), u64::MAX);
        a.write(0, MTIMECMP_BASE, 8, 1234);
        assert_eq!(harts[0].mtimecmp(), 1234);
        assert_eq!(a.read(0, MTIMECMP_BASE, 8), 1234);
    }

    #[test]
    fn mtime_counts_and_writes_shift_the_comparison() {
        let (a, harts) = aclint(1);
        let t0 = a.read(0, MTIME, 8);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let t1 = a.read(0, MTIME, 8);
        assert!(t1 > t0, "mtime advances ({t0} -> {t1})");
        // Move guest time 10^9 ticks ahead: a compare at guest time T lands 10^9 ticks
        // earlier on the clock the hart compares with.
        let base = a.read(0, MTIME, 8);
        a.write(0, MTIME, 8, base + 1_000_000_000);
        assert!(a.mtime() >= base + 1_000_000_000);
        a.write(0, MTIMECMP_BASE, 8, base + 1_000_000_500);
        let raw = harts[0].mtimecmp();
        assert!(
            raw >= base + 500 && raw < base + 500 + 1_000_000,
            "{raw} vs {base}"
        );
        // A compare value in the guest's past is due at once.
        a.write(0, MTIMECMP_BASE, 8, 5);
        assert_eq!(harts[0].mtimecmp(), 0);
        // Writing the high half of mtime keeps the low half.
        a.write(0, MTIME + 4, 4, 7);
        assert_eq!(a.read(0, MTIME + 4, 4), 7);
    }

    #[test]
    fn a_comparator_fires_at_a_tick_that_does_not_depend_on_the_reading() {
        let (a, _) = aclint(1);
        a.write(0, MTIME, 8, 1000);
        let now = a.clock.mtime();
        let off = a.lock().offset;
        // Guest time 500 ticks from now: not fired, due 500 clock ticks on.
        let cmp = (i128::from(now) + off + 500) as u64;
        let (fired, at) = a.compare(now, cmp);
        assert!(!fired);
        assert_eq!(at, now + 500);
        // Read again later: the same tick; at that tick it has fired.
        assert_eq!(a.compare(now + 7, cmp), (false, now + 500));
        assert_eq!(a.compare(at, cmp), (true, at));
        // A comparator in the guest's past is due at clock tick 0; "never" stays far.
        assert_eq!(a.compare(now, 5), (true, 0));
        assert!(!a.compare(now, u64::MAX).0);
    }

    #[test]
    fn absent_harts_and_straddling_accesses_are_ignored() {
        let (a, harts) = aclint(1);
        a.write(0, MSIP_BASE + 4, 4, 1);
        a.write(0, MTIMECMP_BASE + 8, 8, 1);
        assert_eq!(a.read(0, MSIP_BASE + 4, 4), 0);
        assert_eq!(a.read(0, MTIMECMP_BASE + 8, 8), 0);
        a.write(0, MSIP_BASE + 2, 4, 1);
        assert_eq!(harts[0].pending(), 0);
        a.write(0, MTIMECMP_BASE + 4, 8, 0);
        assert_eq!(harts[0].mtimecmp(), u64::MAX);
        assert_eq!(a.read(0, 0xc000, 8), 0);
        assert!(Aclint::new(
            (0..=MAX_HARTS)
                .map(|_| Arc::new(HartSignals::new()))
                .collect(),
            Clock::new()
        )
        .is_err());
    }

    #[test]
    fn sswi_sets_ssip_of_the_addressed_hart() {
        let harts: Vec<_> = (0..2).map(|_| Arc::new(HartSignals::new())).collect();
        let s = Sswi::new(harts.clone()).unwrap();
        s.write(0, 4, 4, 1);
        assert_eq!(harts[1].pending(), SSIP);
        assert_eq!(harts[0].pending(), 0);
        assert_eq!(s.read(0, 4, 4), 0);
        s.write(0, 0, 4, 2);
        assert_eq!(harts[0].pending(), 0);
        s.write(0, 8, 4, 1);
    }

    #[test]
    fn no_access_panics() {
        let (a, _) = aclint(2);
        for off in (0..SIZE).step_by(3).chain(MTIME - 8..SIZE) {
            for size in [0, 1, 2, 3, 4, 8, 255] {
                a.write(1, off, size, u64::MAX);
                a.read(1, off, size);
            }
        }
        a.read(0, u64::MAX, 8);
        a.write(0, u64::MAX, 8, 0);
    }
}
