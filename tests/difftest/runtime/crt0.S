/* Entry, M-mode trap entry, HS-mode and VS-mode trap entries, vector tables and
 * the lower-mode trampoline. RT_SCRATCH names the CSR the M-mode entry may
 * clobber: mscratch in directed programs, sscratch in random-stream programs
 * (whose streams exercise mscratch and clobber sp, so the entry must depend on
 * neither). */
#ifndef RT_SCRATCH
#define RT_SCRATCH mscratch
#endif

    .option norelax
    .section .text.init, "ax", @progbits
    .globl _start
_start:
    /* a0 = hart id, a1 = FDT: neither is printed (the FDT address differs
     * between machines). Single hart only. */
    la sp, __stack_top
    li gp, 0
    li tp, 0
    la t0, rt_trap_entry
    csrw mtvec, t0
    /* mstatus.FS = Initial so FP instructions are legal. */
    li t0, (1 << 13)
    csrs mstatus, t0
    csrwi fcsr, 0
    /* Clear .bss. */
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:
    /* One lowest-priority PMP entry granting everything, so S/U code may run
     * (Priv spec 3.7.1: with PMP implemented, an S/U access that matches no
     * entry fails). Entry 15 = byte 7 of pmpcfg2. */
    li t0, -1
    csrw pmpaddr15, t0
    li t0, (0x1f << 56)
    csrw pmpcfg2, t0
    call rt_main
1:  j 1b

    .text
    .balign 4
    .globl rt_trap_entry
rt_trap_entry:
    csrw RT_SCRATCH, t0
    la t0, rt_frame
    sd x1, 8(t0)
    sd x2, 16(t0)
    sd x3, 24(t0)
    sd x4, 32(t0)
    sd x6, 48(t0)
    sd x7, 56(t0)
    sd x8, 64(t0)
    sd x9, 72(t0)
    sd x10, 80(t0)
    sd x11, 88(t0)
    sd x12, 96(t0)
    sd x13, 104(t0)
    sd x14, 112(t0)
    sd x15, 120(t0)
    sd x16, 128(t0)
    sd x17, 136(t0)
    sd x18, 144(t0)
    sd x19, 152(t0)
    sd x20, 160(t0)
    sd x21, 168(t0)
    sd x22, 176(t0)
    sd x23, 184(t0)
    sd x24, 192(t0)
    sd x25, 200(t0)
    sd x26, 208(t0)
    sd x27, 216(t0)
    sd x28, 224(t0)
    sd x29, 232(t0)
    sd x30, 240(t0)
    sd x31, 248(t0)
    csrr x1, RT_SCRATCH
    sd x1, 40(t0)
    la sp, __trap_stack_top
    li gp, 0
    li tp, 0
    mv a0, t0
    call rt_trap_c
    bnez a0, rt_leave_lower
    la t0, rt_frame
    ld x1, 8(t0)
    ld x2, 16(t0)
    ld x3, 24(t0)
    ld x4, 32(t0)
    ld x6, 48(t0)
    ld x7, 56(t0)
    ld x8, 64(t0)
    ld x9, 72(t0)
    ld x10, 80(t0)
    ld x11, 88(t0)
    ld x12, 96(t0)
    ld x13, 104(t0)
    ld x14, 112(t0)
    ld x15, 120(t0)
    ld x16, 128(t0)
    ld x17, 136(t0)
    ld x18, 144(t0)
    ld x19, 152(t0)
    ld x20, 160(t0)
    ld x21, 168(t0)
    ld x22, 176(t0)
    ld x23, 184(t0)
    ld x24, 192(t0)
    ld x25, 200(t0)
    ld x26, 208(t0)
    ld x27, 216(t0)
    ld x28, 224(t0)
    ld x29, 232(t0)
    ld x30, 240(t0)
    ld x31, 248(t0)
    ld x5, 40(t0)
    mret

/* The lower mode finished: resume the M-mode caller of rt_run_in with the
 * lower-mode a0 as the return value. */
rt_leave_lower:
    la t0, rt_ctx
    ld ra, 0(t0)
    ld sp, 8(t0)
    ld s0, 16(t0)
    ld s1, 24(t0)
    ld s2, 32(t0)
    ld s3, 40(t0)
    ld s4, 48(t0)
    ld s5, 56(t0)
    ld s6, 64(t0)
    ld s7, 72(t0)
    ld s8, 80(t0)
    ld s9, 88(t0)
    ld s10, 96(t0)
    ld s11, 104(t0)
    /* Back in M with V=0 for good: forget the V of the abandoned context, so a
     * later mret or MPRV access does not see it (H extension, mstatus.MPV). */
    li t0, 1
    slli t0, t0, 39
    csrc mstatus, t0
    la t0, rt_frame
    ld a0, 80(t0)
    ret

/* rt_run_in enters the lower mode with mstatus.MPV = 0 (HS or U), rt_run_in_v
 * with MPV = 1 (VS or VU; H extension, Trap Return: mret sets V = MPV unless
 * MPP = M). */
    .globl rt_run_in, rt_run_in_v
rt_run_in:
    li t2, 0
    j 1f
rt_run_in_v:
    li t2, 1
1:
    la t0, rt_ctx
    sd ra, 0(t0)
    sd sp, 8(t0)
    sd s0, 16(t0)
    sd s1, 24(t0)
    sd s2, 32(t0)
    sd s3, 40(t0)
    sd s4, 48(t0)
    sd s5, 56(t0)
    sd s6, 64(t0)
    sd s7, 72(t0)
    sd s8, 80(t0)
    sd s9, 88(t0)
    sd s10, 96(t0)
    sd s11, 104(t0)
    li t1, (3 << 11)
    csrc mstatus, t1
    slli t1, a0, 11
    csrs mstatus, t1
    li t1, 1
    slli t1, t1, 39
    csrc mstatus, t1
    slli t2, t2, 39
    csrs mstatus, t2
    la t1, rt_lower_trampoline
    csrw mepc, t1
    mv t3, a1
    mv a0, a2
    mret

rt_lower_trampoline:
    jalr t3
    li a7, 0x52495645
    ecall
1:  j 1b

/* Supervisor-level trap entries: rt_strap_entry for HS-mode (or S-mode without
 * H), rt_vstrap_entry for VS-mode, where sscratch and sepc are the VS copies
 * and sret returns within the guest (H extension: with V=1 the S-level CSR
 * numbers reach the VS CSRs). Each records into its own frame and calls its
 * own C handler, so a VS handler that traps into HS loses nothing. */
    .macro SUPERVISOR_ENTRY name, frame, handler
    .balign 4
    .globl \name
\name:
    csrw sscratch, t0
    la t0, \frame
    sd x1, 8(t0)
    sd x2, 16(t0)
    sd x3, 24(t0)
    sd x4, 32(t0)
    sd x6, 48(t0)
    sd x7, 56(t0)
    sd x8, 64(t0)
    sd x9, 72(t0)
    sd x10, 80(t0)
    sd x11, 88(t0)
    sd x12, 96(t0)
    sd x13, 104(t0)
    sd x14, 112(t0)
    sd x15, 120(t0)
    sd x16, 128(t0)
    sd x17, 136(t0)
    sd x28, 224(t0)
    sd x29, 232(t0)
    sd x30, 240(t0)
    sd x31, 248(t0)
    csrr x1, sscratch
    sd x1, 40(t0)
    /* S code runs on the one stack (identity mapped); leave a red zone. */
    addi sp, sp, -256
    mv a0, t0
    call \handler
    la t0, \frame
    ld x1, 8(t0)
    ld x2, 16(t0)
    ld x3, 24(t0)
    ld x4, 32(t0)
    ld x6, 48(t0)
    ld x7, 56(t0)
    ld x8, 64(t0)
    ld x9, 72(t0)
    ld x10, 80(t0)
    ld x11, 88(t0)
    ld x12, 96(t0)
    ld x13, 104(t0)
    ld x14, 112(t0)
    ld x15, 120(t0)
    ld x16, 128(t0)
    ld x17, 136(t0)
    ld x28, 224(t0)
    ld x29, 232(t0)
    ld x30, 240(t0)
    ld x31, 248(t0)
    ld x5, 40(t0)
    sret
    .endm

    SUPERVISOR_ENTRY rt_strap_entry, rt_sframe, rt_strap_c
    SUPERVISOR_ENTRY rt_vstrap_entry, rt_vsframe, rt_vstrap_c

/* Vector tables for mtvec/stvec MODE=Vectored (Priv spec 3.1.7): slot k records
 * k in rt_vec_hit / rt_svec_hit and falls into the common entry. Needs a valid
 * sp, so only directed programs use them. */
    .balign 256
    .globl rt_mvec_table
rt_mvec_table:
    .option push
    .option norvc
    .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    j rt_mvec_stub_\k
    .endr
    .option pop
    .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
rt_mvec_stub_\k:
    addi sp, sp, -16
    sd t0, 0(sp)
    li t0, \k
    j rt_mvec_common
    .endr
rt_mvec_common:
    sd t1, 8(sp)
    la t1, rt_vec_hit
    sd t0, 0(t1)
    ld t1, 8(sp)
    ld t0, 0(sp)
    addi sp, sp, 16
    j rt_trap_entry

    .balign 256
    .globl rt_svec_table
rt_svec_table:
    .option push
    .option norvc
    .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    j rt_svec_stub_\k
    .endr
    .option pop
    .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
rt_svec_stub_\k:
    addi sp, sp, -16
    sd t0, 0(sp)
    li t0, \k
    j rt_svec_common
    .endr
rt_svec_common:
    sd t1, 8(sp)
    la t1, rt_svec_hit
    sd t0, 0(t1)
    ld t1, 8(sp)
    ld t0, 0(sp)
    addi sp, sp, 16
    j rt_strap_entry

    .bss
    .balign 8
    .globl rt_frame, rt_sframe, rt_vsframe, rt_ctx, rt_vec_hit, rt_svec_hit
rt_frame: .space 256
rt_sframe: .space 256
rt_vsframe: .space 256
rt_ctx: .space 128
rt_vec_hit: .space 8
rt_svec_hit: .space 8
