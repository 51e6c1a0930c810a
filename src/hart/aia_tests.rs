//! The Smaia/Ssaia CSRs of a hart with IMSIC interrupt files (AIA spec, "CSRs Added to
//! Harts", "Incoming MSI Controller", "Interrupts for Virtual Machines").

use super::testutil::{self, csrr, csrw};
use super::{Hart, Priv};
use rivet_devices::imsic::{iselect as file, File, Imsic};
use rivet_devices::irq::{self, MEIP, SEIP};
use rivet_jit::arch::csr::{hstatus, hvictl, iselect, mstatus, num};
use rivet_jit::arch::{cause, Ext, ExtSet};
use std::sync::Arc;

/// The instruction bits a trap reports in `xtval`.
const RAW: u32 = 0x1234_5073;

/// A hart with Smaia, Ssaia and H, its files with `guests` guest files, in M-mode.
fn aia_hart(guests: u8) -> (Hart, Arc<Imsic>) {
    let mut h = testutil::hart();
    h.exts = ExtSet::CPU.with(Ext::Smaia).with(Ext::Ssaia);
    let imsic = Imsic::new(&[h.signals.clone()], guests);
    h.imsic = imsic.hart(0);
    h.geilen = guests;
    (h, imsic)
}

/// Turns delivery on for `f` and enables `ids`.
fn arm(f: &File, ids: &[u32]) {
    f.modify(file::EIDELIVERY, |_| 1).unwrap();
    for &id in ids {
        let (w, b) = (u64::from(id / 64) * 2, id % 64);
        f.modify(file::EIE0 + w, |old| old | 1 << b).unwrap();
    }
}

/// The cause of the exception a read (or a write) of `csr` raises in the current mode.
fn fault(h: &mut Hart, csr: u16, write: bool) -> Option<u64> {
    let r = if write {
        h.csr_write(csr, 0, RAW)
    } else {
        h.csr_read(csr, RAW).map(|_| ())
    };
    r.err().map(|e| e.cause)
}

#[test]
fn aia_csrs_exist_only_with_smaia_and_ssaia() {
    let mut h = testutil::hart();
    for n in [
        num::MISELECT,
        num::MIREG,
        num::MTOPEI,
        num::MTOPI,
        num::MVIEN,
        num::MVIP,
        num::SISELECT,
        num::SIREG,
        num::STOPEI,
        num::STOPI,
        num::VSISELECT,
        num::VSIREG,
        num::VSTOPEI,
        num::VSTOPI,
        num::HVIEN,
        num::HVICTL,
        num::HVIPRIO1,
        num::HVIPRIO2,
    ] {
        assert_eq!(fault(&mut h, n, false), Some(cause::ILLEGAL_INSN), "{n:#x}");
    }
    // Ssaia without H: no VS or hypervisor AIA CSRs.
    let (mut h, _) = aia_hart(0);
    h.exts = h.exts.without(Ext::H);
    assert_eq!(fault(&mut h, num::STOPI, false), None);
    assert_eq!(fault(&mut h, num::VSTOPI, false), Some(cause::ILLEGAL_INSN));
    assert_eq!(fault(&mut h, num::HVICTL, false), Some(cause::ILLEGAL_INSN));
}

#[test]
fn mireg_reaches_the_machine_file_and_sireg_the_supervisor_file() {
    let (mut h, imsic) = aia_hart(0);
    let files = imsic.hart(0).unwrap();
    csrw(&mut h, num::MISELECT, file::EIDELIVERY);
    csrw(&mut h, num::MIREG, 1);
    assert_eq!(files.m.read(file::EIDELIVERY), Ok(1));
    // eidelivery is WARL 0/1: 2 leaves it.
    csrw(&mut h, num::MIREG, 2);
    assert_eq!(csrr(&mut h, num::MIREG), 1);
    csrw(&mut h, num::SISELECT, file::EIE0 + 2);
    csrw(&mut h, num::SIREG, u64::MAX);
    assert_eq!(files.s.read(file::EIE0 + 2), Ok(u64::MAX));
    assert_eq!(files.m.read(file::EIE0 + 2), Ok(0));
    // Identity 0 does not exist: bit 0 of eie0 stays clear.
    csrw(&mut h, num::SISELECT, file::EIE0);
    csrw(&mut h, num::SIREG, u64::MAX);
    assert_eq!(csrr(&mut h, num::SIREG), !1);
    // eithreshold keeps identities up to 255.
    csrw(&mut h, num::SISELECT, file::EITHRESHOLD);
    csrw(&mut h, num::SIREG, 17);
    assert_eq!(csrr(&mut h, num::SIREG), 17);
}

#[test]
fn ireg_selections_that_do_not_exist_are_illegal() {
    let (mut h, _) = aia_hart(0);
    for (sel, ok) in [
        (iselect::IPRIO0, true),      // the priority array reads zero
        (iselect::IPRIO0 + 1, false), // odd iprio numbers do not exist on RV64
        (file::EIDELIVERY, true),
        (0x71, true), // reserved within the file's range: reads zero
        (file::EIP0 + 1, false),
        (file::EIE63, false),
        (0x00, false),
        (0x100, false),
    ] {
        csrw(&mut h, num::MISELECT, sel);
        let got = fault(&mut h, num::MIREG, false);
        assert_eq!(got.is_none(), ok, "miselect {sel:#x}: {got:?}");
        if !ok {
            assert_eq!(got, Some(cause::ILLEGAL_INSN));
        }
    }
    csrw(&mut h, num::MISELECT, iselect::IPRIO0);
    csrw(&mut h, num::MIREG, u64::MAX);
    assert_eq!(csrr(&mut h, num::MIREG), 0, "iprio is read-only zero");
    // Without an IMSIC the file range does not exist.
    h.imsic = None;
    csrw(&mut h, num::MISELECT, file::EIDELIVERY);
    assert_eq!(fault(&mut h, num::MIREG, false), Some(cause::ILLEGAL_INSN));
    assert_eq!(fault(&mut h, num::MTOPEI, false), Some(cause::ILLEGAL_INSN));
}

#[test]
fn mtopei_reports_the_lowest_identity_below_the_threshold_and_a_write_claims_it() {
    let (mut h, imsic) = aia_hart(0);
    let files = imsic.hart(0).unwrap();
    arm(&files.m, &[3, 5, 200]);
    assert_eq!(csrr(&mut h, num::MTOPEI), 0);
    files.m.set_pending(200);
    files.m.set_pending(5);
    files.m.set_pending(3);
    files.m.set_pending(7); // not enabled
    assert_ne!(h.signals.pending() & MEIP, 0);
    assert_eq!(csrr(&mut h, num::MTOPEI), 3 << 16 | 3);
    // A threshold hides identities at or above it.
    csrw(&mut h, num::MISELECT, file::EITHRESHOLD);
    csrw(&mut h, num::MIREG, 3);
    assert_eq!(csrr(&mut h, num::MTOPEI), 0);
    assert_eq!(h.signals.pending() & MEIP, 0);
    csrw(&mut h, num::MIREG, 0);
    // csrrw claims what it reads, whatever the value written.
    let claimed = h.csr_op(num::MTOPEI, RAW, Some(&|_| 0x55)).unwrap();
    assert_eq!(claimed, 3 << 16 | 3);
    assert_eq!(csrr(&mut h, num::MTOPEI), 5 << 16 | 5);
    h.csr_write(num::MTOPEI, 0, RAW).unwrap();
    h.csr_write(num::MTOPEI, 0, RAW).unwrap();
    assert_eq!(csrr(&mut h, num::MTOPEI), 0);
    assert_eq!(h.signals.pending() & MEIP, 0);
    // Identity 7 is still pending, only not enabled.
    csrw(&mut h, num::MISELECT, file::EIP0);
    assert_eq!(csrr(&mut h, num::MIREG), 1 << 7);
    assert_eq!(h.stats.imsic_claims, [3, 0, 0]);
}

#[test]
fn seteipnum_stores_reach_the_files_in_either_byte_order() {
    let (mut h, imsic) = aia_hart(0);
    let files = imsic.hart(0).unwrap();
    arm(&files.s, &[9, 10]);
    let s = imsic.s_window();
    s.write(0, 0, 4, 9);
    s.write(0, 4, 4, u64::from(10u32.swap_bytes()));
    s.write(0, 8, 4, 11); // not a seteipnum register
    assert_ne!(h.signals.pending() & SEIP, 0);
    csrw(&mut h, num::SISELECT, file::EIP0);
    assert_eq!(csrr(&mut h, num::SIREG), 1 << 9 | 1 << 10);
}

#[test]
fn with_v1_stopei_and_sireg_reach_the_guest_file_vgein_selects() {
    let (mut h, imsic) = aia_hart(3);
    let files = imsic.hart(0).unwrap();
    let g2 = files.guest(2).unwrap();
    arm(g2, &[4, 6]);
    g2.set_pending(6);
    g2.set_pending(4);
    assert_eq!(h.signals.hgeip(), 1 << 2);
    // From HS, vstopei with VGEIN = 0 is illegal; with VGEIN = 2 it reads guest file 2.
    h.set_mode(Priv::S, false);
    assert_eq!(
        fault(&mut h, num::VSTOPEI, false),
        Some(cause::ILLEGAL_INSN)
    );
    let hs = csrr(&mut h, num::HSTATUS);
    csrw(&mut h, num::HSTATUS, hs | 2 << hstatus::VGEIN_SHIFT);
    assert_eq!(h.csr_read(num::VSTOPEI, RAW), Ok(4 << 16 | 4));
    // In VS-mode the S numbers are redirected: stopei is vstopei, sireg is vsireg.
    h.set_mode(Priv::S, true);
    assert_eq!(h.csr_read(num::STOPEI, RAW), Ok(4 << 16 | 4));
    h.csr_write(num::SISELECT, file::EIP0, RAW).unwrap();
    assert_eq!(h.csr_read(num::SIREG, RAW), Ok(1 << 4 | 1 << 6));
    assert_eq!(csrr(&mut h, num::VSISELECT), file::EIP0);
    h.csr_write(num::STOPEI, 0, RAW).unwrap();
    assert_eq!(h.csr_read(num::STOPEI, RAW), Ok(6 << 16 | 6));
    assert_eq!(h.stats.imsic_claims, [0, 0, 1]);
    // The priority array is inaccessible at VS level: virtual from VS...
    h.csr_write(num::SISELECT, iselect::IPRIO0, RAW).unwrap();
    assert_eq!(fault(&mut h, num::SIREG, false), Some(cause::VIRTUAL_INSN));
    // ... and a VGEIN naming no file makes the guest file inaccessible too.
    h.csr_write(num::SISELECT, file::EIP0, RAW).unwrap();
    let hs = csrr(&mut h, num::HSTATUS);
    csrw(&mut h, num::HSTATUS, hs & !hstatus::VGEIN);
    assert_eq!(fault(&mut h, num::SIREG, false), Some(cause::VIRTUAL_INSN));
    assert_eq!(fault(&mut h, num::STOPEI, false), Some(cause::VIRTUAL_INSN));
    // From HS, vsireg with the priority array selected is illegal.
    h.set_mode(Priv::S, false);
    assert_eq!(fault(&mut h, num::VSIREG, false), Some(cause::ILLEGAL_INSN));
}

#[test]
fn vgein_takes_only_implemented_guest_numbers() {
    let (mut h, _) = aia_hart(3);
    let hs = csrr(&mut h, num::HSTATUS);
    csrw(&mut h, num::HSTATUS, hs | 3 << hstatus::VGEIN_SHIFT);
    assert_eq!(h.vgein(), 3);
    csrw(&mut h, num::HSTATUS, hs | 4 << hstatus::VGEIN_SHIFT);
    assert_eq!(h.vgein(), 3, "an unimplemented VGEIN is not written");
}

#[test]
fn guest_file_outputs_drive_hgeip_sgeip_and_vseip() {
    let (mut h, imsic) = aia_hart(5);
    let files = imsic.hart(0).unwrap();
    let g5 = files.guest(5).unwrap();
    arm(g5, &[1]);
    csrw(&mut h, num::HGEIE, u64::MAX);
    assert_eq!(csrr(&mut h, num::HGEIE), 0b11_1110);
    assert_eq!(csrr(&mut h, num::HGEIP), 0);
    g5.set_pending(1);
    assert_eq!(csrr(&mut h, num::HGEIP), 1 << 5);
    assert_ne!(h.mip() & irq::SGEIP, 0);
    assert_eq!(h.mip() & irq::VSEIP, 0, "VGEIN does not select file 5");
    let hs = csrr(&mut h, num::HSTATUS);
    csrw(&mut h, num::HSTATUS, hs | 5 << hstatus::VGEIN_SHIFT);
    assert_ne!(h.mip() & irq::VSEIP, 0);
    // hgeie masks SGEI but not VSEIP.
    csrw(&mut h, num::HGEIE, 0);
    assert_eq!(h.mip() & irq::SGEIP, 0);
    assert_ne!(h.mip() & irq::VSEIP, 0);
    // The guest's claim lowers the file's output.
    g5.claim();
    assert_eq!(csrr(&mut h, num::HGEIP), 0);
    assert_eq!(h.mip() & irq::VSEIP, 0);
}

#[test]
fn mtopi_and_stopi_report_the_highest_pending_enabled_interrupt() {
    let (mut h, _) = aia_hart(0);
    assert_eq!(csrr(&mut h, num::MTOPI), 0);
    csrw(&mut h, num::MIE, irq::SSIP | irq::STIP | irq::MSIP);
    csrw(&mut h, num::MIP, irq::SSIP | irq::STIP);
    // Not delegated: both are M's, SSI (1) before STI (5) in the default order (Priv
    // spec 3.1.9: MEI, MSI, MTI, SEI, SSI, STI).
    assert_eq!(csrr(&mut h, num::MTOPI), 1 << 16 | 1);
    assert_eq!(csrr(&mut h, num::STOPI), 0);
    csrw(&mut h, num::MIDELEG, irq::SSIP | irq::STIP);
    assert_eq!(csrr(&mut h, num::MTOPI), 0);
    assert_eq!(csrr(&mut h, num::STOPI), 1 << 16 | 1);
    // Disabled interrupts do not count; mstatus.MIE does not matter.
    csrw(&mut h, num::MIE, irq::STIP);
    assert_eq!(csrr(&mut h, num::STOPI), 5 << 16 | 1);
}

#[test]
fn mvip_aliases_the_software_writable_mip_bits() {
    let (mut h, _) = aia_hart(0);
    csrw(&mut h, num::MVIP, u64::MAX);
    assert_eq!(csrr(&mut h, num::MVIP), irq::SSIP | irq::STIP | irq::SEIP);
    assert_eq!(
        csrr(&mut h, num::MIP) & (irq::SSIP | irq::STIP | irq::SEIP),
        irq::SSIP | irq::STIP | irq::SEIP
    );
    csrw(&mut h, num::MIP, 0);
    assert_eq!(csrr(&mut h, num::MVIP), 0);
    // mvien and the hypervisor's priority registers are read-only zero.
    for n in [num::MVIEN, num::HVIEN, num::HVIPRIO1, num::HVIPRIO2] {
        csrw(&mut h, n, u64::MAX);
        assert_eq!(csrr(&mut h, n), 0, "{n:#x}");
    }
}

#[test]
fn vstopi_follows_the_guest_file_and_hvictl() {
    let (mut h, imsic) = aia_hart(1);
    let files = imsic.hart(0).unwrap();
    let g1 = files.guest(1).unwrap();
    csrw(&mut h, num::HIDELEG, irq::VSEIP | irq::VSSIP | irq::VSTIP);
    csrw(&mut h, num::MIE, irq::VSEIP | irq::VSSIP | irq::VSTIP);
    let hs = csrr(&mut h, num::HSTATUS);
    csrw(&mut h, num::HSTATUS, hs | 1 << hstatus::VGEIN_SHIFT);
    assert_eq!(csrr(&mut h, num::VSTOPI), 0);
    arm(g1, &[42]);
    g1.set_pending(42);
    // VS-level external interrupt 9; with hvictl.IPRIOM = 0 every IPRIO reads 1, with
    // IPRIOM = 1 it is the file's identity (AIA spec, "vstopi").
    assert_eq!(csrr(&mut h, num::VSTOPI), 9 << 16 | 1);
    csrw(&mut h, num::HVICTL, hvictl::IPRIOM | 9 << hvictl::IID_SHIFT);
    assert_eq!(csrr(&mut h, num::VSTOPI), 9 << 16 | 42);
    // VSSIP comes after SEI by default priority.
    csrw(&mut h, num::HVIP, irq::VSSIP);
    assert_eq!(csrr(&mut h, num::VSTOPI), 9 << 16 | 42);
    g1.claim();
    assert_eq!(csrr(&mut h, num::VSTOPI) >> 16, 1);
    // hvictl.VTI with IID 13 and priority 7 injects interrupt 13 and hides VSSIP/VSTIP.
    csrw(
        &mut h,
        num::HVICTL,
        hvictl::VTI | hvictl::IPRIOM | 13 << hvictl::IID_SHIFT | 7,
    );
    assert_eq!(csrr(&mut h, num::VSTOPI), 13 << 16 | 7);
    csrw(&mut h, num::HVICTL, 0);
    // The interrupt is taken in VS-mode with SIE set, with code vstopi's identity.
    csrw(&mut h, num::HVIP, 0);
    g1.set_pending(42);
    h.set_mode(Priv::S, true);
    h.csr.vsstatus |= mstatus::SIE;
    assert!(h.pending_interrupt().is_some());
}
