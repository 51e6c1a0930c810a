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
