//! What every device fuzz target feeds a device: bus accesses as a hart would make them.

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use rivet_devices::bus::MmioDevice;

/// One MMIO access. The offset is folded into the device window the way the bus
/// guarantees (`offset + size <= window`), unless `stray` asks for any offset at all, to
/// check devices also survive a bus that gets it wrong.
#[derive(Arbitrary, Debug)]
pub struct Access {
    pub hart: u8,
    pub offset: u64,
    pub size: u8,
    pub value: u64,
    pub write: bool,
    pub stray: bool,
}

impl Access {
    pub fn size(&self) -> u8 {
        1 << (self.size & 3)
    }

    pub fn offset(&self, window: u64) -> u64 {
        if self.stray {
            self.offset
        } else {
            self.offset % (window - u64::from(self.size()) + 1)
        }
    }

    /// Performs the access on `dev`, with harts `0..harts + 1` (one past the last, to
    /// check an unknown hart id is harmless).
    pub fn apply(&self, dev: &dyn MmioDevice, window: u64, harts: usize) {
        let hart = usize::from(self.hart) % (harts + 1);
        let (off, size) = (self.offset(window), self.size());
        if self.write {
            dev.write(hart, off, size, self.value);
        } else {
            dev.read(hart, off, size);
        }
    }
}
