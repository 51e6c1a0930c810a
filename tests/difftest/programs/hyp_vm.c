/* Two-stage address translation (H extension, "Two-Stage Address Translation",
 * "Guest-Page Faults", "Hypervisor Virtual-Machine Load and Store
 * Instructions", "Memory-Management Fences"), built with MODE = 8, 9 or 10 for
 * a G stage of Sv39x4, Sv48x4 or Sv57x4 under a VS stage of Sv39 whose tables
 * live in guest physical memory: loads, stores and fetches in VS and VU,
 * G-stage permission faults (20, 21, 23) against VS-stage faults (12, 13, 15),
 * guest physical addresses wider than the mode, faults of the VS stage's own
 * page-table reads, A/D updates in both stages, either stage Bare, HLV/HLVX/HSV
 * from M and HS, MPRV with MPV=1, and HFENCE.GVMA/HFENCE.VVMA: only what must
 * hold after a fence is checked, since a stale translation may or may not be
 * used before it (and an HS sfence.vma need not touch guest translations).
 *
 * Values the specification leaves to the implementation, printed as QEMU
 * chooses them (Rivet does the same): htval/mtval2 hold the guest physical
 * address >> 2 (zero is also allowed), htinst/mtinst hold the transformed
 * load or store (zero is also allowed). Not compared because QEMU 10 departs
 * from the specification: mstatus.GVA for traps into M from V=0 (HLV, MPRV;
 * see hyp.h); faults of HLVX (QEMU raises instruction page faults where the
 * spec wants load faults), so only HLVX that succeeds is run; and the A/D
 * update of a VS-stage PTE in a page the G stage maps read-only (QEMU writes
 * it; the spec makes it a guest-page fault with htinst 0x3020), so that case
 * is not exercised. */
#include "hyp.h"

#ifndef MODE
#define MODE 8
#endif
#define GLEVELS (MODE - 5)
/* Guest physical addresses are 2 bits wider than the G stage's VA width. */
#define GPA_BITS (12 + 9 * GLEVELS + 2)

#define PTE_V 0x1UL
#define PTE_R 0x2UL
#define PTE_W 0x4UL
#define PTE_X 0x8UL
#define PTE_U 0x10UL
#define PTE_A 0x40UL
#define PTE_D 0x80UL
#define AD (PTE_A | PTE_D)
#define RW (PTE_R | PTE_W)
#define RWX (PTE_R | PTE_W | PTE_X)

#define FAULT 0xfa17fa17fa17fa17UL
#define GIB (1UL << 30)
#define VMID 1UL

/* The guest physical window holding the VS-stage tables and test pages: at
 * 2^40 for Sv39x4 it is indexed by the extra two bits of the 16 KiB root. */
#if MODE == 9
#define GWIN (1UL << 49)
#else
#define GWIN (1UL << 40)
#endif
#define G_UNMAPPED (GWIN + 0x80000UL)
#define G_2M (GWIN + 0x200000UL)
/* The last page of the guest physical space, and the first address past it. */
#define G_TOP ((1UL << GPA_BITS) - 0x1000UL)
#define G_TOO_WIDE (1UL << GPA_BITS)

/* Guest virtual addresses of the test pages (VS stage, Sv39). */
#define VA 0x40000000UL
#define VA_RW (VA + 0x0000)       /* G: RW */
#define VA_G_RO (VA + 0x1000)     /* G: R */
#define VA_G_NOU (VA + 0x2000)    /* G: RW without U */
#define VA_G_XO (VA + 0x3000)     /* G: X only (VS: RWX) */
#define VA_G_NONE (VA + 0x4000)   /* G: not mapped */
#define VA_VS_INV (VA + 0x5000)   /* VS: invalid */
#define VA_VS_RO (VA + 0x6000)    /* VS: R */
#define VA_VS_XO (VA + 0x7000)    /* VS: X only, G: X only */
#define VA_VS_U (VA + 0x8000)     /* VS: U page */
#define VA_VS_A0 (VA + 0x9000)    /* VS: A = D = 0 */
#define VA_G_A0 (VA + 0xa000)     /* G: A = D = 0 */
#define VA_WIDE (VA + 0xb000)     /* VS: to a GPA past the G stage's width */
#define VA_FENCE (VA + 0xc000)    /* remapped around fences */
#define VA_2M 0x40200000UL        /* VS 2 MiB leaf onto a G 2 MiB leaf */
#define VA_WALK 0x40400000UL      /* VS level-0 table not mapped in G */

static u64 *groot;
static u64 p_rw, p_ro, p_nou, p_xo, p_a0, p_ga0, p_alt;
static u64 g_next = GWIN;

/* Guest pages: host page + guest physical address, for walking VS tables. */
#define MAX_GPAGES 64
static u64 gp_gpa[MAX_GPAGES], gp_pa[MAX_GPAGES];
static int n_gpages;

static u64 *alloc_root16k(void)
{
    u64 p = (u64)rt_alloc_page();
    while (p & 0x3fff)
        p = (u64)rt_alloc_page();
    for (int i = 0; i < 3; i++)
        rt_alloc_page();
    return (u64 *)p;
}

static u64 g_index(u64 gpa, int level)
{
    u64 mask = level == GLEVELS - 1 ? 2047 : 511;
    return (gpa >> (12 + 9 * level)) & mask;
}

/* The G-stage PTE for `gpa` at `level`, creating intermediate tables. */
static u64 *g_pte(u64 gpa, int level)
{
    u64 *t = groot;
    for (int l = GLEVELS - 1; l > level; l--) {
        u64 *e = &t[g_index(gpa, l)];
        if (!(*e & PTE_V)) {
            u64 *n = rt_alloc_page();
            *e = (((u64)n >> 12) << 10) | PTE_V;
        }
        t = (u64 *)((*e >> 10) << 12);
    }
    return &t[g_index(gpa, level)];
}

static u64 *g_map(u64 gpa, u64 pa, int level, u64 flags)
{
    u64 *e = g_pte(gpa, level);
    *e = ((pa >> 12) << 10) | flags;
    return e;
}

/* A page of guest memory at the next window address, mapped RW for U. */
static u64 gpage(u64 *pa_out)
{
    u64 pa = (u64)rt_alloc_page();
    u64 gpa = g_next;
    g_next += 0x1000;
    g_map(gpa, pa, 0, PTE_V | RW | PTE_U | AD);
    gp_gpa[n_gpages] = gpa;
    gp_pa[n_gpages] = pa;
    n_gpages++;
    if (pa_out)
        *pa_out = pa;
    return gpa;
}

static u64 *gpa_to_ptr(u64 gpa)
{
    for (int i = 0; i < n_gpages; i++)
        if (gp_gpa[i] == (gpa & ~0xfffUL))
            return (u64 *)(gp_pa[i] + (gpa & 0xfff));
    rt_puts("FATAL unknown guest page\n");
    rt_exit(3);
}

/* The VS-stage (Sv39) PTE for `va` at `level` under the root at `root_gpa`,
 * creating tables in guest memory. */
static u64 *vs_pte(u64 root_gpa, u64 va, int level)
{
    u64 *t = gpa_to_ptr(root_gpa);
    for (int l = 2; l > level; l--) {
        u64 *e = &t[(va >> (12 + 9 * l)) & 511];
        if (!(*e & PTE_V)) {
            u64 gpa = gpage(0);
            *e = ((gpa >> 12) << 10) | PTE_V;
        }
        t = gpa_to_ptr((*e >> 10) << 12);
    }
    return &t[(va >> (12 + 9 * level)) & 511];
}

static u64 *vs_map(u64 root_gpa, u64 va, u64 gpa, int level, u64 flags)
{
    u64 *e = vs_pte(root_gpa, va, level);
    *e = ((gpa >> 12) << 10) | flags;
    return e;
}

static u64 vs_root_s, vs_root_u;
static u64 *pte_vs_a0, *pte_g_a0, *pte_vs_fence, *pte_g_fence;

static u64 hgatp_val(void)
{
    return (u64)MODE << 60 | VMID << 44 | (u64)groot >> 12;
}

/* Each VS-stage root has its own ASID: switching vsatp between two page tables of
 * one ASID without a fence may keep using the old translations (Priv spec, satp:
 * software must fence when it reuses an ASID), which QEMU never does and Rivet may. */
static u64 vsatp_for(u64 root_gpa)
{
    u64 asid = root_gpa == (u64)vs_root_s ? 1 : 2;
    return 8UL << 60 | asid << 44 | (root_gpa >> 12);
}

/* Run fn in VS (root_s) or VU (root_u) with both stages on. */
static u64 run_vs(u64 (*fn)(u64), u64 arg)
{
    csr_write(vsatp, vsatp_for(vs_root_s));
    return rt_run_in_v(PRV_S, fn, arg);
}

static u64 run_vu(u64 (*fn)(u64), u64 arg)
{
    csr_write(vsatp, vsatp_for(vs_root_u));
    return rt_run_in_v(PRV_U, fn, arg);
}

static u64 load(u64 va)
{
    return ld64_or(va, FAULT);
}

static u64 store(u64 va)
{
    sd64(va, 0x5707e5707e5707eUL);
    return ld64_or(va, FAULT);
}

/* Calls the code at `va` (which sets a0 = 0x77); FAULT when the fetch faults
 * and the handler returns to ra. */
static u64 fetch(u64 va)
{
    register u64 a0 __asm__("a0") = FAULT;
    __asm__ volatile("jalr ra, 0(%1)"
                     : "+r"(a0)
                     : "r"(va)
                     : "ra", "t0", "t1", "t2", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
                       "t3", "t4", "t5", "t6", "memory");
    return a0;
}

static u64 vs_mxr_load(u64 va)
{
    csr_set(sstatus, MSTATUS_MXR); /* vsstatus.MXR */
    u64 v = load(va);
    csr_clear(sstatus, MSTATUS_MXR);
    return v;
}

static u64 vs_sum_load(u64 va)
{
    csr_set(sstatus, MSTATUS_SUM); /* vsstatus.SUM */
    u64 v = load(va);
    csr_clear(sstatus, MSTATUS_SUM);
    return v;
}

static u64 vs_sfence_load(u64 va)
{
    __asm__ volatile("sfence.vma" ::: "memory");
    return load(va);
}

static u64 hs_hlv(u64 va)
{
    return hlv_d_or(va, FAULT);
}

static u64 hs_fence(u64 arg)
{
    hfence_gvma_all();
    return arg;
}

int main(void)
{
    rt_trap_hook = hyp_report;
    rt_strap_hook = hyp_report;
    rt_vstrap_hook = hyp_report;
    csr_write(stvec, (u64)rt_strap_entry);
    csr_write(vstvec, (u64)rt_vstrap_entry);

    groot = alloc_root16k();
    /* Identity G stage for devices (0..1 GiB) and RAM (2..3 GiB). */
    g_map(0, 0, 2, PTE_V | RW | PTE_U | AD);
    g_map(2 * GIB, 2 * GIB, 2, PTE_V | RWX | PTE_U | AD);
    p_rw = (u64)rt_alloc_page();
    p_ro = (u64)rt_alloc_page();
    p_nou = (u64)rt_alloc_page();
    p_xo = (u64)rt_alloc_page();
    p_a0 = (u64)rt_alloc_page();
    p_ga0 = (u64)rt_alloc_page();
    p_alt = (u64)rt_alloc_page();
    sd64(p_rw + 0x10, 0x1111111111111111UL);
    sd64(p_ro + 0x10, 0x2222222222222222UL);
    sd64(p_nou + 0x10, 0x3333333333333333UL);
    sd64(p_a0 + 0x10, 0x5555555555555555UL);
    sd64(p_ga0 + 0x10, 0x6666666666666666UL);
    sd64(p_alt + 0x10, 0xaaaaaaaaaaaaaaaaUL);
    /* Code in the execute-only page: li a0, 0x77; ret. */
    *(volatile u32 *)(p_xo + 0x0) = 0x07700513;
    *(volatile u32 *)(p_xo + 0x4) = 0x00008067;
    sd64(p_xo + 0x10, 0x4444444444444444UL);
    __asm__ volatile("fence.i" ::: "memory");
    u64 big = 0x80400000UL; /* 2 MiB aligned, in RAM above the image */
    sd64(big + 0x1238, 0xb16b16b16b16b16bUL);
    sd64(p_rw + 0xff8, 0);

    /* The VS-stage roots and the test pages, in guest physical memory. */
    vs_root_s = gpage(0);
    vs_root_u = gpage(0);
    u64 g_rw = g_next, g_ro = g_next + 0x1000, g_nou = g_next + 0x2000, g_xo = g_next + 0x3000;
    u64 g_a0 = g_next + 0x4000, g_ga0 = g_next + 0x5000, g_alt = g_next + 0x6000;
    g_next += 0x7000;
    g_map(g_rw, p_rw, 0, PTE_V | RW | PTE_U | AD);
    g_map(g_ro, p_ro, 0, PTE_V | PTE_R | PTE_U | AD);
    g_map(g_nou, p_nou, 0, PTE_V | RW | AD);
    g_map(g_xo, p_xo, 0, PTE_V | PTE_X | PTE_U | AD);
    g_map(g_a0, p_a0, 0, PTE_V | RW | PTE_U | AD);
    pte_g_a0 = g_map(g_ga0, p_ga0, 0, PTE_V | RW | PTE_U);
    g_map(g_alt, p_alt, 0, PTE_V | RW | PTE_U | AD);
    g_map(G_2M, big, 1, PTE_V | RW | PTE_U | AD);
    g_map(G_TOP, p_rw, 0, PTE_V | RW | PTE_U | AD);

    /* VS stage: identity devices and RAM, supervisor and user variants. */
    vs_map(vs_root_s, 0, 0, 2, PTE_V | RW | AD);
    vs_map(vs_root_s, 2 * GIB, 2 * GIB, 2, PTE_V | RWX | AD);
    vs_map(vs_root_u, 0, 0, 2, PTE_V | RW | PTE_U | AD);
    vs_map(vs_root_u, 2 * GIB, 2 * GIB, 2, PTE_V | RWX | PTE_U | AD);
    vs_map(vs_root_s, VA_RW, g_rw, 0, PTE_V | RW | AD);
    vs_map(vs_root_s, VA_G_RO, g_ro, 0, PTE_V | RW | AD);
    vs_map(vs_root_s, VA_G_NOU, g_nou, 0, PTE_V | RW | AD);
    vs_map(vs_root_s, VA_G_XO, g_xo, 0, PTE_V | RWX | AD);
    vs_map(vs_root_s, VA_G_NONE, G_UNMAPPED, 0, PTE_V | RWX | AD);
    vs_map(vs_root_s, VA_VS_INV, g_rw, 0, RW | AD);
    vs_map(vs_root_s, VA_VS_RO, g_rw, 0, PTE_V | PTE_R | AD);
    vs_map(vs_root_s, VA_VS_XO, g_xo, 0, PTE_V | PTE_X | AD);
    vs_map(vs_root_s, VA_VS_U, g_rw, 0, PTE_V | RW | PTE_U | AD);
    pte_vs_a0 = vs_map(vs_root_s, VA_VS_A0, g_a0, 0, PTE_V | RW);
    vs_map(vs_root_s, VA_G_A0, g_ga0, 0, PTE_V | RW | AD);
    pte_vs_fence = vs_map(vs_root_s, VA_FENCE, g_rw, 0, PTE_V | RW | AD);
    pte_g_fence = g_pte(g_rw, 0);
    vs_map(vs_root_s, VA_2M, G_2M, 1, PTE_V | RW | AD);
#if MODE != 10
    /* A guest physical address one past the G stage's width (Sv57x4 takes 59
     * bits, more than a VS PTE can name: tested with vsatp Bare below). */
    vs_map(vs_root_s, VA_WIDE, G_TOO_WIDE, 0, PTE_V | RW | AD);
#endif
    vs_map(vs_root_u, VA_RW, g_rw, 0, PTE_V | RW | PTE_U | AD);
    vs_map(vs_root_u, VA_G_NOU, g_nou, 0, PTE_V | RW | PTE_U | AD);
    vs_map(vs_root_u, VA_G_XO, g_xo, 0, PTE_V | RWX | PTE_U | AD);
    vs_map(vs_root_u, VA_VS_U, g_rw, 0, PTE_V | RW | AD); /* supervisor page */
    /* VA_WALK: the level-1 PTE points at a level-0 table whose guest page is
     * not mapped in the G stage. */
    u64 walk_table_gpa = G_UNMAPPED + 0x10000;
    *vs_pte(vs_root_s, VA_WALK, 1) = ((walk_table_gpa >> 12) << 10) | PTE_V;
    *vs_pte(vs_root_u, VA_WALK, 1) = ((walk_table_gpa >> 12) << 10) | PTE_V;

    csr_write(hgatp, hgatp_val());
    hfence_gvma_all();
    hfence_vvma_all();

    section("hgatp");
    show("hgatp", csr_read(hgatp) == hgatp_val());

    section("VS and VU through both stages");
    show("vs-load", run_vs(load, VA_RW + 0x10));
    show("vs-store", run_vs(store, VA_RW + 0x18));
    show("vs-load-2m", run_vs(load, VA_2M + 0x1238));
    show("vs-fetch-g-xonly", run_vs(fetch, VA_G_XO));
    show("vs-load-g-ro", run_vs(load, VA_G_RO + 0x10));
    show("vu-load", run_vu(load, VA_RW + 0x10));
    show("vu-store", run_vu(store, VA_RW + 0x20));
    show("vu-fetch-g-xonly", run_vu(fetch, VA_G_XO));
    show("pa-after-stores", ld64(p_rw + 0x18) ^ ld64(p_rw + 0x20));

    section("G-stage faults: 20, 21, 23 (tval = GVA, htval = GPA >> 2, GVA = 1)");
    show("g-unmapped-load", run_vs(load, VA_G_NONE + 0x10));
    show("g-unmapped-store", run_vs(store, VA_G_NONE + 0x18));
    show("g-unmapped-fetch", run_vs(fetch, VA_G_NONE + 0x20));
    show("g-ro-store", run_vs(store, VA_G_RO + 0x10));
    show("g-nou-load", run_vs(load, VA_G_NOU + 0x10));
    show("g-nou-load-vu", run_vu(load, VA_G_NOU + 0x10));
    show("g-xonly-load", run_vs(load, VA_G_XO + 0x10));
    /* vsstatus.MXR reaches only the VS stage; the HS-level MXR both. */
    show("g-xonly-load-vsmxr", run_vs(vs_mxr_load, VA_G_XO + 0x10));
    csr_set(mstatus, MSTATUS_MXR);
    show("g-xonly-load-mxr", run_vs(load, VA_G_XO + 0x10));
    csr_clear(mstatus, MSTATUS_MXR);
#if MODE != 10
    show("g-too-wide-load", run_vs(load, VA_WIDE + 0x10));
#endif
    /* The same, delegated to HS. */
    csr_write(medeleg, 1UL << 20 | 1UL << 21 | 1UL << 23);
    show("hs:g-unmapped-load", run_vs(load, VA_G_NONE + 0x28));
    show("hs:g-unmapped-fetch", run_vs(fetch, VA_G_NONE + 0x30));
    show("hs:g-ro-store", run_vs(store, VA_G_RO + 0x10));
    csr_write(medeleg, 0);

    section("VS-stage faults: 12, 13, 15 (htval = 0)");
    show("vs-invalid-load", run_vs(load, VA_VS_INV + 0x10));
    show("vs-ro-store", run_vs(store, VA_VS_RO + 0x10));
    show("vs-nx-fetch", run_vs(fetch, VA_RW));
    show("vs-xonly-load", run_vs(load, VA_VS_XO + 0x10));
    show("vs-xonly-load-vsmxr", run_vs(vs_mxr_load, VA_VS_XO + 0x10));
    show("vs-u-page", run_vs(load, VA_VS_U + 0x10));
    show("vs-u-page-vssum", run_vs(vs_sum_load, VA_VS_U + 0x10));
    /* The HS-level SUM does not apply with V=1. */
    csr_set(mstatus, MSTATUS_SUM);
    show("vs-u-page-hssum", run_vs(load, VA_VS_U + 0x10));
    csr_clear(mstatus, MSTATUS_SUM);
    show("vu-s-page", run_vu(load, VA_VS_U + 0x10));
    /* Delegated to HS, then further to VS. */
    csr_write(medeleg, 1UL << 12 | 1UL << 13 | 1UL << 15);
    show("hs:vs-invalid-load", run_vs(load, VA_VS_INV + 0x18));
    csr_write(hedeleg, 1UL << 13);
    show("vs:vs-invalid-load", run_vs(load, VA_VS_INV + 0x20));
    csr_write(hedeleg, 0);
    csr_write(medeleg, 0);

    section("VS page-table reads that fault in the G stage (htinst = 0x3000)");
    /* Reported with the original access type; htval = the PTE's guest
     * physical address >> 2. */
    show("walk-load", run_vs(load, VA_WALK + 0x10));
    show("walk-store", run_vs(store, VA_WALK + 0x18));
    show("walk-fetch", run_vs(fetch, VA_WALK + 0x20));
    show("walk-load-vu", run_vu(load, VA_WALK + 0x10));
    csr_write(medeleg, 1UL << 20 | 1UL << 21 | 1UL << 23);
    show("hs:walk-load", run_vs(load, VA_WALK + 0x28));
    csr_write(medeleg, 0);

    section("A/D: henvcfg.ADUE (VS stage), menvcfg.ADUE (G stage)");
    csr_clear(menvcfg, 1UL << 61);
    show("vs-a0-load(adue=0)", run_vs(load, VA_VS_A0 + 0x10));
    show("g-a0-load(adue=0)", run_vs(load, VA_G_A0 + 0x10));
    show("vs-pte", *pte_vs_a0 & 0xff);
    show("g-pte", *pte_g_a0 & 0xff);
    csr_set(menvcfg, 1UL << 61);
    csr_clear(henvcfg, 1UL << 61);
    hfence_gvma_all();
    show("vs-a0-load(henvcfg.adue=0)", run_vs(load, VA_VS_A0 + 0x10));
    show("g-a0-load(menvcfg.adue=1)", run_vs(load, VA_G_A0 + 0x10));
    show("g-pte", *pte_g_a0 & 0xff);
    show("g-a0-store", run_vs(store, VA_G_A0 + 0x18));
    show("g-pte", *pte_g_a0 & 0xff);
    csr_set(henvcfg, 1UL << 61);
    hfence_vvma_all();
    show("vs-a0-load(henvcfg.adue=1)", run_vs(load, VA_VS_A0 + 0x10));
    show("vs-pte", *pte_vs_a0 & 0xff);
    show("vs-a0-store", run_vs(store, VA_VS_A0 + 0x18));
    show("vs-pte", *pte_vs_a0 & 0xff);
    csr_clear(henvcfg, 1UL << 61);
    csr_clear(menvcfg, 1UL << 61);

    section("vsatp Bare, hgatp paged: VA = GPA");
    csr_write(vsatp, 0);
    show("bare-vs-load", rt_run_in_v(PRV_S, load, g_rw + 0x10));
    show("bare-vs-load-top", rt_run_in_v(PRV_S, load, G_TOP + 0x10));
    show("bare-vs-load-unmapped", rt_run_in_v(PRV_S, load, G_UNMAPPED + 0x10));
    show("bare-vs-load-too-wide", rt_run_in_v(PRV_S, load, G_TOO_WIDE + 0x10));
    show("bare-vs-load-ram", rt_run_in_v(PRV_S, load, p_ro + 0x10));

    section("hgatp Bare, vsatp paged: VS tables at host physical addresses");
    {
        u64 *root = rt_alloc_page();
        u64 *l1 = rt_alloc_page();
        u64 *l0 = rt_alloc_page();
        root[0] = (((u64)0 >> 12) << 10) | PTE_V | RW | AD;
        root[2] = ((2 * GIB >> 12) << 10) | PTE_V | RWX | AD;
        root[1] = (((u64)l1 >> 12) << 10) | PTE_V;
        l1[0] = (((u64)l0 >> 12) << 10) | PTE_V;
        l0[0] = ((p_ro >> 12) << 10) | PTE_V | RW | AD;
        csr_write(hgatp, 0);
        hfence_gvma_all();
        csr_write(vsatp, 8UL << 60 | (u64)root >> 12);
        hfence_vvma_all();
        show("gbare-vs-load", rt_run_in_v(PRV_S, load, VA + 0x10));
        show("gbare-vs-unmapped", rt_run_in_v(PRV_S, load, VA + 0x1010));
        csr_write(vsatp, 0);
        csr_write(hgatp, hgatp_val());
        hfence_gvma_all();
        hfence_vvma_all();
    }

    section("HLV/HLVX/HSV from M and HS: hstatus.SPVP, MXR");
    csr_write(vsatp, vsatp_for(vs_root_s));
    hfence_vvma_all();
    /* HLV faults taken into M come from V=0: GVA not compared (see top). */
    hyp_hide = HIDE_GVA;
    csr_set(hstatus, HSTATUS_SPVP);
    show("m:hlv-spvp1", hlv_d_or(VA_RW + 0x10, FAULT));
    show("m:hlv-spvp1-u-page", hlv_d_or(VA_VS_U + 0x10, FAULT));
    show("m:hlv-g-unmapped", hlv_d_or(VA_G_NONE + 0x10, FAULT));
    show("m:hlv-walk", hlv_d_or(VA_WALK + 0x10, FAULT));
    csr_clear(hstatus, HSTATUS_SPVP);
    show("m:hlv-spvp0", hlv_d_or(VA_RW + 0x10, FAULT));
    show("m:hlv-spvp0-u-page", hlv_d_or(VA_VS_U + 0x10, FAULT));
    csr_set(hstatus, HSTATUS_SPVP);
    hsv_d(VA_RW + 0x28, 0x4857564857564857UL);
    show("m:hsv-then-load", ld64(p_rw + 0x28));
    hsv_d(VA_G_RO + 0x28, 1);
    /* HLVX needs X in both stages, not R. A failing HLVX raises a load page
     * fault (13) or load guest-page fault (21); QEMU 10 raises instruction
     * page faults instead, so only HLVX that succeeds is exercised. */
    show("m:hlvx-wu-xonly", hlvx_wu_or(VA_VS_XO, FAULT));
    show("m:hlvx-hu-xonly", hlvx_hu_or(VA_VS_XO + 4, FAULT));
    show("m:hlvx-wu-g-xonly", hlvx_wu_or(VA_G_XO, FAULT));
    show("m:hlv-wu-xonly", hlv_wu_or(VA_VS_XO, FAULT));
    /* vsstatus.MXR opens the VS stage only; mstatus.MXR both stages. */
    csr_set(vsstatus, MSTATUS_MXR);
    show("m:hlv-xonly-vsmxr", hlv_d_or(VA_VS_XO + 0x10, FAULT));
    csr_clear(vsstatus, MSTATUS_MXR);
    csr_set(mstatus, MSTATUS_MXR);
    show("m:hlv-xonly-mxr", hlv_d_or(VA_VS_XO + 0x10, FAULT));
    csr_clear(mstatus, MSTATUS_MXR);
    hyp_hide = 0;
    show("hs:hlv-spvp1", rt_run_in(PRV_S, hs_hlv, VA_RW + 0x10));
    csr_write(medeleg, 1UL << 13 | 1UL << 21);
    show("hs:hlv-u-page", rt_run_in(PRV_S, hs_hlv, VA_VS_U + 0x10));
    show("hs:hlv-g-nou", rt_run_in(PRV_S, hs_hlv, VA_G_NOU + 0x10));
    csr_write(medeleg, 0);
    csr_clear(hstatus, HSTATUS_SPVP);

    section("MPRV with MPV = 1: M-mode loads translated as VS/VU");
    hyp_hide = HIDE_GVA; /* traps from V=0 into M: see top */
    {
        u64 ms = csr_read(mstatus);
        csr_clear(mstatus, MSTATUS_MPP);
        csr_set(mstatus, MSTATUS_MPV | PRV_S << 11 | MSTATUS_MPRV);
        u64 a = load(VA_RW + 0x10);
        csr_write(mstatus, ms);
        csr_clear(mstatus, MSTATUS_MPP);
        csr_set(mstatus, MSTATUS_MPV | PRV_S << 11 | MSTATUS_MPRV);
        u64 b = load(VA_G_NONE + 0x10);
        csr_write(mstatus, ms);
        csr_clear(mstatus, MSTATUS_MPP);
        csr_set(mstatus, MSTATUS_MPV | PRV_U << 11 | MSTATUS_MPRV);
        u64 c = load(VA_RW + 0x10); /* VU access to a supervisor page */
        csr_write(mstatus, ms);
        show("mprv-vs", a);
        show("mprv-vs-g-unmapped", b);
        show("mprv-vu-s-page", c);
    }
    hyp_hide = 0;

    section("fences: the new mapping is used after HFENCE.GVMA / HFENCE.VVMA / VS sfence.vma");
    show("before", run_vs(load, VA_FENCE + 0x10));
    /* G stage: the guest page of VA_FENCE now maps p_alt. */
    *pte_g_fence = ((p_alt >> 12) << 10) | PTE_V | RW | PTE_U | AD;
    hfence_gvma_all();
    show("after-hfence.gvma", run_vs(load, VA_FENCE + 0x10));
    *pte_g_fence = ((p_rw >> 12) << 10) | PTE_V | RW | PTE_U | AD;
    __asm__ volatile(H_INSN("hfence.gvma %0, %1") ::"r"(g_rw >> 2), "r"(VMID) : "memory");
    show("after-hfence.gvma-gpa-vmid", run_vs(load, VA_FENCE + 0x10));
    /* VS stage: VA_FENCE now maps the read-only test page. */
    *pte_vs_fence = ((g_ro >> 12) << 10) | PTE_V | RW | AD;
    hfence_vvma_all();
    show("after-hfence.vvma", run_vs(load, VA_FENCE + 0x10));
    *pte_vs_fence = ((g_rw >> 12) << 10) | PTE_V | RW | AD;
    __asm__ volatile(H_INSN("hfence.vvma %0, zero") ::"r"(VA_FENCE) : "memory");
    show("after-hfence.vvma-va", run_vs(load, VA_FENCE + 0x10));
    *pte_vs_fence = ((g_ro >> 12) << 10) | PTE_V | RW | AD;
    show("after-vs-sfence.vma", run_vs(vs_sfence_load, VA_FENCE + 0x10));
    *pte_vs_fence = ((g_rw >> 12) << 10) | PTE_V | RW | AD;
    hfence_vvma_all();
    /* HFENCE from HS. */
    *pte_g_fence = ((p_alt >> 12) << 10) | PTE_V | RW | PTE_U | AD;
    rt_run_in(PRV_S, hs_fence, 0);
    show("after-hs-hfence.gvma", run_vs(load, VA_FENCE + 0x10));
    *pte_g_fence = ((p_rw >> 12) << 10) | PTE_V | RW | PTE_U | AD;
    hfence_gvma_all();
    show("restored", run_vs(load, VA_FENCE + 0x10));
    return 0;
}
