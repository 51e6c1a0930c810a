/* The hypervisor extension's CSRs: writable bits and WARL read-back of every H
 * and VS CSR and of the H additions to mstatus, mideleg, medeleg, mie/mip,
 * mtval2 and mtinst (write all ones, read, write zero, read), the aliases
 * between mip/mie, hip/hie, hvip and vsip/vsie, and the redirection of the
 * S-level CSR numbers to the VS CSRs while V=1 (H extension, "Hypervisor and
 * Virtual Supervisor CSRs"). Where the specification leaves a field to the
 * implementation (VMIDLEN, GEILEN, the hgatp modes, what htval/htinst/mtval2/
 * mtinst can hold, VSXL/UXL, VSBE), the value printed is QEMU's choice, which
 * Rivet shares. */
#include "hyp.h"

/* Fields of menvcfg/henvcfg that the extensions in use define: FIOM, CBIE,
 * CBCFE, CBZE (Zicbom/Zicboz), ADUE (Svadu). QEMU 10 also lets STCE be written
 * with Sstc off (see traps.c); PBMTE follows QEMU's Svpbmt default. */
#define ENVCFG_FIELDS 0x20000000000000f1UL

/* The fields the H chapter defines; the other bits are reserved (WPRI, read
 * as zero). QEMU 10 keeps whatever is written to the reserved bits of hstatus
 * and vsstatus, lets bits 14-63 of hideleg and vsie be written, and returns
 * hvip with its bit 13 writable and mip.MTIP/SSIP in it, so only these fields
 * are compared. hstatus: VSBE, GVA, SPV, SPVP, HU, VGEIN, VTVM, VTW, VTSR,
 * HUKTE, VSXL, HUPMM. */
#define HSTATUS_FIELDS 0x000300030173f3e0UL
/* vsstatus: SIE, SPIE, SPP, FS, SUM, MXR. UXL is left out because QEMU 10
 * stores any UXL value written (3, XLEN=128, included); SD because QEMU 10
 * stores it as written instead of summarising FS; UBE, VS, XS, SPELP and SDT
 * belong to features that are off (QEMU stores them too). */
#define VSSTATUS_FIELDS 0x00000000000c6122UL
/* Standard interrupt bits 0-13 of hideleg, hie, hip, hvip, vsie, vsip. */
#define IRQ_FIELDS 0x3fffUL

static u64 trap_cause, traps;

static enum rt_trap_action quiet(struct rt_trap *t)
{
    traps++;
    trap_cause = t->cause;
    return RT_SKIP;
}

/* Writes all ones, reads back; writes zero, reads back. */
#define ONES_ZERO(csr, mask)                                                   \
    do {                                                                       \
        csr_write(csr, ~0UL);                                                  \
        show(#csr "<-ones", csr_read(csr) & (mask));                           \
        csr_write(csr, 0);                                                     \
        show(#csr "<-zero", csr_read(csr) & (mask));                           \
    } while (0)

static u64 vs_seen[16];

/* Runs in VS-mode: the S-level CSR numbers reach the VS CSRs, except senvcfg
 * and scounteren, which have no VS copy and keep their HS-level values. */
static u64 vs_read_s_csrs(u64 arg)
{
    vs_seen[0] = csr_read(sstatus);
    vs_seen[1] = csr_read(sie);
    vs_seen[2] = csr_read(sip);
    vs_seen[3] = csr_read(stvec);
    vs_seen[4] = csr_read(sscratch);
    vs_seen[5] = csr_read(sepc);
    vs_seen[6] = csr_read(scause);
    vs_seen[7] = csr_read(stval);
    vs_seen[8] = csr_read(satp);
    vs_seen[9] = csr_read(senvcfg);
    vs_seen[10] = csr_read(scounteren);
    /* Writes land in the VS copies too. */
    csr_write(sscratch, 0xabcd0000UL | arg);
    csr_write(sepc, 0x80004000UL);
    csr_write(scause, 0xdUL);
    csr_write(stval, 0x4444UL);
    csr_set(sie, MIP_STIP);
    /* sip.SSIP is vsip.SSIP = hvip.VSSIP here (hideleg.VSSI is set). */
    csr_set(sip, MIP_SSIP);
    return arg;
}

int main(void)
{
    rt_trap_hook = quiet;

    section("misa");
    show("misa.H", (csr_read(misa) >> 7) & 1);

    section("hstatus");
    /* VGEIN is WLRL (legal values 0..GEILEN): all ones is not a legal write,
     * so it is left out here and probed with GEILEN below. */
    csr_write(hstatus, ~0UL & ~HSTATUS_VGEIN);
    show("hstatus<-ones", csr_read(hstatus) & HSTATUS_FIELDS);
    csr_write(hstatus, 0);
    show("hstatus<-zero", csr_read(hstatus) & HSTATUS_FIELDS);

    section("hedeleg, hideleg");
    /* Bits 18 and 19 (software check, hardware error: exceptions this CPU
     * never raises) are left out: the current table wants both writable,
     * QEMU 10 has 18 writable and 19 read-only zero. */
    ONES_ZERO(hedeleg, 0xfffffffffff3ffffUL);
    ONES_ZERO(hideleg, IRQ_FIELDS);

    section("hgeie, hgeip, hstatus.VGEIN (GEILEN)");
    csr_write(hgeie, ~0UL);
    u64 hgeie = csr_read(hgeie);
    show("hgeie<-ones", hgeie);
    csr_write(hgeie, 0);
    show("hgeie<-zero", csr_read(hgeie));
    show("hgeip", csr_read(hgeip));
    traps = 0;
    __asm__ volatile("csrw hgeip, %0" ::"r"(~0UL) : "memory");
    show("hgeip-write-traps", traps);
    show("hgeip-write-cause", trap_cause);
    /* GEILEN = the highest writable hgeie bit; VGEIN holds 0..GEILEN. */
    u64 geilen = 0;
    for (u64 i = 1; i < 64; i++)
        if (hgeie >> i & 1)
            geilen = i;
    csr_write(hstatus, geilen << 12);
    show("hstatus.VGEIN<-GEILEN", (csr_read(hstatus) & HSTATUS_VGEIN) >> 12);
    csr_write(hstatus, 0);

    section("hie, hip, hvip, and their aliases in mie/mip");
    ONES_ZERO(hie, IRQ_FIELDS);
    /* hvip: VSEIP, VSTIP, VSSIP writable. */
    csr_write(hvip, ~0UL);
    show("hvip<-ones", csr_read(hvip) & VS_INTS);
    show("hip@hvip-ones", csr_read(hip) & IRQ_FIELDS);
    show("mip@hvip-ones", csr_read(mip) & (VS_INTS | MIP_SGEIP));
    csr_write(hvip, 0);
    show("hvip<-zero", csr_read(hvip) & VS_INTS);
    show("hip@hvip-zero", csr_read(hip) & IRQ_FIELDS);
    /* hip.VSSIP is the writable alias of hvip.VSSIP; the others are read-only. */
    csr_write(hip, ~0UL);
    show("hip<-ones", csr_read(hip) & IRQ_FIELDS);
    show("hvip@hip-ones", csr_read(hvip) & VS_INTS);
    csr_write(hip, 0);
    show("hip<-zero", csr_read(hip) & IRQ_FIELDS);
    /* mip.VSSIP aliases hip.VSSIP; mie's VS bits alias hie's. */
    csr_set(mip, MIP_VSSIP);
    show("hvip@mip.VSSIP", csr_read(hvip) & VS_INTS);
    csr_clear(mip, MIP_VSSIP);
    show("hvip@mip.VSSIP-clear", csr_read(hvip) & VS_INTS);
    csr_write(hie, VS_INTS);
    show("mie@hie", csr_read(mie) & (VS_INTS | MIP_SGEIP));
    csr_clear(mie, MIP_VSTIP);
    show("hie@mie-clear-VSTIE", csr_read(hie) & IRQ_FIELDS);
    csr_write(hie, 0);

    section("hcounteren, htimedelta, henvcfg");
    ONES_ZERO(hcounteren, ~0UL);
    ONES_ZERO(htimedelta, ~0UL);
    /* henvcfg.ADUE (and STCE, PBMTE) are read-only zero while the menvcfg
     * bit is zero. */
    csr_write(menvcfg, ~0UL);
    ONES_ZERO(henvcfg, ENVCFG_FIELDS);
    csr_write(menvcfg, 0);
    csr_write(henvcfg, ~0UL);
    show("henvcfg<-ones@menvcfg-zero", csr_read(henvcfg) & ENVCFG_FIELDS);
    csr_write(henvcfg, 0);

    section("htval, htinst, mtval2, mtinst (WARL: what they can hold)");
    ONES_ZERO(htval, ~0UL);
    ONES_ZERO(mtval2, ~0UL);
    ONES_ZERO(mtinst, ~0UL);
    /* htinst need hold only what a trap writes to it, and QEMU 10 ignores CSR
     * writes to it: only a written zero is compared. */
    csr_write(htinst, 0);
    show("htinst<-zero", csr_read(htinst));
    /* Guest physical addresses >> 2 fit (the pseudoinstructions in mtinst). */
    csr_write(htval, 0x20000400UL);
    show("htval<-gpa>>2", csr_read(htval));
    csr_write(mtval2, 0x20000400UL);
    show("mtval2<-gpa>>2", csr_read(mtval2));
    csr_write(mtinst, 0x3000);
    show("mtinst<-0x3000", csr_read(mtinst));
    csr_write(htval, 0);
    csr_write(htinst, 0);
    csr_write(mtval2, 0);
    csr_write(mtinst, 0);

    section("hgatp: modes, VMIDLEN, PPN");
    /* In the paged modes PPN[1:0] read as zero (the root is 16 KiB aligned);
     * QEMU 10 returns them as written, so they are not compared. */
    for (u64 mode = 8; mode <= 10; mode++) {
        csr_write(hgatp, mode << 60 | 0x3fffUL << 44 | 0xfffffffffffUL);
        show(mode == 8 ? "hgatp<-sv39x4" : mode == 9 ? "hgatp<-sv48x4" : "hgatp<-sv57x4",
             csr_read(hgatp) & ~3UL);
    }
    /* KVM's probe of VMIDLEN: all-ones VMID with MODE = Bare. */
    csr_write(hgatp, 0x3fffUL << 44);
    show("hgatp<-bare-vmid-ones", csr_read(hgatp));
    csr_write(hgatp, 0);
    show("hgatp<-zero", csr_read(hgatp));

    section("vsstatus, vsie, vsip (hideleg ones and zero)");
    ONES_ZERO(vsstatus, VSSTATUS_FIELDS);
    csr_write(hideleg, ~0UL);
    csr_write(vsie, ~0UL);
    show("vsie<-ones@hideleg-ones", csr_read(vsie) & IRQ_FIELDS);
    show("hie@vsie-ones", csr_read(hie) & IRQ_FIELDS);
    csr_write(vsie, 0);
    show("vsie<-zero@hideleg-ones", csr_read(vsie) & IRQ_FIELDS);
    csr_write(vsip, ~0UL);
    show("vsip<-ones@hideleg-ones", csr_read(vsip) & IRQ_FIELDS);
    show("hvip@vsip-ones", csr_read(hvip) & VS_INTS);
    csr_write(vsip, 0);
    show("vsip<-zero@hideleg-ones", csr_read(vsip) & IRQ_FIELDS);
    csr_write(hvip, VS_INTS);
    show("vsip@hvip-ones", csr_read(vsip) & IRQ_FIELDS);
    csr_write(hie, VS_INTS);
    show("vsie@hie-ones", csr_read(vsie) & IRQ_FIELDS);
    csr_write(hideleg, 0);
    show("vsip@hideleg-zero", csr_read(vsip) & IRQ_FIELDS);
    show("vsie@hideleg-zero", csr_read(vsie) & IRQ_FIELDS);
    csr_write(vsie, ~0UL);
    show("vsie<-ones@hideleg-zero", csr_read(vsie) & IRQ_FIELDS);
    show("hie@vsie-ones-hideleg-zero", csr_read(hie) & IRQ_FIELDS);
    csr_write(hvip, 0);
    csr_write(hie, 0);

    section("vstvec, vsscratch, vsepc, vscause, vstval");
    csr_write(vstvec, 0x80001001UL);
    show("vstvec<-vectored", csr_read(vstvec));
    csr_write(vstvec, 0x80001000UL);
    show("vstvec<-direct", csr_read(vstvec));
    csr_write(vstvec, ~0UL);
    show("vstvec<-ones", csr_read(vstvec));
    csr_write(vstvec, 0);
    ONES_ZERO(vsscratch, ~0UL);
    /* vsepc[0] is always zero; QEMU 10 stores it (as for sepc, see traps.c),
     * so bit 0 is not compared. */
    ONES_ZERO(vsepc, ~1UL);
    /* vscause is WLRL: only legal cause values are written. */
    csr_write(vscause, CAUSE_IRQ | 9);
    show("vscause<-irq9", csr_read(vscause));
    csr_write(vscause, 15);
    show("vscause<-15", csr_read(vscause));
    csr_write(vscause, 0);
    ONES_ZERO(vstval, ~0UL);

    section("vsatp: modes and ASIDLEN");
    for (u64 mode = 8; mode <= 10; mode++) {
        csr_write(vsatp, mode << 60 | 0xffffUL << 44 | 0xfffffffffffUL);
        show(mode == 8 ? "vsatp<-sv39" : mode == 9 ? "vsatp<-sv48" : "vsatp<-sv57",
             csr_read(vsatp));
    }
    csr_write(vsatp, 8UL << 60 | 3UL << 44 | 0x80400UL);
    csr_write(vsatp, 7UL << 60 | 3UL << 44 | 0x80400UL);
    show("vsatp<-mode7", csr_read(vsatp));
    csr_write(vsatp, 0);
    show("vsatp<-zero", csr_read(vsatp));

    section("mstatus.MPV/GVA, mideleg, medeleg");
    u64 ms = csr_read(mstatus);
    csr_set(mstatus, MSTATUS_MPV | MSTATUS_GVA);
    show("mstatus.MPV/GVA<-1", (csr_read(mstatus) >> 38) & 3);
    csr_clear(mstatus, MSTATUS_MPV | MSTATUS_GVA);
    show("mstatus.MPV/GVA<-0", (csr_read(mstatus) >> 38) & 3);
    csr_write(mstatus, ms);
    /* Bits 2, 6, 10 are read-only one (12 too when GEILEN > 0). */
    csr_write(mideleg, 0);
    show("mideleg<-zero", csr_read(mideleg) & 0x1666UL);
    csr_write(mideleg, ~0UL);
    show("mideleg<-ones", csr_read(mideleg) & 0x1666UL);
    csr_write(mideleg, 0);
    /* Bits 10 (ecall from VS) and 20..23 are writable with H. Bit 11 is left
     * out: QEMU 10 lets it be written (see traps.c). */
    csr_write(medeleg, ~0UL);
    show("medeleg<-ones", csr_read(medeleg) & 0xf0b7ffUL);
    csr_write(medeleg, 0);
    show("medeleg<-zero", csr_read(medeleg) & 0xf0b7ffUL);

    section("V=1: S-level CSR numbers reach the VS CSRs");
    csr_write(mideleg, MIP_SSIP | MIP_STIP | MIP_SEIP);
    csr_write(hideleg, VS_INTS);
    /* HS-level values. sie.SSIE stays clear while sip.SSIP is set: with V=1
     * every HS-level interrupt is enabled. */
    csr_write(sscratch, 0x5c5cUL);
    csr_write(sepc, 0x80001000UL);
    csr_write(scause, 3);
    csr_write(stval, 0x1111UL);
    csr_write(stvec, (u64)rt_strap_entry);
    csr_write(sie, MIP_STIP);
    csr_set(mip, MIP_SSIP);
    csr_write(satp, 8UL << 60 | 5UL << 44 | 0x80400UL);
    csr_write(senvcfg, 1);
    csr_write(scounteren, 5);
    csr_set(mstatus, MSTATUS_MXR);
    /* VS-level values. */
    csr_write(vsscratch, 0x7575UL);
    csr_write(vsepc, 0x80002000UL);
    csr_write(vscause, 5);
    csr_write(vstval, 0x2222UL);
    csr_write(vstvec, (u64)rt_vstrap_entry);
    csr_write(hie, MIP_VSSIP | MIP_VSEIP);
    csr_write(hvip, MIP_VSTIP);
    csr_write(vsatp, 0);
    csr_write(vsstatus, MSTATUS_SUM | MSTATUS_SPP | (1UL << 13));
    traps = 0;
    rt_run_in_v(PRV_S, vs_read_s_csrs, 0x12);
    show("sstatus", vs_seen[0] & VSSTATUS_FIELDS);
    show("sie", vs_seen[1] & IRQ_FIELDS);
    show("sip", vs_seen[2] & IRQ_FIELDS);
    show("stvec=vstvec", vs_seen[3] == (u64)rt_vstrap_entry);
    show("sscratch", vs_seen[4]);
    show("sepc", vs_seen[5]);
    show("scause", vs_seen[6]);
    show("stval", vs_seen[7]);
    show("satp", vs_seen[8]);
    show("senvcfg", vs_seen[9]);
    show("scounteren", vs_seen[10]);
    show("traps-in-vs", traps);
    /* After the guest's writes: the VS copies changed, the HS ones did not. */
    show("vsscratch", csr_read(vsscratch));
    show("vsepc", csr_read(vsepc));
    show("vscause", csr_read(vscause));
    show("vstval", csr_read(vstval));
    show("vsie", csr_read(vsie) & IRQ_FIELDS);
    show("hie", csr_read(hie) & IRQ_FIELDS);
    show("hvip", csr_read(hvip) & VS_INTS);
    show("sscratch", csr_read(sscratch));
    show("sepc", csr_read(sepc));
    show("scause", csr_read(scause));
    show("stval", csr_read(stval));
    show("sie", csr_read(sie) & IRQ_FIELDS);
    show("satp", csr_read(satp));
    csr_clear(mip, MIP_SSIP);
    csr_write(hvip, 0);
    csr_write(hie, 0);
    csr_write(hideleg, 0);
    csr_write(mideleg, 0);
    csr_write(satp, 0);
    csr_write(senvcfg, 0);
    csr_write(scounteren, 0);
    csr_clear(mstatus, MSTATUS_MXR);
    return 0;
}
