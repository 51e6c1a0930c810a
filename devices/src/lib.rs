//! Rivet's devices. Every device is reached only through [`bus::MmioDevice`]: it sees an
//! offset into its own window and the id of the hart that accesses it, never the rest of
//! the machine. Devices raise interrupts through [`irq`] lines and hart signal words.

pub mod aclint;
pub mod aplic;
pub mod bus;
pub mod clock;
pub mod goldfish_rtc;
pub mod htif;
pub mod imsic;
pub mod irq;
pub mod output;
pub mod plic;
pub mod power;
pub mod ram;
pub mod syscon;
pub mod uart16550;

mod regs;

#[cfg(test)]
mod testutil {
    use crate::irq::IrqLine;
    use std::sync::Mutex;

    /// An interrupt line that remembers every level driven on it.
    #[derive(Default)]
    pub struct RecordingLine {
        history: Mutex<Vec<bool>>,
    }

    impl RecordingLine {
        pub fn level(&self) -> bool {
            self.history
                .lock()
                .unwrap()
                .last()
                .copied()
                .unwrap_or(false)
        }

        pub fn history(&self) -> Vec<bool> {
            self.history.lock().unwrap().clone()
        }
    }

    impl IrqLine for RecordingLine {
        fn set_level(&self, high: bool) {
            self.history.lock().unwrap().push(high);
        }
    }
}
