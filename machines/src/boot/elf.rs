//! ELF loading: PT_LOAD segments by physical address (as QEMU's loader does), the entry
//! point, and a few named symbols (`tohost`/`fromhost` for HTIF, the riscv-arch-test
//! signature bounds).
//!
//! The file is host input and may be corrupt: every header field is checked against
//! the file, and goblin is used only for the headers, never for relocations or dynamic
//! sections.

use super::BootError;
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EM_RISCV, ET_DYN, ET_EXEC};
use goblin::elf::program_header::PT_LOAD;
use goblin::elf::section_header::SHT_SYMTAB;
use goblin::elf::{Elf, ProgramHeader, SectionHeader};
use rivet_devices::ram::GuestRam;
use std::collections::BTreeMap;
use std::path::Path;

/// One PT_LOAD segment: `data` goes at `addr`, followed by `mem_size - data.len()` zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    pub addr: u64,
    pub mem_size: u64,
    pub data: &'a [u8],
}

#[derive(Debug, Clone)]
pub struct ElfFile<'a> {
    pub entry: u64,
    /// Position-independent (ET_DYN): addresses below are already relocated by the
    /// load bias given to [`parse`].
    pub pie: bool,
    pub segments: Vec<Segment<'a>>,
    /// The requested symbols that the file defines.
    pub symbols: BTreeMap<String, u64>,
}

impl ElfFile<'_> {
    /// Lowest address a segment occupies.
    pub fn low(&self) -> u64 {
        self.segments.iter().map(|s| s.addr).min().unwrap_or(0)
    }

    /// End (exclusive) of the highest segment.
    pub fn high(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.addr + s.mem_size)
            .max()
            .unwrap_or(0)
    }

    /// Copies the segments into RAM, after checking each lies inside it.
    pub fn load(&self, path: &Path, ram: &GuestRam) -> Result<(), BootError> {
        for s in &self.segments {
            self.check_in_ram(path, ram, s)?;
        }
        for s in &self.segments {
            let ok = ram.write_bytes(s.addr, s.data).is_some() && {
                // RAM starts zeroed, but a segment may share memory with an earlier
                // one's file data; bss must read as zero (ELF spec, "Program Header").
                let zeros = [0u8; 4096];
                let mut at = s.addr + s.data.len() as u64;
                let end = s.addr + s.mem_size;
                let mut ok = true;
                while at < end && ok {
                    let n = (end - at).min(zeros.len() as u64);
                    ok = ram.write_bytes(at, &zeros[..n as usize]).is_some();
                    at += n;
                }
                ok
            };
            // check_in_ram proved the ranges; a failure here is a logic error.
            debug_assert!(ok);
        }
        Ok(())
    }

    /// An error unless every segment lies in RAM.
    pub fn check_in_ram(&self, path: &Path, ram: &GuestRam, s: &Segment) -> Result<(), BootError> {
        if ram.contains(s.addr, s.mem_size) {
            return Ok(());
        }
        Err(BootError::OutsideRam {
            path: path.to_path_buf(),
            what: "segment",
            start: s.addr,
            end: s.addr.saturating_add(s.mem_size),
            ram_start: ram.base(),
            ram_end: ram.end(),
        })
    }
}

/// ELF64 `Elf64_Sym` size and layout (System V ABI, "Symbol Table").
const SYM_SIZE: usize = 24;
/// How many symbols to look through at most: a vmlinux has ~150k.
const MAX_SYMS: usize = 4 << 20;

/// Parses an RV64 little-endian ELF. A position-independent file (ET_DYN) is moved so
/// its lowest segment lands at `pie_base` (OpenSBI's `fw_dynamic.elf` is linked at 0
/// and relocates itself). `want` names the symbols to look up.
pub fn parse<'a>(
    path: &Path,
    data: &'a [u8],
    pie_base: u64,
    want: &[&str],
) -> Result<ElfFile<'a>, BootError> {
    let bad = |reason: String| BootError::BadElf {
        path: path.to_path_buf(),
        reason,
    };
    if data.len() < 64 || !data.starts_with(b"\x7fELF") {
        return Err(bad("truncated ELF header".into()));
    }
    // e_ident[EI_CLASS], e_ident[EI_DATA].
    match (data[4], data[5]) {
        (2, 1) => {}
        (1, _) => return Err(bad("it is a 32-bit ELF; Rivet runs RV64".into())),
        (_, 2) => return Err(bad("it is big-endian".into())),
        (c, d) => return Err(bad(format!("unknown ELF class {c} / data encoding {d}"))),
    }
    let header = Elf::parse_header(data).map_err(|e| bad(e.to_string()))?;
    if header.e_machine != EM_RISCV {
        return Err(bad(format!(
            "machine type {} is not RISC-V ({EM_RISCV})",
            header.e_machine
        )));
    }
    let pie = match header.e_type {
        ET_EXEC => false,
        ET_DYN => true,
        t => return Err(bad(format!("ELF type {t} is not an executable"))),
    };
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(data, header.e_phoff as usize, header.e_phnum as usize, ctx)
        .map_err(|e| bad(format!("program headers: {e}")))?;

    let mut segments = Vec::new();
    for ph in phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0)
    {
        if ph.p_filesz > ph.p_memsz {
            return Err(bad(format!(
                "segment at {:#x} has a file size above its memory size",
                ph.p_paddr
            )));
        }
        let file = ph
            .p_offset
            .checked_add(ph.p_filesz)
            .filter(|&end| end <= data.len() as u64)
            .map(|end| &data[ph.p_offset as usize..end as usize])
            .ok_or_else(|| {
                bad(format!(
                    "segment at {:#x} extends past the end of the file",
                    ph.p_paddr
                ))
            })?;
        if ph.p_paddr.checked_add(ph.p_memsz).is_none() {
            return Err(bad(format!(
                "segment at {:#x} wraps the address space",
                ph.p_paddr
            )));
        }
        segments.push(Segment {
            addr: ph.p_paddr,
            mem_size: ph.p_memsz,
            data: file,
        });
    }
    if segments.is_empty() {
        return Err(bad("it has no loadable segment".into()));
    }

    let mut elf = ElfFile {
        entry: header.e_entry,
        pie,
        segments,
        symbols: symbols(data, &header, ctx, want).map_err(bad)?,
    };
    if pie {
        let bias = pie_base.wrapping_sub(elf.low());
        for s in &mut elf.segments {
            s.addr = s.addr.wrapping_add(bias);
            if s.addr.checked_add(s.mem_size).is_none() {
                return Err(bad("relocated segment wraps the address space".into()));
            }
        }
        elf.entry = elf.entry.wrapping_add(bias);
        for v in elf.symbols.values_mut() {
            *v = v.wrapping_add(bias);
        }
    }
    Ok(elf)
}

/// Looks up the symbols in `want` in the (last) SHT_SYMTAB section.
fn symbols(
    data: &[u8],
    header: &goblin::elf::Header,
    ctx: Ctx,
    want: &[&str],
) -> Result<BTreeMap<String, u64>, String> {
    let mut found = BTreeMap::new();
    if want.is_empty() || header.e_shoff == 0 {
        return Ok(found);
    }
    let shdrs = SectionHeader::parse(data, header.e_shoff as usize, header.e_shnum as usize, ctx)
        .map_err(|e| format!("section headers: {e}"))?;
    let Some(symtab) = shdrs.iter().rfind(|s| s.sh_type == SHT_SYMTAB) else {
        return Ok(found);
    };
    let section = |s: &SectionHeader| -> Result<&[u8], String> {
        s.sh_offset
            .checked_add(s.sh_size)
            .filter(|&end| end <= data.len() as u64)
            .map(|end| &data[s.sh_offset as usize..end as usize])
            .ok_or_else(|| "a section extends past the end of the file".to_string())
    };
    let syms = section(symtab)?;
    let strtab = match shdrs.get(symtab.sh_link as usize) {
        Some(s) => section(s)?,
        None => return Err("the symbol table links to a missing string table".into()),
    };
    for sym in syms.chunks_exact(SYM_SIZE).take(MAX_SYMS) {
        let name_off = u32::from_le_bytes([sym[0], sym[1], sym[2], sym[3]]) as usize;
        let shndx = u16::from_le_bytes([sym[6], sym[7]]);
        let value = u64::from_le_bytes(sym[8..16].try_into().expect("8 bytes"));
        // SHN_UNDEF: a reference, not a definition.
        if shndx == 0 {
            continue;
        }
        let Some(tail) = strtab.get(name_off..) else {
            continue;
        };
        let name = &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())];
        if let Some(w) = want.iter().find(|w| w.as_bytes() == name) {
            found.entry((*w).to_string()).or_insert(value);
        }
    }
    Ok(found)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 RISC-V executable with one PT_LOAD segment and a symbol table
    /// holding `tohost` and `fromhost`, written by hand so the test needs no toolchain.
    pub(crate) fn tiny_elf(addr: u64, code: &[u8], bss: u64, e_type: u16) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[0..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // ELFCLASS64
        f[5] = 1; // little-endian
        f[6] = 1; // EV_CURRENT
        f[16..18].copy_from_slice(&e_type.to_le_bytes());
        f[18..20].copy_from_slice(&EM_RISCV.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&addr.to_le_bytes()); // e_entry
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        f[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        f[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
                                                         // Program header.
        let code_off = 64 + 56;
        let mut ph = vec![0u8; 56];
        ph[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
        ph[4..8].copy_from_slice(&5u32.to_le_bytes());
        ph[8..16].copy_from_slice(&(code_off as u64).to_le_bytes());
        ph[16..24].copy_from_slice(&addr.to_le_bytes());
        ph[24..32].copy_from_slice(&addr.to_le_bytes());
        ph[32..40].copy_from_slice(&(code.len() as u64).to_le_bytes());
        ph[40..48].copy_from_slice(&(code.len() as u64 + bss).to_le_bytes());
        ph[48..56].copy_from_slice(&0x1000u64.to_le_bytes());
        f.extend(ph);
        f.extend(code);
        // String table and symbol table.
        let strtab = b"\0tohost\0fromhost\0undef\0".to_vec();
        let strtab_off = f.len();
        f.extend(&strtab);
        while !f.len().is_multiple_of(8) {
            f.push(0);
        }
        let symtab_off = f.len();
        let sym = |name: u32, shndx: u16, value: u64| {
            let mut s = vec![0u8; 24];
            s[0..4].copy_from_slice(&name.to_le_bytes());
            s[4] = 0x11; // STB_GLOBAL, STT_OBJECT
            s[6..8].copy_from_slice(&shndx.to_le_bytes());
            s[8..16].copy_from_slice(&value.to_le_bytes());
            s
        };
        f.extend(sym(0, 0, 0));
        f.extend(sym(1, 1, addr + 0x100));
        f.extend(sym(8, 1, addr + 0x140));
        f.extend(sym(17, 0, 0x1234));
        // Section headers: null, .strtab, .symtab.
        let shoff = f.len();
        f[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
        f[60..62].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
        let sh = |ty: u32, off: usize, size: usize, link: u32, entsize: u64| {
            let mut s = vec![0u8; 64];
            s[4..8].copy_from_slice(&ty.to_le_bytes());
            s[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            s[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            s[40..44].copy_from_slice(&link.to_le_bytes());
            s[56..64].copy_from_slice(&entsize.to_le_bytes());
            s
        };
        f.extend(sh(0, 0, 0, 0, 0));
        f.extend(sh(3, strtab_off, strtab.len(), 0, 0)); // SHT_STRTAB
        f.extend(sh(SHT_SYMTAB, symtab_off, 4 * 24, 1, 24));
        f
    }

    const WANT: &[&str] = &["tohost", "fromhost", "undef", "absent"];

    #[test]
    fn parses_and_loads() {
        let code = [0x13u8, 0, 0, 0, 0x6f, 0, 0, 0];
        let f = tiny_elf(0x8000_0000, &code, 0x2000, ET_EXEC);
        let e = parse(Path::new("t.elf"), &f, 0, WANT).unwrap();
        assert_eq!(e.entry, 0x8000_0000);
        assert!(!e.pie);
        assert_eq!((e.low(), e.high()), (0x8000_0000, 0x8000_2008));
        assert_eq!(e.symbols.get("tohost"), Some(&0x8000_0100));
        assert_eq!(e.symbols.get("fromhost"), Some(&0x8000_0140));
        assert!(!e.symbols.contains_key("undef") && !e.symbols.contains_key("absent"));

        let ram = GuestRam::new(0x8000_0000, 0x10_0000).unwrap();
        ram.write(0x8000_1000, 8, u64::MAX).unwrap();
        e.load(Path::new("t.elf"), &ram).unwrap();
        assert_eq!(ram.read(0x8000_0000, 8), Some(0x6f_0000_0013));
        assert_eq!(ram.read(0x8000_1000, 8), Some(0), "bss is zeroed");
    }

    #[test]
    fn pie_is_moved_to_the_base() {
        let f = tiny_elf(0, &[1, 2, 3, 4], 0, ET_DYN);
        let e = parse(Path::new("fw.elf"), &f, 0x8000_0000, WANT).unwrap();
        assert!(e.pie);
        assert_eq!((e.entry, e.low()), (0x8000_0000, 0x8000_0000));
        assert_eq!(e.symbols.get("tohost"), Some(&0x8000_0100));
    }

    #[test]
    fn segments_outside_ram_are_refused() {
        let f = tiny_elf(0x7fff_f000, &[0; 16], 0, ET_EXEC);
        let e = parse(Path::new("low.elf"), &f, 0, &[]).unwrap();
        let ram = GuestRam::new(0x8000_0000, 0x10_0000).unwrap();
        let err = e.load(Path::new("low.elf"), &ram).unwrap_err().to_string();
        assert!(
            err.contains("low.elf") && err.contains("0x7ffff000") && err.contains("outside"),
            "{err}"
        );
        assert_eq!(ram.read(0x8000_0000, 8), Some(0));
    }

    #[test]
    fn rejects_foreign_and_corrupt_files() {
        let p = Path::new("bad.elf");
        let good = tiny_elf(0x8000_0000, &[0; 8], 0, ET_EXEC);
        let reason = |f: &[u8]| parse(p, f, 0, WANT).unwrap_err().to_string();
        let mut f = good.clone();
        f[4] = 1;
        assert!(reason(&f).contains("32-bit"));
        let mut f = good.clone();
        f[18] = 62; // x86-64
        assert!(reason(&f).contains("not RISC-V"));
        let mut f = good.clone();
        f[16] = 1; // ET_REL
        assert!(reason(&f).contains("not an executable"));
        let mut f = good.clone();
        f[56] = 0; // no program headers
        assert!(reason(&f).contains("no loadable segment"));
        assert!(reason(&good[..100]).starts_with("bad.elf is not a usable RISC-V ELF"));
        // Every truncation fails cleanly; every corrupted byte parses or fails, no panic.
        for len in 0..good.len() - 1 {
            let _ = parse(p, &good[..len], 0, WANT);
        }
        for i in 0..good.len() {
            for v in [0u8, 0xff, 0x7f, 0x80, 0x01] {
                let mut f = good.clone();
                f[i] = v;
                if let Ok(e) = parse(p, &f, 0x8000_0000, WANT) {
                    let ram = GuestRam::new(0x8000_0000, 0x1000).unwrap();
                    let _ = e.load(p, &ram);
                }
            }
        }
    }
}
