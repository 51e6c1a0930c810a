//! Constrained-random instruction streams.
//!
//! A program holds many streams. Each stream: fill the 8 KiB signature area from
//! a per-stream seed, load every x/f register, fcsr and mscratch from a table,
//! run N random instructions of one extension group, store the whole register
//! file, print it (see runtime/stream.c). Control flow is forward-only inside a
//! stream, so every stream terminates and faults are skipped deterministically by
//! the M-mode handler.
//!
//! Memory accesses go through one base register per stream (never written by the
//! stream) that points at the middle of the signature area, so every 12-bit
//! offset stays inside it.

use std::fmt::Write as _;

use crate::encode;

/// splitmix64: small, seedable, and good enough for test generation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability pct/100.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Signed value in lo..=hi.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

/// Extension groups; each gets its own streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    I,
    M,
    A,
    F,
    D,
    C,
    Zba,
    Zbb,
    Zbc,
    Zbs,
    Zicond,
    Zfa,
    LoadStore,
    Csr,
    /// Zicbom/Zicboz/Zicbop, Zawrs and Zihintpause.
    CacheHint,
}

impl Group {
    pub const ALL: [Group; 15] = [
        Group::I,
        Group::M,
        Group::A,
        Group::F,
        Group::D,
        Group::C,
        Group::Zba,
        Group::Zbb,
        Group::Zbc,
        Group::Zbs,
        Group::Zicond,
        Group::Zfa,
        Group::LoadStore,
        Group::Csr,
        Group::CacheHint,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Group::I => "i",
            Group::M => "m",
            Group::A => "a",
            Group::F => "f",
            Group::D => "d",
            Group::C => "c",
            Group::Zba => "zba",
            Group::Zbb => "zbb",
            Group::Zbc => "zbc",
            Group::Zbs => "zbs",
            Group::Zicond => "zicond",
            Group::Zfa => "zfa",
            Group::LoadStore => "ldst",
            Group::Csr => "csr",
            Group::CacheHint => "cbo",
        }
    }
}

/// Offsets into the per-stream init/dump table (runtime/stream.c `rt_dump`).
const TABLE_F: usize = 32 * 8;
const TABLE_FCSR: usize = 64 * 8;
const TABLE_MSCRATCH: usize = 65 * 8;

/// Offset of the base register into `rt_scratch` (8 KiB): any 12-bit signed
/// offset plus an 8-byte access stays inside.
const BASE_OFFSET: i64 = 4096;

const INT_CORNERS: [u64; 14] = [
    0,
    1,
    2,
    u64::MAX,
    0x8000_0000_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0xffff_ffff_8000_0000,
    0x0000_0001_0000_0000,
    0x5555_5555_5555_5555,
    0xaaaa_aaaa_aaaa_aaaa,
    0x0000_0000_0000_0080,
];

const F64_CORNERS: [u64; 24] = [
    0x0000_0000_0000_0000, // +0
    0x8000_0000_0000_0000, // -0
    0x7ff0_0000_0000_0000, // +inf
    0xfff0_0000_0000_0000, // -inf
    0x7ff8_0000_0000_0000, // canonical qNaN
    0xfff8_0000_0000_0dea, // negative qNaN with payload
    0x7ff4_0000_0000_0000, // sNaN
    0x7ff0_0000_0000_0001, // sNaN, smallest payload
    0x0000_0000_0000_0001, // min subnormal
    0x000f_ffff_ffff_ffff, // max subnormal
    0x8000_0000_0000_0001, // -min subnormal
    0x0010_0000_0000_0000, // min normal
    0x7fef_ffff_ffff_ffff, // max normal
    0xffef_ffff_ffff_ffff, // -max normal
    0x3ff0_0000_0000_0000, // 1.0
    0xbff0_0000_0000_0000, // -1.0
    0x3fe0_0000_0000_0000, // 0.5
    0x3ff8_0000_0000_0000, // 1.5
    0xc004_0000_0000_0000, // -2.5
    0x41e0_0000_0000_0000, // 2^31
    0xc1e0_0000_0000_0000, // -2^31
    0x41f0_0000_0000_0000, // 2^32
    0x43e0_0000_0000_0000, // 2^63
    0x43f0_0000_0000_0000, // 2^64
];

const F32_CORNERS: [u32; 24] = [
    0x0000_0000,
    0x8000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0dea,
    0x7fa0_0000,
    0x7f80_0001,
    0x0000_0001,
    0x007f_ffff,
    0x8000_0001,
    0x0080_0000,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x3f80_0000,
    0xbf80_0000,
    0x3f00_0000,
    0x3fc0_0000,
    0xc020_0000,
    0x4f00_0000,
    0xcf00_0000,
    0x4f80_0000,
    0x5f00_0000,
    0x5f80_0000,
];

const RM: [&str; 6] = ["rne", "rtz", "rdn", "rup", "rmm", "dyn"];

/// One generated stream: its assembly (for the report) and the init table.
pub struct Stream {
    pub index: usize,
    pub mem_seed: u64,
    pub body: Vec<String>,
    init: Vec<String>,
}

/// A whole program: assembly text and the streams it contains.
pub struct Program {
    pub asm: String,
    pub streams: Vec<Stream>,
}

struct Gen<'a> {
    rng: &'a mut Rng,
    group: Group,
    stream: usize,
    /// Registers the stream must not write (base pointers).
    reserved: Vec<u32>,
    base: u32,
    out: Vec<String>,
    /// Forward labels: (name, units still to emit before the label).
    pending: Vec<(String, u32)>,
    labels: usize,
}

impl Gen<'_> {
    fn emit(&mut self, line: String) {
        self.out.push(line);
    }

    /// Ends one generation unit: count down forward branch targets and place
    /// the labels that are due.
    fn end_unit(&mut self) {
        let mut keep = Vec::with_capacity(self.pending.len());
        for (name, left) in std::mem::take(&mut self.pending) {
            if left == 0 {
                self.out.push(format!("{name}:"));
            } else {
                keep.push((name, left - 1));
            }
        }
        self.pending = keep;
    }

    fn new_label(&mut self) -> String {
        let l = format!(".Ls{}_{}", self.stream, self.labels);
        self.labels += 1;
        let dist = self.rng.below(5) as u32;
        self.pending.push((l.clone(), dist));
        l
    }

    /// Destination register: anything not reserved; x0 now and then.
    fn rd(&mut self) -> u32 {
        if self.rng.chance(3) {
            return 0;
        }
        loop {
            let r = 1 + self.rng.below(31) as u32;
            if !self.reserved.contains(&r) {
                return r;
            }
        }
    }

    /// Source register: anything (reading the base is harmless).
    fn rs(&mut self) -> u32 {
        if self.rng.chance(4) {
            0
        } else {
            1 + self.rng.below(31) as u32
        }
    }

    /// Destination in the compressed register set x8..x15, not reserved.
    fn rdc(&mut self) -> u32 {
        loop {
            let r = 8 + self.rng.below(8) as u32;
            if !self.reserved.contains(&r) {
                return r;
            }
        }
    }

    fn rsc(&mut self) -> u32 {
        8 + self.rng.below(8) as u32
    }

    /// Non-zero destination (for encodings where rd = x0 is a hint/reserved).
    fn rd_nz(&mut self) -> u32 {
        loop {
            let r = self.rd();
            if r != 0 {
                return r;
            }
        }
    }

    fn fr(&mut self) -> u32 {
        self.rng.below(32) as u32
    }

    fn imm12(&mut self) -> i64 {
        match self.rng.below(6) {
            0 => *self.rng.pick(&[0, 1, -1, 2047, -2048, 0x7f0, -0x800 + 1]),
            1 => self.rng.range(-16, 16),
            _ => self.rng.range(-2048, 2047),
        }
    }

    fn shamt(&mut self, bits: i64) -> i64 {
        if self.rng.chance(20) {
            *self.rng.pick(&[0, 1, bits - 1, bits / 2])
        } else {
            self.rng.range(0, bits - 1)
        }
    }

    fn rm(&mut self) -> &'static str {
        if self.rng.chance(30) {
            "dyn"
        } else {
            RM[self.rng.below(5) as usize]
        }
    }

    /// A memory offset from the base for an access of `size` bytes; aligned
    /// unless `misaligned` says otherwise.
    fn offset(&mut self, size: i64, misaligned: bool) -> i64 {
        let lo = -2048 / size;
        let hi = (2047 - size) / size;
        let o = self.rng.range(lo, hi) * size;
        if misaligned && size > 1 {
            o + self.rng.range(1, size - 1)
        } else {
            o
        }
    }

    fn unit(&mut self) {
        match self.group {
            Group::I => self.gen_i(),
            Group::M => self.mix(80, Self::gen_m),
            Group::A => self.gen_a(),
            Group::F => self.gen_fp(false),
            Group::D => self.gen_fp(true),
            Group::C => self.gen_c(),
            Group::Zba => self.mix(75, Self::gen_zba),
            Group::Zbb => self.mix(75, Self::gen_zbb),
            Group::Zbc => self.mix(75, Self::gen_zbc),
            Group::Zbs => self.mix(75, Self::gen_zbs),
            Group::Zicond => self.mix(70, Self::gen_zicond),
            Group::Zfa => self.gen_zfa(),
            Group::LoadStore => self.mix(80, Self::gen_ldst),
            Group::Csr => self.gen_csr(),
            Group::CacheHint => self.mix(70, Self::gen_cbo),
        }
        self.end_unit();
    }

    /// `pct`% of the time the group's own instructions, otherwise base integer.
    fn mix(&mut self, pct: u64, f: fn(&mut Self)) {
        if self.rng.chance(pct) {
            f(self)
        } else {
            self.gen_i_alu()
        }
    }

    fn gen_i_alu(&mut self) {
        const R: [&str; 15] = [
            "add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and", "addw", "subw",
            "sllw", "srlw", "sraw",
        ];
        const IMM: [&str; 7] = ["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw"];
        const SH: [&str; 3] = ["slli", "srli", "srai"];
        const SHW: [&str; 3] = ["slliw", "srliw", "sraiw"];
        let rd = self.rd();
        let line = match self.rng.below(10) {
            0..=3 => {
                let op = self.rng.pick(&R);
                format!("{op} x{rd}, x{}, x{}", self.rs(), self.rs())
            }
            4..=5 => {
                let op = self.rng.pick(&IMM);
                format!("{op} x{rd}, x{}, {}", self.rs(), self.imm12())
            }
            6 => {
                let op = self.rng.pick(&SH);
                format!("{op} x{rd}, x{}, {}", self.rs(), self.shamt(64))
            }
            7 => {
                let op = self.rng.pick(&SHW);
                format!("{op} x{rd}, x{}, {}", self.rs(), self.shamt(32))
            }
            8 => format!("lui x{rd}, {:#x}", self.rng.below(1 << 20)),
            _ => format!("auipc x{rd}, {:#x}", self.rng.below(1 << 20)),
        };
        self.emit(line);
    }

    fn gen_i(&mut self) {
        match self.rng.below(20) {
            0..=12 => self.gen_i_alu(),
            13..=14 => {
                const B: [&str; 6] = ["beq", "bne", "blt", "bge", "bltu", "bgeu"];
                let op = self.rng.pick(&B);
                let (a, b) = (self.rs(), self.rs());
                let l = self.new_label();
                self.emit(format!("{op} x{a}, x{b}, {l}"));
            }
            15 => {
                let rd = self.rd();
                let l = self.new_label();
                self.emit(format!("jal x{rd}, {l}"));
            }
            16 => {
                // jalr to a forward label; an odd offset checks that bit 0 of the
                // target is cleared (Unpriv spec 2.5.1).
                let t = self.rd_nz();
                let rd = self.rd();
                let l = self.new_label();
                let odd = i32::from(self.rng.chance(50));
                self.emit(format!("la x{t}, {l}"));
                self.emit(format!("jalr x{rd}, {odd}(x{t})"));
            }
            17 => {
                let f = *self.rng.pick(&[
                    "fence",
                    "fence rw, rw",
                    "fence r, w",
                    "fence.i",
                    "fence.tso",
                    "nop",
                    ".word 0x0100000f # pause",
                ]);
                self.emit(f.to_string());
            }
            18 => {
                let e = *self
                    .rng
                    .pick(&["ecall", "ebreak", ".word 0x00000000 # illegal", "unimp"]);
                self.emit(e.to_string());
            }
            _ => {
                // Writes to x0 must be discarded (Unpriv spec 2.1).
                let op = self.rng.pick(&["add", "addi", "lui"]);
                let line = match *op {
                    "add" => format!("add x0, x{}, x{}", self.rs(), self.rs()),
                    "addi" => format!("addi x0, x{}, {}", self.rs(), self.imm12()),
                    _ => format!("lui x0, {:#x}", self.rng.below(1 << 20)),
                };
                self.emit(line);
            }
        }
    }

    fn gen_m(&mut self) {
        const OPS: [&str; 13] = [
            "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu", "mulw", "divw",
            "divuw", "remw", "remuw",
        ];
        let op = self.rng.pick(&OPS);
        let rd = self.rd();
        let line = format!("{op} x{rd}, x{}, x{}", self.rs(), self.rs());
        self.emit(line);
    }

    fn gen_a(&mut self) {
        const AMO: [&str; 9] = [
            "amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax", "amominu",
            "amomaxu",
        ];
        const ORD: [&str; 4] = ["", ".aq", ".rl", ".aqrl"];
        let base = self.base;
        match self.rng.below(10) {
            0..=5 => {
                let w = if self.rng.chance(50) { "w" } else { "d" };
                let size = if w == "w" { 4 } else { 8 };
                // Aligned only: QEMU 10 reports a misaligned AMO as a *load*
                // address-misaligned exception (cause 4) where the Priv spec's
                // cause table calls for store/AMO (6) or an access fault (7), so
                // the directed trap program checks only that it traps.
                let off = self.offset(size, false);
                let t = self.rd_nz();
                let op = self.rng.pick(&AMO);
                let ord = self.rng.pick(&ORD);
                let rd = self.rd();
                let src = self.rs();
                self.emit(format!("addi x{t}, x{base}, {off}"));
                self.emit(format!("{op}.{w}{ord} x{rd}, x{src}, (x{t})"));
            }
            6..=7 => {
                // lr; a few ALU ops; sc (succeeds); sometimes a second sc, which
                // must fail because the first one invalidated the reservation.
                let w = if self.rng.chance(50) { "w" } else { "d" };
                let size = if w == "w" { 4 } else { 8 };
                let mis = self.rng.chance(4);
                let off = self.offset(size, mis);
                let t = self.rd_nz();
                self.reserved.push(t);
                let ord = self.rng.pick(&ORD);
                let lr_rd = self.rd();
                self.emit(format!("addi x{t}, x{base}, {off}"));
                self.emit(format!("lr.{w}{ord} x{lr_rd}, (x{t})"));
                for _ in 0..self.rng.below(3) {
                    let rd = self.rd();
                    let (a, b) = (self.rs(), self.rs());
                    self.emit(format!("add x{rd}, x{a}, x{b}"));
                }
                // After a misaligned (trapping) LR no SC follows: QEMU checks
                // SC alignment only when the reservation matches, so a
                // misaligned SC without one fails there instead of trapping.
                if mis {
                    self.reserved.pop();
                    return;
                }
                let ord = self.rng.pick(&ORD);
                let (rd, src) = (self.rd(), self.rs());
                self.emit(format!("sc.{w}{ord} x{rd}, x{src}, (x{t})"));
                if self.rng.chance(30) {
                    let (rd, src) = (self.rd(), self.rs());
                    self.emit(format!("sc.{w} x{rd}, x{src}, (x{t})"));
                }
                self.reserved.pop();
            }
            8 => {
                let w = *self.rng.pick(&["ld", "lw", "lwu"]);
                let off = self.offset(8, false);
                let rd = self.rd();
                self.emit(format!("{w} x{rd}, {off}(x{base})"));
            }
            _ => self.gen_i_alu(),
        }
    }

    fn fp_init_line(&mut self, double: bool) -> u64 {
        let boxed = |v: u32| 0xffff_ffff_0000_0000 | u64::from(v);
        let r = self.rng.below(10);
        let single = if double { r >= 8 } else { r < 8 };
        if single {
            if self.rng.chance(6) {
                // Not NaN-boxed: must read as the canonical NaN (Unpriv 20.2).
                return self.rng.next_u64() & 0x7fff_ffff_ffff_ffff;
            }
            let v = match self.rng.below(4) {
                0..=1 => *self.rng.pick(&F32_CORNERS),
                2 => self.rng.next_u64() as u32,
                _ => {
                    // Moderate magnitudes: exponents around 1.0.
                    let e = 110 + self.rng.below(40) as u32;
                    (self.rng.next_u64() as u32 & 0x807f_ffff) | (e << 23)
                }
            };
            boxed(v)
        } else {
            match self.rng.below(4) {
                0..=1 => *self.rng.pick(&F64_CORNERS),
                2 => self.rng.next_u64(),
                _ => {
                    let e = 1000 + self.rng.below(60);
                    (self.rng.next_u64() & 0x800f_ffff_ffff_ffff) | (e << 52)
                }
            }
        }
    }

    fn gen_fp(&mut self, double: bool) {
        let s = if double { "d" } else { "s" };
        let ix = if double { "d" } else { "w" };
        let (size, ld, st) = if double {
            (8, "fld", "fsd")
        } else {
            (4, "flw", "fsw")
        };
        let base = self.base;
        let line = match self.rng.below(40) {
            0..=7 => {
                let op = self.rng.pick(&["fadd", "fsub", "fmul", "fdiv"]);
                format!(
                    "{op}.{s} f{}, f{}, f{}, {}",
                    self.fr(),
                    self.fr(),
                    self.fr(),
                    self.rm()
                )
            }
            8..=9 => format!("fsqrt.{s} f{}, f{}, {}", self.fr(), self.fr(), self.rm()),
            10..=13 => {
                let op = self.rng.pick(&["fmadd", "fmsub", "fnmadd", "fnmsub"]);
                format!(
                    "{op}.{s} f{}, f{}, f{}, f{}, {}",
                    self.fr(),
                    self.fr(),
                    self.fr(),
                    self.fr(),
                    self.rm()
                )
            }
            14..=15 => {
                let op = self.rng.pick(&["fmin", "fmax"]);
                format!("{op}.{s} f{}, f{}, f{}", self.fr(), self.fr(), self.fr())
            }
            16..=17 => {
                let op = self.rng.pick(&["fsgnj", "fsgnjn", "fsgnjx"]);
                format!("{op}.{s} f{}, f{}, f{}", self.fr(), self.fr(), self.fr())
            }
            18..=20 => {
                let op = self.rng.pick(&["feq", "flt", "fle"]);
                format!("{op}.{s} x{}, f{}, f{}", self.rd(), self.fr(), self.fr())
            }
            21 => format!("fclass.{s} x{}, f{}", self.rd(), self.fr()),
            22..=24 => {
                let op = self.rng.pick(&["w", "wu", "l", "lu"]);
                format!(
                    "fcvt.{op}.{s} x{}, f{}, {}",
                    self.rd(),
                    self.fr(),
                    self.rm()
                )
            }
            25..=26 => {
                let op = self.rng.pick(&["w", "wu", "l", "lu"]);
                // Conversions from 32-bit integers to double are exact: no rm.
                if double && (*op == "w" || *op == "wu") {
                    format!("fcvt.{s}.{op} f{}, x{}", self.fr(), self.rs())
                } else {
                    format!(
                        "fcvt.{s}.{op} f{}, x{}, {}",
                        self.fr(),
                        self.rs(),
                        self.rm()
                    )
                }
            }
            27 => {
                if double {
                    format!("fcvt.s.d f{}, f{}, {}", self.fr(), self.fr(), self.rm())
                } else {
                    format!("fcvt.d.s f{}, f{}", self.fr(), self.fr())
                }
            }
            28 => format!("fmv.x.{ix} x{}, f{}", self.rd(), self.fr()),
            29 => format!("fmv.{ix}.x f{}, x{}", self.fr(), self.rs()),
            30..=31 => {
                let mis = self.rng.chance(10);
                let off = self.offset(size, mis);
                format!("{ld} f{}, {off}(x{base})", self.fr())
            }
            32..=33 => {
                let mis = self.rng.chance(10);
                let off = self.offset(size, mis);
                format!("{st} f{}, {off}(x{base})", self.fr())
            }
            34 => {
                let op = self.rng.pick(&["frflags", "frrm", "frcsr"]);
                format!("{op} x{}", self.rd())
            }
            35 => {
                // Clear or set the accrued flags so later instructions' flags show.
                if self.rng.chance(50) {
                    "fsflags x0".to_string()
                } else {
                    format!("fsflagsi x{}, {}", self.rd(), self.rng.below(32))
                }
            }
            36 => {
                // frm = 0..4 mostly; 5..7 make dynamic-rm instructions illegal.
                let v = if self.rng.chance(85) {
                    self.rng.below(5)
                } else {
                    5 + self.rng.below(3)
                };
                format!("fsrmi x{}, {v}", self.rd())
            }
            37 => {
                // Reserved static rounding modes 101/110: illegal instruction.
                let rm = 5 + self.rng.below(2) as u32;
                let (d, a, b) = (self.fr(), self.fr(), self.fr());
                let w = encode::fadd_rm(double, d, a, b, rm);
                format!(".word {w:#010x} # fadd.{s} f{d}, f{a}, f{b}, rm={rm} (reserved)")
            }
            _ => {
                // Cross-precision traffic: the other format's operations on the
                // same registers exercise NaN-boxing.
                let o = if double { "s" } else { "d" };
                let op = self.rng.pick(&["fadd", "fmul"]);
                format!(
                    "{op}.{o} f{}, f{}, f{}, {}",
                    self.fr(),
                    self.fr(),
                    self.fr(),
                    self.rm()
                )
            }
        };
        self.emit(line);
    }

    fn gen_c(&mut self) {
        let b = self.base;
        if self.rng.chance(15) {
            self.gen_i_alu();
            return;
        }
        let line = match self.rng.below(34) {
            0 => {
                let v = self.nz_imm6();
                format!("c.addi x{}, {v}", self.rd_nz())
            }
            1 => format!("c.addiw x{}, {}", self.rd_nz(), self.rng.range(-32, 31)),
            2 => format!("c.li x{}, {}", self.rd_nz(), self.rng.range(-32, 31)),
            3 => {
                let rd = loop {
                    let r = self.rd_nz();
                    if r != 2 {
                        break r;
                    }
                };
                let imm = if self.rng.chance(50) {
                    self.rng.range(1, 31)
                } else {
                    self.rng.range(0xfffe0, 0xfffff)
                };
                format!("c.lui x{rd}, {imm:#x}")
            }
            4 => format!("c.slli x{}, {}", self.rd_nz(), self.rng.range(1, 63)),
            5 => format!("c.srli x{}, {}", self.rdc(), self.rng.range(1, 63)),
            6 => format!("c.srai x{}, {}", self.rdc(), self.rng.range(1, 63)),
            7 => format!("c.andi x{}, {}", self.rdc(), self.rng.range(-32, 31)),
            8 => {
                let rs = loop {
                    let r = self.rs();
                    if r != 0 {
                        break r;
                    }
                };
                format!("c.mv x{}, x{rs}", self.rd_nz())
            }
            9 => {
                let rs = loop {
                    let r = self.rs();
                    if r != 0 {
                        break r;
                    }
                };
                format!("c.add x{}, x{rs}", self.rd_nz())
            }
            10..=12 => {
                let op = self
                    .rng
                    .pick(&["c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw"]);
                format!("{op} x{}, x{}", self.rdc(), self.rsc())
            }
            13 => format!("c.lw x{}, {}(x{b})", self.rdc(), self.rng.below(32) * 4),
            14 => format!("c.ld x{}, {}(x{b})", self.rdc(), self.rng.below(32) * 8),
            15 => format!("c.sw x{}, {}(x{b})", self.rsc(), self.rng.below(32) * 4),
            16 => format!("c.sd x{}, {}(x{b})", self.rsc(), self.rng.below(32) * 8),
            17 => format!(
                "c.fld f{}, {}(x{b})",
                8 + self.rng.below(8),
                self.rng.below(32) * 8
            ),
            18 => format!(
                "c.fsd f{}, {}(x{b})",
                8 + self.rng.below(8),
                self.rng.below(32) * 8
            ),
            19 => format!("c.lwsp x{}, {}(sp)", self.rd_nz(), self.rng.below(64) * 4),
            20 => format!("c.ldsp x{}, {}(sp)", self.rd_nz(), self.rng.below(64) * 8),
            21 => format!("c.swsp x{}, {}(sp)", self.rs(), self.rng.below(64) * 4),
            22 => format!("c.sdsp x{}, {}(sp)", self.rs(), self.rng.below(64) * 8),
            23 => format!("c.fldsp f{}, {}(sp)", self.fr(), self.rng.below(64) * 8),
            24 => format!("c.fsdsp f{}, {}(sp)", self.fr(), self.rng.below(64) * 8),
            25 => {
                let l = self.new_label();
                format!("c.j {l}")
            }
            26..=27 => {
                let op = self.rng.pick(&["c.beqz", "c.bnez"]);
                let r = self.rsc();
                let l = self.new_label();
                format!("{op} x{r}, {l}")
            }
            28 => {
                // c.jr / c.jalr (c.jalr writes ra = pc + 2).
                let t = loop {
                    let r = self.rd_nz();
                    if r != 1 {
                        break r;
                    }
                };
                let l = self.new_label();
                let op = self.rng.pick(&["c.jr", "c.jalr"]);
                self.emit(format!("la x{t}, {l}"));
                format!("{op} x{t}")
            }
            29 => format!(
                "c.addi4spn x{}, sp, {}",
                self.rdc(),
                4 * self.rng.range(1, 255)
            ),
            30 => {
                // Move sp and back: both must be exact 16-byte multiples.
                let v = 16 * self.rng.range(1, 31);
                self.emit(format!("c.addi16sp sp, {v}"));
                format!("c.addi16sp sp, {}", -v)
            }
            31 => "c.nop".to_string(),
            32 => ".half 0x0000 # illegal (all-zero parcel)".to_string(),
            _ => "c.ebreak".to_string(),
        };
        self.emit(line);
    }

    fn nz_imm6(&mut self) -> i64 {
        loop {
            let v = self.rng.range(-32, 31);
            if v != 0 {
                return v;
            }
        }
    }

    fn gen_zba(&mut self) {
        let rd = self.rd();
        let line = if self.rng.chance(15) {
            format!("slli.uw x{rd}, x{}, {}", self.rs(), self.shamt(64))
        } else {
            let op = self.rng.pick(&[
                "add.uw",
                "sh1add",
                "sh2add",
                "sh3add",
                "sh1add.uw",
                "sh2add.uw",
                "sh3add.uw",
            ]);
            format!("{op} x{rd}, x{}, x{}", self.rs(), self.rs())
        };
        self.emit(line);
    }

    fn gen_zbb(&mut self) {
        let rd = self.rd();
        let line = match self.rng.below(4) {
            0..=1 => {
                let op = self.rng.pick(&[
                    "andn", "orn", "xnor", "max", "maxu", "min", "minu", "rol", "rolw", "ror",
                    "rorw",
                ]);
                format!("{op} x{rd}, x{}, x{}", self.rs(), self.rs())
            }
            2 => {
                let op = self.rng.pick(&[
                    "clz", "clzw", "ctz", "ctzw", "cpop", "cpopw", "sext.b", "sext.h", "zext.h",
                    "orc.b", "rev8",
                ]);
                format!("{op} x{rd}, x{}", self.rs())
            }
            _ => {
                if self.rng.chance(50) {
                    format!("rori x{rd}, x{}, {}", self.rs(), self.shamt(64))
                } else {
                    format!("roriw x{rd}, x{}, {}", self.rs(), self.shamt(32))
                }
            }
        };
        self.emit(line);
    }

    fn gen_zbc(&mut self) {
        let op = self.rng.pick(&["clmul", "clmulh", "clmulr"]);
        let rd = self.rd();
        let line = format!("{op} x{rd}, x{}, x{}", self.rs(), self.rs());
        self.emit(line);
    }

    fn gen_zbs(&mut self) {
        let rd = self.rd();
        let line = if self.rng.chance(50) {
            let op = self.rng.pick(&["bclr", "bext", "binv", "bset"]);
            format!("{op} x{rd}, x{}, x{}", self.rs(), self.rs())
        } else {
            let op = self.rng.pick(&["bclri", "bexti", "binvi", "bseti"]);
            format!("{op} x{rd}, x{}, {}", self.rs(), self.shamt(64))
        };
        self.emit(line);
    }

    fn gen_zicond(&mut self) {
        let nez = self.rng.chance(50);
        let (rd, a, b) = (self.rd(), self.rs(), self.rs());
        let w = encode::czero(nez, rd, a, b);
        let m = if nez { "czero.nez" } else { "czero.eqz" };
        self.emit(format!(".word {w:#010x} # {m} x{rd}, x{a}, x{b}"));
    }

    fn gen_zfa(&mut self) {
        let double = self.rng.chance(50);
        let s = if double { "d" } else { "s" };
        let line = match self.rng.below(12) {
            0..=1 => {
                let (rd, idx) = (self.fr(), self.rng.below(32) as u32);
                let w = encode::fli(double, rd, idx);
                format!(".word {w:#010x} # fli.{s} f{rd}, #{idx}")
            }
            2..=3 => {
                let max = self.rng.chance(50);
                let (rd, a, b) = (self.fr(), self.fr(), self.fr());
                let w = encode::fminmaxm(double, max, rd, a, b);
                let m = if max { "fmaxm" } else { "fminm" };
                format!(".word {w:#010x} # {m}.{s} f{rd}, f{a}, f{b}")
            }
            4..=5 => {
                let nx = self.rng.chance(50);
                let (rd, a) = (self.fr(), self.fr());
                let rm = self.rng.below(8) as u32;
                let rm = if rm == 5 || rm == 6 { 7 } else { rm };
                let w = encode::fround(double, nx, rd, a, rm);
                let m = if nx { "froundnx" } else { "fround" };
                format!(".word {w:#010x} # {m}.{s} f{rd}, f{a}, rm={rm}")
            }
            6 => {
                let (rd, a) = (self.rd(), self.fr());
                let w = encode::fcvtmod_w_d(rd, a);
                format!(".word {w:#010x} # fcvtmod.w.d x{rd}, f{a}, rtz")
            }
            7..=8 => {
                let lt = self.rng.chance(50);
                let (rd, a, b) = (self.rd(), self.fr(), self.fr());
                let w = encode::fleq_fltq(double, lt, rd, a, b);
                let m = if lt { "fltq" } else { "fleq" };
                format!(".word {w:#010x} # {m}.{s} x{rd}, f{a}, f{b}")
            }
            9 => {
                // Signalling comparisons for contrast with the quiet ones.
                let op = self.rng.pick(&["feq", "flt", "fle"]);
                format!("{op}.{s} x{}, f{}, f{}", self.rd(), self.fr(), self.fr())
            }
            10 => format!("fmv.x.d x{}, f{}", self.rd(), self.fr()),
            _ => {
                let op = self.rng.pick(&["fmin", "fmax", "fadd"]);
                if *op == "fadd" {
                    format!(
                        "fadd.{s} f{}, f{}, f{}, {}",
                        self.fr(),
                        self.fr(),
                        self.fr(),
                        self.rm()
                    )
                } else {
                    format!("{op}.{s} f{}, f{}, f{}", self.fr(), self.fr(), self.fr())
                }
            }
        };
        self.emit(line);
    }

    fn gen_ldst(&mut self) {
        const LD: [(&str, i64); 9] = [
            ("lb", 1),
            ("lh", 2),
            ("lw", 4),
            ("ld", 8),
            ("lbu", 1),
            ("lhu", 2),
            ("lwu", 4),
            ("flw", 4),
            ("fld", 8),
        ];
        const ST: [(&str, i64); 6] = [
            ("sb", 1),
            ("sh", 2),
            ("sw", 4),
            ("sd", 8),
            ("fsw", 4),
            ("fsd", 8),
        ];
        let base = self.base;
        let mis = self.rng.chance(35);
        let line = if self.rng.chance(50) {
            let (op, size) = *self.rng.pick(&LD);
            let off = self.offset(size, mis);
            if op.starts_with('f') {
                format!("{op} f{}, {off}(x{base})", self.fr())
            } else {
                format!("{op} x{}, {off}(x{base})", self.rd())
            }
        } else {
            let (op, size) = *self.rng.pick(&ST);
            let off = self.offset(size, mis);
            if op.starts_with('f') {
                format!("{op} f{}, {off}(x{base})", self.fr())
            } else {
                format!("{op} x{}, {off}(x{base})", self.rs())
            }
        };
        self.emit(line);
    }

    fn gen_csr(&mut self) {
        const CSRS: [&str; 4] = ["fflags", "frm", "fcsr", "mscratch"];
        let line = match self.rng.below(12) {
            0..=3 => {
                let op = self.rng.pick(&["csrrw", "csrrs", "csrrc"]);
                let csr = self.rng.pick(&CSRS);
                format!("{op} x{}, {csr}, x{}", self.rd(), self.rs())
            }
            4..=6 => {
                let op = self.rng.pick(&["csrrwi", "csrrsi", "csrrci"]);
                let csr = self.rng.pick(&CSRS);
                format!("{op} x{}, {csr}, {}", self.rd(), self.rng.below(32))
            }
            7 => {
                // Read-only CSR: reads are fine, writes (even csrrs with a
                // non-zero rs1) are illegal (Priv spec 2.1, Zicsr 7.1).
                let op = self.rng.pick(&["csrrs", "csrrw", "csrrc"]);
                let rs = if self.rng.chance(50) { 0 } else { self.rs() };
                format!("{op} x{}, mhartid, x{rs}", self.rd())
            }
            8..=9 => format!(
                "fadd.d f{}, f{}, f{}, {}",
                self.fr(),
                self.fr(),
                self.fr(),
                if self.rng.chance(70) { "dyn" } else { "rne" }
            ),
            10 => format!("fdiv.s f{}, f{}, f{}, dyn", self.fr(), self.fr(), self.fr()),
            _ => {
                self.gen_i_alu();
                return;
            }
        };
        self.emit(line);
    }

    fn gen_cbo(&mut self) {
        let base = self.base;
        let line = match self.rng.below(10) {
            0..=2 => {
                let t = self.rd_nz();
                let off = self.rng.range(-2000, 2000);
                self.emit(format!("addi x{t}, x{base}, {off}"));
                format!("cbo.zero (x{t})")
            }
            3 => {
                let t = self.rd_nz();
                let off = self.rng.range(-2000, 2000);
                let op = self.rng.pick(&["cbo.clean", "cbo.flush"]);
                self.emit(format!("addi x{t}, x{base}, {off}"));
                format!("{op} (x{t})")
            }
            4 => {
                let op = self.rng.pick(&["prefetch.i", "prefetch.r", "prefetch.w"]);
                format!("{op} {}(x{base})", 32 * self.rng.range(-60, 60))
            }
            5 => (*self
                .rng
                .pick(&["wrs.nto", "wrs.sto", ".word 0x0100000f # pause"]))
            .to_string(),
            6..=7 => {
                let off = self.offset(8, false);
                format!("sd x{}, {off}(x{base})", self.rs())
            }
            _ => {
                let off = self.offset(8, false);
                format!("ld x{}, {off}(x{base})", self.rd())
            }
        };
        self.emit(line);
    }
}

fn int_init(rng: &mut Rng) -> u64 {
    match rng.below(5) {
        0..=1 => *rng.pick(&INT_CORNERS),
        2 => rng.range(-64, 64) as u64,
        3 => rng.next_u64() as i32 as i64 as u64,
        _ => rng.next_u64(),
    }
}

/// Builds one program of `count` streams of `len` instructions for `group`.
pub fn program(group: Group, seed: u64, count: usize, len: usize) -> Program {
    let mut rng = Rng::new(seed);
    let mut streams = Vec::with_capacity(count);
    for index in 0..count {
        streams.push(stream(&mut rng, group, index, len));
    }
    let mut asm = String::new();
    let _ = writeln!(
        asm,
        "# Rivet differential test: group {}, seed {seed:#x}, {count} streams of {len}\n\
         \t.option norelax\n\t.option norvc\n\t.text\n\t.globl streams_run\n\
         streams_run:\n\tla t0, st_ctx\n{}",
        group.name(),
        save_restore("sd")
    );
    for s in &streams {
        emit_stream(&mut asm, group, s);
    }
    let _ = writeln!(asm, "\tla t0, st_ctx\n{}\tret\n", save_restore("ld"));
    let _ = writeln!(
        asm,
        "\t.section .rodata\n\t.balign 8\n\t.globl streams_count\n\
         streams_count: .dword {count}\n\t.data\n\t.balign 8\nst_ctx: .space 128"
    );
    for s in &streams {
        let _ = writeln!(asm, "st_init_{}:", s.index);
        for v in &s.init {
            let _ = writeln!(asm, "\t.dword {v}");
        }
    }
    Program { asm, streams }
}

/// Saves/restores the runtime's callee-saved state around all streams
/// (t0 holds the context address).
fn save_restore(op: &str) -> String {
    let regs = [
        "ra", "sp", "gp", "tp", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10",
        "s11",
    ];
    let mut s = String::new();
    for (i, r) in regs.iter().enumerate() {
        let _ = writeln!(s, "\t{op} {r}, {}(t0)", i * 8);
    }
    s
}

fn stream(rng: &mut Rng, group: Group, index: usize, len: usize) -> Stream {
    let mem_seed = rng.next_u64();
    // Base register: compressed loads/stores need x8..x15, and the C group also
    // uses sp as the base of the sp-relative forms.
    let base = if group == Group::C {
        8 + rng.below(8) as u32
    } else {
        loop {
            let r = 1 + rng.below(31) as u32;
            if r != 2 || rng.chance(30) {
                break r;
            }
        }
    };
    let mut reserved = vec![base];
    if group == Group::C {
        reserved.push(2);
    }
    let mut g = Gen {
        rng,
        group,
        stream: index,
        reserved: reserved.clone(),
        base,
        out: Vec::new(),
        pending: Vec::new(),
        labels: 0,
    };
    for _ in 0..len {
        g.unit();
    }
    // Labels not yet reached land at the end of the stream.
    let rest: Vec<String> = g.pending.drain(..).map(|(n, _)| format!("{n}:")).collect();
    g.out.extend(rest);
    let double_bias = matches!(group, Group::D | Group::Zfa);
    let mut init = Vec::with_capacity(66);
    init.push("0".to_string());
    for r in 1..32u32 {
        if reserved.contains(&r) {
            init.push(format!("rt_scratch + {BASE_OFFSET}"));
        } else {
            init.push(format!("{:#018x}", int_init(g.rng)));
        }
    }
    for _ in 0..32 {
        let v = g.fp_init_line(double_bias);
        init.push(format!("{v:#018x}"));
    }
    // fcsr: random flags; frm mostly valid, sometimes 5..7 (reserved) so that
    // dynamic-rm instructions raise illegal instruction (Unpriv 20.2).
    let frm = if g.rng.chance(90) {
        g.rng.below(5)
    } else {
        5 + g.rng.below(3)
    };
    let fcsr = (frm << 5) | g.rng.below(32);
    init.push(format!("{fcsr:#x}"));
    init.push(format!("{:#018x}", int_init(g.rng)));
    let body = std::mem::take(&mut g.out);
    Stream {
        index,
        mem_seed,
        body,
        init,
    }
}

fn emit_stream(asm: &mut String, group: Group, s: &Stream) {
    let n = s.index;
    let _ = writeln!(
        asm,
        "# ---- stream {n}\n\tli a0, {n}\n\tli a1, {:#x}\n\tcall rt_stream_begin\n\
         \tla x31, st_init_{n}\n\tld t0, {TABLE_FCSR}(x31)\n\tfscsr t0\n\
         \tld t0, {TABLE_MSCRATCH}(x31)\n\tcsrw mscratch, t0",
        s.mem_seed
    );
    for f in 0..32 {
        let _ = writeln!(asm, "\tfld f{f}, {}(x31)", TABLE_F + f * 8);
    }
    for x in 1..32 {
        let _ = writeln!(asm, "\tld x{x}, {}(x31)", x * 8);
    }
    if group == Group::C {
        asm.push_str("\t.option rvc\n");
    }
    for l in &s.body {
        if l.ends_with(':') {
            let _ = writeln!(asm, "{l}");
        } else {
            let _ = writeln!(asm, "\t{l}");
        }
    }
    if group == Group::C {
        asm.push_str("\t.option norvc\n");
    }
    // Dump: sscratch is free in stream programs (the M-mode trap entry only
    // uses it as a temporary), so it parks x31 while x31 addresses rt_dump.
    asm.push_str("\tcsrw sscratch, x31\n\tla x31, rt_dump\n");
    for x in 1..31 {
        let _ = writeln!(asm, "\tsd x{x}, {}(x31)", x * 8);
    }
    asm.push_str("\tcsrr x30, sscratch\n\tsd x30, 248(x31)\n");
    for f in 0..32 {
        let _ = writeln!(asm, "\tfsd f{f}, {}(x31)", TABLE_F + f * 8);
    }
    let _ = writeln!(
        asm,
        "\tfrcsr x30\n\tsd x30, {TABLE_FCSR}(x31)\n\tcsrr x30, mscratch\n\
         \tsd x30, {TABLE_MSCRATCH}(x31)\n\tla t0, st_ctx\n{}\tli a0, {n}\n\tli a1, {:#x}\n\
         \tcall rt_stream_end",
        save_restore("ld"),
        s.mem_seed
    );
}

impl Stream {
    /// The stream's instructions, one per line, for failure reports.
    pub fn listing(&self) -> String {
        let mut s = String::new();
        for l in &self.body {
            let _ = writeln!(s, "    {l}");
        }
        s
    }

    /// Initial value of register `name` ("x5", "f3", "fcsr", "mscratch").
    pub fn initial(&self, name: &str) -> Option<&str> {
        let idx = if let Some(n) = name.strip_prefix('x') {
            n.parse::<usize>().ok()?
        } else if let Some(n) = name.strip_prefix('f').and_then(|n| n.parse::<usize>().ok()) {
            32 + n
        } else if name == "fcsr" {
            64
        } else if name == "mscratch" {
            65
        } else {
            return None;
        };
        self.init.get(idx).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_forward_only() {
        let a = program(Group::I, 7, 4, 50);
        let b = program(Group::I, 7, 4, 50);
        assert_eq!(a.asm, b.asm);
        let c = program(Group::I, 8, 4, 50);
        assert_ne!(a.asm, c.asm);
        // Every branch target label is defined after its use.
        for s in &a.streams {
            for (i, l) in s.body.iter().enumerate() {
                if let Some(pos) = l.find(".Ls") {
                    let name = l[pos..].split([',', ' ', ')']).next().unwrap_or("");
                    if l.ends_with(':') {
                        continue;
                    }
                    let def = format!("{name}:");
                    let at = s.body.iter().position(|x| *x == def);
                    assert!(at.is_some_and(|p| p > i), "label {name} not forward in {l}");
                }
            }
        }
    }

    #[test]
    fn base_register_is_never_written() {
        for g in Group::ALL {
            let p = program(g, 99, 8, 80);
            for s in &p.streams {
                let base_val = format!("rt_scratch + {BASE_OFFSET}");
                let bases: Vec<String> = (1..32)
                    .filter(|&r| s.initial(&format!("x{r}")) == Some(base_val.as_str()))
                    .map(|r| format!("x{r}"))
                    .collect();
                assert!(!bases.is_empty());
                for l in &s.body {
                    let Some((op, args)) = l.split_once(' ') else {
                        continue;
                    };
                    let not_dest = op.starts_with('.')
                        || ["beq", "bne", "blt", "bge", "bltu", "bgeu"].contains(&op)
                        || op.starts_with("c.b")
                        || op.starts_with("prefetch")
                        || op.starts_with("cbo")
                        || [
                            "sb", "sh", "sw", "sd", "fsw", "fsd", "c.sw", "c.sd", "c.fsd",
                        ]
                        .contains(&op)
                        || ["c.swsp", "c.sdsp", "c.fsdsp", "c.jr", "c.jalr"].contains(&op);
                    if not_dest {
                        continue;
                    }
                    let dest = args.split(',').next().unwrap_or("").trim();
                    assert!(
                        !bases.iter().any(|b| b == dest),
                        "{g:?}: `{l}` writes the base"
                    );
                }
            }
        }
    }
}
