/* Helpers shared by the directed privileged-architecture programs. */
#ifndef COMMON_H
#define COMMON_H
#include "rt.h"

#define MIP_SSIP (1UL << 1)
#define MIP_MSIP (1UL << 3)
#define MIP_STIP (1UL << 5)
#define MIP_MTIP (1UL << 7)
#define MIP_SEIP (1UL << 9)

extern u64 rt_vec_hit, rt_svec_hit;
extern enum rt_trap_action (*rt_strap_hook)(struct rt_trap *t);
void rt_trap_entry(void);
void rt_strap_entry(void);
void rt_mvec_table(void);
void rt_svec_table(void);

static inline void section(const char *s)
{
    rt_puts("== ");
    rt_puts(s);
    rt_putc('\n');
}

static inline void show(const char *name, u64 v)
{
    rt_kv("  ", name, v);
}

/* Accesses that the compiler may not fold or reorder. */
static inline u64 ld64(u64 a)
{
    u64 v;
    __asm__ volatile("ld %0, 0(%1)" : "=r"(v) : "r"(a) : "memory");
    return v;
}
static inline u64 lw32(u64 a)
{
    u64 v;
    __asm__ volatile("lw %0, 0(%1)" : "=r"(v) : "r"(a) : "memory");
    return v;
}
static inline void sd64(u64 a, u64 v)
{
    __asm__ volatile("sd %0, 0(%1)" ::"r"(v), "r"(a) : "memory");
}
/* Calls the code at `a` (fetch test): returns through ra, or the fetch fault
 * handler returns to ra (rt.c default action). */
static inline void jump_to(u64 a)
{
    __asm__ volatile("jalr ra, 0(%0)" ::"r"(a)
                     : "ra", "t0", "t1", "t2", "a0", "a1", "a2", "a3", "a4", "a5",
                       "a6", "a7", "t3", "t4", "t5", "t6", "memory");
}

/* mstatus fields whose values the specification determines. */
static inline u64 mstatus_bits(u64 m)
{
    return m & (MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP |
                MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR);
}



/* Load that yields `sentinel` when it faults (the handler skips it). */
static inline u64 ld64_or(u64 a, u64 sentinel)
{
    u64 v = sentinel;
    __asm__ volatile("ld %0, 0(%1)" : "+r"(v) : "r"(a) : "memory");
    return v;
}
#endif
