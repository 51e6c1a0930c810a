//! A read-only memory window on the bus (the boot ROM with the reset program, the
//! `fw_dynamic_info` and, on spike, the device tree).

use rivet_devices::bus::MmioDevice;

/// Read-only bytes; reads past the contents return 0 and writes are ignored, as a mask
/// ROM behaves.
pub struct Rom {
    bytes: Vec<u8>,
}

impl Rom {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl MmioDevice for Rom {
    fn read(&self, _hart: usize, offset: u64, size: u8) -> u64 {
        let mut b = [0u8; 8];
        let n = usize::from(size.min(8));
        if let Some(start) = usize::try_from(offset)
            .ok()
            .filter(|&o| o < self.bytes.len())
        {
            let end = (start + n).min(self.bytes.len());
            b[..end - start].copy_from_slice(&self.bytes[start..end]);
        }
        u64::from_le_bytes(b)
    }

    fn write(&self, _hart: usize, _offset: u64, _size: u8, _value: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_zero_past_the_end() {
        let rom = Rom::new(vec![1, 2, 3, 4, 5]);
        assert_eq!(rom.read(0, 0, 4), 0x0403_0201);
        assert_eq!(rom.read(0, 3, 8), 0x0504);
        assert_eq!(rom.read(0, 5, 8), 0);
        assert_eq!(rom.read(0, u64::MAX, 8), 0);
        assert_eq!(rom.read(0, 1, 1), 2);
        rom.write(0, 0, 8, u64::MAX);
        assert_eq!(rom.read(0, 0, 1), 1);
    }
}
