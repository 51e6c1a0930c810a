/* Traps with the hypervisor extension (H extension, "Traps", "Trap Entry",
 * "Trap Return", "Virtual-Instruction Exceptions"): entry and return between M,
 * HS, VS and VU (mret with MPV/MPP, sret with SPV/SPP from HS, sret in VS),
 * what a trap into each level writes, delegation through medeleg and hedeleg,
 * virtual-instruction (22) against illegal-instruction (2) exceptions, and the
 * VS-level interrupts of hvip delegated (hideleg) or not. Both translation
 * stages are Bare here; hyp_vm.c covers two-stage translation.
 *
 * Not compared, because QEMU 10 departs from the specification there (each
 * place says so again):
 * - htval, htinst and hstatus.GVA after a trap into VS (QEMU writes them as
 *   for a trap into HS; a trap into VS leaves hstatus and the HS CSRs alone);
 * - hstatus.GVA for a breakpoint from V=1 (GVA=1 when stval gets the guest
 *   virtual address of the ebreak; QEMU writes 0);
 * - mstatus.GVA for illegal/virtual-instruction traps from V=1 and for HLV
 *   faults from V=0 (see hyp.h);
 * - the cause for S-level CSRs and sret in VU (22; QEMU raises 2) and for wfi
 *   in VU with mstatus.TW=1 (2; QEMU raises 22).
 * The tval of ebreak (its address), the transformed loads and stores in
 * mtinst/htinst, and the immediate virtual-instruction trap of wfi with VTW=1
 * are QEMU's allowed choices, which Rivet shares. */
#include "hyp.h"

static u64 do_ecall(u64 arg)
{
    register u64 a0 __asm__("a0") = arg;
    register u64 a7 __asm__("a7") = 0;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a7) : "memory");
    return a0 + 1;
}

/* sscratch in VS is vsscratch: tells VS (0x7575) from HS (0x5c5c). */
static u64 whoami(u64 arg)
{
    return csr_read(sscratch) + arg;
}

static u64 v_traps(u64 arg)
{
    /* ecall, ebreak, an M-level CSR (illegal), a VS CSR by its own number
     * (virtual instruction). */
    do_ecall(arg);
    __asm__ volatile("ebreak" ::: "memory");
    __asm__ volatile("csrr t0, mstatus" ::: "t0", "memory");
    if (arg)
        __asm__ volatile("csrr t0, vsstatus" ::: "t0", "memory");
    return arg;
}

static u64 illegal_once(u64 arg)
{
    __asm__ volatile("csrr t0, mstatus" ::: "t0", "memory");
    return arg;
}

static u64 ebreak_once(u64 arg)
{
    __asm__ volatile("ebreak" ::: "memory");
    return arg;
}

/* Lands in VS (arg = 1) or VU (arg = 0) after an sret from HS or VS. */
/* Past the end of RAM (256 MiB at 0x80000000): access faults. */
#define NO_MEMORY 0x90000000UL

static u64 bad_load(u64 arg)
{
    return ld64_or(NO_MEMORY, 7) + arg;
}

static u64 bad_store(u64 arg)
{
    sd64(NO_MEMORY + 8, arg);
    return arg;
}

static u64 bad_fetch(u64 arg)
{
    jump_to(NO_MEMORY);
    return arg;
}

static u64 bad_hlv(u64 arg)
{
    return hlv_d_or(NO_MEMORY + 0x10, 7) + arg;
}

static u64 v_landing(u64 arg)
{
    if (arg)
        return csr_read(sscratch);
    return do_ecall(0x55);
}

/* sret (from HS, or in VS) to v_landing with SPP = arg; returning from
 * v_landing runs the exit ecall in the mode sret entered. */
static u64 sret_to_landing(u64 arg)
{
    csr_write(sepc, (u64)v_landing);
    register u64 a0 __asm__("a0") = arg;
    __asm__ volatile("la ra, 1f\n\tsret\n1:\n\tli a7, 0x52495645\n\tecall"
                     : "+r"(a0)::"ra", "a7", "memory");
    return a0;
}

static u64 hs_sret_into_v(u64 arg)
{
    csr_set(hstatus, HSTATUS_SPV);
    if (arg)
        csr_set(sstatus, MSTATUS_SPP);
    else
        csr_clear(sstatus, MSTATUS_SPP);
    csr_clear(sstatus, MSTATUS_SIE);
    csr_set(sstatus, MSTATUS_SPIE);
    return sret_to_landing(arg);
}

static u64 vs_sret_into_vu(u64 arg)
{
    (void)arg;
    csr_clear(sstatus, MSTATUS_SPP | MSTATUS_SIE);
    csr_set(sstatus, MSTATUS_SPIE);
    return sret_to_landing(0);
}

/* Virtual-instruction and illegal-instruction cases (with mstatus/hstatus
 * set up by the caller); every one traps to M, which skips it. */
static u64 vs_h_csrs(u64 arg)
{
    __asm__ volatile("csrr t0, hstatus\n\t"
                     "csrr t0, vsstatus\n\t"
                     "csrr t0, hgatp\n\t"
                     "csrr t0, hgeip\n\t"
                     "csrw hgeip, zero\n\t" /* read-only: illegal in HS too */
                     "csrr t0, mstatus\n\t"
                     "csrr t0, mtval2\n\t"
                     "csrw cycle, zero\n\t" /* read-only: illegal */
                     ::: "t0", "memory");
    return arg;
}

static u64 h_insns(u64 arg)
{
    u64 a = (u64)&hyp_ntraps;
    __asm__ volatile(H_INSN("hlv.d t0, (%0)\n\t"
                            "hlvx.hu t0, (%0)\n\t"
                            "hsv.d zero, (%0)\n\t"
                            "hfence.vvma zero, zero\n\t"
                            "hfence.gvma zero, zero") ::"r"(a)
                     : "t0", "memory");
    return arg;
}

static u64 vu_s_csrs(u64 arg)
{
    __asm__ volatile("csrr t0, sstatus\n\t"
                     "csrr t0, sscratch\n\t"
                     "csrw sscratch, zero\n\t"
                     "csrr t0, satp\n\t"
                     ::: "t0", "memory");
    return arg;
}

static u64 vu_h_m_csrs(u64 arg)
{
    __asm__ volatile("csrr t0, hstatus\n\t"
                     "csrr t0, vsscratch\n\t"
                     "csrr t0, mstatus\n\t"
                     "csrw cycle, zero\n\t"
                     ::: "t0", "memory");
    return arg;
}

__attribute__((aligned(16))) static u64 do_sret(u64 arg)
{
    __asm__ volatile("sret" ::: "memory");
    return arg;
}

/* Aligned so that the wfi never sits in the last word of a page: QEMU 10
 * reports an epc one page too high for a wfi that traps there. */
__attribute__((aligned(16))) static u64 do_wfi(u64 arg)
{
    __asm__ volatile("wfi" ::: "memory");
    return arg;
}

__attribute__((aligned(16))) static u64 do_sfence(u64 arg)
{
    __asm__ volatile("sfence.vma" ::: "memory");
    return arg;
}

static u64 satp_access(u64 arg)
{
    __asm__ volatile("csrr t0, satp\n\tcsrw satp, zero" ::: "t0", "memory");
    return arg;
}

static u64 counters(u64 arg)
{
    __asm__ volatile("rdcycle t0\n\trdtime t0\n\trdinstret t0" ::: "t0", "memory");
    return arg;
}

static u64 fp_op(u64 arg)
{
    __asm__ volatile("fmv.d.x ft0, zero" ::: "ft0", "memory");
    return arg;
}

static u64 u_hlv(u64 arg)
{
    /* HLV/HSV from U-mode: illegal with hstatus.HU = 0, allowed with HU = 1;
     * HFENCE stays illegal in U-mode whatever HU says. */
    static volatile u64 cell = 0x1234567887654321UL;
    u64 v = hlv_d_or((u64)&cell, 0xdeadUL);
    hsv_d((u64)&cell, v + arg);
    __asm__ volatile(H_INSN("hfence.vvma zero, zero") ::: "memory");
    return v;
}

/* Interrupts: enable at the current level for a while, then disable. */
static u64 spin_enabled(u64 arg)
{
    csr_set(sstatus, MSTATUS_SIE);
    for (int i = 0; i < 200; i++)
        __asm__ volatile("nop");
    csr_clear(sstatus, MSTATUS_SIE);
    return arg;
}

static u64 spin(u64 arg)
{
    for (int i = 0; i < 200; i++)
        __asm__ volatile("nop");
    return arg;
}

static void status_line(const char *name, u64 hs_sstatus, u64 hstatus)
{
    rt_puts("  ");
    rt_puts(name);
    hyp_bit("spv", hstatus & HSTATUS_SPV);
    hyp_bit("spvp", hstatus & HSTATUS_SPVP);
    hyp_bit("spp", hs_sstatus & MSTATUS_SPP);
    hyp_bit("sie", hs_sstatus & MSTATUS_SIE);
    hyp_bit("spie", hs_sstatus & MSTATUS_SPIE);
    rt_putc('\n');
}

static void vs_case(const char *name, u64 (*fn)(u64))
{
    rt_puts("-- VS ");
    rt_puts(name);
    rt_putc('\n');
    rt_run_in_v(PRV_S, fn, 1);
}

static void vu_case(const char *name, u64 (*fn)(u64))
{
    rt_puts("-- VU ");
    rt_puts(name);
    rt_putc('\n');
    rt_run_in_v(PRV_U, fn, 0);
}

int main(void)
{
    rt_trap_hook = hyp_report;
    rt_strap_hook = hyp_report;
    rt_vstrap_hook = hyp_report;
    csr_write(stvec, (u64)rt_strap_entry);
    csr_write(vstvec, (u64)rt_vstrap_entry);
    csr_write(sscratch, 0x5c5cUL);
    csr_write(vsscratch, 0x7575UL);

    section("mret into VS/VU (MPV=1); ecall to M: causes 10, 8, 9");
    show("ret", rt_run_in_v(PRV_S, do_ecall, 1));
    show("ret", rt_run_in_v(PRV_U, do_ecall, 2));
    show("ret", rt_run_in(PRV_S, do_ecall, 3));
    show("ret", rt_run_in(PRV_U, do_ecall, 4));
    show("whoami-vs", rt_run_in_v(PRV_S, whoami, 0));
    show("whoami-hs", rt_run_in(PRV_S, whoami, 0));
    /* mret with MPP = M ignores MPV (V stays 0) and clears MPV. */
    {
        u64 ms = csr_read(mstatus);
        csr_clear(mstatus, MSTATUS_MPIE);
        csr_set(mstatus, MSTATUS_MPV | MSTATUS_MPP);
        __asm__ volatile("la t0, 1f\n\tcsrw mepc, t0\n\tmret\n1:" ::: "t0", "memory");
        u64 after = csr_read(mstatus);
        show("mret-to-M:mpv", (after >> 39) & 1);
        show("mret-to-M:mpp", (after >> 11) & 3);
        show("mret-to-M:mscratch-readable", csr_read(mscratch) == csr_read(mscratch));
        csr_write(mstatus, ms & ~MSTATUS_MPV);
    }
    show("traps", hyp_ntraps);

    section("traps from V=1 into HS (medeleg): SPV, SPVP, SPP, GVA, htval, htinst");
    csr_write(medeleg, 1UL << 2 | 1UL << 3 | 1UL << 8 | 1UL << 10 | 1UL << 22);
    hyp_hide = HIDE_GVA; /* ebreak: see the top of the file */
    rt_run_in_v(PRV_S, ebreak_once, 0);
    rt_run_in_v(PRV_U, ebreak_once, 0);
    hyp_hide = 0;
    rt_run_in_v(PRV_S, v_traps, 1);
    rt_run_in_v(PRV_U, v_traps, 0);
    status_line("after-vs-exit", csr_read(sstatus), csr_read(hstatus));
    /* From V=0, SPVP is left as it was; SPV = 0. */
    csr_set(hstatus, HSTATUS_SPVP);
    rt_run_in(PRV_U, illegal_once, 0);
    csr_clear(hstatus, HSTATUS_SPVP);
    rt_run_in(PRV_S, illegal_once, 0);
    /* sret from HS returns to V = SPV and clears SPV and SPP: only the
     * illegal instruction goes to HS here; the exit ecall (10) goes to M. */
    csr_write(medeleg, 1UL << 2);
    rt_run_in_v(PRV_S, illegal_once, 0);
    status_line("after-hs-sret", csr_read(sstatus), csr_read(hstatus));
    csr_write(medeleg, 0);

    section("sret from HS into VS and VU (hstatus.SPV = 1)");
    show("landing-vs", rt_run_in(PRV_S, hs_sret_into_v, 1));
    status_line("after-sret-vs", csr_read(sstatus), csr_read(hstatus));
    show("landing-vu", rt_run_in(PRV_S, hs_sret_into_v, 0));
    status_line("after-sret-vu", csr_read(sstatus), csr_read(hstatus));

    section("sret in VS into VU (vsstatus.SPP = 0) leaves HS state alone");
    csr_write(sstatus, MSTATUS_SPP | MSTATUS_SIE);
    csr_write(hstatus, HSTATUS_SPV | HSTATUS_SPVP);
    show("ret", rt_run_in_v(PRV_S, vs_sret_into_vu, 0));
    show("vsstatus", csr_read(vsstatus) & (MSTATUS_SPP | MSTATUS_SIE | MSTATUS_SPIE));
    status_line("hs-after-vs-sret", csr_read(sstatus), csr_read(hstatus));
    csr_write(sstatus, 0);
    csr_write(hstatus, 0);

    section("traps into VS (medeleg + hedeleg): vscause, vstval, vsepc, vsstatus");
    u64 deleg = 1UL << 2 | 1UL << 3 | 1UL << 8;
    csr_write(medeleg, deleg | 1UL << 22);
    csr_write(hedeleg, deleg);
    /* HS state that a trap into VS must not touch. */
    csr_write(sepc, 0x80001000UL);
    csr_write(scause, 0xfUL);
    csr_write(stval, 0x1111UL);
    csr_write(sstatus, MSTATUS_SPP | MSTATUS_SPIE);
    csr_write(hstatus, HSTATUS_SPVP);
    csr_write(vsstatus, MSTATUS_SIE);
    rt_run_in_v(PRV_U, v_traps, 0);
    show("vsstatus", csr_read(vsstatus) & (MSTATUS_SPP | MSTATUS_SIE | MSTATUS_SPIE));
    show("sepc", csr_read(sepc));
    show("scause", csr_read(scause));
    show("stval", csr_read(stval));
    status_line("hs-after-vs-traps", csr_read(sstatus), csr_read(hstatus) & ~HSTATUS_GVA);
    /* From VS: ecall (10) cannot be delegated to VS (hedeleg bit 10 is
     * read-only zero) and goes to M; the virtual instruction (22) cannot
     * either and goes to HS. */
    rt_run_in_v(PRV_S, v_traps, 1);
    show("vsstatus", csr_read(vsstatus) & (MSTATUS_SPP | MSTATUS_SIE | MSTATUS_SPIE));
    csr_write(hedeleg, 0xffffffUL);
    show("hedeleg<-ones", csr_read(hedeleg) & 0xf00e00UL); /* 9-11, 20-23: read-only 0 */
    csr_write(hedeleg, 0);
    csr_write(medeleg, 0);
    csr_write(sstatus, 0);
    csr_write(hstatus, 0);

    section("address faults: GVA = 1 when tval is a guest virtual address");
    /* Bare translation in both stages: access faults (not guest-page faults),
     * so mtval2/htval = 0. mtinst/htinst hold zero or the transformed load or
     * store (QEMU writes the transformation). */
    rt_run_in_v(PRV_S, bad_load, 0);
    rt_run_in_v(PRV_S, bad_store, 0);
    rt_run_in_v(PRV_U, bad_load, 0);
    rt_run_in_v(PRV_S, bad_fetch, 0);
    rt_run_in_v(PRV_S, ebreak_once, 0); /* mtval = its address: a guest virtual address */
    /* HLV from V=0 also writes a guest virtual address (SPV = 0, GVA = 1).
     * QEMU 10 sets mstatus.GVA only for traps from V=1, so GVA is not compared
     * for HLV faults taken into M. */
    hyp_hide = HIDE_GVA;
    bad_hlv(0);
    rt_run_in(PRV_S, bad_hlv, 0);
    hyp_hide = 0;
    csr_write(medeleg, 1UL << 1 | 1UL << 5 | 1UL << 7);
    rt_run_in_v(PRV_S, bad_load, 0);
    rt_run_in_v(PRV_U, bad_store, 0);
    rt_run_in_v(PRV_S, bad_fetch, 0);
    rt_run_in(PRV_S, bad_hlv, 0);
    csr_write(hstatus, HSTATUS_HU);
    rt_run_in(PRV_U, bad_hlv, 0);
    csr_write(hstatus, 0);
    csr_write(medeleg, 0);

    section("virtual instruction (22) or illegal (2): VS");
    vs_case("h/vs/m CSRs", vs_h_csrs);
    vs_case("HLV/HLVX/HSV/HFENCE", h_insns);
    csr_set(hstatus, HSTATUS_VTSR);
    vs_case("sret with VTSR", do_sret);
    csr_clear(hstatus, HSTATUS_VTSR);
    csr_set(hstatus, HSTATUS_VTW);
    vs_case("wfi with VTW, TW=0", do_wfi);
    csr_set(mstatus, MSTATUS_TW);
    vs_case("wfi with VTW, TW=1", do_wfi);
    csr_clear(hstatus, HSTATUS_VTW);
    vs_case("wfi with TW=1", do_wfi);
    csr_clear(mstatus, MSTATUS_TW);
    csr_set(hstatus, HSTATUS_VTVM);
    vs_case("sfence.vma with VTVM", do_sfence);
    vs_case("satp with VTVM", satp_access);
    csr_clear(hstatus, HSTATUS_VTVM);
    vs_case("satp without VTVM", satp_access);
    csr_write(mcounteren, 7);
    csr_write(hcounteren, 0);
    vs_case("counters mcounteren=7 hcounteren=0", counters);
    csr_write(mcounteren, 0);
    csr_write(hcounteren, 7);
    vs_case("counters mcounteren=0", counters);
    csr_write(mcounteren, 7);
    hyp_ntraps = 0;
    vs_case("counters mcounteren=7 hcounteren=7", counters);
    show("traps", hyp_ntraps);
    /* FP needs both sstatus.FS (here mstatus.FS) and vsstatus.FS: illegal,
     * never virtual, when either is Off; both become Dirty on a write. */
    u64 ms = csr_read(mstatus);
    csr_write(vsstatus, 0);
    vs_case("fp with vsstatus.FS=0", fp_op);
    csr_clear(mstatus, MSTATUS_FS);
    csr_write(vsstatus, 1UL << 13);
    vs_case("fp with mstatus.FS=0", fp_op);
    csr_set(mstatus, 1UL << 13);
    hyp_ntraps = 0;
    vs_case("fp with both FS=Initial", fp_op);
    show("traps", hyp_ntraps);
    show("mstatus.FS", (csr_read(mstatus) >> 13) & 3);
    show("vsstatus.FS", (csr_read(vsstatus) >> 13) & 3);
    csr_write(mstatus, ms);
    csr_write(vsstatus, 0);

    section("virtual instruction (22) or illegal (2): VU");
    /* S-level CSRs and sret in VU raise virtual-instruction exceptions (the
     * instruction is HS-qualified); QEMU 10 raises illegal-instruction
     * exceptions for both, so only that they trap (and mtval) is compared. */
    hyp_hide = HIDE_CAUSE;
    vu_case("S CSRs", vu_s_csrs);
    vu_case("sret", do_sret);
    hyp_hide = 0;
    vu_case("H/VS/M CSRs", vu_h_m_csrs);
    vu_case("HLV/HLVX/HSV/HFENCE", h_insns);
    vu_case("sfence.vma", do_sfence);
    vu_case("wfi with TW=0", do_wfi);
    /* With mstatus.TW = 1, wfi in VU is an illegal instruction (the virtual-
     * instruction rule covers TW=0 only); QEMU 10 raises a virtual-instruction
     * exception, so the cause is not compared. */
    csr_set(mstatus, MSTATUS_TW);
    hyp_hide = HIDE_CAUSE;
    vu_case("wfi with TW=1", do_wfi);
    hyp_hide = 0;
    csr_clear(mstatus, MSTATUS_TW);
    csr_write(mcounteren, 7);
    csr_write(hcounteren, 7);
    csr_write(scounteren, 0);
    vu_case("counters scounteren=0", counters);
    csr_write(hcounteren, 0);
    csr_write(scounteren, 7);
    vu_case("counters hcounteren=0", counters);
    csr_write(mcounteren, 0);
    csr_write(hcounteren, 7);
    vu_case("counters mcounteren=0", counters);
    csr_write(mcounteren, 7);
    hyp_ntraps = 0;
    vu_case("counters all enabled", counters);
    show("traps", hyp_ntraps);
    csr_write(mcounteren, 0);
    csr_write(hcounteren, 0);
    csr_write(scounteren, 0);

    section("HLV/HSV from U: hstatus.HU");
    csr_write(hstatus, 0);
    show("hlv-hu0", rt_run_in(PRV_U, u_hlv, 1));
    csr_write(hstatus, HSTATUS_HU);
    show("hlv-hu1", rt_run_in(PRV_U, u_hlv, 1));
    show("hlv-hu1-again", rt_run_in(PRV_U, u_hlv, 1));
    csr_write(hstatus, 0);

    section("VS-level interrupts delegated to VS (hideleg): causes 1, 5, 9");
    csr_write(hideleg, VS_INTS);
    csr_write(hie, VS_INTS);
    static const u64 vs_irqs[3] = {MIP_VSSIP, MIP_VSTIP, MIP_VSEIP};
    for (int i = 0; i < 3; i++) {
        csr_write(hie, VS_INTS);
        csr_write(hvip, vs_irqs[i]);
        hyp_ntraps = 0;
        rt_run_in_v(PRV_S, spin_enabled, 0);
        show("traps", hyp_ntraps);
        csr_write(hvip, 0);
    }
    /* In VU, VS-level interrupts are enabled whatever vsstatus.SIE says. */
    csr_write(hie, VS_INTS);
    csr_write(vsstatus, 0);
    csr_write(hvip, MIP_VSSIP);
    rt_run_in_v(PRV_U, spin, 0);
    csr_write(hvip, 0);
    /* Not taken while V=0: in HS with sstatus.SIE = 1, in U, in M. */
    csr_write(vsstatus, MSTATUS_SIE);
    csr_write(hvip, MIP_VSSIP);
    hyp_ntraps = 0;
    rt_run_in(PRV_S, spin_enabled, 0);
    rt_run_in(PRV_U, spin, 0);
    csr_set(mstatus, MSTATUS_MIE);
    spin(0);
    csr_clear(mstatus, MSTATUS_MIE);
    show("traps-while-v0", hyp_ntraps);
    /* ... and taken as soon as V=1. */
    rt_run_in_v(PRV_S, spin, 0);
    show("hvip", csr_read(hvip) & VS_INTS);
    csr_write(hvip, 0);
    csr_write(vsstatus, 0);

    section("VS-level interrupts not delegated: to HS as 2, 6, 10, whatever sstatus.SIE");
    csr_write(hideleg, 0);
    csr_write(sstatus, 0);
    for (int i = 0; i < 3; i++) {
        csr_write(hie, VS_INTS);
        hyp_ntraps = 0;
        csr_write(hvip, vs_irqs[i]);
        rt_run_in_v(PRV_S, spin, 0);
        csr_write(hvip, vs_irqs[i]);
        rt_run_in_v(PRV_U, spin, 0);
        show("traps", hyp_ntraps);
    }
    csr_write(hvip, 0);
    csr_write(hie, 0);
    /* An HS interrupt (SSI, delegated by mideleg) while V=1, sstatus.SIE = 0. */
    csr_write(mideleg, MIP_SSIP);
    csr_write(sie, MIP_SSIP);
    csr_set(mip, MIP_SSIP);
    rt_run_in_v(PRV_S, spin_enabled, 0);
    show("sip", csr_read(sip) & MIP_SSIP);
    csr_write(sie, 0);
    csr_write(mideleg, 0);
    return 0;
}
