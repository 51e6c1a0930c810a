/* Helpers shared by the hypervisor-extension programs (hyp_*.c): H CSR fields,
 * the H instructions (the cross compiler's -march has no H, so they are
 * assembled under `.option arch, +h`), and trap reports for the three levels a
 * trap can reach: M, HS and VS. */
#ifndef HYP_H
#define HYP_H
#include "common.h"

#define HSTATUS_GVA (1UL << 6)
#define HSTATUS_SPV (1UL << 7)
#define HSTATUS_SPVP (1UL << 8)
#define HSTATUS_HU (1UL << 9)
#define HSTATUS_VGEIN (0x3fUL << 12)
#define HSTATUS_VTVM (1UL << 20)
#define HSTATUS_VTW (1UL << 21)
#define HSTATUS_VTSR (1UL << 22)

/* Interrupt bits of hip/hie/hvip/mip/mie (VS level and guest external). */
#define MIP_VSSIP (1UL << 2)
#define MIP_VSTIP (1UL << 6)
#define MIP_VSEIP (1UL << 10)
#define MIP_SGEIP (1UL << 12)
#define VS_INTS (MIP_VSSIP | MIP_VSTIP | MIP_VSEIP)

#define CAUSE_IRQ (1UL << 63)
#define EXC_ILLEGAL 2UL
#define EXC_VIRTUAL 22UL

void rt_vstrap_entry(void);

/* Virtual-machine loads and stores (H extension: HLV, HLVX, HSV) and fences. */
#define H_INSN(insn) ".option push\n\t.option arch, +h\n\t" insn "\n\t.option pop"

/* Each load yields `sentinel` when it faults and the handler skips it. */
static inline u64 hlv_d_or(u64 a, u64 sentinel)
{
    u64 v = sentinel;
    __asm__ volatile(H_INSN("hlv.d %0, (%1)") : "+r"(v) : "r"(a) : "memory");
    return v;
}
static inline u64 hlv_wu_or(u64 a, u64 sentinel)
{
    u64 v = sentinel;
    __asm__ volatile(H_INSN("hlv.wu %0, (%1)") : "+r"(v) : "r"(a) : "memory");
    return v;
}
static inline u64 hlvx_wu_or(u64 a, u64 sentinel)
{
    u64 v = sentinel;
    __asm__ volatile(H_INSN("hlvx.wu %0, (%1)") : "+r"(v) : "r"(a) : "memory");
    return v;
}
static inline u64 hlvx_hu_or(u64 a, u64 sentinel)
{
    u64 v = sentinel;
    __asm__ volatile(H_INSN("hlvx.hu %0, (%1)") : "+r"(v) : "r"(a) : "memory");
    return v;
}
static inline void hsv_d(u64 a, u64 v)
{
    __asm__ volatile(H_INSN("hsv.d %0, (%1)") ::"r"(v), "r"(a) : "memory");
}
static inline void hfence_vvma_all(void)
{
    __asm__ volatile(H_INSN("hfence.vvma zero, zero") ::: "memory");
}
static inline void hfence_gvma_all(void)
{
    __asm__ volatile(H_INSN("hfence.gvma zero, zero") ::: "memory");
}

/* Fields of one trap report that a program chooses not to compare (each use
 * says which difference between implementations it steps around). */
#define HIDE_GVA (1U << 0)
#define HIDE_CAUSE (1U << 1)
static unsigned hyp_hide;

static inline void hyp_field(const char *name, u64 v, int hidden)
{
    rt_putc(' ');
    rt_puts(name);
    rt_putc('=');
    if (hidden)
        rt_putc('-');
    else
        rt_puthex(v);
}

static inline void hyp_bit(const char *name, u64 v)
{
    rt_putc(' ');
    rt_puts(name);
    rt_putc('=');
    rt_putc(v ? '1' : '0');
}

static inline const char *hyp_mode_name(u64 prv, u64 virt)
{
    if (prv == PRV_M)
        return "M";
    if (virt)
        return prv == PRV_S ? "VS" : "VU";
    return prv == PRV_S ? "HS" : "U";
}

/* One line per trap: where it was taken, cause, tval, epc, the mode it came
 * from, and what the H extension adds at that level: mstatus.MPV/GVA, mtval2
 * and mtinst in M; hstatus.SPV/SPVP/GVA, htval and htinst in HS. A trap into
 * VS has only vscause/vstval/vsepc and vsstatus.SPP (read as the S CSRs). */
static inline void hyp_print_trap(const struct rt_trap *t)
{
    static const char *const level[] = {"M", "HS", "VS"};
    rt_puts("T@");
    rt_puts(level[t->level]);
    hyp_field("cause", t->cause, hyp_hide & HIDE_CAUSE);
    hyp_field("tval", t->tval, 0);
    /* Where an asynchronous interrupt lands depends on timing. */
    hyp_field("epc", t->epc, t->cause >> 63);
    rt_puts(" from=");
    rt_puts(hyp_mode_name(t->from, t->virt));
    /* The interrupt-enable stack written on entry: MIE/MPIE in M, SIE/SPIE in
     * HS (sstatus) and VS (vsstatus). */
    if (t->level == RT_LEVEL_M) {
        hyp_bit("mie", t->mstatus & MSTATUS_MIE);
        hyp_bit("mpie", t->mstatus & MSTATUS_MPIE);
    } else {
        hyp_bit("sie", t->mstatus & MSTATUS_SIE);
        hyp_bit("spie", t->mstatus & MSTATUS_SPIE);
    }
    if (t->level == RT_LEVEL_VS) {
        rt_putc('\n');
        return;
    }
    if (t->level == RT_LEVEL_HS)
        hyp_bit("spvp", t->hstatus & HSTATUS_SPVP);
    /* QEMU 10 sets mstatus.GVA on a trap into M from V=1 whenever mtval is
     * nonzero, also when mtval holds instruction bits (illegal and virtual
     * instruction, where GVA must be 0); it never clears GVA on trap entry,
     * and never sets it for a trap from V=0 (HLV, or MPRV with MPV=1, where
     * mtval is a guest virtual address and GVA must be 1). hyp_m_trap_done
     * clears it after each report, the two causes are not compared here, and
     * the programs hide GVA (HIDE_GVA) around the V=0 cases. */
    /* For a breakpoint from V=1 the tval is the guest virtual address of the
     * ebreak and the spec sets GVA; QEMU 10 leaves it 0: not compared. */
    if ((hyp_hide & HIDE_GVA) || t->cause == 3 ||
        (t->level == RT_LEVEL_M && t->virt && (t->cause == EXC_ILLEGAL || t->cause == EXC_VIRTUAL)))
        rt_puts(" gva=-");
    else
        hyp_bit("gva", t->gva);
    hyp_field(t->level == RT_LEVEL_M ? "mtval2" : "htval", t->tval2, 0);
    hyp_field(t->level == RT_LEVEL_M ? "mtinst" : "htinst", t->tinst, 0);
    rt_putc('\n');
}

/* Called by the M-level hooks after the report: see the GVA note above. */
static inline void hyp_m_trap_done(const struct rt_trap *t)
{
    if (t->level == RT_LEVEL_M)
        csr_clear(mstatus, MSTATUS_GVA);
}

static u64 hyp_ntraps;

/* A hook for all three levels: prints the trap; interrupts are cleared at
 * their source or masked, synchronous traps skip the instruction, and fetch
 * faults (1, 12, 20) return to ra (tests reach code through `jalr ra`). */
static inline enum rt_trap_action hyp_report(struct rt_trap *t)
{
    hyp_ntraps++;
    hyp_print_trap(t);
    hyp_m_trap_done(t);
    if (t->cause >> 63) {
        u64 code = t->cause & 63, bit = 1UL << code;
        if (t->level == RT_LEVEL_M)
            csr_clear(mie, bit);
        else if (code == 1)
            csr_clear(sip, MIP_SSIP);
        else if (t->level == RT_LEVEL_HS && (bit & VS_INTS))
            csr_clear(hvip, bit);
        else
            csr_clear(sie, bit);
        return RT_RETURN;
    }
    if (t->cause == 1 || t->cause == 12 || t->cause == 20) {
        t->epc = t->regs[1];
        return RT_RETURN;
    }
    return RT_SKIP;
}

#endif
