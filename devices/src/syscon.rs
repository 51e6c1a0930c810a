//! SiFive test finisher (QEMU `sifive_test` at 0x10_0000 on the virt board), the device
//! behind the virt device tree's `syscon-poweroff` and `syscon-reboot` nodes.
//!
//! A write to offset 0 holds a status in its low 16 bits and a code in the next 16:
//! 0x5555 powers off (pass), 0x7777 reboots, 0x3333 fails with the code. Other values,
//! other offsets and reads do nothing (reads return 0).

use crate::bus::MmioDevice;
use crate::power::{PowerControl, PowerEvent};
use crate::regs::size_mask;
use std::sync::Arc;

/// Size of the MMIO window on the virt board.
pub const SIZE: u64 = 0x1000;

pub const FINISHER_FAIL: u64 = 0x3333;
pub const FINISHER_PASS: u64 = 0x5555;
pub const FINISHER_RESET: u64 = 0x7777;

pub struct SifiveTest {
    power: Arc<PowerControl>,
}

impl SifiveTest {
    pub fn new(power: Arc<PowerControl>) -> Arc<Self> {
        Arc::new(Self { power })
    }
}

impl MmioDevice for SifiveTest {
    fn read(&self, _hart: usize, _offset: u64, _size: u8) -> u64 {
        0
    }

    fn write(&self, _hart: usize, offset: u64, size: u8, value: u64) {
        if offset != 0 {
            return;
        }
        let value = value & size_mask(size).unwrap_or(0);
        let code = ((value >> 16) & 0xffff) as u32;
        match value & 0xffff {
            FINISHER_PASS => self.power.request(PowerEvent::PowerOff),
            FINISHER_RESET => self.power.request(PowerEvent::Reboot),
            FINISHER_FAIL => self.power.request(PowerEvent::Fail(code)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_after(size: u8, offset: u64, value: u64) -> Option<PowerEvent> {
        let power = Arc::new(PowerControl::new());
        SifiveTest::new(power.clone()).write(0, offset, size, value);
        power.event()
    }

    #[test]
    fn finisher_values() {
        assert_eq!(event_after(4, 0, 0x5555), Some(PowerEvent::PowerOff));
        assert_eq!(event_after(4, 0, 0x7777), Some(PowerEvent::Reboot));
        assert_eq!(
            event_after(4, 0, 0x3333 | 42 << 16),
            Some(PowerEvent::Fail(42))
        );
        assert_eq!(event_after(2, 0, 0x5555), Some(PowerEvent::PowerOff));
        // The code does not fit a 2-byte write.
        assert_eq!(
            event_after(2, 0, 0x3333 | 42 << 16),
            Some(PowerEvent::Fail(0))
        );
    }

    #[test]
    fn other_writes_do_nothing() {
        assert_eq!(event_after(4, 0, 0x1234), None);
        assert_eq!(event_after(4, 4, 0x5555), None);
        assert_eq!(event_after(1, 0, 0x5555), None);
        assert_eq!(
            event_after(8, 0, 0x5555 | 1 << 32),
            Some(PowerEvent::PowerOff)
        );
        assert_eq!(event_after(3, 0, 0x5555), None);
        let power = Arc::new(PowerControl::new());
        assert_eq!(SifiveTest::new(power).read(0, 0, 4), 0);
    }
}
