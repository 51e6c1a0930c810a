//! Guest RAM: one anonymous host mapping, reserved lazily by the host kernel.

use memmap2::MmapRaw;

#[derive(Debug, thiserror::Error)]
pub enum RamError {
    #[error("Cannot reserve {size} bytes of guest RAM")]
    Map {
        size: u64,
        #[source]
        source: std::io::Error,
    },
}

/// Guest RAM at `[base, base + size)`. Host address = host base + (guest physical - base).
///
/// Harts on several host threads and device threads access it at once, as real memory
/// is accessed by several agents: accesses go through raw pointers, never through Rust
/// references, so no `&mut` aliasing exists.
pub struct GuestRam {
    base: u64,
    size: u64,
    map: MmapRaw,
}

impl GuestRam {
    pub fn new(base: u64, size: u64) -> Result<Self, RamError> {
        let map = memmap2::MmapOptions::new()
            .len(size as usize)
            .map_anon()
            .map(MmapRaw::from)
            .map_err(|source| RamError::Map { size, source })?;
        Ok(Self { base, size, map })
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether `[addr, addr + len)` lies inside RAM.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.size)
    }

    /// The host pointer for guest physical `addr`, when `[addr, addr + len)` is in RAM.
    /// The pointer stays valid for the life of `self`.
    pub fn host_ptr(&self, addr: u64, len: u64) -> Option<*mut u8> {
        self.contains(addr, len).then(|| {
            // SAFETY: `contains` proved addr - base + len <= size, so the offset stays
            // inside the mapping.
            unsafe { self.map.as_mut_ptr().add((addr - self.base) as usize) }
        })
    }

    /// The guest physical address of a host pointer into RAM (the inverse of
    /// [`GuestRam::host_ptr`]).
    pub fn guest_addr(&self, host: *const u8) -> Option<u64> {
        let off = (host as usize).checked_sub(self.map.as_ptr() as usize)? as u64;
        (off < self.size).then(|| self.base + off)
    }

    /// Copies guest bytes out; `None` when the range leaves RAM.
    pub fn read_bytes(&self, addr: u64, out: &mut [u8]) -> Option<()> {
        let p = self.host_ptr(addr, out.len() as u64)?;
        // SAFETY: host_ptr checked the whole range is inside the live mapping; `out` is a
        // distinct host buffer, so the ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
        Some(())
    }

    /// Copies bytes into guest RAM; `None` when the range leaves RAM.
    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> Option<()> {
        let p = self.host_ptr(addr, data.len() as u64)?;
        // SAFETY: as in read_bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Some(())
    }

    /// Little-endian load of `size` (1, 2, 4, 8) bytes.
    pub fn read(&self, addr: u64, size: u8) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read_bytes(addr, &mut b[..size as usize])?;
        Some(u64::from_le_bytes(b))
    }

    /// Little-endian store of the low `size` (1, 2, 4, 8) bytes of `value`.
    pub fn write(&self, addr: u64, size: u8, value: u64) -> Option<()> {
        self.write_bytes(addr, &value.to_le_bytes()[..size as usize])
    }
}

// SAFETY: GuestRam owns its mapping for its whole life and hands out only raw pointers;
// concurrent guest accesses are the guest's business, as on hardware.
unsafe impl Send for GuestRam {}
// SAFETY: see Send.
unsafe impl Sync for GuestRam {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_and_bounds_checks() {
        let ram = GuestRam::new(0x8000_0000, 0x10000).unwrap();
        assert_eq!(ram.read(0x8000_0000, 8), Some(0));
        ram.write(0x8000_fff8, 8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(ram.read(0x8000_fffc, 4), Some(0x1122_3344));
        assert_eq!(ram.read(0x8000_fffc, 8), None);
        assert_eq!(ram.read(0x7fff_ffff, 1), None);
        assert!(ram.host_ptr(u64::MAX - 2, 8).is_none());
    }
}
