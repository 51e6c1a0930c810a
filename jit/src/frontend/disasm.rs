//! Disassembler generated from the decode table: each op's operand format
//! ([`Fmt::args`]) says what to print. Output follows GNU objdump's `-M no-aliases`
//! style with ABI register names; compressed instructions print as their 32-bit
//! expansion. Jump and branch targets are absolute addresses.

use std::fmt::Write;

use super::ir::Insn;
use super::table::{Fmt, Op};

const XREGS: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

const FREGS: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// Rounding-mode names by funct3 (Unpriv "F" 11.2); 5 and 6 are reserved.
const RMS: [&str; 8] = ["rne", "rtz", "rdn", "rup", "rmm", "rm5", "rm6", "dyn"];

/// The FLI constants by rs1 index (Zfa, "fli" table), as binutils prints them.
const FLI: [&str; 32] = [
    "-1.0",
    "min",
    "1.52587890625e-05",
    "3.0517578125e-05",
    "0.00390625",
    "0.0078125",
    "0.0625",
    "0.125",
    "0.25",
    "0.3125",
    "0.375",
    "0.4375",
    "0.5",
    "0.625",
    "0.75",
    "0.875",
    "1.0",
    "1.25",
    "1.5",
    "1.75",
    "2.0",
    "2.5",
    "3.0",
    "4.0",
    "8.0",
    "16.0",
    "128.0",
    "256.0",
    "32768.0",
    "65536.0",
    "inf",
    "nan",
];

/// ABI name of integer register `n` (`zero`, `ra`, `a0`, ...).
pub fn xreg_name(n: u8) -> &'static str {
    XREGS[n as usize & 31]
}

/// ABI name of FP register `n` (`ft0`, `fa0`, ...).
pub fn freg_name(n: u8) -> &'static str {
    FREGS[n as usize & 31]
}

/// Name of a common CSR (Priv spec 2.2 CSR listing, H and AIA chapters), if known.
pub fn csr_name(csr: u16) -> Option<&'static str> {
    Some(match csr {
        0x001 => "fflags",
        0x002 => "frm",
        0x003 => "fcsr",
        0x015 => "seed",
        0xc00 => "cycle",
        0xc01 => "time",
        0xc02 => "instret",
        0x100 => "sstatus",
        0x104 => "sie",
        0x105 => "stvec",
        0x106 => "scounteren",
        0x10a => "senvcfg",
        0x140 => "sscratch",
        0x141 => "sepc",
        0x142 => "scause",
        0x143 => "stval",
        0x144 => "sip",
        0x14d => "stimecmp",
        0x150 => "siselect",
        0x151 => "sireg",
        0x15c => "stopei",
        0x180 => "satp",
        0xdb0 => "stopi",
        0x200 => "vsstatus",
        0x204 => "vsie",
        0x205 => "vstvec",
        0x240 => "vsscratch",
        0x241 => "vsepc",
        0x242 => "vscause",
        0x243 => "vstval",
        0x244 => "vsip",
        0x24d => "vstimecmp",
        0x280 => "vsatp",
        0x600 => "hstatus",
        0x602 => "hedeleg",
        0x603 => "hideleg",
        0x604 => "hie",
        0x605 => "htimedelta",
        0x606 => "hcounteren",
        0x607 => "hgeie",
        0x60a => "henvcfg",
        0x643 => "htval",
        0x644 => "hip",
        0x645 => "hvip",
        0x64a => "htinst",
        0x680 => "hgatp",
        0xe12 => "hgeip",
        0x300 => "mstatus",
        0x301 => "misa",
        0x302 => "medeleg",
        0x303 => "mideleg",
        0x304 => "mie",
        0x305 => "mtvec",
        0x306 => "mcounteren",
        0x30a => "menvcfg",
        0x320 => "mcountinhibit",
        0x340 => "mscratch",
        0x341 => "mepc",
        0x342 => "mcause",
        0x343 => "mtval",
        0x344 => "mip",
        0x34a => "mtinst",
        0x34b => "mtval2",
        0x350 => "miselect",
        0x351 => "mireg",
        0x35c => "mtopei",
        0xfb0 => "mtopi",
        0x3a0 => "pmpcfg0",
        0x3a2 => "pmpcfg2",
        0x3b0 => "pmpaddr0",
        0x3b1 => "pmpaddr1",
        0x3b2 => "pmpaddr2",
        0x3b3 => "pmpaddr3",
        0x747 => "mseccfg",
        0x7a0 => "tselect",
        0x7a1 => "tdata1",
        0x7a2 => "tdata2",
        0x7a3 => "tdata3",
        0x7b0 => "dcsr",
        0x7b1 => "dpc",
        0xb00 => "mcycle",
        0xb02 => "minstret",
        0xf11 => "mvendorid",
        0xf12 => "marchid",
        0xf13 => "mimpid",
        0xf14 => "mhartid",
        0xf15 => "mconfigptr",
        _ => return None,
    })
}

/// FENCE predecessor/successor set as objdump prints it (`iorw`, `rw`, `0`).
fn write_fence_set(out: &mut String, set: u8) {
    if set & 0xf == 0 {
        out.push('0');
        return;
    }
    for (bit, c) in [(8, 'i'), (4, 'o'), (2, 'r'), (1, 'w')] {
        if set & bit != 0 {
            out.push(c);
        }
    }
}

/// Disassemble one decoded instruction at `pc` (used for pc-relative targets).
pub fn disasm(insn: &Insn, pc: u64) -> String {
    let mut out = String::with_capacity(32);
    write_disasm(&mut out, insn, pc);
    out
}

/// [`disasm`] appending to `out`.
pub fn write_disasm(out: &mut String, insn: &Insn, pc: u64) {
    if insn.op == Op::Illegal {
        if insn.len == 2 {
            let _ = write!(out, ".2byte 0x{:x}", insn.raw & 0xffff);
        } else {
            let _ = write!(out, ".4byte 0x{:x}", insn.raw);
        }
        return;
    }
    let fmt = insn.op.format();
    out.push_str(insn.op.mnemonic());
    if matches!(fmt, Fmt::Amo | Fmt::Lr) {
        out.push_str(match insn.rm & 3 {
            0 => "",
            1 => ".rl",
            2 => ".aq",
            _ => ".aqrl",
        });
    }
    let args = fmt.args().as_bytes();
    if args.is_empty() {
        return;
    }
    out.push(' ');
    let mut k = 0;
    while k < args.len() {
        let c = args[k];
        // The rounding mode is omitted with its comma when dynamic, as objdump does.
        if c == b',' && args.get(k + 1) == Some(&b'm') && insn.rm == 7 {
            k += 2;
            continue;
        }
        match c {
            b'd' => out.push_str(xreg_name(insn.rd)),
            b's' => out.push_str(xreg_name(insn.rs1)),
            b't' => out.push_str(xreg_name(insn.rs2)),
            b'D' => out.push_str(freg_name(insn.rd)),
            b'S' => out.push_str(freg_name(insn.rs1)),
            b'T' => out.push_str(freg_name(insn.rs2)),
            b'R' => out.push_str(freg_name(insn.rs3)),
            b'j' => {
                let _ = write!(out, "{}", insn.imm);
            }
            b'>' => {
                let _ = write!(out, "0x{:x}", insn.imm);
            }
            b'u' => {
                let _ = write!(out, "0x{:x}", (insn.imm as u32) >> 12);
            }
            b'p' => {
                let target = pc.wrapping_add(insn.imm as i64 as u64);
                let _ = write!(out, "0x{target:x}");
            }
            b'E' => match csr_name(insn.csr()) {
                Some(name) => out.push_str(name),
                None => {
                    let _ = write!(out, "0x{:x}", insn.csr());
                }
            },
            b'Z' => {
                let _ = write!(out, "{}", insn.rs1);
            }
            b'm' => out.push_str(RMS[insn.rm as usize & 7]),
            b'P' => write_fence_set(out, insn.rm >> 4),
            b'Q' => write_fence_set(out, insn.rm & 0xf),
            b'F' => out.push_str(FLI[insn.rs1 as usize & 31]),
            other => out.push(other as char),
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::table::{compressed_mnemonic, decode, Ext, INSNS16, INSNS32};
    use std::collections::BTreeMap;
    use std::process::Command;

    const AS: &str = "riscv64-unknown-elf-as";
    const OBJDUMP: &str = "riscv64-unknown-elf-objdump";
    /// Every extension binutils 2.40 knows that Rivet decodes. It does not know Zfa
    /// or Zicond (added in 2.41), so those encodings are checked only by unit tests.
    const MARCH: &str = "rv64gch_zba_zbb_zbc_zbs_zicbom_zicboz_zicbop_zihintpause_svinval_zawrs";

    struct Rng(u64);

    impl Rng {
        fn next_u32(&mut self) -> u32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
        }

        fn next_u16(&mut self) -> u16 {
            self.next_u32() as u16
        }
    }

    fn dis(raw: u32, pc: u64) -> String {
        disasm(&decode(raw), pc)
    }

    #[test]
    fn formats() {
        assert_eq!(dis(0x8005_8513, 0), "addi a0,a1,-2048");
        assert_eq!(dis(0xfea5_bc23, 0), "sd a0,-8(a1)");
        assert_eq!(dis(0xfeb5_0ee3, 0x1000), "beq a0,a1,0xffc");
        assert_eq!(dis(0xffff_f537, 0), "lui a0,0xfffff");
        assert_eq!(dis(0x43f5_d513, 0), "srai a0,a1,0x3f");
        assert_eq!(dis(0x3005_9573, 0), "csrrw a0,mstatus,a1");
        assert_eq!(dis(0x7c0f_d573, 0), "csrrwi a0,0x7c0,31");
        assert_eq!(dis(0x0ff0_000f, 0), "fence iorw,iorw");
        assert_eq!(dis(0x0100_000f, 0), "fence w,0");
        assert_eq!(dis(0x06c5_b52f, 0), "amoadd.d.aqrl a0,a2,(a1)");
        assert_eq!(dis(0x1405_a52f, 0), "lr.w.aq a0,(a1)");
        assert_eq!(dis(0x6ac5_8543, 0), "fmadd.d fa0,fa1,fa2,fa3,rne");
        assert_eq!(dis(0x00c5_f553, 0), "fadd.s fa0,fa1,fa2");
        assert_eq!(dis(0xc285_9553, 0), "fcvtmod.w.d a0,fa1,rtz");
        assert_eq!(dis(0xf21f_0553, 0), "fli.d fa0,inf");
        assert_eq!(dis(0x6005_c573, 0), "hlv.b a0,(a1)");
        assert_eq!(dis(0x0045_200f, 0), "cbo.zero (a0)");
        assert_eq!(dis(0x00d0_0073, 0), "wrs.nto");
        // Compressed instructions print as their expansion; targets are absolute.
        assert_eq!(dis(0xb001, 0x800), "jal zero,0x0");
        assert_eq!(dis(0x8082, 0), "jalr zero,0(ra)");
        assert_eq!(dis(0x0000, 0), ".2byte 0x0");
        assert_eq!(dis(0xffff_ffff, 0), ".4byte 0xffffffff");
    }

    /// binutils 2.40 knows neither Zfa nor Zicond: check encodings from the Zfa and
    /// Zicond specifications (as LLVM's MC tests also give them) here.
    #[test]
    fn zfa_and_zicond() {
        for (raw, want) in [
            (0xf010_00d3, "fli.s ft1,-1.0"),
            (0xf010_80d3, "fli.s ft1,min"),
            (0xf21f_80d3, "fli.d ft1,nan"),
            (0x28c5_a553, "fminm.s fa0,fa1,fa2"),
            (0x295a_39d3, "fmaxm.s fs3,fs4,fs5"),
            (0x2ac5_a553, "fminm.d fa0,fa1,fa2"),
            (0x2b5a_39d3, "fmaxm.d fs3,fs4,fs5"),
            (0x4049_74d3, "fround.s fs1,fs2"),
            (0x4049_14d3, "fround.s fs1,fs2,rtz"),
            (0x4059_74d3, "froundnx.s fs1,fs2"),
            (0x4249_04d3, "fround.d fs1,fs2,rne"),
            (0x4259_04d3, "froundnx.d fs1,fs2,rne"),
            (0xc280_95d3, "fcvtmod.w.d a1,ft1,rtz"),
            (0xa124_d5d3, "fltq.s a1,fs1,fs2"),
            (0xa020_c5d3, "fleq.s a1,ft1,ft2"),
            (0xa324_d5d3, "fltq.d a1,fs1,fs2"),
            (0xa220_c5d3, "fleq.d a1,ft1,ft2"),
            (0x0ec5_d533, "czero.eqz a0,a1,a2"),
            (0x0ec5_f533, "czero.nez a0,a1,a2"),
            // The H-precision forms need Zfh, which Rivet does not implement.
            (0xf410_00d3, ".4byte 0xf41000d3"),
            (0x2cc5_a553, ".4byte 0x2cc5a553"),
        ] {
            assert_eq!(dis(raw, 0), want, "0x{raw:08x}");
        }
    }

    /// Drop objdump's `<symbol+off>` annotations.
    fn strip_symbols(s: &str) -> String {
        let mut out = String::new();
        let mut depth = 0;
        for c in s.chars() {
            match c {
                '<' => depth += 1,
                '>' if depth > 0 => depth -= 1,
                _ if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out.trim().to_string()
    }

    fn tokens(s: &str) -> Vec<String> {
        s.split([',', '(', ')', ' '])
            .filter(|t| !t.is_empty())
            .map(|t| t.trim_start_matches("0x").to_string())
            .collect()
    }

    /// Compare one word with objdump's rendering; `Err` describes a disagreement,
    /// `Ok(false)` an encoding objdump cannot check.
    fn check(raw: u32, pc: u64, obj: &str) -> Result<bool, String> {
        let insn = decode(raw);
        let mine = disasm(&insn, pc);
        // Drop objdump's `<symbol>` annotations and `# address` comments.
        let obj = strip_symbols(obj.split(" #").next().unwrap_or(obj));
        let (omn, oargs) = obj.split_once(char::is_whitespace).unwrap_or((&obj, ""));
        let oargs = oargs.trim();
        let obj_illegal = omn.starts_with('.') || omn == "c.unimp";
        let bad = |why: &str| {
            Err(format!(
                "0x{raw:08x}: {why}: objdump `{obj}`, Rivet `{mine}`"
            ))
        };
        let fmt = insn.op.format();
        if obj_illegal {
            if insn.op == Op::Illegal {
                return Ok(true);
            }
            return match insn.op.ext() {
                // Unknown to binutils 2.40.
                Some(Ext::Zfa | Ext::Zicond) => Ok(false),
                // Unpriv 2.7 / Zifencei: reserved FENCE fields are ignored, not illegal.
                _ if matches!(insn.op, Op::Fence | Op::FenceTso | Op::FenceI) => Ok(false),
                // binutils 2.40 only accepts rm = 000/111 for exact conversions.
                _ if matches!(fmt, Fmt::F1exact | Fmt::XtoFexact) => Ok(false),
                _ => bad("objdump rejects it"),
            };
        }
        if insn.op == Op::Illegal {
            // Reserved code points objdump does not reject: a static rm of 101/110
            // (Unpriv 11.2) and c.addi16sp with nzimm = 0 (RVC listings).
            let reserved_rm = oargs.ends_with("unknown") && raw & 3 == 3 && raw & 0x7f >= 0x43;
            if reserved_rm || (omn == "c.addi16sp" && oargs.ends_with(",0")) {
                return Ok(true);
            }
            return bad("Rivet rejects it");
        }
        if raw & 3 != 3 {
            // Compressed: same RVC mnemonic, and every objdump operand appears in the
            // expansion.
            let cname = match omn {
                "c.slli64" => "c.slli",
                "c.srli64" => "c.srli",
                "c.srai64" => "c.srai",
                "c.nop" => "c.addi",
                m => m,
            };
            if compressed_mnemonic(raw as u16) != Some(cname) {
                return bad("RVC mnemonic differs");
            }
            let mut mt = tokens(&mine);
            for t in tokens(oargs) {
                match mt.iter().position(|m| *m == t) {
                    Some(p) => {
                        mt.remove(p);
                    }
                    None if omn.ends_with("64") => {}
                    None => return bad("operand missing"),
                }
            }
            return Ok(true);
        }
        match omn {
            "pause" if insn.op == Op::Fence && insn.rm == 0x10 => return Ok(true),
            "unimp" if insn.op == Op::Csrrw && insn.csr() == 0xc00 => return Ok(true),
            m if m.starts_with("prefetch.") => {
                return if insn.op == Op::Ori && insn.rd == 0 {
                    Ok(true)
                } else {
                    bad("prefetch is not ori")
                };
            }
            _ => {}
        }
        let (mmn, margs) = mine.split_once(' ').unwrap_or((&mine, ""));
        if mmn != omn {
            return bad("mnemonic differs");
        }
        let ot = tokens(&oargs.replace("unknown", "0"));
        let mt = tokens(margs);
        if ot.len() != mt.len() {
            return bad("operand count differs");
        }
        for (o, m) in ot.iter().zip(&mt) {
            let hexish = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
            // A CSR that only one side has a name for.
            let csr_unnamed = matches!(fmt, Fmt::Csr | Fmt::CsrI) && (hexish(o) || hexish(m));
            if o != m && !csr_unnamed {
                return bad("operands differ");
            }
        }
        Ok(true)
    }

    #[test]
    fn objdump_oracle() {
        let have = |p: &str| Command::new(p).arg("--version").output().is_ok();
        if !have(AS) || !have(OBJDUMP) {
            eprintln!(
                "\n!!!! SKIPPED objdump_oracle: {AS} / {OBJDUMP} not found; install \
                 binutils-riscv64-unknown-elf to check the decoder against GNU binutils !!!!\n"
            );
            return;
        }
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let mut words: Vec<u32> = Vec::new();
        // Random encodings of every table line (random bits outside the mask).
        for e in INSNS32 {
            for _ in 0..48 {
                words.push(e.matc | rng.next_u32() & !e.mask);
            }
        }
        for e in INSNS16 {
            for _ in 0..96 {
                words.push((e.matc | rng.next_u16() & !e.mask) as u32);
            }
        }
        // Near misses: random words under every major opcode, and random parcels.
        for _ in 0..40_000 {
            let w = rng.next_u32() | 3;
            if w & 0x1f != 0x1f {
                words.push(w);
            }
        }
        for _ in 0..8_000 {
            let h = rng.next_u16();
            if h & 3 != 3 {
                words.push(h as u32);
            }
        }
        let dir = std::env::temp_dir().join(format!("rivet-oracle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (src, obj) = (dir.join("w.s"), dir.join("w.o"));
        let mut text = String::new();
        let mut at = BTreeMap::new();
        let mut pc = 0u64;
        for &w in &words {
            let _ = writeln!(text, ".insn 0x{w:x}");
            at.insert(pc, w);
            pc += if w & 3 == 3 { 4 } else { 2 };
        }
        std::fs::write(&src, text).unwrap();
        let st = Command::new(AS)
            .args([&format!("-march={MARCH}"), "-o"])
            .arg(&obj)
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success(), "{AS} failed");
        let out = Command::new(OBJDUMP)
            .args(["-d", "-M", "no-aliases"])
            .arg(&obj)
            .output()
            .unwrap();
        assert!(out.status.success(), "{OBJDUMP} failed");
        let _ = std::fs::remove_dir_all(&dir);
        let listing = String::from_utf8_lossy(&out.stdout);
        let (mut checked, mut unverified, mut failures) = (0, 0, Vec::new());
        let mut agreed = std::collections::BTreeSet::new();
        for line in listing.lines() {
            // "  1c:\t0005e013          \tprefetch.i\t0(a1)"
            let mut parts = line.splitn(3, '\t');
            let (Some(addr), Some(hex), Some(asm)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(addr) = addr.trim().strip_suffix(':') else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            let Some(&w) = at.get(&addr) else { continue };
            assert_eq!(
                u32::from_str_radix(hex.trim(), 16),
                Ok(w),
                "listing out of step"
            );
            match check(w, addr, &asm.replace('\t', " ")) {
                Ok(true) => {
                    checked += 1;
                    agreed.insert(decode(w).op as usize);
                }
                Ok(false) => unverified += 1,
                Err(e) => failures.push(e),
            }
        }
        eprintln!(
            "objdump oracle: {checked} agree, {unverified} not checkable by binutils 2.40 \
             (Zfa, Zicond, reserved FENCE fields), {} disagree",
            failures.len()
        );
        // One example per kind of disagreement.
        let mut kinds = BTreeMap::new();
        for f in &failures {
            let kind = f
                .split('`')
                .nth(1)
                .and_then(|o| o.split(' ').next())
                .unwrap_or("");
            let why = f.split(':').nth(1).unwrap_or("");
            kinds.entry((why, kind)).or_insert((f, 0)).1 += 1;
        }
        for (f, n) in kinds.values() {
            eprintln!("  [{n}x] {f}");
        }
        assert_eq!(
            checked + unverified + failures.len(),
            words.len(),
            "objdump skipped words"
        );
        assert!(
            failures.is_empty(),
            "{} disagreements with objdump",
            failures.len()
        );
    }
}
