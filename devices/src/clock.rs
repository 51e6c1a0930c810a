//! Machine time (`mtime`): 10 MHz from the host's monotonic clock.

use std::time::{Duration, Instant};

/// The timebase of every Rivet machine, as on QEMU's virt board.
pub const TIMEBASE_HZ: u64 = 10_000_000;

#[derive(Debug, Clone)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Ticks of 100 ns since the machine started.
    pub fn mtime(&self) -> u64 {
        (self.start.elapsed().as_nanos() / (1_000_000_000 / TIMEBASE_HZ as u128)) as u64
    }

    /// The host instant at which `mtime` reaches `ticks`.
    pub fn instant_of(&self, ticks: u64) -> Instant {
        let ns = u128::from(ticks) * (1_000_000_000 / TIMEBASE_HZ as u128);
        let ns = ns.min(u128::from(u64::MAX)) as u64;
        self.start
            .checked_add(Duration::from_nanos(ns))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365))
    }
}
