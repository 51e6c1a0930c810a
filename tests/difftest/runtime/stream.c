/* Support for generated random-instruction programs: per-stream set-up of the
 * memory signature area, trap recording, and the state dump.
 *
 * The generated assembly provides streams_run(), which for every stream calls
 * rt_stream_begin(n, seed), loads the initial register file, runs the random
 * instructions, stores every register into rt_dump and calls
 * rt_stream_end(n, seed). */
#include "rt.h"

#define SCRATCH_SIZE 8192
#define MAX_TRAPS 16

u8 rt_scratch[SCRATCH_SIZE] __attribute__((aligned(4096)));
/* x0..x31, f0..f31, fcsr, mscratch (layout shared with the generator). */
u64 rt_dump[66];

static struct {
    u64 cause, tval, epc;
} traps[MAX_TRAPS];
static u64 ntraps;

void streams_run(void);
extern const u64 streams_count;

static u64 next_rand(u64 *s)
{
    /* xorshift64: the same sequence regenerates the initial pattern. */
    u64 x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

void rt_stream_begin(u64 n, u64 seed)
{
    (void)n;
    u64 s = seed | 1;
    u64 *w = (u64 *)rt_scratch;
    for (u64 i = 0; i < SCRATCH_SIZE / 8; i++)
        w[i] = next_rand(&s);
    ntraps = 0;
}

static void prefix(u64 n)
{
    rt_putc('S');
    rt_putdec(n);
    rt_putc(' ');
}

static void reg(u64 n, char kind, u64 idx, u64 v)
{
    prefix(n);
    rt_putc(kind);
    rt_putdec(idx);
    rt_putc('=');
    rt_puthex(v);
    rt_putc('\n');
}

void rt_stream_end(u64 n, u64 seed)
{
    for (u64 i = 1; i < 32; i++)
        reg(n, 'x', i, rt_dump[i]);
    for (u64 i = 0; i < 32; i++)
        reg(n, 'f', i, rt_dump[32 + i]);
    prefix(n);
    rt_kv("", "fcsr", rt_dump[64]);
    prefix(n);
    rt_kv("", "mscratch", rt_dump[65]);
    prefix(n);
    rt_kv("", "traps", ntraps);
    for (u64 i = 0; i < ntraps && i < MAX_TRAPS; i++) {
        prefix(n);
        rt_puts("trap");
        rt_putdec(i);
        rt_puts(" cause=");
        rt_puthex(traps[i].cause);
        rt_puts(" tval=");
        rt_puthex(traps[i].tval);
        rt_puts(" epc=");
        rt_puthex(traps[i].epc);
        rt_putc('\n');
    }
    /* Every doubleword that differs from the initial pattern, then a hash of
     * the whole area (FNV-1a over doublewords). */
    u64 s = seed | 1;
    u64 hash = 0xcbf29ce484222325UL;
    const u64 *w = (const u64 *)rt_scratch;
    for (u64 i = 0; i < SCRATCH_SIZE / 8; i++) {
        u64 init = next_rand(&s);
        if (w[i] != init) {
            prefix(n);
            rt_putc('m');
            rt_puthex(i * 8);
            rt_putc('=');
            rt_puthex(w[i]);
            rt_putc('\n');
        }
        hash = (hash ^ w[i]) * 0x100000001b3UL;
    }
    prefix(n);
    rt_kv("", "mhash", hash);
}

static enum rt_trap_action record(struct rt_trap *t)
{
    if (ntraps < MAX_TRAPS) {
        traps[ntraps].cause = t->cause;
        traps[ntraps].tval = t->tval;
        traps[ntraps].epc = t->epc;
    }
    ntraps++;
    if (t->cause >> 63) {
        /* No interrupt is enabled while streams run; mask it if one comes. */
        csr_clear(mie, 1UL << (t->cause & 63));
        return RT_RETURN;
    }
    return RT_SKIP;
}

int main(void)
{
    rt_trap_hook = record;
    streams_run();
    rt_puts("DONE ");
    rt_putdec(streams_count);
    rt_putc('\n');
    return 0;
}
