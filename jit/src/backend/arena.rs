//! The code cache: one read-write-execute mapping that compiled blocks are bump-
//! allocated from.
//!
//! cranelift-jit's default memory provider maps at least one fresh page per
//! `finalize_definitions`, that is per compiled block: tens of thousands of mappings
//! (each an `mprotect` call and an iTLB entry, and the kernel's `max_map_count` caps
//! them), with a block of a few hundred bytes alone on its page. Here blocks sit next
//! to each other in one region, as in QEMU's code buffer. The region stays writable:
//! finalizing is free, and on x86-64 instruction fetch is coherent with stores
//! (code is only ever written before its address is handed out).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::ModuleResult;

/// Default bytes of address space reserved per code cache (pages are committed on
/// use).
pub const CODE_CACHE_BYTES: usize = 128 << 20;

pub struct Arena {
    region: region::Allocation,
    pos: usize,
    /// Bytes handed out, shared with the compiler's owner.
    used: Arc<AtomicUsize>,
}

// SAFETY: the arena owns its mapping; it is used by one thread at a time (the one
// owning the module it was given to).
unsafe impl Send for Arena {}

impl Arena {
    pub fn new(bytes: usize, used: Arc<AtomicUsize>) -> io::Result<Self> {
        let region = region::alloc(bytes, region::Protection::READ_WRITE_EXECUTE)
            .map_err(io::Error::other)?;
        used.store(0, Ordering::Relaxed);
        Ok(Self {
            region,
            pos: 0,
            used,
        })
    }
}

impl JITMemoryProvider for Arena {
    fn allocate(&mut self, size: usize, align: u64, _kind: JITMemoryKind) -> io::Result<*mut u8> {
        let align = usize::try_from(align)
            .ok()
            .filter(|a| a.is_power_of_two())
            .ok_or_else(|| io::Error::other("bad alignment"))?;
        let start = self.pos.checked_add(align - 1).map(|p| p & !(align - 1));
        let end = start.and_then(|s| s.checked_add(size));
        match (start, end) {
            (Some(start), Some(end)) if end <= self.region.len() => {
                self.pos = end;
                self.used.store(end, Ordering::Relaxed);
                // SAFETY: `start + size` is inside the mapping.
                Ok(unsafe { self.region.as_mut_ptr::<u8>().add(start) })
            }
            _ => Err(io::Error::other("the code cache is full")),
        }
    }

    unsafe fn free_memory(&mut self) {
        // The mapping goes with the arena; nothing may run from it afterwards.
        self.pos = 0;
        self.used.store(0, Ordering::Relaxed);
    }

    fn finalize(&mut self, _branch_protection: BranchProtection) -> ModuleResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_adjacent_and_bounded() {
        let used = Arc::new(AtomicUsize::new(0));
        let mut a = Arena::new(8192, used.clone()).expect("a mapping");
        let p = a.allocate(100, 16, JITMemoryKind::Executable).unwrap();
        let q = a.allocate(10, 32, JITMemoryKind::Executable).unwrap();
        assert_eq!(p as usize % 16, 0);
        assert_eq!(q as usize, (p as usize + 100 + 31) & !31);
        assert_eq!(used.load(Ordering::Relaxed), q as usize - p as usize + 10);
        assert!(a.allocate(8192, 1, JITMemoryKind::Executable).is_err());
        assert!(a.allocate(1, 3, JITMemoryKind::Executable).is_err());
        // SAFETY: nothing uses the memory.
        unsafe { a.free_memory() };
        assert_eq!(used.load(Ordering::Relaxed), 0);
        assert_eq!(a.allocate(8192, 1, JITMemoryKind::Executable).unwrap(), p);
    }
}
