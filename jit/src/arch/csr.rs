//! CSR numbers and register fields (Priv spec ch. 2 "Control and Status Registers",
//! ch. 3 and 12 for M and S, the H chapter for the hypervisor and VS registers, Sdtrig
//! for the trigger registers). The runtime's CSR table and the JIT's inline reads both
//! take their numbers and masks from here.

/// CSR numbers (Priv spec table "Allocation of RISC-V CSR addresses").
pub mod num {
    // Unprivileged floating point and counters.
    pub const FFLAGS: u16 = 0x001;
    pub const FRM: u16 = 0x002;
    pub const FCSR: u16 = 0x003;
    pub const CYCLE: u16 = 0xc00;
    pub const TIME: u16 = 0xc01;
    pub const INSTRET: u16 = 0xc02;
    pub const HPMCOUNTER3: u16 = 0xc03;
    pub const HPMCOUNTER31: u16 = 0xc1f;

    // Supervisor.
    pub const SSTATUS: u16 = 0x100;
    pub const SIE: u16 = 0x104;
    pub const STVEC: u16 = 0x105;
    pub const SCOUNTEREN: u16 = 0x106;
    pub const SENVCFG: u16 = 0x10a;
    pub const SSCRATCH: u16 = 0x140;
    pub const SEPC: u16 = 0x141;
    pub const SCAUSE: u16 = 0x142;
    pub const STVAL: u16 = 0x143;
    pub const SIP: u16 = 0x144;
    pub const STIMECMP: u16 = 0x14d;
    pub const SATP: u16 = 0x180;
    // Smaia/Ssaia (AIA spec, "CSRs Added to Harts").
    pub const SISELECT: u16 = 0x150;
    pub const SIREG: u16 = 0x151;
    pub const STOPEI: u16 = 0x15c;
    pub const STOPI: u16 = 0xdb0;

    // Virtual supervisor (H): the S registers' numbers plus 0x100.
    pub const VSSTATUS: u16 = 0x200;
    pub const VSIE: u16 = 0x204;
    pub const VSTVEC: u16 = 0x205;
    pub const VSSCRATCH: u16 = 0x240;
    pub const VSEPC: u16 = 0x241;
    pub const VSCAUSE: u16 = 0x242;
    pub const VSTVAL: u16 = 0x243;
    pub const VSIP: u16 = 0x244;
    pub const VSTIMECMP: u16 = 0x24d;
    pub const VSATP: u16 = 0x280;
    pub const VSISELECT: u16 = 0x250;
    pub const VSIREG: u16 = 0x251;
    pub const VSTOPEI: u16 = 0x25c;
    pub const VSTOPI: u16 = 0xeb0;

    // Hypervisor (H).
    pub const HSTATUS: u16 = 0x600;
    pub const HEDELEG: u16 = 0x602;
    pub const HIDELEG: u16 = 0x603;
    pub const HIE: u16 = 0x604;
    pub const HTIMEDELTA: u16 = 0x605;
    pub const HCOUNTEREN: u16 = 0x606;
    pub const HGEIE: u16 = 0x607;
    pub const HENVCFG: u16 = 0x60a;
    pub const HTVAL: u16 = 0x643;
    pub const HIP: u16 = 0x644;
    pub const HVIP: u16 = 0x645;
    pub const HTINST: u16 = 0x64a;
    pub const HGATP: u16 = 0x680;
    pub const HGEIP: u16 = 0xe12;
    pub const HVIEN: u16 = 0x608;
    pub const HVICTL: u16 = 0x609;
    pub const HVIPRIO1: u16 = 0x646;
    pub const HVIPRIO2: u16 = 0x647;

    // Machine.
    pub const MVENDORID: u16 = 0xf11;
    pub const MARCHID: u16 = 0xf12;
    pub const MIMPID: u16 = 0xf13;
    pub const MHARTID: u16 = 0xf14;
    pub const MCONFIGPTR: u16 = 0xf15;
    pub const MSTATUS: u16 = 0x300;
    pub const MISA: u16 = 0x301;
    pub const MEDELEG: u16 = 0x302;
    pub const MIDELEG: u16 = 0x303;
    pub const MIE: u16 = 0x304;
    pub const MTVEC: u16 = 0x305;
    pub const MCOUNTEREN: u16 = 0x306;
    pub const MENVCFG: u16 = 0x30a;
    pub const MCOUNTINHIBIT: u16 = 0x320;
    pub const MHPMEVENT3: u16 = 0x323;
    pub const MHPMEVENT31: u16 = 0x33f;
    pub const MSCRATCH: u16 = 0x340;
    pub const MEPC: u16 = 0x341;
    pub const MCAUSE: u16 = 0x342;
    pub const MTVAL: u16 = 0x343;
    pub const MIP: u16 = 0x344;
    pub const MTINST: u16 = 0x34a;
    pub const MTVAL2: u16 = 0x34b;
    pub const MVIEN: u16 = 0x308;
    pub const MVIP: u16 = 0x309;
    pub const MISELECT: u16 = 0x350;
    pub const MIREG: u16 = 0x351;
    pub const MTOPEI: u16 = 0x35c;
    pub const MTOPI: u16 = 0xfb0;
    pub const PMPCFG0: u16 = 0x3a0;
    pub const PMPCFG15: u16 = 0x3af;
    pub const PMPADDR0: u16 = 0x3b0;
    pub const PMPADDR63: u16 = 0x3ef;
    pub const MCYCLE: u16 = 0xb00;
    pub const MINSTRET: u16 = 0xb02;
    pub const MHPMCOUNTER3: u16 = 0xb03;
    pub const MHPMCOUNTER31: u16 = 0xb1f;

    // Debug triggers (Sdtrig), M-level read/write.
    pub const TSELECT: u16 = 0x7a0;
    pub const TDATA1: u16 = 0x7a1;
    pub const TDATA2: u16 = 0x7a2;
    pub const TDATA3: u16 = 0x7a3;
    pub const TINFO: u16 = 0x7a4;
    pub const TCONTROL: u16 = 0x7a5;
    pub const MCONTEXT: u16 = 0x7a8;

    /// The privilege level a CSR number requires: bits 9:8 (Priv spec 2.1). 2 is the
    /// hypervisor level (HS, and M).
    pub const fn level(csr: u16) -> u16 {
        (csr >> 8) & 3
    }

    /// Whether the number is in a read-only range: bits 11:10 = 3 (Priv spec 2.1).
    pub const fn is_read_only(csr: u16) -> bool {
        csr >> 10 == 3
    }
}

/// `mstatus` fields (Priv spec 3.1.6; MPV and GVA from the H chapter). `sstatus` and
/// `vsstatus` use the same positions.
pub mod mstatus {
    pub const SIE: u64 = 1 << 1;
    pub const MIE: u64 = 1 << 3;
    pub const SPIE: u64 = 1 << 5;
    pub const UBE: u64 = 1 << 6;
    pub const MPIE: u64 = 1 << 7;
    pub const SPP: u64 = 1 << 8;
    pub const VS: u64 = 3 << 9;
    pub const MPP_SHIFT: u32 = 11;
    pub const MPP: u64 = 3 << MPP_SHIFT;
    pub const FS_SHIFT: u32 = 13;
    pub const FS: u64 = 3 << FS_SHIFT;
    pub const XS: u64 = 3 << 15;
    pub const MPRV: u64 = 1 << 17;
    pub const SUM: u64 = 1 << 18;
    pub const MXR: u64 = 1 << 19;
    pub const TVM: u64 = 1 << 20;
    pub const TW: u64 = 1 << 21;
    pub const TSR: u64 = 1 << 22;
    pub const UXL: u64 = 3 << 32;
    pub const SXL: u64 = 3 << 34;
    pub const GVA: u64 = 1 << 38;
    pub const MPV: u64 = 1 << 39;
    pub const SD: u64 = 1 << 63;
    /// XLEN = 64 for U and S, read-only.
    pub const XL64: u64 = (2 << 32) | (2 << 34);
    pub const M_WRITABLE: u64 =
        SIE | MIE | SPIE | MPIE | SPP | MPP | FS | MPRV | SUM | MXR | TVM | TW | TSR;
    /// What the H extension adds to the writable bits of `mstatus`.
    pub const M_WRITABLE_H: u64 = GVA | MPV;
    pub const S_VIEW: u64 = SIE | SPIE | UBE | SPP | VS | FS | XS | SUM | MXR | UXL | SD;
    pub const S_WRITABLE: u64 = SIE | SPIE | SPP | FS | SUM | MXR;
    /// `vsstatus` (H chapter, "Virtual Supervisor Status Register"): the `sstatus`
    /// layout; UXL is read-only 64.
    pub const VS_WRITABLE: u64 = S_WRITABLE;
    pub const VS_RESET: u64 = 2 << 32;
}

/// `hstatus` fields (H chapter, "Hypervisor Status Register").
pub mod hstatus {
    pub const VSBE: u64 = 1 << 5;
    pub const GVA: u64 = 1 << 6;
    pub const SPV: u64 = 1 << 7;
    pub const SPVP: u64 = 1 << 8;
    pub const HU: u64 = 1 << 9;
    pub const VGEIN_SHIFT: u32 = 12;
    pub const VGEIN: u64 = 0x3f << VGEIN_SHIFT;
    pub const VTVM: u64 = 1 << 20;
    pub const VTW: u64 = 1 << 21;
    pub const VTSR: u64 = 1 << 22;
    /// VSXL: VS-mode XLEN is 64, read-only.
    pub const VSXL64: u64 = 2 << 32;
    /// Writable without VGEIN (whose width depends on GEILEN).
    pub const WRITABLE: u64 = GVA | SPV | SPVP | HU | VTVM | VTW | VTSR;
}

/// `menvcfg` fields (Priv spec 3.1.18); `henvcfg` and `senvcfg` share the low ones.
pub mod menvcfg {
    pub const FIOM: u64 = 1;
    pub const CBIE: u64 = 3 << 4;
    pub const CBCFE: u64 = 1 << 6;
    pub const CBZE: u64 = 1 << 7;
    pub const ADUE: u64 = 1 << 61;
    pub const PBMTE: u64 = 1 << 62;
    pub const STCE: u64 = 1 << 63;
    pub const WRITABLE: u64 = FIOM | CBIE | CBCFE | CBZE | ADUE | PBMTE | STCE;
    pub const S_WRITABLE: u64 = FIOM | CBIE | CBCFE | CBZE;
}

/// `satp`, `vsatp` and `hgatp` fields (Priv spec "satp"; H chapter "hgatp").
pub mod atp {
    pub const MODE_SHIFT: u32 = 60;
    pub const ASID_SHIFT: u32 = 44;
    pub const ASID_MASK: u64 = 0xffff;
    /// hgatp.VMID: 14 bits at 57:44.
    pub const VMID_SHIFT: u32 = 44;
    pub const VMID_MASK: u64 = 0x3fff;
    pub const PPN_MASK: u64 = (1 << 44) - 1;
}

/// `hvictl` fields (AIA spec, "Virtual interrupts for VS level").
pub mod hvictl {
    pub const VTI: u64 = 1 << 30;
    pub const IID_SHIFT: u32 = 16;
    /// IID: 12 bits (27:16), every value supported.
    pub const IID: u64 = 0xfff << IID_SHIFT;
    pub const DPR: u64 = 1 << 9;
    pub const IPRIOM: u64 = 1 << 8;
    pub const IPRIO: u64 = 0xff;
    pub const WRITABLE: u64 = VTI | IID | DPR | IPRIOM | IPRIO;
}

/// `*iselect` numbers outside the interrupt files (AIA spec, "CSRs Added to Harts").
pub mod iselect {
    /// The major-interrupt priority array `iprio0`-`iprio15`.
    pub const IPRIO0: u64 = 0x30;
    pub const IPRIO15: u64 = 0x3f;
    /// The interrupt-file registers (with an IMSIC).
    pub const FILE_FIRST: u64 = 0x70;
    pub const FILE_LAST: u64 = 0xff;
}

/// Bits of `mcounteren`, `hcounteren` and `scounteren` for the counters Rivet has.
pub mod counteren {
    pub const CY: u64 = 1 << 0;
    pub const TM: u64 = 1 << 1;
    pub const IR: u64 = 1 << 2;
}
