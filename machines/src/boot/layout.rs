//! Where firmware, kernel, initrd and device tree go in RAM. Pure arithmetic, kept
//! apart from the loaders so it can be tested on its own.
//!
//! The placement is QEMU's for its RISC-V boards (hw/riscv/boot.c), so a guest sees the
//! same addresses under Rivet as under QEMU:
//! - firmware at the start of RAM;
//! - the kernel at the first 2 MiB boundary after the firmware (RV64; Linux maps the
//!   kernel with PMD-sized pages and needs that alignment), or at its ELF addresses;
//! - the initrd `min(RAM / 2, 512 MiB)` above the kernel start, far enough that the
//!   kernel does not clobber it while it sets itself up;
//! - the device tree at the highest 2 MiB boundary from which it still fits.

use super::{align_down, align_up, BootError};

pub const MIB: u64 = 1 << 20;
/// Kernel alignment for RV64 (QEMU `riscv_calc_kernel_start_addr`).
pub const KERNEL_ALIGN: u64 = 2 * MIB;
/// Device-tree alignment (QEMU `riscv_compute_fdt_addr`).
pub const FDT_ALIGN: u64 = 2 * MIB;
pub const INITRD_ALIGN: u64 = 4096;
/// Largest distance QEMU puts between kernel and initrd.
pub const INITRD_MAX_OFFSET: u64 = 512 * MIB;

/// A named range `[start, end)` of guest physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub what: &'static str,
    pub start: u64,
    pub end: u64,
}

impl Span {
    pub fn new(what: &'static str, start: u64, len: u64) -> Option<Span> {
        Some(Span {
            what,
            start,
            end: start.checked_add(len)?,
        })
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn overlaps(&self, o: &Span) -> bool {
        self.start < o.end && o.start < self.end
    }
}

/// Guest RAM as the placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamRange {
    pub base: u64,
    pub size: u64,
}

impl RamRange {
    pub fn end(&self) -> u64 {
        self.base + self.size
    }

    fn no_room(&self, what: &'static str, size: u64) -> BootError {
        BootError::NoRoom {
            what,
            size,
            ram_mib: self.size / MIB,
        }
    }

    /// An error unless `[start, start + len)` lies in RAM.
    pub fn check(&self, what: &'static str, start: u64, len: u64) -> Result<Span, BootError> {
        Span::new(what, start, len)
            .filter(|s| s.start >= self.base && s.end <= self.end())
            .ok_or_else(|| self.no_room(what, len))
    }
}

/// Where a kernel that is not an ELF starts: the first 2 MiB boundary after the
/// firmware, and no lower than the Image header's `text_offset` from the start of RAM
/// (0 for M-mode kernels, 2 MiB for RV64 S-mode ones). `None` when that is past RAM.
pub fn kernel_start(ram: RamRange, firmware_end: u64, text_offset: u64) -> Option<u64> {
    let after_fw = align_up(firmware_end, KERNEL_ALIGN)?;
    let wanted = ram.base.checked_add(text_offset)?;
    align_up(after_fw.max(wanted), KERNEL_ALIGN).filter(|&s| s < ram.end())
}

/// Where a device tree of `size` bytes goes: the highest 2 MiB boundary from which it
/// fits below the end of RAM.
pub fn fdt_addr(ram: RamRange, size: u64) -> Result<u64, BootError> {
    ram.end()
        .checked_sub(size)
        .map(|a| align_down(a, FDT_ALIGN))
        .filter(|&a| a >= ram.base)
        .ok_or_else(|| ram.no_room("device tree", size))
}

/// Where an initrd of `size` bytes goes: QEMU's spot `min(RAM / 2, 512 MiB)` above the
/// kernel start when it is free, else as high as possible below `limit` (the device
/// tree), on a page boundary. `taken` lists what is already placed.
pub fn initrd_addr(
    ram: RamRange,
    kernel_start: u64,
    size: u64,
    limit: u64,
    taken: &[Span],
) -> Result<u64, BootError> {
    let fits = |start: u64| {
        Span::new("initrd", start, size).is_some_and(|s| {
            s.start >= ram.base && s.end <= limit && !taken.iter().any(|t| t.overlaps(&s))
        })
    };
    let qemu = kernel_start.saturating_add((ram.size / 2).min(INITRD_MAX_OFFSET));
    if fits(qemu) {
        return Ok(qemu);
    }
    limit
        .checked_sub(size)
        .map(|a| align_down(a, INITRD_ALIGN))
        .filter(|&a| fits(a))
        .ok_or_else(|| ram.no_room("initrd", size))
}

/// An error naming the first two spans that overlap.
pub fn check_disjoint(spans: &[Span]) -> Result<(), BootError> {
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            if a.overlaps(b) && !a.is_empty() && !b.is_empty() {
                return Err(BootError::Overlap {
                    a: a.what,
                    a_start: a.start,
                    a_end: a.end,
                    b: b.what,
                    b_start: b.start,
                    b_end: b.end,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: RamRange = RamRange {
        base: 0x8000_0000,
        size: 256 * MIB,
    };

    #[test]
    fn kernel_goes_after_the_firmware_on_2mib() {
        // OpenSBI (~270 KiB) then an S-mode Image with text_offset 2 MiB.
        assert_eq!(
            kernel_start(RAM, 0x8004_2868, 0x20_0000).unwrap(),
            0x8020_0000
        );
        // A firmware above 2 MiB pushes the kernel to the next boundary.
        assert_eq!(
            kernel_start(RAM, 0x8020_0001, 0x20_0000).unwrap(),
            0x8040_0000
        );
        // No firmware: an M-mode kernel (text_offset 0) runs from the start of RAM,
        // an S-mode one from 2 MiB.
        assert_eq!(kernel_start(RAM, RAM.base, 0).unwrap(), RAM.base);
        assert_eq!(kernel_start(RAM, RAM.base, 0x20_0000).unwrap(), 0x8020_0000);
        assert_eq!(kernel_start(RAM, RAM.end(), 0), None);
        assert_eq!(kernel_start(RAM, u64::MAX - 5, 0), None);
    }

    #[test]
    fn fdt_at_the_top() {
        // The addresses QEMU 10 picks for its virt board (checked with its monitor).
        assert_eq!(fdt_addr(RAM, 0x1800).unwrap(), 0x8fe0_0000);
        let big = RamRange {
            base: 0x8000_0000,
            size: 3000 * MIB,
        };
        assert_eq!(fdt_addr(big, 0x1800).unwrap(), 0x1_3b60_0000);
        // Not on 2 MiB at the end: round down.
        let odd = RamRange {
            base: 0x8000_0000,
            size: 3 * MIB,
        };
        assert_eq!(fdt_addr(odd, 0x1000).unwrap(), 0x8020_0000);
        let tiny = RamRange {
            base: 0x8000_0000,
            size: MIB,
        };
        assert_eq!(fdt_addr(tiny, 0x1000).unwrap(), 0x8000_0000);
        assert!(matches!(
            fdt_addr(tiny, 2 * MIB),
            Err(BootError::NoRoom {
                what: "device tree",
                ..
            })
        ));
    }

    #[test]
    fn initrd_where_qemu_puts_it_or_below_the_fdt() {
        let k = 0x8020_0000;
        let kernel = Span::new("kernel", k, 30 * MIB).unwrap();
        let fdt = fdt_addr(RAM, 0x2000).unwrap();
        // 256 MiB: 128 MiB above the kernel (QEMU: 0x88200000).
        assert_eq!(
            initrd_addr(RAM, k, 3 * MIB, fdt, &[kernel]).unwrap(),
            0x8820_0000
        );
        // 2 GiB: 512 MiB above (QEMU: 0xa0200000).
        let two = RamRange {
            base: 0x8000_0000,
            size: 2048 * MIB,
        };
        let fdt2 = fdt_addr(two, 0x2000).unwrap();
        assert_eq!(
            initrd_addr(two, k, 3 * MIB, fdt2, &[kernel]).unwrap(),
            0xa020_0000
        );
        // Too big for QEMU's spot: as high as fits below the device tree.
        let a = initrd_addr(RAM, k, 200 * MIB, fdt, &[kernel]).unwrap();
        assert_eq!(a, fdt - 200 * MIB);
        assert!(a >= kernel.end);
        let odd = initrd_addr(RAM, k, 200 * MIB + 5, fdt, &[kernel]).unwrap();
        assert_eq!(odd % INITRD_ALIGN, 0);
        assert!(odd + 200 * MIB + 5 <= fdt);
        // Does not fit at all.
        assert!(matches!(
            initrd_addr(RAM, k, 230 * MIB, fdt, &[kernel]),
            Err(BootError::NoRoom { what: "initrd", .. })
        ));
    }

    #[test]
    fn overlaps_are_reported() {
        let fw = Span::new("firmware", 0x8000_0000, 0x1000).unwrap();
        let k = Span::new("kernel", 0x8000_0800, 0x1000).unwrap();
        let i = Span::new("initrd", 0x9000_0000, 0x1000).unwrap();
        assert!(check_disjoint(&[fw, i]).is_ok());
        let e = check_disjoint(&[fw, i, k]).unwrap_err().to_string();
        assert_eq!(
            e,
            "The firmware [0x80000000, 0x80001000) overlaps the kernel [0x80000800, 0x80001800)"
        );
        // Touching is not overlapping.
        let k2 = Span::new("kernel", 0x8000_1000, 0x10).unwrap();
        assert!(check_disjoint(&[fw, k2]).is_ok());
        assert!(RAM.check("kernel", 0x8000_0000, 256 * MIB).is_ok());
        assert!(RAM.check("kernel", 0x8000_0000, 256 * MIB + 1).is_err());
        assert!(RAM.check("kernel", 0x7000_0000, 1).is_err());
    }
}
