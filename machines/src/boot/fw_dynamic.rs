//! The OpenSBI `fw_dynamic` hand-off and the reset code of the boot ROM.
//!
//! OpenSBI's fw_dynamic firmware expects, on every hart: a0 = hart id, a1 = device
//! tree address, a2 = address of a `struct fw_dynamic_info` (OpenSBI
//! `include/sbi/fw_dynamic.h`) saying where the next stage starts and in which mode.
//! As on QEMU's virt board, the info sits in the mask ROM at 0x1000 right after a short
//! reset program that loads those registers and jumps to the firmware; Rivet can either
//! start harts at the ROM or start them at the firmware with the registers preset,
//! which is the same state.

/// `FW_DYNAMIC_INFO_MAGIC_VALUE`: "OSBI".
pub const MAGIC: u64 = 0x4942_534f;
/// Version 2 adds `boot_hart`.
pub const VERSION: u64 = 2;
/// `next_mode` values: the privilege level of the next stage (Priv spec 1.2 encoding).
pub const NEXT_MODE_U: u64 = 0;
pub const NEXT_MODE_S: u64 = 1;
pub const NEXT_MODE_M: u64 = 3;

/// `struct fw_dynamic_info` for RV64: six little-endian `unsigned long`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwDynamicInfo {
    pub next_addr: u64,
    pub next_mode: u64,
    pub options: u64,
    /// Preferred boot hart (version 2). QEMU passes 0, and so does Rivet.
    pub boot_hart: u64,
}

impl FwDynamicInfo {
    pub const SIZE: usize = 48;

    /// Hand-off to an S-mode kernel at `next_addr`.
    pub fn s_mode(next_addr: u64) -> Self {
        Self {
            next_addr,
            next_mode: NEXT_MODE_S,
            options: 0,
            boot_hart: 0,
        }
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let words = [
            MAGIC,
            VERSION,
            self.next_addr,
            self.next_mode,
            self.options,
            self.boot_hart,
        ];
        let mut out = [0u8; Self::SIZE];
        for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

// Instruction encoders for the few RV64 instructions of the reset program (Unpriv spec
// ch. 2.2-2.6 and 7; base opcode map in ch. 34).
const T0: u32 = 5;
const A0: u32 = 10;
const A1: u32 = 11;
const A2: u32 = 12;

fn i_type(imm: i32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | rs1 << 15 | funct3 << 12 | rd << 7 | opcode
}
fn auipc(rd: u32, imm20: u32) -> u32 {
    imm20 << 12 | rd << 7 | 0x17
}
fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(imm, rs1, 0, rd, 0x13)
}
fn ld(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(imm, rs1, 3, rd, 0x03)
}
fn jalr(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(imm, rs1, 0, rd, 0x67)
}
/// `csrrs rd, csr, x0`, i.e. `csrr rd, csr`.
fn csrr(rd: u32, csr: u32) -> u32 {
    i_type(csr as i32, 0, 2, rd, 0x73)
}
const CSR_MHARTID: u32 = 0xf14;

/// Size of the reset program with its two data words; `fw_dynamic_info` follows it.
pub const RESET_VECTOR_SIZE: usize = 40;

/// The virt board's reset program (placed at the ROM base):
///
/// ```text
///     auipc t0, 0            # t0 = ROM base
///     addi  a2, t0, 40       # a2 = &fw_dynamic_info
///     csrr  a0, mhartid
///     ld    a1, 32(t0)       # device tree
///     ld    t0, 24(t0)       # first stage
///     jr    t0
///     .dword start, fdt
/// ```
pub fn reset_vector(start: u64, fdt: u64) -> [u8; RESET_VECTOR_SIZE] {
    let code = [
        auipc(T0, 0),
        addi(A2, T0, RESET_VECTOR_SIZE as i32),
        csrr(A0, CSR_MHARTID),
        ld(A1, T0, 32),
        ld(T0, T0, 24),
        jalr(0, T0, 0),
    ];
    let mut out = [0u8; RESET_VECTOR_SIZE];
    for (chunk, insn) in out.chunks_exact_mut(4).zip(code) {
        chunk.copy_from_slice(&insn.to_le_bytes());
    }
    out[24..32].copy_from_slice(&start.to_le_bytes());
    out[32..40].copy_from_slice(&fdt.to_le_bytes());
    out
}

/// Spike's reset program: the device tree follows it in the ROM at offset 32.
///
/// ```text
///     auipc t0, 0
///     addi  a1, t0, 32       # device tree
///     csrr  a0, mhartid
///     ld    t0, 24(t0)
///     jr    t0
///     .word 0
///     .dword start
/// ```
pub const SPIKE_RESET_SIZE: usize = 32;

pub fn spike_reset_vector(start: u64) -> [u8; SPIKE_RESET_SIZE] {
    let code = [
        auipc(T0, 0),
        addi(A1, T0, SPIKE_RESET_SIZE as i32),
        csrr(A0, CSR_MHARTID),
        ld(T0, T0, 24),
        jalr(0, T0, 0),
        0,
    ];
    let mut out = [0u8; SPIKE_RESET_SIZE];
    for (chunk, insn) in out.chunks_exact_mut(4).zip(code) {
        chunk.copy_from_slice(&insn.to_le_bytes());
    }
    out[24..32].copy_from_slice(&start.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn info_layout() {
        let b = FwDynamicInfo::s_mode(0x8020_0000).to_bytes();
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(
            [w(0), w(1), w(2), w(3), w(4), w(5)],
            [0x4942_534f, 2, 0x8020_0000, 1, 0, 0]
        );
    }

    #[test]
    fn reset_vector_matches_known_encodings() {
        // The words QEMU 10's virt mask ROM holds (read back with its monitor).
        let v = reset_vector(0x8000_0000, 0x8fe0_0000);
        let w: Vec<u32> = v
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            w,
            [
                0x0000_0297,
                0x0282_8613,
                0xf140_2573,
                0x0202_b583,
                0x0182_b283,
                0x0002_8067,
                0x8000_0000,
                0,
                0x8fe0_0000,
                0
            ]
        );
    }

    /// Cross-checks the encoders against the GNU assembler, when it is installed.
    #[test]
    fn spike_reset_vector_matches_the_assembler() {
        let dir = std::env::temp_dir().join(format!("rivet-rv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("r.s");
        std::fs::write(
            &src,
            "auipc t0, 0\naddi a1, t0, 32\ncsrr a0, mhartid\nld t0, 24(t0)\njr t0\n",
        )
        .unwrap();
        let obj = dir.join("r.o");
        let bin = dir.join("r.bin");
        let ok = Command::new("riscv64-unknown-elf-as")
            .args(["-march=rv64i_zicsr", "-o"])
            .arg(&obj)
            .arg(&src)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("riscv64-unknown-elf-objcopy")
                .args(["-O", "binary", "-j", ".text"])
                .arg(&obj)
                .arg(&bin)
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: riscv64-unknown-elf-as/objcopy not available");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        let expected = std::fs::read(&bin).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(&spike_reset_vector(0)[..20], &expected[..]);
    }
}
