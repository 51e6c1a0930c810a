/* World-switch cost, bare metal on the virt board (-bios none): an HS-mode
 * "hypervisor" runs a VS-mode guest that exits to it in a loop, and prints the
 * ticks (10 MHz) of N round trips of each kind:
 *   ecall: the guest's ecall (cause 10, delegated to HS), sepc += 4, sret to VS;
 *   gpf:   the guest's load from a guest physical page the G stage does not map
 *          (cause 21, an MMIO exit as KVM sees it: htval, htinst), sepc += 4, sret.
 * Output: "RIVET-WS ecall=<hex ticks> gpf=<hex ticks> n=<hex>", then power off.
 * Built with riscv64-unknown-elf-gcc -march=rv64g_zicsr -nostdlib -T (text at
 * 0x80000000). */

#define N 200000
#define UART 0x10000000
#define POWER 0x100000

    .option norvc
    .option arch, +h
    .section .text
    .global _start
_start:
    la t0, m_trap
    csrw mtvec, t0
    /* Ecalls from VS and load guest-page faults go to HS. */
    li t0, (1 << 10) | (1 << 21)
    csrw medeleg, t0
    /* S and U may use all memory; counters readable below M. */
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    li t0, 7
    csrw mcounteren, t0
    csrw hcounteren, t0
    /* G stage: Sv39x4, VMID 1, GPA 2-3 GiB -> PA 2-3 GiB in one 1 GiB leaf (U, RWX,
     * A, D); nothing else is mapped. */
    la t0, groot
    li t1, 0x200000df
    sd t1, 16(t0)
    srli t0, t0, 12
    li t1, (8 << 60) | (1 << 44)
    or t0, t0, t1
    csrw hgatp, t0
    hfence.gvma zero, zero
    csrw vsatp, zero
    /* Into HS. */
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11
    csrs mstatus, t0
    la t0, hs_main
    csrw mepc, t0
    mret

hs_main:
    /* Round trips of the ecall kind. */
    la t0, hs_ecall
    csrw stvec, t0
    li s0, N
    la s3, guest_ecall
    rdtime s1
    jal enter_guest
ecall_done:
    rdtime s2
    sub s4, s2, s1
    /* Round trips of the guest-page-fault kind. */
    la t0, hs_gpf
    csrw stvec, t0
    li s0, N
    la s3, guest_gpf
    rdtime s1
    jal enter_guest
gpf_done:
    rdtime s2
    sub s5, s2, s1
    /* Report and power off. */
    la a0, msg_head
    jal puts
    mv a0, s4
    jal puthex
    la a0, msg_gpf
    jal puts
    mv a0, s5
    jal puthex
    la a0, msg_n
    jal puts
    li a0, N
    jal puthex
    li a0, '\n'
    jal putc
    li t0, POWER
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b

/* sret to the guest at s3 in VS-mode. */
enter_guest:
    csrw sepc, s3
    li t0, 1 << 7 /* hstatus.SPV */
    csrs hstatus, t0
    li t0, 1 << 8 /* sstatus.SPP */
    csrs sstatus, t0
    sret

    .balign 4
hs_ecall:
    addi s0, s0, -1
    beqz s0, ecall_done
    csrr t0, sepc
    addi t0, t0, 4
    csrw sepc, t0
    li t0, 1 << 7
    csrs hstatus, t0
    li t0, 1 << 8
    csrs sstatus, t0
    sret

    .balign 4
hs_gpf:
    /* What KVM reads on an MMIO exit. */
    csrr t1, htval
    csrr t2, htinst
    addi s0, s0, -1
    beqz s0, gpf_done
    csrr t0, sepc
    addi t0, t0, 4
    csrw sepc, t0
    li t0, 1 << 7
    csrs hstatus, t0
    li t0, 1 << 8
    csrs sstatus, t0
    sret

guest_ecall:
    ecall
    j guest_ecall

guest_gpf:
    li t2, 0x10000000
1:  ld t1, 0(t2)
    j 1b

/* Unexpected traps: report the cause and stop. */
    .balign 4
m_trap:
    la a0, msg_trap
    jal puts
    csrr a0, mcause
    jal puthex
    li a0, '\n'
    jal putc
    li t0, POWER
    li t1, 0x3333
    sw t1, 0(t0)
1:  j 1b

putc:
    li t0, UART
1:  lbu t1, 5(t0)
    andi t1, t1, 0x20
    beqz t1, 1b
    sb a0, 0(t0)
    ret

puts:
    mv t2, ra
    mv t3, a0
1:  lbu a0, 0(t3)
    beqz a0, 2f
    jal putc
    addi t3, t3, 1
    j 1b
2:  jr t2

puthex:
    mv t2, ra
    mv t3, a0
    li t4, 60
1:  srl a0, t3, t4
    andi a0, a0, 15
    li t5, 10
    blt a0, t5, 2f
    addi a0, a0, 'a' - 10
    j 3f
2:  addi a0, a0, '0'
3:  jal putc
    addi t4, t4, -4
    bgez t4, 1b
    jr t2

    .section .rodata
msg_head: .asciz "RIVET-WS ecall="
msg_gpf: .asciz " gpf="
msg_n: .asciz " n="
msg_trap: .asciz "RIVET-WS unexpected trap "

    .section .bss
    .balign 16384
groot: .space 16384
