/* Minimal bare-metal runtime shared by every differential-test program.
 *
 * Output is line oriented and deterministic: only architectural state that the
 * specification pins down (or that QEMU and Rivet agree to pin down) is printed,
 * never counters or time. */
#ifndef RT_H
#define RT_H

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned char u8;

#define RT_EXIT_MAGIC 0x52495645UL

#define PRV_U 0UL
#define PRV_S 1UL
#define PRV_M 3UL

#define MSTATUS_SIE (1UL << 1)
#define MSTATUS_MIE (1UL << 3)
#define MSTATUS_SPIE (1UL << 5)
#define MSTATUS_MPIE (1UL << 7)
#define MSTATUS_SPP (1UL << 8)
#define MSTATUS_MPP (3UL << 11)
#define MSTATUS_FS (3UL << 13)
#define MSTATUS_MPRV (1UL << 17)
#define MSTATUS_SUM (1UL << 18)
#define MSTATUS_MXR (1UL << 19)
#define MSTATUS_TVM (1UL << 20)
#define MSTATUS_TW (1UL << 21)
#define MSTATUS_TSR (1UL << 22)
/* Hypervisor extension. */
#define MSTATUS_GVA (1UL << 38)
#define MSTATUS_MPV (1UL << 39)

#define CLINT_MSIP 0x02000000UL
#define CLINT_MTIMECMP 0x02004000UL
#define CLINT_MTIME 0x0200bff8UL

#define csr_read(csr)                                                          \
    ({                                                                         \
        u64 __v;                                                               \
        __asm__ volatile("csrr %0, " #csr : "=r"(__v)::"memory");              \
        __v;                                                                   \
    })
#define csr_write(csr, val)                                                    \
    __asm__ volatile("csrw " #csr ", %0" ::"rK"((u64)(val)) : "memory")
#define csr_set(csr, val)                                                      \
    __asm__ volatile("csrs " #csr ", %0" ::"rK"((u64)(val)) : "memory")
#define csr_clear(csr, val)                                                    \
    __asm__ volatile("csrc " #csr ", %0" ::"rK"((u64)(val)) : "memory")
#define csr_swap(csr, val)                                                     \
    ({                                                                         \
        u64 __v;                                                               \
        __asm__ volatile("csrrw %0, " #csr ", %1"                              \
                         : "=r"(__v)                                           \
                         : "rK"((u64)(val))                                    \
                         : "memory");                                          \
        __v;                                                                   \
    })

/* Where a trap was taken. */
#define RT_LEVEL_M 0UL
#define RT_LEVEL_HS 1UL /* HS-mode, or S-mode without H */
#define RT_LEVEL_VS 2UL

/* One trap. `regs` points at the saved x0..x31 (writable). Read in the handler's
 * own level: mcause/mtval/mepc/mstatus in M, scause/stval/sepc/sstatus in HS,
 * and the same numbers in VS, where they reach vscause/vstval/vsepc/vsstatus. */
struct rt_trap {
    u64 cause, tval, epc, mstatus, from; /* from = (nominal) privilege the trap came from */
    u64 *regs;
    u64 level; /* RT_LEVEL_* */
    /* Hypervisor extension; zero where the level has no such state, or without H. */
    u64 virt;    /* V before the trap: mstatus.MPV (M), hstatus.SPV (HS), 1 (VS) */
    u64 gva;     /* mstatus.GVA (M), hstatus.GVA (HS) */
    u64 tval2;   /* mtval2 (M), htval (HS) */
    u64 tinst;   /* mtinst (M), htinst (HS) */
    u64 hstatus; /* hstatus on entry (HS only) */
};

/* What the M-mode handler does after the hook (if any) returns. */
enum rt_trap_action {
    RT_SKIP = 0,   /* mepc += length of the faulting instruction, mret */
    RT_RETURN = 1, /* mret to mepc unchanged (hook may have changed it) */
    RT_LEAVE = 2,  /* abandon the lower mode: rt_run_in returns regs[a0] */
};

/* Hook called for every trap that is not the lower-mode exit ecall. NULL means:
 * print the trap and skip the instruction (interrupts: print and return). The
 * hooks for traps into HS (or S) and VS act the same way; RT_LEAVE from them
 * abandons the lower mode too. */
extern enum rt_trap_action (*rt_trap_hook)(struct rt_trap *t);
extern enum rt_trap_action (*rt_strap_hook)(struct rt_trap *t);
extern enum rt_trap_action (*rt_vstrap_hook)(struct rt_trap *t);
extern u64 rt_trap_count;
/* misa.H, read at start-up: the handlers read the H CSRs only when it is set. */
extern u64 rt_has_h;

void rt_putc(char c);
void rt_puts(const char *s);
void rt_puthex(u64 v);  /* 16 hex digits */
void rt_putdec(u64 v);
void rt_print_trap(const struct rt_trap *t);
/* `name=<16 hex digits>` on its own line with the given prefix. */
void rt_kv(const char *prefix, const char *name, u64 v);
__attribute__((noreturn)) void rt_exit(u64 code);

/* Runs fn(arg) in privilege `mode` (PRV_U or PRV_S) with the current satp and
 * returns when fn returns (the lower mode leaves through an ecall that the M-mode
 * handler recognises by a7 == RT_EXIT_MAGIC). Returns fn's a0. */
u64 rt_run_in(u64 mode, u64 (*fn)(u64), u64 arg);
/* The same with V=1: fn runs in VS-mode (PRV_S) or VU-mode (PRV_U) under the
 * current hgatp and vsatp (mret with mstatus.MPV = 1). Its exit ecall (cause 10
 * from VS, 8 from VU) is passed on to M by the HS and VS handlers when delegated
 * there. */
u64 rt_run_in_v(u64 mode, u64 (*fn)(u64), u64 arg);

/* Length in bytes (2 or 4) of the instruction at `addr`, read as halfwords so a
 * 4-byte instruction at a 2-mod-4 address is fine. */
u64 rt_insn_len(u64 addr);

/* Page-aligned bump allocator over the linker's free region. */
void *rt_alloc_page(void);
void rt_memset(void *p, int c, u64 n);

extern char __free_start[], __free_end[];

int main(void);

#endif
