/* Console, exit, trap dispatch and helpers for the bare-metal test programs. */
#include "rt.h"

#define UART0 0x10000000UL
#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define SIFIVE_TEST 0x100000UL

enum rt_trap_action (*rt_trap_hook)(struct rt_trap *t);
enum rt_trap_action (*rt_strap_hook)(struct rt_trap *t);
enum rt_trap_action (*rt_vstrap_hook)(struct rt_trap *t);
u64 rt_trap_count;
u64 rt_has_h;
static char *rt_next_page = __free_start;

void rt_putc(char c)
{
    volatile u8 *uart = (volatile u8 *)UART0;
    while (!(uart[UART_LSR] & UART_LSR_THRE))
        ;
    uart[UART_THR] = (u8)c;
}

void rt_puts(const char *s)
{
    while (*s)
        rt_putc(*s++);
}

void rt_puthex(u64 v)
{
    for (int i = 60; i >= 0; i -= 4)
        rt_putc("0123456789abcdef"[(v >> i) & 0xf]);
}

void rt_putdec(u64 v)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        rt_putc(buf[--n]);
}

void rt_kv(const char *prefix, const char *name, u64 v)
{
    rt_puts(prefix);
    rt_puts(name);
    rt_putc('=');
    rt_puthex(v);
    rt_putc('\n');
}

__attribute__((noreturn)) void rt_exit(u64 code)
{
    volatile u32 *test = (volatile u32 *)SIFIVE_TEST;
    *test = code ? (u32)((code << 16) | 0x3333) : 0x5555;
    for (;;)
        __asm__ volatile("wfi");
}

u64 rt_insn_len(u64 addr)
{
    u32 lo = *(volatile unsigned short *)addr;
    return (lo & 3) == 3 ? 4 : 2;
}

void rt_memset(void *p, int c, u64 n)
{
    volatile u8 *b = p;
    for (u64 i = 0; i < n; i++)
        b[i] = (u8)c;
}

void *rt_alloc_page(void)
{
    if (rt_next_page + 4096 > __free_end) {
        rt_puts("FATAL out of pages\n");
        rt_exit(3);
    }
    void *p = rt_next_page;
    rt_next_page += 4096;
    rt_memset(p, 0, 4096);
    return p;
}

static const char *prv_name(u64 p, u64 virt)
{
    switch (p) {
    case PRV_U:
        return virt ? "VU" : "U";
    case PRV_S:
        return virt ? "VS" : "S";
    case PRV_M:
        return "M";
    }
    return "?";
}

void rt_print_trap(const struct rt_trap *t)
{
    rt_puts("T cause=");
    rt_puthex(t->cause);
    rt_puts(" tval=");
    rt_puthex(t->tval);
    rt_puts(" epc=");
    rt_puthex(t->epc);
    rt_puts(" from=");
    rt_puts(prv_name(t->from, t->virt));
    rt_putc('\n');
}

static int is_fetch_fault(u64 cause)
{
    /* Instruction address misaligned, access fault, page fault: there is no
     * instruction to skip, so return to the caller (tests reach bad addresses
     * through `jalr ra, ...`). */
    return cause == 0 || cause == 1 || cause == 12;
}

static enum rt_trap_action default_action(struct rt_trap *t, u64 ie_csr_is_m)
{
    rt_print_trap(t);
    if (t->cause >> 63) {
        /* Mask the interrupt so a level that stays pending cannot loop. */
        u64 bit = 1UL << (t->cause & 63);
        if (ie_csr_is_m)
            csr_clear(mie, bit);
        else
            csr_clear(sie, bit);
        return RT_RETURN;
    }
    if (is_fetch_fault(t->cause)) {
        t->epc = t->regs[1];
        return RT_RETURN;
    }
    return RT_SKIP;
}

/* The lower mode's exit ecall: from U/VU (8), HS (9) or VS (10), of which a
 * handler at `level` can receive those from below it. */
static int is_exit_ecall(const struct rt_trap *t)
{
    if (t->regs[17] != RT_EXIT_MAGIC)
        return 0;
    switch (t->level) {
    case RT_LEVEL_M:
        return t->cause >= 8 && t->cause <= 10;
    case RT_LEVEL_HS:
        return t->cause == 8 || t->cause == 10;
    default:
        return t->cause == 8;
    }
}

/* The exit ecall, made from a supervisor-level handler on behalf of the lower
 * mode (delegated exit ecall, or RT_LEAVE): M resumes the caller of rt_run_in
 * with `a0`. */
__attribute__((noreturn)) static void leave_to_m(u64 ret)
{
    register u64 a0 __asm__("a0") = ret;
    register u64 a7 __asm__("a7") = RT_EXIT_MAGIC;
    __asm__ volatile("ecall" ::"r"(a0), "r"(a7) : "memory");
    __builtin_unreachable();
}

/* Called by rt_trap_entry; returns 1 to resume the M-mode caller of rt_run_in. */
u64 rt_trap_c(u64 *regs)
{
    struct rt_trap t = {0};
    t.cause = csr_read(mcause);
    t.tval = csr_read(mtval);
    t.epc = csr_read(mepc);
    t.mstatus = csr_read(mstatus);
    t.from = (t.mstatus >> 11) & 3;
    t.regs = regs;
    t.level = RT_LEVEL_M;
    if (rt_has_h) {
        t.virt = (t.mstatus & MSTATUS_MPV) ? 1 : 0;
        t.gva = (t.mstatus & MSTATUS_GVA) ? 1 : 0;
        t.tval2 = csr_read(mtval2);
        t.tinst = csr_read(mtinst);
    }
    rt_trap_count++;
    if (is_exit_ecall(&t))
        return 1;
    enum rt_trap_action a = rt_trap_hook ? rt_trap_hook(&t) : default_action(&t, 1);
    if (a == RT_LEAVE)
        return 1;
    if (a == RT_SKIP && !(t.cause >> 63))
        t.epc += rt_insn_len(t.epc);
    csr_write(mepc, t.epc);
    return 0;
}

/* Called by rt_strap_entry (HS-mode, or S-mode without H). */
void rt_strap_c(u64 *regs)
{
    struct rt_trap t = {0};
    t.cause = csr_read(scause);
    t.tval = csr_read(stval);
    t.epc = csr_read(sepc);
    t.mstatus = csr_read(sstatus);
    t.from = (t.mstatus & MSTATUS_SPP) ? PRV_S : PRV_U;
    t.regs = regs;
    t.level = RT_LEVEL_HS;
    if (rt_has_h) {
        t.hstatus = csr_read(hstatus);
        t.virt = (t.hstatus >> 7) & 1;
        t.gva = (t.hstatus >> 6) & 1;
        t.tval2 = csr_read(htval);
        t.tinst = csr_read(htinst);
    }
    /* The lower-mode exit ecall was delegated here: pass it on to M, which
     * resumes the M-mode caller of rt_run_in with the lower-mode a0. */
    if (is_exit_ecall(&t))
        leave_to_m(regs[10]);
    rt_puts("S");
    enum rt_trap_action a = rt_strap_hook ? rt_strap_hook(&t) : default_action(&t, 0);
    if (a == RT_LEAVE)
        leave_to_m(regs[10]);
    if (a == RT_SKIP && !(t.cause >> 63))
        t.epc += rt_insn_len(t.epc);
    csr_write(sepc, t.epc);
}

/* Called by rt_vstrap_entry (VS-mode): the S-level CSR numbers read the VS CSRs. */
void rt_vstrap_c(u64 *regs)
{
    struct rt_trap t = {0};
    t.cause = csr_read(scause);
    t.tval = csr_read(stval);
    t.epc = csr_read(sepc);
    t.mstatus = csr_read(sstatus);
    t.from = (t.mstatus & MSTATUS_SPP) ? PRV_S : PRV_U;
    t.regs = regs;
    t.level = RT_LEVEL_VS;
    t.virt = 1;
    if (is_exit_ecall(&t))
        leave_to_m(regs[10]);
    rt_puts("VS");
    enum rt_trap_action a = rt_vstrap_hook ? rt_vstrap_hook(&t) : default_action(&t, 0);
    if (a == RT_LEAVE)
        leave_to_m(regs[10]);
    if (a == RT_SKIP && !(t.cause >> 63))
        t.epc += rt_insn_len(t.epc);
    csr_write(sepc, t.epc);
}

void rt_main(void)
{
    rt_has_h = (csr_read(misa) >> 7) & 1;
    int rc = main();
    rt_puts("END\n");
    rt_exit((u64)rc);
}
