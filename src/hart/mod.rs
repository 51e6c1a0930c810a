pub mod mmu;
pub mod pmp;
pub mod tlb;
