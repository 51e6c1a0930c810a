//! The ISA a board's harts implement, as the device tree advertises it.
//!
//! One [`IsaConfig`] feeds both the hart (which extensions decode, which CSRs exist) and
//! the device tree (`riscv,isa`, `riscv,isa-extensions`, `mmu-type`), so a guest never
//! sees an extension in the tree that the hart does not implement, or the reverse.

use std::collections::BTreeSet;

pub use rivet_jit::arch::{Ext, ExtSet};

/// Virtual-memory schemes (Priv spec 12.1.11, `satp.MODE`), ordered by size. A hart
/// that supports SvN also supports every smaller scheme (Priv spec 12.5-12.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MmuType {
    Sv39,
    Sv48,
    Sv57,
}

impl MmuType {
    /// The scheme's lower-case name, as QEMU's `-cpu` properties spell it.
    pub fn name(self) -> &'static str {
        match self {
            MmuType::Sv39 => "sv39",
            MmuType::Sv48 => "sv48",
            MmuType::Sv57 => "sv57",
        }
    }

    /// The `mmu-type` device-tree string.
    pub fn fdt_name(self) -> &'static str {
        match self {
            MmuType::Sv39 => "riscv,sv39",
            MmuType::Sv48 => "riscv,sv48",
            MmuType::Sv57 => "riscv,sv57",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsaError {
    #[error("Unknown ISA extension '{0}'")]
    Unknown(String),
    #[error(
        "Extension '{0}' cannot be turned off: the boards need i, m, a, f, d, c, s, u, zicsr \
         and zifencei"
    )]
    Required(Ext),
}

/// The extensions of every hart of a board (RV64 only), their parameters, and the
/// virtual-memory scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsaConfig {
    exts: BTreeSet<Ext>,
    /// The largest `satp` mode the harts implement.
    pub mmu: MmuType,
    /// Cache-block size in bytes for Zicbom/Zicbop/Zicboz (Zicbom spec 2.1).
    pub cache_block_size: u32,
}

impl Default for IsaConfig {
    /// The ISA of QEMU's `-cpu rv64` and `-cpu max` on Rivet: every extension the
    /// harts implement ([`IsaConfig::all`]), the hypervisor extension included, as in
    /// QEMU's `rv64`.
    fn default() -> Self {
        Self::all()
    }
}

/// Extensions a board cannot run without: the firmware and Linux assume RV64IMAFDC
/// with S and U modes. (C stays: without it IALIGN would be 32, which Rivet's jumps do
/// not model.)
const REQUIRED: [Ext; 10] = [
    Ext::I,
    Ext::M,
    Ext::A,
    Ext::F,
    Ext::D,
    Ext::C,
    Ext::S,
    Ext::U,
    Ext::Zicsr,
    Ext::Zifencei,
];

impl IsaConfig {
    /// Extensions that come with a board's interrupt controllers rather than with the
    /// CPU model: Smaia and Ssaia, on when the virt board has IMSICs
    /// (`aia=aplic-imsic`).
    pub const BOARD_EXTENSIONS: [Ext; 2] = [Ext::Smaia, Ext::Ssaia];

    /// RV64GCH with every extension of a CPU model Rivet knows, and Sv57.
    pub fn all() -> Self {
        Self {
            exts: Ext::ALL
                .into_iter()
                .filter(|e| !Self::BOARD_EXTENSIONS.contains(e))
                .collect(),
            mmu: MmuType::Sv57,
            cache_block_size: 64,
        }
    }

    pub fn has(&self, ext: Ext) -> bool {
        self.exts.contains(&ext)
    }

    /// Extensions in canonical order.
    pub fn extensions(&self) -> impl Iterator<Item = Ext> + '_ {
        self.exts.iter().copied()
    }

    /// The extensions as the bit set harts test when they decode.
    pub fn ext_set(&self) -> ExtSet {
        self.extensions().collect()
    }

    /// Removes an optional extension (a `-cpu` style knob, or matching another machine).
    pub fn disable(&mut self, ext: Ext) -> Result<(), IsaError> {
        if REQUIRED.contains(&ext) {
            return Err(IsaError::Required(ext));
        }
        self.exts.remove(&ext);
        Ok(())
    }

    pub fn enable(&mut self, ext: Ext) {
        self.exts.insert(ext);
    }

    /// Removes the extensions named in a comma-separated list such as `"h,zfa"`.
    pub fn disable_named(&mut self, list: &str) -> Result<(), IsaError> {
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let ext = Ext::from_name(name).ok_or_else(|| IsaError::Unknown(name.into()))?;
            self.disable(ext)?;
        }
        Ok(())
    }

    /// The legacy `riscv,isa` string, e.g. `rv64imafdch_zicbom_..._svpbmt`.
    pub fn isa_string(&self) -> String {
        let mut s = String::from("rv64");
        for e in self
            .extensions()
            .filter(|e| e.is_single_letter() && !e.is_mode())
        {
            s.push_str(e.name());
        }
        for e in self.extensions().filter(|e| !e.is_single_letter()) {
            s.push('_');
            s.push_str(e.name());
        }
        s
    }

    /// The `misa` value: MXL = 2 (RV64) and a bit per single-letter extension, S and
    /// U included (Priv spec 3.1.1).
    pub fn misa(&self) -> u64 {
        let mut misa = 2u64 << 62;
        for e in self.extensions().filter(|e| e.is_single_letter()) {
            misa |= 1 << (e.name().as_bytes()[0] - b'a');
        }
        misa
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_and_strings() {
        let isa = IsaConfig::all();
        let s = isa.isa_string();
        assert!(s.starts_with("rv64imafdch_zicbom_"), "{s}");
        assert!(s.ends_with("_sstc_svadu_svinval_svnapot_svpbmt"), "{s}");
    }

    #[test]
    fn misa_bits() {
        let isa = IsaConfig::all();
        // RV64 ACDFHIMSU.
        assert_eq!(isa.misa(), 2 << 62 | 0x1411ad);
    }

    #[test]
    fn disabling() {
        let mut isa = IsaConfig::all();
        isa.disable_named("h, zfa").unwrap();
        assert!(!isa.has(Ext::H) && !isa.has(Ext::Zfa) && isa.has(Ext::C));
        assert!(isa.isa_string().starts_with("rv64imafdc_"));
        assert_eq!(isa.disable(Ext::M), Err(IsaError::Required(Ext::M)));
        assert!(IsaError::Required(Ext::M).to_string().contains("'m'"));
        assert_eq!(
            isa.disable_named("foo"),
            Err(IsaError::Unknown("foo".into()))
        );
    }

    #[test]
    fn default_has_every_cpu_extension_and_h() {
        let default = IsaConfig::default();
        assert_eq!(default, IsaConfig::all());
        for ext in Ext::ALL {
            let by_board = IsaConfig::BOARD_EXTENSIONS.contains(&ext);
            assert_eq!(default.has(ext), !by_board, "{ext}");
        }
        assert!(default.isa_string().starts_with("rv64imafdch_"));
    }
}
