/* Sv39/Sv48/Sv57 translation (Priv spec 4.3-4.5), built with MODE = 8, 9 or
 * 10: leaf sizes from 4 KiB up, U/SUM/MXR, permission and reserved-encoding
 * faults, A/D handling under Svadu with menvcfg.ADUE = 0 and 1, MPRV, satp
 * WARL, and sfence.vma: only what must hold *after* a fence is checked, since
 * a stale translation may or may not be used before it. */
#include "common.h"

#ifndef MODE
#define MODE 8
#endif
#define LEVELS (MODE - 5)

#define PTE_V 0x1UL
#define PTE_R 0x2UL
#define PTE_W 0x4UL
#define PTE_X 0x8UL
#define PTE_U 0x10UL
#define PTE_G 0x20UL
#define PTE_A 0x40UL
#define PTE_D 0x80UL
#define RWX (PTE_R | PTE_W | PTE_X)
#define AD (PTE_A | PTE_D)

#define FAULT 0xfa17fa17fa17fa17UL
#define GIB (1UL << 30)

static u64 *root_s, *root_u, *root_b;
static u64 p1, p2, p3;

static u64 *walk(u64 *root, u64 va, int level)
{
    u64 *t = root;
    for (int l = LEVELS - 1; l > level; l--) {
        u64 idx = (va >> (12 + 9 * l)) & 511;
        if (!(t[idx] & PTE_V)) {
            u64 *n = rt_alloc_page();
            t[idx] = (((u64)n >> 12) << 10) | PTE_V;
        }
        t = (u64 *)((t[idx] >> 10) << 12);
    }
    return &t[(va >> (12 + 9 * level)) & 511];
}

static u64 *map(u64 *root, u64 va, u64 pa, int level, u64 flags)
{
    u64 *pte = walk(root, va, level);
    *pte = ((pa >> 12) << 10) | flags;
    return pte;
}

static u64 satp_for(u64 *root, u64 asid)
{
    return ((u64)MODE << 60) | (asid << 44) | ((u64)root >> 12);
}

static u64 run_s(u64 *root, u64 asid, u64 (*fn)(u64), u64 arg)
{
    csr_write(satp, satp_for(root, asid));
    __asm__ volatile("sfence.vma" ::: "memory");
    u64 r = rt_run_in(PRV_S, fn, arg);
    csr_write(satp, 0);
    return r;
}

static u64 run_u(u64 (*fn)(u64), u64 arg)
{
    csr_write(satp, satp_for(root_u, 0));
    __asm__ volatile("sfence.vma" ::: "memory");
    u64 r = rt_run_in(PRV_U, fn, arg);
    csr_write(satp, 0);
    return r;
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

static u64 fetch(u64 va)
{
    jump_to(va);
    return 1;
}

/* Test virtual addresses: identity gigapages cover 0..1G (devices) and
 * 2G..3G (RAM); everything under test lives elsewhere. */
#define VA_4K 0x40000000UL
#define VA_2M 0x40200000UL
#define VA_1G 0xc0000000UL
#define VA_MISALIGNED_1G 0x100000000UL
#define VA_TERA 0x8000000000UL /* Sv48+: a 512 GiB leaf */
#if MODE == 8
#define VA_NONCANON 0x0000004000000000UL
#elif MODE == 9
#define VA_NONCANON 0x0000800000000000UL
#else
#define VA_NONCANON 0x0100000000000000UL
#endif

static u64 sfence_case(u64 arg)
{
    /* Inside S: the PTE for VA_4K+0x3000 points at p1; use it, repoint it at
     * p2, fence the way `arg` says, and read again: the fresh value must show. */
    u64 *pte = walk(root_s, VA_4K + 0x3000, 0);
    u64 before = load(VA_4K + 0x3010);
    *pte = ((p2 >> 12) << 10) | PTE_V | PTE_R | PTE_W | AD;
    switch (arg) {
    case 0:
        __asm__ volatile("sfence.vma" ::: "memory");
        break;
    case 1:
        __asm__ volatile("sfence.vma %0, zero" ::"r"(VA_4K + 0x3000) : "memory");
        break;
    case 2:
        __asm__ volatile("sfence.vma %0, %1" ::"r"(VA_4K + 0x3abc), "r"(7UL) : "memory");
        break;
    default:
        __asm__ volatile("sfence.vma zero, %0" ::"r"(7UL) : "memory");
        break;
    }
    u64 after = load(VA_4K + 0x3010);
    *pte = ((p1 >> 12) << 10) | PTE_V | PTE_R | PTE_W | AD;
    __asm__ volatile("sfence.vma" ::: "memory");
    return (before == ld64(p1 + 0x10)) * 2 + (after == ld64(p2 + 0x10));
}

static u64 asid_switch(u64 arg)
{
    /* Two roots under ASIDs 1 and 2 map VA_4K differently; no table changes,
     * so each satp write must select its own mapping (Priv 4.1.11). */
    (void)arg;
    u64 a = load(VA_4K + 0x10);
    csr_write(satp, satp_for(root_b, 2));
    u64 b = load(VA_4K + 0x10);
    csr_write(satp, satp_for(root_s, 1));
    u64 c = load(VA_4K + 0x10);
    return (a == ld64(p1 + 0x10)) << 2 | (b == ld64(p2 + 0x10)) << 1 | (c == a);
}

static u64 sum_load(u64 va)
{
    csr_set(sstatus, MSTATUS_SUM);
    u64 v = load(va);
    csr_clear(sstatus, MSTATUS_SUM);
    return v;
}

static u64 mxr_load(u64 va)
{
    csr_set(sstatus, MSTATUS_MXR);
    u64 v = load(va);
    csr_clear(sstatus, MSTATUS_MXR);
    return v;
}

static void trap_quiet_values(const char *name, u64 v)
{
    show(name, v);
}

int main(void)
{
    root_s = rt_alloc_page();
    root_u = rt_alloc_page();
    root_b = rt_alloc_page();
    p1 = (u64)rt_alloc_page();
    p2 = (u64)rt_alloc_page();
    p3 = (u64)rt_alloc_page();
    sd64(p1 + 0x10, 0x1111111111111111UL);
    sd64(p2 + 0x10, 0x2222222222222222UL);
    sd64(p3 + 0x10, 0x3333333333333333UL);
    /* 2 MiB- and 1 GiB-aligned physical targets inside RAM, above the image. */
    u64 big = 0x80400000UL;
    sd64(big + 0x1238, 0xb16b16b16b16b16bUL);

    /* Identity maps: devices and RAM (S-only and U variants). */
    map(root_s, 0, 0, 2, PTE_V | PTE_R | PTE_W | AD);
    map(root_s, 2 * GIB, 2 * GIB, 2, PTE_V | RWX | AD);
    map(root_u, 0, 0, 2, PTE_V | PTE_R | PTE_W | AD);
    map(root_u, 2 * GIB, 2 * GIB, 2, PTE_V | RWX | PTE_U | AD);
    map(root_b, 2 * GIB, 2 * GIB, 2, PTE_V | RWX | AD);

    /* S-mode test mappings. */
    map(root_s, VA_4K + 0x0000, p1, 0, PTE_V | PTE_R | PTE_W | AD);
    map(root_s, VA_4K + 0x1000, p2, 0, PTE_V | PTE_R | AD);              /* read-only */
    map(root_s, VA_4K + 0x2000, p3, 0, PTE_V | PTE_R | PTE_W | PTE_U | AD); /* user */
    map(root_s, VA_4K + 0x3000, p1, 0, PTE_V | PTE_R | PTE_W | AD);      /* sfence */
    map(root_s, VA_4K + 0x4000, p1, 0, PTE_V | PTE_X | AD);              /* execute-only */
    map(root_s, VA_4K + 0x5000, p1, 0, PTE_R | PTE_W | AD);              /* V = 0 */
    map(root_s, VA_4K + 0x6000, p1, 0, PTE_V | PTE_W | AD);              /* W without R */
    u64 *pte_a = map(root_s, VA_4K + 0x7000, p2, 0, PTE_V | PTE_R | PTE_W); /* A = D = 0 */
    u64 *pte_d = map(root_s, VA_4K + 0x8000, p3, 0, PTE_V | PTE_R | PTE_W | PTE_A);
    /* A pointer (R = W = X = 0) at the last level is a fault (Priv 4.3.2 step 4). */
    map(root_s, VA_4K + 0x9000, p1, 0, PTE_V);
    map(root_s, VA_2M, big, 1, PTE_V | PTE_R | PTE_W | AD);
    map(root_s, VA_1G, 2 * GIB, 2, PTE_V | PTE_R | AD);
    map(root_s, VA_MISALIGNED_1G, big, 2, PTE_V | PTE_R | AD); /* PPN not 1G aligned */
#if LEVELS > 3
    map(root_s, VA_TERA, 0, 3, PTE_V | PTE_R | AD);
#endif
    map(root_b, VA_4K, p2, 0, PTE_V | PTE_R | AD);
    map(root_b, VA_4K + 0x1000, p2, 0, PTE_V | PTE_R | AD);
    /* U-mode mappings. */
    map(root_u, VA_4K, p1, 0, PTE_V | PTE_R | PTE_U | AD);
    map(root_u, VA_4K + 0x1000, p2, 0, PTE_V | PTE_R | AD); /* supervisor page */

    section("satp WARL");
    csr_write(satp, satp_for(root_s, 0xffff));
    show("satp-asid-all-ones", csr_read(satp) == satp_for(root_s, 0xffff));
    show("asid-bits", (csr_read(satp) >> 44) & 0xffff);
    csr_write(satp, (7UL << 60) | ((u64)root_s >> 12)); /* reserved mode: no effect */
    show("satp-after-mode7-is-unchanged", csr_read(satp) == satp_for(root_s, 0xffff));
    csr_write(satp, 0);
    show("satp-bare", csr_read(satp));

    section("leaf sizes (S-mode loads)");
    show("4k", run_s(root_s, 0, load, VA_4K + 0x10));
    show("4k-ro-read", run_s(root_s, 0, load, VA_4K + 0x1010));
    show("2m", run_s(root_s, 0, load, VA_2M + 0x1238));
    show("1g", run_s(root_s, 0, load, VA_1G + 0x400000 + 0x1238));
#if LEVELS > 3
    show("512g", run_s(root_s, 0, load, VA_TERA + 2 * GIB + 0x400000 + 0x1238));
#endif

    section("faults: misaligned superpage, non-canonical, invalid, reserved, pointer leaf");
    trap_quiet_values("misaligned-1g", run_s(root_s, 0, load, VA_MISALIGNED_1G + 0x10));
    trap_quiet_values("noncanonical", run_s(root_s, 0, load, VA_NONCANON + 0x10));
    trap_quiet_values("unmapped", run_s(root_s, 0, load, VA_4K + 0xa010));
    trap_quiet_values("v0", run_s(root_s, 0, load, VA_4K + 0x5010));
    trap_quiet_values("w-without-r", run_s(root_s, 0, load, VA_4K + 0x6010));
    trap_quiet_values("pointer-at-leaf-level", run_s(root_s, 0, load, VA_4K + 0x9010));
    trap_quiet_values("store-ro", run_s(root_s, 0, store, VA_4K + 0x1010));
    trap_quiet_values("fetch-nx", run_s(root_s, 0, fetch, VA_4K + 0x10));
    trap_quiet_values("store-1g-ro", run_s(root_s, 0, store, VA_1G + 0x400000 + 0x1238));

    section("U bit, SUM, MXR");
    trap_quiet_values("s-load-u-page", run_s(root_s, 0, load, VA_4K + 0x2010));
    trap_quiet_values("s-load-u-page-sum", run_s(root_s, 0, sum_load, VA_4K + 0x2010));
    trap_quiet_values("s-fetch-u-page", run_s(root_s, 0, fetch, VA_4K + 0x2010));
    trap_quiet_values("s-load-xonly", run_s(root_s, 0, load, VA_4K + 0x4010));
    trap_quiet_values("s-load-xonly-mxr", run_s(root_s, 0, mxr_load, VA_4K + 0x4010));
    trap_quiet_values("u-load-u-page", run_u(load, VA_4K + 0x10));
    trap_quiet_values("u-load-s-page", run_u(load, VA_4K + 0x1010));

    section("A/D with menvcfg.ADUE = 0 (faults)");
    csr_clear(menvcfg, 1UL << 61);
    trap_quiet_values("load-a0", run_s(root_s, 0, load, VA_4K + 0x7010));
    trap_quiet_values("store-d0", run_s(root_s, 0, store, VA_4K + 0x8010));
    show("pte-a", *pte_a & 0xff);
    show("pte-d", *pte_d & 0xff);

    section("A/D with menvcfg.ADUE = 1 (Svadu: hardware update)");
    csr_set(menvcfg, 1UL << 61);
    show("menvcfg.ADUE", (csr_read(menvcfg) >> 61) & 1);
    trap_quiet_values("load-a0", run_s(root_s, 0, load, VA_4K + 0x7010));
    show("pte-a", *pte_a & 0xff);
    trap_quiet_values("store-d0", run_s(root_s, 0, store, VA_4K + 0x8010));
    show("pte-d", *pte_d & 0xff);
    csr_clear(menvcfg, 1UL << 61);

    section("MPRV: M-mode loads translated as S");
    csr_write(satp, satp_for(root_s, 0));
    __asm__ volatile("sfence.vma" ::: "memory");
    csr_clear(mstatus, MSTATUS_MPP);
    csr_set(mstatus, PRV_S << 11 | MSTATUS_MPRV);
    u64 v = load(VA_4K + 0x10);
    u64 f = load(VA_4K + 0x2010); /* U page, SUM = 0: fault */
    csr_clear(mstatus, MSTATUS_MPRV);
    csr_write(satp, 0);
    show("mprv-4k", v);
    show("mprv-u-page", f);

    section("sfence.vma: fresh translation after the fence");
    for (u64 k = 0; k < 4; k++)
        show("sfence-case", run_s(root_s, 7, sfence_case, k));
    section("ASID switch");
    show("asid-switch", run_s(root_s, 1, asid_switch, 0));
    return 0;
}
