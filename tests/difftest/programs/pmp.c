/* Physical memory protection (Priv spec 3.7): TOR, NA4 and NAPOT matching,
 * priority, partial matches, R/W/X for U and S, M-mode exemption unless
 * locked, and locked-entry write protection. The runtime keeps entry 15 as a
 * lowest-priority allow-all entry. */
#include "common.h"

#define PMP_R 0x01UL
#define PMP_W 0x02UL
#define PMP_X 0x04UL
#define PMP_TOR 0x08UL
#define PMP_NA4 0x10UL
#define PMP_NAPOT 0x18UL
#define PMP_L 0x80UL

static u64 page;

/* QEMU 10 reports a fetch denied right after mret as a fault of the mret
 * itself (mepc = the mret, MPP = M, stale mtval); the Priv spec attributes it
 * to the first lower-mode fetch. Only the cause is compared there. */
static int brief;

static enum rt_trap_action hook(struct rt_trap *t)
{
    if (brief) {
        rt_puts("T cause=");
        rt_puthex(t->cause);
        rt_puts(" (first fetch after mret)\n");
        return RT_LEAVE;
    }
    rt_print_trap(t);
    if (t->cause == 1 && t->from != PRV_M)
        return RT_LEAVE; /* no instruction to return to in the lower mode */
    if (t->cause == 1) {
        t->epc = t->regs[1];
        return RT_RETURN;
    }
    return RT_SKIP;
}

static u64 napot(u64 base, u64 size)
{
    return (base >> 2) | ((size >> 3) - 1);
}

static void set_cfg0(u64 cfg)
{
    csr_write(pmpcfg0, cfg);
    __asm__ volatile("sfence.vma" ::: "memory");
}

static u64 load(u64 a)
{
    return ld64_or(a, 0xbad);
}

static u64 load32(u64 a)
{
    u64 v = 0xbad;
    __asm__ volatile("lw %0, 0(%1)" : "+r"(v) : "r"(a) : "memory");
    return v;
}

static u64 store(u64 a)
{
    sd64(a, a);
    return load(a);
}

static u64 exec(u64 a)
{
    jump_to(a);
    return 0xe1ec;
}

int main(void)
{
    rt_trap_hook = hook;
    page = (u64)rt_alloc_page();
    for (u64 i = 0; i < 4096; i += 8)
        sd64(page + i, 0x5a5a000000000000UL | i);
    /* A `ret` at page + 0x800 for execute tests. */
    *(volatile u32 *)(page + 0x800) = 0x00008067;
    __asm__ volatile("fence.i" ::: "memory");

    section("read-back");
    csr_write(pmpaddr0, napot(page, 4096));
    show("pmpaddr0", csr_read(pmpaddr0) == napot(page, 4096));
    csr_write(pmpcfg0, PMP_NAPOT | PMP_W); /* R = 0, W = 1 is reserved */
    show("pmpcfg0-w-only", csr_read(pmpcfg0) & 0xff);
    csr_write(pmpcfg0, 0);

    section("NAPOT 4K read-only, U-mode");
    set_cfg0(PMP_NAPOT | PMP_R);
    show("u-load", rt_run_in(PRV_U, load, page + 0x10));
    show("u-store", rt_run_in(PRV_U, store, page + 0x10));
    show("s-store", rt_run_in(PRV_S, store, page + 0x18));
    show("u-exec", rt_run_in(PRV_U, exec, page + 0x800));
    show("m-store-unlocked", store(page + 0x20) == page + 0x20);

    section("NAPOT 4K RX: execute allowed");
    set_cfg0(PMP_NAPOT | PMP_R | PMP_X);
    show("u-exec", rt_run_in(PRV_U, exec, page + 0x800));

    section("TOR [page, page+0x800) RW over NAPOT page no-access");
    csr_write(pmpaddr0, page >> 2);
    csr_write(pmpaddr1, (page + 0x800) >> 2);
    csr_write(pmpaddr2, napot(page, 4096));
    set_cfg0((PMP_TOR | PMP_R | PMP_W) << 8 | (PMP_NAPOT << 16));
    show("u-store-in-tor", rt_run_in(PRV_U, store, page + 0x100));
    show("u-store-above-tor", rt_run_in(PRV_U, store, page + 0x900));
    show("u-load-below-tor", rt_run_in(PRV_U, load, page - 8) == 0xbad);
    /* An access that straddles the TOR top only partly matches entry 1:
     * it fails (Priv 3.7.1.3). */
    show("u-load-straddle", rt_run_in(PRV_U, load, page + 0x7fc));

    section("NA4 no-access word in an allow-all range");
    csr_write(pmpaddr0, (page + 0x40) >> 2);
    set_cfg0(PMP_NA4);
    show("u-load32-na4", rt_run_in(PRV_U, load32, page + 0x40));
    show("u-load32-next", rt_run_in(PRV_U, load32, page + 0x44));
    show("u-load64-straddle", rt_run_in(PRV_U, load, page + 0x3c));

    section("priority: lower-numbered entry wins");
    csr_write(pmpaddr0, napot(page, 4096));
    csr_write(pmpaddr1, napot(page, 4096));
    set_cfg0((PMP_NAPOT | PMP_R | PMP_W) << 8 | PMP_NAPOT | PMP_R);
    show("u-store-entry0-ro", rt_run_in(PRV_U, store, page + 0x28));
    set_cfg0((PMP_NAPOT | PMP_R) << 8 | PMP_NAPOT | PMP_R | PMP_W);
    show("u-store-entry0-rw", rt_run_in(PRV_U, store, page + 0x28));

    section("no matching entry: S/U denied");
    csr_write(pmpcfg2, 0);
    set_cfg0(0);
    brief = 1;
    rt_run_in(PRV_U, load, page);
    brief = 0;
    csr_write(pmpaddr15, ~0UL);
    csr_write(pmpcfg2, 0x1fUL << 56);

    section("locked entries bind M-mode and ignore writes");
    csr_write(pmpaddr0, page >> 2);
    csr_write(pmpaddr1, (page + 0x800) >> 2);
    set_cfg0((PMP_TOR | PMP_R | PMP_L) << 8);
    show("m-load-locked-r", load(page + 0x30) == (0x5a5a000000000000UL | 0x30));
    show("m-store-locked-r", store(page + 0x30));
    csr_write(pmpaddr1, 0);
    show("pmpaddr1-unchanged", csr_read(pmpaddr1) == (page + 0x800) >> 2);
    csr_write(pmpaddr0, 0); /* TOR base of a locked TOR entry is locked too */
    show("pmpaddr0-unchanged", csr_read(pmpaddr0) == page >> 2);
    csr_write(pmpcfg0, 0);
    show("pmpcfg0-entry1", (csr_read(pmpcfg0) >> 8) & 0xff);
    show("m-store-outside", store(page + 0x900) == page + 0x900);
    return 0;
}
