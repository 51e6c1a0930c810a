/* Interrupts from the ACLINT/CLINT: machine timer through mtimecmp, machine
 * software interrupt through msip, their priority, WFI wake-up with and
 * without global enable, interrupts taken from lower modes, and mstatus.TW
 * (Priv spec 3.1.9, 3.2.1, 3.3.3). Only which interrupts arrive and in what
 * order is printed, never a time. */
#include "common.h"

static volatile u64 taken;
static volatile u64 order[4];

static volatile u64 *mtimecmp = (volatile u64 *)CLINT_MTIMECMP;
static volatile u64 *mtime = (volatile u64 *)CLINT_MTIME;
static volatile u32 *msip = (volatile u32 *)CLINT_MSIP;

static enum rt_trap_action hook(struct rt_trap *t)
{
    /* Where an asynchronous interrupt lands (mepc) depends on timing, so only
     * the cause and the interrupted privilege are printed. */
    rt_puts("T cause=");
    rt_puthex(t->cause);
    rt_puts(t->from == PRV_M ? " from=M\n" : t->from == PRV_S ? " from=S\n" : " from=U\n");
    if (t->cause == (1UL << 63 | 7)) {
        *mtimecmp = ~0UL; /* deassert MTIP */
        if (taken < 4)
            order[taken] = 7;
        taken++;
        return RT_RETURN;
    }
    if (t->cause == (1UL << 63 | 3)) {
        *msip = 0;
        if (taken < 4)
            order[taken] = 3;
        taken++;
        return RT_RETURN;
    }
    if (t->cause >> 63) {
        csr_clear(mie, 1UL << (t->cause & 63));
        return RT_RETURN;
    }
    return RT_SKIP;
}

static void arm_timer(u64 delta)
{
    *mtimecmp = *mtime + delta;
}

static u64 u_spin(u64 arg)
{
    /* M-mode interrupts are taken in U even with mstatus.MIE = 0. */
    while (taken == arg)
        ;
    return taken;
}

static u64 s_wfi(u64 arg)
{
    /* Something must be pending-and-enabled (in mie/sie) for this to return:
     * wfi may also return early, never later (Priv 3.3.3). */
    if (arg != 5)
        __asm__ volatile("wfi" ::: "memory");
    return arg;
}

int main(void)
{
    rt_trap_hook = hook;
    *mtimecmp = ~0UL;

    section("timer interrupt via wfi");
    taken = 0;
    csr_set(mie, MIP_MTIP);
    csr_set(mstatus, MSTATUS_MIE);
    arm_timer(1000);
    while (!taken)
        __asm__ volatile("wfi");
    csr_clear(mstatus, MSTATUS_MIE);
    show("taken", taken);

    section("wfi wakes with mstatus.MIE = 0, no trap");
    taken = 0;
    arm_timer(1000);
    while (!(csr_read(mip) & MIP_MTIP))
        __asm__ volatile("wfi");
    show("mip.MTIP", (csr_read(mip) >> 7) & 1);
    show("taken", taken);
    *mtimecmp = ~0UL;
    show("mip.MTIP-after-rearm", (csr_read(mip) >> 7) & 1);

    section("msip reflects in mip.MSIP; priority MSI over MTI");
    *msip = 1;
    show("mip.MSIP", (csr_read(mip) >> 3) & 1);
    arm_timer(0);
    while (!(csr_read(mip) & MIP_MTIP))
        ;
    csr_set(mie, MIP_MSIP | MIP_MTIP);
    taken = 0;
    csr_set(mstatus, MSTATUS_MIE);
    while (taken < 2)
        ;
    csr_clear(mstatus, MSTATUS_MIE);
    show("first", order[0]);
    show("second", order[1]);

    section("timer taken from U-mode");
    taken = 0;
    arm_timer(2000);
    show("ret", rt_run_in(PRV_U, u_spin, 0));

    section("wfi in S with mstatus.TW = 1 is illegal");
    csr_clear(mie, MIP_MTIP | MIP_MSIP);
    csr_set(mstatus, MSTATUS_TW);
    rt_run_in(PRV_S, s_wfi, 0);
    csr_clear(mstatus, MSTATUS_TW);
    section("M software interrupt pending on entry to S: taken at once");
    csr_set(mie, MIP_MSIP);
    *msip = 1;
    taken = 0;
    show("ret", rt_run_in(PRV_S, s_wfi, 5)); /* the wfi runs with nothing pending */
    show("taken", taken);
    csr_clear(mie, MIP_MSIP);

    section("wfi in S wakes for a pending S interrupt even with SIE = 0");
    csr_write(mideleg, MIP_SSIP);
    csr_set(mie, MIP_SSIP);
    csr_set(mip, MIP_SSIP);
    show("ret", rt_run_in(PRV_S, s_wfi, 6));
    csr_clear(mip, MIP_SSIP);
    csr_clear(mie, MIP_SSIP);
    csr_write(mideleg, 0);
    return 0;
}
