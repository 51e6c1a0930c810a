//! The MMIO bus: a sorted list of device windows.

use std::sync::Arc;

/// A device behind the MMIO bus.
///
/// `offset` is relative to the start of the device's window, `size` is 1, 2, 4 or 8 and
/// `hart` is the id of the accessing hart (an IMSIC or a per-hart CLINT register needs
/// it). Devices use interior mutability: harts and I/O threads share them.
///
/// A guest that programs a device wrongly gets what hardware would give (reads of
/// undefined registers return 0, writes to them are ignored); a device never panics on
/// guest input.
pub trait MmioDevice: Send + Sync {
    fn read(&self, hart: usize, offset: u64, size: u8) -> u64;
    fn write(&self, hart: usize, offset: u64, size: u8, value: u64);
}

/// One device window on the bus.
#[derive(Clone)]
pub struct Region {
    pub base: u64,
    pub size: u64,
    pub name: &'static str,
    pub device: Arc<dyn MmioDevice>,
}

/// An access that no device claims: the hart turns it into an access fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("No device at physical address {0:#x}")]
pub struct Unmapped(pub u64);

#[derive(Default, Clone)]
pub struct Bus {
    regions: Vec<Region>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `device` at `[base, base + size)`. Overlapping windows are a board bug.
    pub fn map(&mut self, base: u64, size: u64, name: &'static str, device: Arc<dyn MmioDevice>) {
        assert!(size > 0, "empty MMIO window for {name}");
        let at = self.regions.partition_point(|r| r.base < base);
        if let Some(prev) = at.checked_sub(1).map(|i| &self.regions[i]) {
            assert!(
                prev.base + prev.size <= base,
                "{name} overlaps {}",
                prev.name
            );
        }
        if let Some(next) = self.regions.get(at) {
            assert!(base + size <= next.base, "{name} overlaps {}", next.name);
        }
        self.regions.insert(
            at,
            Region {
                base,
                size,
                name,
                device,
            },
        );
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The region holding `addr` and the offset of `addr` in it.
    pub fn find(&self, addr: u64) -> Option<(&Region, u64)> {
        let at = self.regions.partition_point(|r| r.base <= addr);
        let r = self.regions.get(at.checked_sub(1)?)?;
        let off = addr - r.base;
        (off < r.size).then_some((r, off))
    }

    pub fn read(&self, hart: usize, addr: u64, size: u8) -> Result<u64, Unmapped> {
        match self.find(addr) {
            Some((r, off)) if off + u64::from(size) <= r.size => Ok(r.device.read(hart, off, size)),
            _ => Err(Unmapped(addr)),
        }
    }

    pub fn write(&self, hart: usize, addr: u64, size: u8, value: u64) -> Result<(), Unmapped> {
        match self.find(addr) {
            Some((r, off)) if off + u64::from(size) <= r.size => {
                r.device.write(hart, off, size, value);
                Ok(())
            }
            _ => Err(Unmapped(addr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Reg(AtomicU64);
    impl MmioDevice for Reg {
        fn read(&self, _: usize, off: u64, _: u8) -> u64 {
            self.0.load(Ordering::Relaxed) + off
        }
        fn write(&self, _: usize, _: u64, _: u8, v: u64) {
            self.0.store(v, Ordering::Relaxed)
        }
    }

    #[test]
    fn routes_by_address_and_rejects_gaps() {
        let mut bus = Bus::new();
        bus.map(0x2000, 0x100, "b", Arc::new(Reg(AtomicU64::new(0))));
        bus.map(0x1000, 0x100, "a", Arc::new(Reg(AtomicU64::new(0))));
        bus.write(0, 0x1000, 8, 40).unwrap();
        assert_eq!(bus.read(0, 0x1002, 4), Ok(42));
        assert_eq!(bus.read(0, 0x2000, 4), Ok(0));
        assert_eq!(bus.read(0, 0x1100, 4), Err(Unmapped(0x1100)));
        assert_eq!(bus.read(0, 0x10fc, 8), Err(Unmapped(0x10fc)));
        assert_eq!(bus.read(0, 0xfff, 1), Err(Unmapped(0xfff)));
    }

    #[test]
    #[should_panic(expected = "overlaps")]
    fn overlapping_windows_are_rejected() {
        let mut bus = Bus::new();
        bus.map(0x1000, 0x100, "a", Arc::new(Reg(AtomicU64::new(0))));
        bus.map(0x10f0, 0x100, "b", Arc::new(Reg(AtomicU64::new(0))));
    }
}
