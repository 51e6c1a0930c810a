//! rivet-machines: boards (`virt`, `spike`), their memory maps and device trees, and the
//! boot protocols that place firmware, kernel, initrd and FDT in guest memory.
