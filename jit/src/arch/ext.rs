//! The ISA extensions Rivet implements: what a machine enables, what the device tree
//! advertises, and what the decoder accepts (each instruction names its extension).

use std::fmt;

/// One ISA extension (or privilege mode, for `S` and `U`).
///
/// The variants are listed in the canonical order of the unprivileged spec's ISA naming
/// conventions (Unpriv spec ch. "ISA Extension Naming Conventions"): single letters in
/// the order IMAFDQLCBKJTPVH, then `Z` extensions grouped by their second letter in that
/// same order and alphabetically within a group, then `S` extensions alphabetically.
/// `Ord` follows that order, so a sorted set prints canonically. `S` and `U` are the
/// supervisor and user modes: `misa` has bits for them, ISA strings do not name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Ext {
    I,
    M,
    A,
    F,
    D,
    C,
    H,
    S,
    U,
    Zicbom,
    Zicbop,
    Zicboz,
    Zicntr,
    Zicond,
    Zicsr,
    Zifencei,
    Zihintntl,
    Zihintpause,
    Zihpm,
    Zawrs,
    Zfa,
    Zba,
    Zbb,
    Zbc,
    Zbs,
    Smaia,
    Ssaia,
    Sstc,
    Svadu,
    Svinval,
    Svnapot,
    Svpbmt,
}

impl Ext {
    /// Every extension, in canonical order.
    pub const ALL: [Ext; 32] = [
        Ext::I,
        Ext::M,
        Ext::A,
        Ext::F,
        Ext::D,
        Ext::C,
        Ext::H,
        Ext::S,
        Ext::U,
        Ext::Zicbom,
        Ext::Zicbop,
        Ext::Zicboz,
        Ext::Zicntr,
        Ext::Zicond,
        Ext::Zicsr,
        Ext::Zifencei,
        Ext::Zihintntl,
        Ext::Zihintpause,
        Ext::Zihpm,
        Ext::Zawrs,
        Ext::Zfa,
        Ext::Zba,
        Ext::Zbb,
        Ext::Zbc,
        Ext::Zbs,
        Ext::Smaia,
        Ext::Ssaia,
        Ext::Sstc,
        Ext::Svadu,
        Ext::Svinval,
        Ext::Svnapot,
        Ext::Svpbmt,
    ];

    /// The lower-case name used in ISA strings, `riscv,isa-extensions` and QEMU's
    /// `-cpu` properties.
    pub const fn name(self) -> &'static str {
        match self {
            Ext::I => "i",
            Ext::M => "m",
            Ext::A => "a",
            Ext::F => "f",
            Ext::D => "d",
            Ext::C => "c",
            Ext::H => "h",
            Ext::S => "s",
            Ext::U => "u",
            Ext::Zicbom => "zicbom",
            Ext::Zicbop => "zicbop",
            Ext::Zicboz => "zicboz",
            Ext::Zicntr => "zicntr",
            Ext::Zicond => "zicond",
            Ext::Zicsr => "zicsr",
            Ext::Zifencei => "zifencei",
            Ext::Zihintntl => "zihintntl",
            Ext::Zihintpause => "zihintpause",
            Ext::Zihpm => "zihpm",
            Ext::Zawrs => "zawrs",
            Ext::Zfa => "zfa",
            Ext::Zba => "zba",
            Ext::Zbb => "zbb",
            Ext::Zbc => "zbc",
            Ext::Zbs => "zbs",
            Ext::Smaia => "smaia",
            Ext::Ssaia => "ssaia",
            Ext::Sstc => "sstc",
            Ext::Svadu => "svadu",
            Ext::Svinval => "svinval",
            Ext::Svnapot => "svnapot",
            Ext::Svpbmt => "svpbmt",
        }
    }

    /// The extension named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Ext> {
        Ext::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name))
    }

    /// A single-letter extension (a `misa` bit).
    pub fn is_single_letter(self) -> bool {
        self.name().len() == 1
    }

    /// A privilege mode rather than an extension: in `misa`, not in ISA strings.
    pub fn is_mode(self) -> bool {
        matches!(self, Ext::S | Ext::U)
    }

    /// This extension's bit in an [`ExtSet`].
    pub const fn bit(self) -> u64 {
        1 << self as u8
    }
}

impl fmt::Display for Ext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of extensions as a bit mask, cheap to copy into every hart and test on the
/// decode path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ExtSet(pub u64);

impl ExtSet {
    pub const ALL: ExtSet = {
        let mut v = 0;
        let mut i = 0;
        while i < Ext::ALL.len() {
            v |= Ext::ALL[i].bit();
            i += 1;
        }
        ExtSet(v)
    };

    /// Every extension of a CPU model: all but those that come with a board's AIA
    /// interrupt controllers (Smaia, Ssaia).
    pub const CPU: ExtSet = ExtSet(ExtSet::ALL.0 & !Ext::Smaia.bit() & !Ext::Ssaia.bit());

    #[inline]
    pub const fn has(self, e: Ext) -> bool {
        self.0 & e.bit() != 0
    }

    pub fn with(self, e: Ext) -> ExtSet {
        ExtSet(self.0 | e.bit())
    }

    pub fn without(self, e: Ext) -> ExtSet {
        ExtSet(self.0 & !e.bit())
    }
}

impl FromIterator<Ext> for ExtSet {
    fn from_iter<T: IntoIterator<Item = Ext>>(iter: T) -> Self {
        ExtSet(iter.into_iter().fold(0, |m, e| m | e.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_names_and_sets() {
        let mut sorted = Ext::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, Ext::ALL.to_vec(), "ALL must be in Ord order");
        assert_eq!(Ext::from_name("ZiCond"), Some(Ext::Zicond));
        assert_eq!(Ext::from_name("zzz"), None);
        let s: ExtSet = [Ext::H, Ext::C].into_iter().collect();
        assert!(s.has(Ext::H) && s.has(Ext::C) && !s.has(Ext::M));
        assert!(!s.without(Ext::H).has(Ext::H));
        assert!(ExtSet::ALL.has(Ext::Svpbmt) && ExtSet::ALL.has(Ext::I));
    }
}
