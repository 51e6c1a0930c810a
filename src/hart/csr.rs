//! Control and status registers of the M, S and U modes, with their WARL behaviour
//! (Priv spec ch. 2, 3.1, 4.1; Zicntr/Zihpm; Sstc; Svadu/Svpbmt fields of menvcfg).

use super::trap::Exception;
use super::{Hart, Priv};
use rivet_devices::irq;

pub use rivet_jit::arch::csr::{atp, counteren, hstatus, menvcfg, mstatus, num};

/// Interrupts S-mode may see and delegate: SSI, STI, SEI.
const S_INTERRUPTS: u64 = irq::SSIP | irq::STIP | irq::SEIP;
const M_INTERRUPTS: u64 = irq::MSIP | irq::MTIP | irq::MEIP;
/// Exceptions that `medeleg` can delegate (Priv spec 3.1.8: ecall from M and the
/// reserved codes 10 and 14 are read-only zero).
const DELEGABLE_EXCEPTIONS: u64 = 0xb3ff & !(1 << 11);

/// xcounteren bits that exist: CY, TM, IR. No hpmcounters are implemented, so their
/// enable bits are read-only zero (WARL; QEMU does the same without a PMU).
const COUNTEREN_WRITABLE: u64 = 0x7;

/// The architectural CSR state of one hart (what is not derived on read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Csrs {
    pub mstatus: u64,
    pub misa: u64,
    pub medeleg: u64,
    pub mideleg: u64,
    pub mie: u64,
    /// Software-writable `mip` bits (SSIP, STIP without Sstc, SEIP); device lines and
    /// timers are ORed in by [`Hart::mip`].
    pub mip: u64,
    pub mtvec: u64,
    pub mcounteren: u64,
    pub menvcfg: u64,
    pub mcountinhibit: u64,
    pub mscratch: u64,
    pub mepc: u64,
    pub mcause: u64,
    pub mtval: u64,
    pub stvec: u64,
    pub scounteren: u64,
    pub senvcfg: u64,
    pub sscratch: u64,
    pub sepc: u64,
    pub scause: u64,
    pub stval: u64,
    pub satp: u64,
    pub stimecmp: u64,
    pub fflags: u8,
    pub frm: u8,
}

/// `misa` for RV64IMAFDC with S and U modes (Priv spec 3.1.1).
pub const MISA: u64 = (2 << 62) | ext_bits("ACDFIMSU");

const fn ext_bits(letters: &str) -> u64 {
    let b = letters.as_bytes();
    let mut v = 0;
    let mut i = 0;
    while i < b.len() {
        v |= 1 << (b[i] - b'A');
        i += 1;
    }
    v
}

impl Csrs {
    pub fn reset() -> Self {
        Self {
            misa: MISA,
            mstatus: mstatus::XL64,
            stimecmp: u64::MAX,
            ..Self::default()
        }
    }
}

impl Hart {
    fn counter_allowed(&self, csr: u16) -> bool {
        let bit = 1u64 << (csr & 0x1f);
        match self.prv {
            Priv::M => true,
            Priv::S => self.csr.mcounteren & bit != 0,
            Priv::U => self.csr.mcounteren & self.csr.scounteren & bit != 0,
        }
    }

    fn fp_enabled(&self) -> bool {
        self.csr.mstatus & mstatus::FS != 0
    }

    /// Reads CSR `csr` for a Zicsr instruction; `Err` is the exception to raise.
    pub fn csr_read(&mut self, csr: u16, raw: u32) -> Result<u64, Exception> {
        let illegal = Exception::illegal(raw);
        if (csr >> 8) & 3 > self.prv as u16 {
            return Err(illegal);
        }
        if csr == num::MIP || csr == num::SIP {
            // A comparator written since the last sample must show at once.
            self.update_timers();
        }
        let c = &self.csr;
        Ok(match csr {
            num::FFLAGS | num::FRM | num::FCSR if !self.fp_enabled() => return Err(illegal),
            num::FFLAGS => u64::from(c.fflags),
            num::FRM => u64::from(c.frm),
            num::FCSR => u64::from(c.frm) << 5 | u64::from(c.fflags),
            num::CYCLE..=num::HPMCOUNTER31 if !self.counter_allowed(csr) => return Err(illegal),
            num::CYCLE | num::MCYCLE => self.cycle(),
            num::INSTRET | num::MINSTRET => self.instret,
            num::TIME => self.shared.aclint.mtime(),
            num::HPMCOUNTER3..=num::HPMCOUNTER31 => 0,
            num::MHPMCOUNTER3..=num::MHPMCOUNTER31 => 0,
            num::MHPMEVENT3..=num::MHPMEVENT31 => 0,
            num::SSTATUS => sstatus_view(c.mstatus),
            num::SIE => c.mie & c.mideleg,
            num::STVEC => c.stvec,
            num::SCOUNTEREN => c.scounteren,
            num::SENVCFG => c.senvcfg,
            num::SSCRATCH => c.sscratch,
            num::SEPC => c.sepc,
            num::SCAUSE => c.scause,
            num::STVAL => c.stval,
            num::SIP => self.mip() & c.mideleg,
            num::STIMECMP => {
                self.stimecmp_allowed(raw)?;
                c.stimecmp
            }
            num::SATP => {
                if self.prv == Priv::S && c.mstatus & mstatus::TVM != 0 {
                    return Err(illegal);
                }
                c.satp
            }
            num::MVENDORID | num::MARCHID | num::MIMPID | num::MCONFIGPTR => 0,
            num::MHARTID => self.hartid,
            num::MSTATUS => with_sd(c.mstatus),
            num::MISA => c.misa,
            num::MEDELEG => c.medeleg,
            num::MIDELEG => c.mideleg,
            num::MIE => c.mie,
            num::MTVEC => c.mtvec,
            num::MCOUNTEREN => c.mcounteren,
            num::MENVCFG => c.menvcfg,
            num::MCOUNTINHIBIT => c.mcountinhibit,
            num::MSCRATCH => c.mscratch,
            num::MEPC => c.mepc,
            num::MCAUSE => c.mcause,
            num::MTVAL => c.mtval,
            num::MIP => self.mip(),
            num::PMPCFG0..=num::PMPCFG15 => self
                .pmp
                .read_cfg(usize::from(csr - num::PMPCFG0))
                .map_err(|_| illegal)?,
            num::PMPADDR0..=num::PMPADDR63 => self
                .pmp
                .read_addr(usize::from(csr - num::PMPADDR0))
                .map_err(|_| illegal)?,
            _ => return Err(illegal),
        })
    }

    /// Writes CSR `csr` (after a successful read for read-modify-write ops).
    pub fn csr_write(&mut self, csr: u16, value: u64, raw: u32) -> Result<(), Exception> {
        let illegal = Exception::illegal(raw);
        if (csr >> 8) & 3 > self.prv as u16 || csr >> 10 == 3 {
            return Err(illegal);
        }
        let c = &mut self.csr;
        match csr {
            num::FFLAGS | num::FRM | num::FCSR if c.mstatus & mstatus::FS == 0 => {
                return Err(illegal)
            }
            num::FFLAGS => {
                c.fflags = value as u8 & 0x1f;
                c.mstatus |= mstatus::FS;
            }
            num::FRM => {
                c.frm = value as u8 & 7;
                c.mstatus |= mstatus::FS;
            }
            num::FCSR => {
                c.fflags = value as u8 & 0x1f;
                c.frm = (value >> 5) as u8 & 7;
                c.mstatus |= mstatus::FS;
            }
            num::SSTATUS => {
                let v = (c.mstatus & !mstatus::S_WRITABLE) | (value & mstatus::S_WRITABLE);
                self.set_mstatus(v);
            }
            num::SIE => c.mie = (c.mie & !c.mideleg) | (value & c.mideleg),
            num::STVEC => c.stvec = legal_tvec(c.stvec, value),
            num::SCOUNTEREN => c.scounteren = value & COUNTEREN_WRITABLE,
            num::SENVCFG => c.senvcfg = value & menvcfg::S_WRITABLE,
            num::SSCRATCH => c.sscratch = value,
            num::SEPC => c.sepc = value & !1,
            num::SCAUSE => c.scause = value,
            num::STVAL => c.stval = value,
            // Only SSIP is writable through sip (Priv spec 4.1.3).
            num::SIP => {
                let m = irq::SSIP & c.mideleg;
                c.mip = (c.mip & !m) | (value & m);
            }
            num::STIMECMP => {
                self.stimecmp_allowed(raw)?;
                self.csr.stimecmp = value;
                self.update_timers();
            }
            num::SATP => {
                if self.prv == Priv::S && c.mstatus & mstatus::TVM != 0 {
                    return Err(illegal);
                }
                self.write_satp(value);
            }
            num::MSTATUS => {
                let mut v = (c.mstatus & !mstatus::M_WRITABLE) | (value & mstatus::M_WRITABLE);
                // MPP is WARL: the reserved value 2 keeps the old mode.
                if (v & mstatus::MPP) >> mstatus::MPP_SHIFT == 2 {
                    v = (v & !mstatus::MPP) | (c.mstatus & mstatus::MPP);
                }
                self.set_mstatus(v);
            }
            num::MISA => {} // WARL: the extension set is fixed.
            num::MEDELEG => c.medeleg = value & DELEGABLE_EXCEPTIONS,
            num::MIDELEG => c.mideleg = value & S_INTERRUPTS,
            num::MIE => c.mie = value & (S_INTERRUPTS | M_INTERRUPTS),
            num::MTVEC => c.mtvec = legal_tvec(c.mtvec, value),
            num::MCOUNTEREN => c.mcounteren = value & COUNTEREN_WRITABLE,
            num::MENVCFG => {
                c.menvcfg = value & menvcfg::WRITABLE;
                self.tlb_flush_all();
                self.update_timers();
            }
            num::MCOUNTINHIBIT => c.mcountinhibit = value & 0xffff_fffd,
            num::MSCRATCH => c.mscratch = value,
            num::MEPC => c.mepc = value & !1,
            num::MCAUSE => c.mcause = value,
            num::MTVAL => c.mtval = value,
            num::MIP => {
                // SSIP, STIP (unless Sstc owns it) and SEIP are software-writable.
                let mut m = irq::SSIP | irq::SEIP;
                if c.menvcfg & menvcfg::STCE == 0 {
                    m |= irq::STIP;
                }
                c.mip = (c.mip & !m) | (value & m);
            }
            num::MCYCLE => self.set_cycle(value),
            num::MINSTRET => {
                // The instruction that writes minstret retires too; it must read back
                // as written on the next instruction.
                self.instret = value.wrapping_sub(1);
            }
            num::MHPMCOUNTER3..=num::MHPMCOUNTER31 | num::MHPMEVENT3..=num::MHPMEVENT31 => {}
            num::PMPCFG0..=num::PMPCFG15 => {
                self.pmp
                    .write_cfg(usize::from(csr - num::PMPCFG0), value)
                    .map_err(|_| illegal)?;
                self.tlb.flush_l1();
                // Chained exits skip the fetch check, which PMP may now fail.
                self.link_epoch += 1;
            }
            num::PMPADDR0..=num::PMPADDR63 => {
                self.pmp
                    .write_addr(usize::from(csr - num::PMPADDR0), value)
                    .map_err(|_| illegal)?;
                self.tlb.flush_l1();
                self.link_epoch += 1;
            }
            num::MVENDORID..=num::MCONFIGPTR => return Err(illegal),
            num::CYCLE..=num::HPMCOUNTER31 => return Err(illegal),
            _ => return Err(illegal),
        }
        Ok(())
    }

    /// Sstc (stimecmp): S-mode access needs menvcfg.STCE and mcounteren.TM.
    fn stimecmp_allowed(&self, raw: u32) -> Result<(), Exception> {
        let stce = self.csr.menvcfg & menvcfg::STCE != 0;
        if self.prv == Priv::S && (!stce || self.csr.mcounteren & 2 == 0) {
            return Err(Exception::illegal(raw));
        }
        if self.prv == Priv::M && !stce {
            return Err(Exception::illegal(raw));
        }
        Ok(())
    }

    fn set_mstatus(&mut self, v: u64) {
        // SUM, MPRV and MPP only select among L1 tables; MXR changes what entries grant.
        let flush = (v ^ self.csr.mstatus) & mstatus::MXR;
        self.csr.mstatus = v;
        if flush != 0 {
            self.data_regime_changed();
        }
    }

    fn write_satp(&mut self, value: u64) {
        // Priv spec 4.1.11: a write with an unsupported MODE has no effect.
        let mode = value >> 60;
        if !matches!(mode, 0 | 8 | 9 | 10) {
            return;
        }
        // MODE (4 bits), ASID (ASIDLEN = 16) and PPN (44 bits) fill all 64 bits.
        let v = value;
        if v != self.csr.satp {
            self.csr.satp = v;
            self.satp_changed();
        }
    }
}

fn with_sd(ms: u64) -> u64 {
    let dirty = ms & mstatus::FS == mstatus::FS || ms & mstatus::XS == mstatus::XS;
    if dirty {
        ms | mstatus::SD
    } else {
        ms & !mstatus::SD
    }
}

fn sstatus_view(ms: u64) -> u64 {
    with_sd(ms) & mstatus::S_VIEW
}

/// xtvec MODE is WARL: 0 (direct) and 1 (vectored) only; other values keep the old
/// register, as QEMU does.
fn legal_tvec(old: u64, new: u64) -> u64 {
    if new & 3 < 2 {
        new
    } else {
        old
    }
}
