/* Hot loops for the compiler tier: every block here runs hundreds of times, so with
 * the default threshold they run compiled too. Covers division corner cases, all
 * load/store sizes and signedness, misaligned accesses (handled transparently), a
 * faulting load inside a hot block (trap state must be precise), indirect calls,
 * CSR reads between compiled instructions, and code that runs in S-mode with its own
 * data regime. Only architectural results are printed. */
#include "rt.h"

static u64 mix(u64 h, u64 v)
{
    h ^= v;
    h *= 0x100000001b3UL;
    return h ^ (h >> 29);
}

static u64 arith(u64 n)
{
    u64 h = 0xcbf29ce484222325UL;
    for (u64 i = 0; i < n; i++) {
        i64 a = (i64)(i * 0x9e3779b97f4a7c15UL);
        i64 b = (i64)(i % 7) - 3; /* includes 0 and -1 */
        if (i % 97 == 0)
            a = (i64)0x8000000000000000UL;
        i64 q, r;
        u64 qu, ru;
        asm volatile("div %0, %1, %2" : "=r"(q) : "r"(a), "r"(b));
        asm volatile("rem %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
        asm volatile("divu %0, %1, %2" : "=r"(qu) : "r"(a), "r"(b));
        asm volatile("remu %0, %1, %2" : "=r"(ru) : "r"(a), "r"(b));
        h = mix(h, (u64)q);
        h = mix(h, (u64)r);
        h = mix(h, qu ^ ru);
        i64 w;
        asm volatile("divw %0, %1, %2" : "=r"(w) : "r"(a), "r"(b));
        h = mix(h, (u64)w);
        asm volatile("remuw %0, %1, %2" : "=r"(w) : "r"(a), "r"(b));
        h = mix(h, (u64)w);
        u64 hi;
        asm volatile("mulhsu %0, %1, %2" : "=r"(hi) : "r"(a), "r"(b));
        h = mix(h, hi);
        asm volatile("mulh %0, %1, %2" : "=r"(hi) : "r"(a), "r"(i));
        h = mix(h, hi);
        h = mix(h, (u64)(a >> (i & 63)) + ((u64)a >> (i & 31)) + ((u64)a << (i & 15)));
        h = mix(h, (u64)(i64)(int)((u32)a >> (i & 31)));
        h = mix(h, (u64)((i64)a < (i64)i) + ((u64)a < i));
    }
    return h;
}

static u8 buf[4096] __attribute__((aligned(64)));

static u64 memory(u64 n)
{
    u64 h = 0;
    for (u64 i = 0; i < n; i++) {
        u64 off = (i * 8) % 4000;
        *(volatile u64 *)(buf + off) = i * 0x0101010101010101UL ^ 0x8080808080808080UL;
        *(volatile u32 *)(buf + off + 8) = (u32)i * 0x89abcdefU;
        *(volatile unsigned short *)(buf + off + 12) = (unsigned short)(i * 0x8123);
        buf[off + 14] = (u8)(i | 0x80);
        h = mix(h, *(volatile signed char *)(buf + off + 14));
        h = mix(h, *(volatile u8 *)(buf + off + 1));
        h = mix(h, *(volatile short *)(buf + off + 12));
        h = mix(h, *(volatile unsigned short *)(buf + off + 2));
        h = mix(h, (u64)*(volatile int *)(buf + off + 8));
        h = mix(h, *(volatile u32 *)(buf + off + 4));
        h = mix(h, *(volatile u64 *)(buf + off));
        /* Misaligned: Rivet and QEMU both handle these without trapping. */
        h = mix(h, *(volatile u64 *)(buf + off + 3));
        *(volatile u32 *)(buf + off + 5) = (u32)h;
        h = mix(h, *(volatile u32 *)(buf + off + 5));
    }
    return h;
}

static u64 faults;
static enum rt_trap_action count_fault(struct rt_trap *t)
{
    faults = mix(faults, t->cause);
    faults = mix(faults, t->tval);
    /* The registers at the trap: the ones written before the faulting load must be
     * visible, the load's destination unchanged. */
    faults = mix(faults, t->regs[5] + t->regs[6] + t->regs[7]);
    return RT_SKIP;
}

static u64 trapping(u64 n)
{
    rt_trap_hook = count_fault;
    u64 out = 0;
    for (u64 i = 0; i < n; i++) {
        u64 addr = (i % 5 == 0) ? 0x10000000000UL : (u64)&buf[(i * 8) % 256];
        u64 v;
        asm volatile("li t0, 7\n\t"
                     "add t1, %1, t0\n\t"
                     "mv t2, %1\n\t"
                     "ld t2, 0(%2)\n\t"
                     "add %0, t1, t2\n\t"
                     : "=r"(v)
                     : "r"(i), "r"(addr)
                     : "t0", "t1", "t2");
        out = mix(out, v);
    }
    rt_trap_hook = 0;
    return mix(out, faults);
}

typedef u64 (*op_fn)(u64, u64);
static u64 op_add(u64 a, u64 b) { return a + b; }
static u64 op_xor(u64 a, u64 b) { return a ^ (b << 3); }
static u64 op_mul(u64 a, u64 b) { return a * (b | 1); }
static op_fn ops[3] = {op_add, op_xor, op_mul};

static u64 calls(u64 n)
{
    u64 h = 1;
    for (u64 i = 0; i < n; i++) {
        op_fn volatile f = ops[i % 3];
        h = f(h, i);
        if ((i & 63) == 0)
            h = mix(h, csr_read(mscratch));
        csr_write(mscratch, h);
    }
    return h;
}

static u64 in_s_mode(u64 n)
{
    return arith(n / 4) ^ memory(n / 4);
}

int main(void)
{
    u64 n = 600;
    rt_kv("", "arith", arith(n));
    rt_kv("", "memory", memory(n));
    rt_kv("", "trapping", trapping(n));
    rt_kv("", "calls", calls(n));
    rt_kv("", "smode", rt_run_in(PRV_S, in_s_mode, n));
    return 0;
}
