//! Machine power state: what syscon/HTIF/SBI writes and the runtime watches.

use std::sync::atomic::{AtomicU64, Ordering};

/// How a machine stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerEvent {
    /// Guest powered off cleanly (exit status 0).
    PowerOff,
    /// Guest asked for a reboot.
    Reboot,
    /// Guest reported failure with this code (SiFive test "fail", HTIF non-zero).
    Fail(u32),
}

/// Set once by a device, read by every hart at block boundaries.
#[derive(Default)]
pub struct PowerControl {
    // 0 = running; 1 = poweroff; 2 = reboot; 3 | code << 8 = fail.
    state: AtomicU64,
}

impl PowerControl {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn request(&self, event: PowerEvent) {
        let v = match event {
            PowerEvent::PowerOff => 1,
            PowerEvent::Reboot => 2,
            PowerEvent::Fail(code) => 3 | (u64::from(code) << 8),
        };
        // The first request wins: a guest that fails and then powers off failed.
        let _ = self
            .state
            .compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire);
    }

    #[inline]
    pub fn is_running(&self) -> bool {
        self.state.load(Ordering::Relaxed) == 0
    }

    pub fn event(&self) -> Option<PowerEvent> {
        match self.state.load(Ordering::Acquire) {
            0 => None,
            1 => Some(PowerEvent::PowerOff),
            2 => Some(PowerEvent::Reboot),
            v => Some(PowerEvent::Fail((v >> 8) as u32)),
        }
    }
}
