//! Interrupt wiring: level lines from devices to interrupt controllers, message-signalled
//! interrupts from controllers to IMSICs, and the signal word through which controllers
//! reach a hart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// `mip` bit numbers (Priv spec 3.1.9).
pub const SSIP: u64 = 1 << 1;
pub const VSSIP: u64 = 1 << 2;
pub const MSIP: u64 = 1 << 3;
pub const STIP: u64 = 1 << 5;
pub const VSTIP: u64 = 1 << 6;
pub const MTIP: u64 = 1 << 7;
pub const SEIP: u64 = 1 << 9;
pub const VSEIP: u64 = 1 << 10;
pub const MEIP: u64 = 1 << 11;
pub const SGEIP: u64 = 1 << 12;

/// A level-triggered interrupt line, driven by a device and sampled by an interrupt
/// controller (a PLIC or APLIC source).
pub trait IrqLine: Send + Sync {
    fn set_level(&self, high: bool);
}

/// A line that goes nowhere (an unwired device, a test).
pub struct NoIrq;

impl IrqLine for NoIrq {
    fn set_level(&self, _: bool) {}
}

/// The receiving end of message-signalled interrupts: a 32-bit write of `data` to
/// physical address `addr` (AIA: an APLIC in MSI delivery mode forwards its interrupts
/// this way to the harts' IMSICs). An address that hits no interrupt file is dropped.
pub trait MsiSink: Send + Sync {
    fn msi(&self, addr: u64, data: u32);
}

/// An MSI sink that drops every message (a controller that only delivers directly).
pub struct NoMsi;

impl MsiSink for NoMsi {
    fn msi(&self, _: u64, _: u32) {}
}

/// An MSI sink that records every message, for tests and fuzzing.
#[derive(Default)]
pub struct RecordingMsi {
    log: Mutex<Vec<(u64, u32)>>,
}

impl RecordingMsi {
    /// The messages received since the last call, oldest first.
    pub fn take(&self) -> Vec<(u64, u32)> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl MsiSink for RecordingMsi {
    fn msi(&self, addr: u64, data: u32) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((addr, data));
    }
}

/// What the outside world tells one hart: `mip` bits driven by devices, the ACLINT
/// `mtimecmp` of this hart, and a wake-up for a hart parked in WFI.
///
/// The hart reads `pending` between blocks; devices set bits and then call
/// [`HartSignals::kick`], which wakes a parked hart and clears the *chain key*, the
/// exit-request word compiled code checks before it chains to the next block or goes
/// round a loop: a hart running compiled code returns to its dispatcher and sees the
/// change at once.
pub struct HartSignals {
    pending: AtomicU64,
    /// Guest external interrupts (`hgeip`), driven by the IMSIC's guest files.
    hgeip: AtomicU64,
    mtimecmp: AtomicU64,
    /// The hart's link epoch while its compiled code may chain; 0 once another thread
    /// asked it to return (see [`HartSignals::request_exit`]).
    chain_key: AtomicU64,
    /// The next host-clock tick at which one of the hart's timers fires (`u64::MAX`:
    /// none), for the machine's timer loop.
    deadline: AtomicU64,
    wake: Wake,
}

/// A wake-up that is never lost: a generation counter under a lock, and a condition
/// variable. A thread reads the generation, looks at what it waits for, and parks
/// only while no [`Wake::kick`] came after its reading.
#[derive(Default)]
pub struct Wake {
    generation: Mutex<u64>,
    cv: Condvar,
}

impl Wake {
    /// Wakes every parked thread.
    pub fn kick(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        *g = g.wrapping_add(1);
        self.cv.notify_all();
    }

    /// The current generation; pass it to [`Wake::park`].
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks the calling thread until a kick after `seen` or until `deadline`.
    pub fn park(&self, seen: u64, deadline: Option<Instant>) {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        while *g == seen {
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

impl Default for HartSignals {
    fn default() -> Self {
        Self::new()
    }
}

impl HartSignals {
    pub fn new() -> Self {
        Self {
            pending: AtomicU64::new(0),
            hgeip: AtomicU64::new(0),
            mtimecmp: AtomicU64::new(u64::MAX),
            chain_key: AtomicU64::new(0),
            deadline: AtomicU64::new(u64::MAX),
            wake: Wake::default(),
        }
    }

    /// Device-driven `mip` bits.
    #[inline]
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Drives the `mip` bits in `mask` high or low, waking the hart when it changes.
    pub fn set_level(&self, mask: u64, high: bool) {
        let old = if high {
            self.pending.fetch_or(mask, Ordering::AcqRel)
        } else {
            self.pending.fetch_and(!mask, Ordering::AcqRel)
        };
        if (old & mask != 0) != high || (high && old & mask != mask) {
            self.kick();
        }
    }

    /// The guest external interrupt lines (`hgeip`).
    #[inline]
    pub fn hgeip(&self) -> u64 {
        self.hgeip.load(Ordering::Acquire)
    }

    /// Drives the `hgeip` bits in `mask`, waking the hart when they change (a guest
    /// interrupt file's output may make SGEI or VSEI pending).
    pub fn set_hgeip(&self, mask: u64, high: bool) {
        let old = if high {
            self.hgeip.fetch_or(mask, Ordering::AcqRel)
        } else {
            self.hgeip.fetch_and(!mask, Ordering::AcqRel)
        };
        if (old & mask != 0) != high || (high && old & mask != mask) {
            self.kick();
        }
    }

    pub fn mtimecmp(&self) -> u64 {
        self.mtimecmp.load(Ordering::Acquire)
    }

    pub fn set_mtimecmp(&self, value: u64) {
        self.mtimecmp.store(value, Ordering::Release);
        self.kick();
    }

    /// The chain key, whose address compiled code reads it through.
    pub fn chain_key(&self) -> &AtomicU64 {
        &self.chain_key
    }

    /// Asks the hart's compiled code to return to the dispatcher at its next exit.
    pub fn request_exit(&self) {
        // SeqCst pairs with the fence in `arm`: either the hart sees the key cleared,
        // or its dispatcher, after arming, sees what the caller changed before.
        self.chain_key.store(0, Ordering::SeqCst);
    }

    /// The hart's dispatcher lets compiled code chain in link epoch `epoch` (not 0).
    /// The caller re-reads its signals afterwards.
    pub fn arm(&self, epoch: u64) {
        self.chain_key.store(epoch, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Publishes the hart's next timer deadline; true when it is earlier than the one
    /// published before (the timer loop must wait less).
    pub fn publish_deadline(&self, ticks: u64) -> bool {
        self.deadline.swap(ticks, Ordering::AcqRel) > ticks
    }

    /// The published deadline.
    pub fn deadline(&self) -> u64 {
        self.deadline.load(Ordering::Acquire)
    }

    /// Called by the timer loop once `mtime` has reached the published deadline
    /// `ticks`: withdraws it (unless the hart published another meanwhile) and asks the
    /// hart to return from compiled code and look at its timers.
    pub fn deadline_reached(&self, ticks: u64) {
        let _ =
            self.deadline
                .compare_exchange(ticks, u64::MAX, Ordering::AcqRel, Ordering::Acquire);
        self.request_exit();
    }

    /// Wakes the hart if it is parked, and makes it re-read its signals.
    pub fn kick(&self) {
        self.request_exit();
        self.wake.kick();
    }

    /// The current wake generation; pass it to [`HartSignals::park`].
    pub fn generation(&self) -> u64 {
        self.wake.generation()
    }

    /// Parks the calling thread until a kick after `seen` or until `deadline`.
    pub fn park(&self, seen: u64, deadline: Option<Instant>) {
        self.wake.park(seen, deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn level_changes_wake_a_parked_hart() {
        let s = Arc::new(HartSignals::new());
        let seen = s.generation();
        let t = {
            let s = s.clone();
            std::thread::spawn(move || s.park(seen, None))
        };
        s.set_level(MEIP, true);
        t.join().unwrap();
        assert_eq!(s.pending(), MEIP);
        s.set_level(MEIP, false);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn park_returns_at_deadline() {
        let s = HartSignals::new();
        let t0 = Instant::now();
        s.park(s.generation(), Some(t0 + Duration::from_millis(20)));
        assert!(t0.elapsed() >= Duration::from_millis(20));
    }
}
