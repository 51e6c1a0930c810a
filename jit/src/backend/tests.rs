//! Compiles small blocks and runs them on a test state with test helpers.

use super::*;
use crate::frontend::Op;

const PAGE: u64 = 0x1000_0000;
/// A page the slow path maps (to the same host page as `PAGE`) when it is first used.
const REFILL_PAGE: u64 = 0x3000_0000;
const TRAP_ADDR: u64 = 0xdead_0000;
const HANDLER: u64 = 0x999;

#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    read: u64,
    write: u64,
    exec: u64,
    addend: u64,
}

const INVALID: Entry = Entry {
    read: u64::MAX,
    write: u64::MAX,
    exec: u64::MAX,
    addend: 0,
};

#[repr(C)]
struct State {
    x: [u64; 32],
    pc: u64,
    instret: u64,
    l1_data: *mut Entry,
    /// Points at `key`.
    chain_key: *const u64,
    last_exit: usize,
    l1_exec: usize,
    fast_table: usize,
    helper_status: u64,
    f: [u64; 32],
    mstatus: u64,
    vsstatus: u64,
    fflags: u8,
    frm: u8,
    prv: u8,
    virt: u8,
    sscratch: u64,
    /// menvcfg, senvcfg.
    envcfg: [u64; 2],
    /// What the helpers saw: (helper, pc, instret, vaddr or op).
    calls: Vec<(&'static str, u64, u64, u64)>,
    key: u64,
    /// `exec_one` clears the chain key when this many calls are left.
    clear_key_after: Option<usize>,
}

#[repr(C, align(4096))]
struct Page([u8; 4096]);

fn tag_mask(size: u64) -> u64 {
    !0xfff | (size - 1)
}

fn layout() -> StateLayout {
    StateLayout {
        x: std::mem::offset_of!(State, x) as i32,
        pc: std::mem::offset_of!(State, pc) as i32,
        instret: std::mem::offset_of!(State, instret) as i32,
        l1_data: std::mem::offset_of!(State, l1_data) as i32,
        chain_key: std::mem::offset_of!(State, chain_key) as i32,
        helper_status: std::mem::offset_of!(State, helper_status) as i32,
        prv: std::mem::offset_of!(State, prv) as i32,
        virt: std::mem::offset_of!(State, virt) as i32,
        csr_reads: &[
            CsrRead {
                num: 0x140,
                offset: std::mem::offset_of!(State, sscratch) as i32,
                mask: u64::MAX,
                sd: false,
            },
            CsrRead {
                num: 0x30a,
                offset: std::mem::offset_of!(State, envcfg) as i32,
                mask: u64::MAX,
                sd: false,
            },
            CsrRead {
                num: 0x10a,
                offset: std::mem::offset_of!(State, envcfg) as i32 + 8,
                mask: u64::MAX,
                sd: false,
            },
        ],
        f: std::mem::offset_of!(State, f) as i32,
        mstatus: std::mem::offset_of!(State, mstatus) as i32,
        vsstatus: std::mem::offset_of!(State, vsstatus) as i32,
        fflags: std::mem::offset_of!(State, fflags) as i32,
        frm: std::mem::offset_of!(State, frm) as i32,
        last_exit: std::mem::offset_of!(State, last_exit) as i32,
        l1_exec: std::mem::offset_of!(State, l1_exec) as i32,
        fast_table: std::mem::offset_of!(State, fast_table) as i32,
        fast: super::FastLayout {
            index_bits: 4,
            entry_shift: 5,
            pc: 0,
            host: 8,
            epoch: 16,
            f: 24,
        },
        l1: L1Layout {
            index_bits: 8,
            entry_shift: 5,
            page_shift: 12,
            read: 0,
            write: 8,
            exec: 16,
            addend: 24,
            tag_mask: [tag_mask(1), tag_mask(2), tag_mask(4), tag_mask(8)],
        },
    }
}

fn state(hart: *mut u8) -> &'static mut State {
    // SAFETY: tests pass a pointer to a live `State` that nothing else borrows during
    // the call.
    unsafe { &mut *(hart as *mut State) }
}

/// The slow path of the test rig: a page fault at `TRAP_ADDR`, an L1 refill for
/// `REFILL_PAGE`, anything else an access the helper performs itself.
fn slow_path(s: &mut State, vaddr: u64, kind: u64, pc: u64, n: u64) -> Option<MemKind> {
    if vaddr == TRAP_ADDR {
        s.pc = HANDLER;
        s.instret = n;
        return None;
    }
    let k = MemKind::unpack(kind);
    if vaddr & !0xfff == REFILL_PAGE && vaddr.is_multiple_of(u64::from(k.size)) {
        // SAFETY: the table has 256 entries and the rig owns it.
        let e = unsafe { &mut *s.l1_data.add(((REFILL_PAGE >> 12) & 255) as usize) };
        let host = e.addend.wrapping_add(PAGE);
        *e = Entry {
            read: REFILL_PAGE,
            write: REFILL_PAGE,
            exec: u64::MAX,
            addend: host.wrapping_sub(REFILL_PAGE),
        };
        return Some(MemKind { size: 0, ..k });
    }
    s.pc = pc + u64::from(k.len);
    s.instret = n + 1;
    Some(k)
}

unsafe extern "C" fn load(hart: *mut u8, vaddr: u64, kind: u64, pc: u64, n: u64) -> u64 {
    let s = state(hart);
    s.calls.push(("load", pc, n, vaddr));
    match slow_path(s, vaddr, kind, pc, n) {
        None => EXIT_TRAP,
        Some(k) if k.size == 0 => MEM_HIT,
        Some(k) => {
            let shift = 64 - 8 * u32::from(k.size);
            let v = (vaddr ^ 0xffff_ffff_ffff_ff80) << shift;
            let v = if k.signed {
                (v as i64 >> shift) as u64
            } else {
                v >> shift
            };
            if k.rd != 0 {
                s.x[usize::from(k.rd)] = v;
            }
            MEM_DONE
        }
    }
}

unsafe extern "C" fn store(
    hart: *mut u8,
    vaddr: u64,
    _value: u64,
    kind: u64,
    pc: u64,
    n: u64,
) -> u64 {
    let s = state(hart);
    s.calls.push(("store", pc, n, vaddr));
    match slow_path(s, vaddr, kind, pc, n) {
        None => EXIT_TRAP,
        Some(k) if k.size == 0 => MEM_HIT,
        Some(_) => MEM_DONE,
    }
}

/// The AMO slow path: the rig's refill or trap; anything else stands in for the
/// interpreter's AMO (rd = 0x5678).
unsafe extern "C" fn amo(
    hart: *mut u8,
    vaddr: u64,
    _insn: *const Insn,
    kind: u64,
    pc: u64,
    n: u64,
) -> u64 {
    let s = state(hart);
    s.calls.push(("amo", pc, n, vaddr));
    match slow_path(s, vaddr, kind, pc, n) {
        None => EXIT_TRAP,
        Some(k) if k.size == 0 => MEM_HIT,
        Some(k) => {
            if k.rd != 0 {
                s.x[usize::from(k.rd)] = 0x5678;
            }
            MEM_DONE
        }
    }
}

/// Stands in for the interpreter: writes 0x1234 to rd and retires the instruction.
unsafe extern "C" fn exec_one(hart: *mut u8, insn: *const Insn, pc: u64) -> u64 {
    let s = state(hart);
    // SAFETY: compiled code passes a pointer into the block it was compiled from.
    let i = unsafe { &*insn };
    s.calls.push(("exec", pc, s.instret, i.op as u64));
    if let Some(n) = &mut s.clear_key_after {
        if *n == 0 {
            s.key = 0;
        } else {
            *n -= 1;
        }
    }
    if i.rd != 0 {
        s.x[usize::from(i.rd)] = 0x1234;
    }
    s.pc = pc + 4;
    s.instret += 1;
    // As the runtime: a CSR write chains on, unless it is one that changes
    // translation (satp, say).
    if i.writes_csr() && i.csr() != 0x180 {
        EXIT_CHAIN
    } else {
        EXIT_NEXT
    }
}

fn insn(op: Op, rd: u8, rs1: u8, rs2: u8, imm: i32) -> Insn {
    Insn {
        op,
        rd,
        rs1,
        rs2,
        rs3: 0,
        rm: 0,
        len: 4,
        imm,
        raw: 0,
    }
}

struct Rig {
    compiler: Compiler,
    table: Vec<Entry>,
    page: Box<Page>,
    entry: super::Entry,
    /// The privilege and envcfg CSRs of the next run's state.
    prv: u8,
    envcfg: [u64; 2],
}

impl Rig {
    fn new() -> Rig {
        let helpers = Helpers {
            load,
            store,
            amo,
            exec_one,
        };
        let mut table = vec![INVALID; 256];
        let page = Box::new(Page([0; 4096]));
        let host = page.0.as_ptr() as u64;
        table[((PAGE >> 12) & 255) as usize] = Entry {
            read: PAGE,
            write: PAGE,
            exec: u64::MAX,
            addend: host.wrapping_sub(PAGE),
        };
        let entry = super::Entry::new(&layout(), &helpers).expect("a Cranelift host");
        Rig {
            compiler: Compiler::new(layout(), entry.thunks(), 1 << 20).expect("a Cranelift host"),
            entry,
            table,
            page,
            prv: 3,
            envcfg: [0; 2],
        }
    }

    /// Compiles `insns` (for pc 0x4000_0000) and runs them at pc 0x8000_0000 from `x`:
    /// compiled code must not depend on the virtual address it was compiled for.
    /// Returns the exit code and the final state.
    fn run(&mut self, insns: &[Insn], x: &[(usize, u64)]) -> (u64, State) {
        self.run_until(insns, x, None)
    }

    /// As [`Rig::run`], with the chain key cleared by the `exec_one` call after
    /// `clear_key_after` more.
    fn run_until(
        &mut self,
        insns: &[Insn],
        x: &[(usize, u64)],
        clear_key_after: Option<usize>,
    ) -> (u64, State) {
        let f = self.compiler.compile(insns, 0x4000_0000).expect("compiles");
        let mut s = self.state(x);
        s.clear_key_after = clear_key_after;
        let hart = &mut *s as *mut State as *mut u8;
        // SAFETY: `f` was compiled for `State`'s layout and the helpers above; `insns`
        // outlives the call.
        let code = unsafe { self.entry.run(hart, f, 0x8000_0000, 100) };
        (code, *s)
    }

    /// A fresh state with registers `x`, chain key 1.
    fn state(&mut self, x: &[(usize, u64)]) -> Box<State> {
        let mut s = Box::new(State {
            x: [0; 32],
            pc: 0,
            instret: 0,
            l1_data: self.table.as_mut_ptr(),
            chain_key: std::ptr::null(),
            last_exit: 0,
            l1_exec: 0,
            fast_table: 0,
            helper_status: 0,
            f: [0; 32],
            mstatus: 1 << 13,
            vsstatus: 0,
            fflags: 0,
            frm: 0,
            prv: self.prv,
            virt: 0,
            sscratch: 0,
            envcfg: self.envcfg,
            calls: Vec::new(),
            key: 1,
            clear_key_after: None,
        });
        s.chain_key = &s.key;
        for &(r, v) in x {
            s.x[r] = v;
        }
        s
    }
}

#[test]
fn integer_ops_follow_the_riscv_rules() {
    let mut rig = Rig::new();
    let a = 0x8000_0000_0000_0000u64; // i64::MIN
    let b = u64::MAX; // -1
    let c = 0xffff_ffff_8765_4321u64;
    let d = 13u64;
    let cases: &[(Op, u64, u64, u64)] = &[
        (Op::Div, a, b, a),
        (Op::Rem, a, b, 0),
        (Op::Div, c, 0, u64::MAX),
        (Op::Rem, c, 0, c),
        (Op::Divu, c, 0, u64::MAX),
        (Op::Remu, c, 0, c),
        (Op::Div, c, d, ((c as i64) / 13) as u64),
        (Op::Rem, c, d, ((c as i64) % 13) as u64),
        (Op::Divw, 0x8000_0000, b, 0xffff_ffff_8000_0000),
        (Op::Remw, 0x8000_0000, b, 0),
        (Op::Divuw, c, 0, u64::MAX),
        (Op::Remuw, c, 0, c as u32 as i32 as i64 as u64),
        (
            Op::Mulhsu,
            b,
            c,
            ((i128::from(-1i64) * i128::from(c)) >> 64) as u64,
        ),
        (
            Op::Mulh,
            c,
            c,
            ((i128::from(c as i64) * i128::from(c as i64)) >> 64) as u64,
        ),
        (
            Op::Mulhu,
            c,
            c,
            ((u128::from(c) * u128::from(c)) >> 64) as u64,
        ),
        (
            Op::Mulw,
            c,
            d,
            (c as u32).wrapping_mul(13) as i32 as i64 as u64,
        ),
        (Op::Sraw, c, 36, ((c as i32) >> 4) as i64 as u64),
        (Op::Srlw, c, 4, ((c as u32) >> 4) as i32 as i64 as u64),
        (Op::Sll, d, 65, 26),
        (Op::Slt, c, d, 1),
        (Op::Sltu, c, d, 0),
        (Op::AddUw, c, d, (c & 0xffff_ffff) + 13),
        (Op::Sh3addUw, c, d, ((c & 0xffff_ffff) << 3) + 13),
        (
            Op::Rorw,
            c,
            8,
            (c as u32).rotate_right(8) as i32 as i64 as u64,
        ),
        (Op::Andn, c, d, c & !d),
        (Op::Maxu, c, d, c),
        (Op::Min, c, d, c),
        (Op::Bext, c, 8, (c >> 8) & 1),
        (Op::Binv, c, 63, c ^ (1 << 63)),
        (Op::CzeroEqz, c, 0, 0),
        (Op::CzeroNez, c, 0, c),
    ];
    for &(op, v1, v2, want) in cases {
        let (code, s) = rig.run(&[insn(op, 3, 1, 2, 0)], &[(1, v1), (2, v2)]);
        assert_eq!(code, EXIT_NEXT);
        assert_eq!(s.x[3], want, "{op:?} {v1:#x}, {v2:#x}");
        assert_eq!(s.pc, 0x8000_0004);
        assert_eq!(s.instret, 101);
    }
    let unary: &[(Op, u64, u64)] = &[
        (Op::Clz, 0x00f0, 56),
        (Op::Ctzw, 0, 32),
        (Op::Cpopw, c, u64::from((c as u32).count_ones())),
        (Op::SextB, 0x80, 0xffff_ffff_ffff_ff80),
        (Op::Rev8, c, c.swap_bytes()),
        (Op::ZextH, c, 0x4321),
        (Op::OrcB, 0x0001_0080_0000_ff00, 0x00ff_00ff_0000_ff00),
        (Op::OrcB, 0x8000_0000_0000_0001, 0xff00_0000_0000_00ff),
        (Op::OrcB, 0x7f7f_7f7f_7f7f_7f7f, u64::MAX),
        (Op::OrcB, 0, 0),
    ];
    for &(op, v, want) in unary {
        let (_, s) = rig.run(&[insn(op, 3, 1, 0, 0)], &[(1, v)]);
        assert_eq!(s.x[3], want, "{op:?} {v:#x}");
    }
}

#[test]
fn fences_run_inline_and_the_block_goes_on() {
    let mut rig = Rig::new();
    let (code, s) = rig.run(
        &[
            insn(Op::Addi, 1, 0, 0, 5),
            insn(Op::Fence, 0, 0, 0, 0x33),
            insn(Op::FenceTso, 0, 0, 0, 0),
            insn(Op::Addi, 2, 1, 0, 1),
        ],
        &[],
    );
    assert_eq!(code, EXIT_NEXT);
    assert_eq!((s.x[1], s.x[2]), (5, 6));
    assert_eq!(s.pc, 0x8000_0010);
    assert_eq!(s.instret, 104);
    assert!(s.calls.is_empty(), "no helper ran: {:?}", s.calls);
}

#[test]
fn a_csr_write_that_allows_it_goes_on_to_the_next_block() {
    let mut rig = Rig::new();
    // sscratch: chains on into the next member; satp: back to the runtime.
    for (csr, chains) in [(0x140, true), (0x180, false)] {
        let blocks = [
            vec![insn(Op::Addi, 7, 0, 0, 5), insn(Op::Csrrw, 5, 7, 0, csr)],
            vec![insn(Op::Addi, 8, 0, 0, 9), insn(Op::Addi, 9, 0, 0, 1)],
        ];
        let (code, s) = rig.run_region(&blocks, &[]);
        assert_eq!(code, EXIT_NEXT, "{csr:#x}");
        assert_eq!(s.calls, vec![("exec", 0x8000_0004, 101, Op::Csrrw as u64)]);
        assert_eq!((s.x[5], s.x[7]), (0x1234, 5));
        if chains {
            assert_eq!((s.x[8], s.x[9]), (9, 1));
            assert_eq!((s.pc, s.instret), (0x8000_0010, 104));
        } else {
            assert_eq!((s.x[8], s.x[9]), (0, 0));
            assert_eq!((s.pc, s.instret), (0x8000_0008, 102));
        }
    }
}

#[test]
fn writes_to_x0_are_dropped_and_rd_may_alias_rs1() {
    let mut rig = Rig::new();
    let (_, s) = rig.run(
        &[
            insn(Op::Addi, 0, 0, 0, 5),
            insn(Op::Addi, 1, 1, 0, 1),
            insn(Op::Jalr, 1, 1, 0, 3),
        ],
        &[(1, 0x100)],
    );
    assert_eq!(s.x[0], 0);
    assert_eq!(s.pc, 0x104, "target from the old rs1, bit 0 cleared");
    assert_eq!(s.x[1], 0x8000_000c, "link");
    assert_eq!(s.instret, 103);
}

#[test]
fn branches_set_the_next_pc() {
    let mut rig = Rig::new();
    let b = [insn(Op::Addi, 5, 0, 0, 1), insn(Op::Blt, 0, 1, 2, -64)];
    let (_, taken) = rig.run(&b, &[(1, u64::MAX), (2, 0)]);
    assert_eq!(taken.pc, 0x8000_0004 - 64);
    let (_, fall) = rig.run(&b, &[(1, 1), (2, 0)]);
    assert_eq!(fall.pc, 0x8000_0008);
    assert_eq!(fall.x[5], 1);
    assert_eq!(fall.instret, 102);
}

#[test]
fn loads_and_stores_hit_the_l1_inline() {
    let mut rig = Rig::new();
    let (code, s) = rig.run(
        &[
            insn(Op::Sw, 0, 1, 2, 8),
            insn(Op::Lb, 3, 1, 0, 11),
            insn(Op::Lhu, 4, 1, 0, 10),
            insn(Op::Ld, 5, 1, 0, 8),
        ],
        &[(1, PAGE), (2, 0x8899_aabb_ccdd_eeff)],
    );
    assert_eq!(code, EXIT_NEXT);
    assert!(s.calls.is_empty(), "no slow path: {:?}", s.calls);
    assert_eq!(&rig.page.0[8..12], &[0xff, 0xee, 0xdd, 0xcc]);
    assert_eq!(s.x[3], 0xffff_ffff_ffff_ffcc);
    assert_eq!(s.x[4], 0xccdd);
    assert_eq!(s.x[5], 0xccdd_eeff);
}

#[test]
fn a_slow_access_the_helper_performs_ends_the_run_after_it() {
    let mut rig = Rig::new();
    let cases: &[(Insn, u64, u64)] = &[
        // Misaligned: the helper loads, sign-extends and retires the lw.
        (
            insn(Op::Lw, 3, 1, 0, 2),
            PAGE + 2,
            ((PAGE + 2) as u32 ^ 0xffff_ff80) as i32 as i64 as u64,
        ),
        // Not mapped in L1 (a device, say).
        (insn(Op::Lh, 3, 1, 0, 0), 0x2000_0000, 0xffff_ffff_ffff_ff80),
        (insn(Op::Lbu, 3, 1, 0, 0), 0x2000_0000, 0x80),
    ];
    for &(i, addr, want) in cases {
        let block = [insn(Op::Addi, 7, 0, 0, 5), i, insn(Op::Addi, 8, 0, 0, 6)];
        let base = addr.wrapping_sub(i64::from(i.imm) as u64);
        let (code, s) = rig.run(&block, &[(1, base)]);
        assert_eq!(code, EXIT_NEXT);
        assert_eq!(s.calls, vec![("load", 0x8000_0004, 101, addr)]);
        assert_eq!(s.x[3], want, "{:?}", i.op);
        assert_eq!((s.pc, s.instret), (0x8000_0008, 102));
        assert_eq!(
            (s.x[7], s.x[8]),
            (5, 0),
            "written back before; not run after"
        );
    }
    let (code, s) = rig.run(&[insn(Op::Sd, 0, 1, 2, 4)], &[(1, PAGE), (2, 1)]);
    assert_eq!((code, s.pc, s.instret), (EXIT_NEXT, 0x8000_0004, 101));
    assert_eq!(s.calls, vec![("store", 0x8000_0000, 100, PAGE + 4)]);
}

#[test]
fn amos_read_modify_write_the_host_word_inline() {
    let mut rig = Rig::new();
    rig.page.0[8..16].copy_from_slice(&0x8000_0001_0000_0005u64.to_le_bytes());
    let (code, s) = rig.run(
        &[
            insn(Op::AmoaddW, 3, 1, 2, 0),
            insn(Op::AmomaxuD, 4, 1, 5, 0),
            insn(Op::AmoswapW, 6, 7, 2, 0),
            insn(Op::AmominW, 8, 7, 9, 0),
        ],
        &[
            (1, PAGE + 8),
            (2, 0x7fff_fffe),
            (5, 3),
            (7, PAGE + 12),
            (9, 1),
        ],
    );
    assert_eq!(code, EXIT_NEXT);
    assert!(s.calls.is_empty(), "no slow path: {:?}", s.calls);
    // The old low word, then the low word 0x8000_0003 (sign-extended when read).
    assert_eq!(s.x[3], 5);
    assert_eq!(s.x[4], 0x8000_0001_8000_0003);
    assert_eq!(s.x[6], 0xffff_ffff_8000_0001);
    assert_eq!(s.x[8], 0x7fff_fffe);
    let words: Vec<u32> = rig.page.0[8..16]
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        words,
        vec![0x8000_0003, 1],
        "max(unsigned) kept; signed min 1"
    );
    assert_eq!((s.pc, s.instret), (0x8000_0010, 104));
}

#[test]
fn an_amo_the_helper_performs_or_faults_on_ends_the_run() {
    let mut rig = Rig::new();
    // Misaligned: the helper runs the whole AMO.
    let block = [insn(Op::AmoorD, 3, 1, 2, 0), insn(Op::Addi, 8, 0, 0, 6)];
    let (code, s) = rig.run(&block, &[(1, PAGE + 4)]);
    assert_eq!(code, EXIT_NEXT);
    assert_eq!(s.calls, vec![("amo", 0x8000_0000, 100, PAGE + 4)]);
    assert_eq!((s.x[3], s.x[8]), (0x5678, 0));
    assert_eq!((s.pc, s.instret), (0x8000_0004, 101));
    // A fault: precise.
    let (code, s) = rig.run(&block, &[(1, TRAP_ADDR)]);
    assert_eq!(code, EXIT_TRAP);
    assert_eq!((s.pc, s.instret), (HANDLER, 100));
    // A refill, then the fast path does it.
    rig.page.0[0..8].copy_from_slice(&7u64.to_le_bytes());
    let (code, s) = rig.run(&block, &[(1, REFILL_PAGE), (2, 8)]);
    assert_eq!(code, EXIT_NEXT);
    assert_eq!(s.calls.len(), 1);
    assert_eq!((s.x[3], s.x[8]), (7, 6));
    assert_eq!(u64::from_le_bytes(rig.page.0[0..8].try_into().unwrap()), 15);
}

#[test]
fn cbo_zero_clears_its_block_inline_where_the_privilege_may() {
    let mut rig = Rig::new();
    let block = [insn(Op::CboZero, 0, 1, 0, 0), insn(Op::Addi, 8, 0, 0, 6)];
    // (privilege, menvcfg, senvcfg, inline)
    let cases = [
        (3, 0, 0, true),
        (1, 1 << 7, 0, true),
        (1, 0, 1 << 7, false),
        (0, 1 << 7, 1 << 7, true),
        (0, 1 << 7, 0, false),
    ];
    for (prv, m, s_env, inline) in cases {
        rig.page.0[64..128].fill(0xaa);
        rig.prv = prv;
        rig.envcfg = [m, s_env];
        let (code, s) = rig.run(&block, &[(1, PAGE + 64 + 24)]);
        assert_eq!(code, EXIT_NEXT);
        if inline {
            assert!(s.calls.is_empty(), "{prv} {m:#x} {s_env:#x}: {:?}", s.calls);
            assert!(rig.page.0[64..128].iter().all(|&b| b == 0));
            assert_eq!((rig.page.0[63], rig.page.0[128]), (0, 0));
            assert_eq!((s.x[8], s.pc, s.instret), (6, 0x8000_0008, 102));
        } else {
            // The helper runs the instruction (and raises what it raises).
            assert_eq!(s.calls, vec![("amo", 0x8000_0000, 100, PAGE + 64)]);
            assert_eq!(rig.page.0[64], 0xaa);
            assert_eq!((s.x[8], s.pc, s.instret), (0, 0x8000_0004, 101));
        }
    }
}

#[test]
fn after_an_l1_refill_the_fast_path_goes_on() {
    let mut rig = Rig::new();
    rig.page.0[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    let block = [
        insn(Op::Ld, 3, 1, 0, 8),
        insn(Op::Sb, 0, 1, 3, 16),
        insn(Op::Lb, 4, 1, 0, 16),
    ];
    let (code, s) = rig.run(&block, &[(1, REFILL_PAGE)]);
    assert_eq!(code, EXIT_NEXT);
    assert_eq!(
        s.calls,
        vec![("load", 0x8000_0000, 100, REFILL_PAGE + 8)],
        "one refill, then hits"
    );
    assert_eq!(
        (s.x[3], s.x[4]),
        (0x1122_3344_5566_7788, 0xffff_ffff_ffff_ff88)
    );
    assert_eq!(rig.page.0[16], 0x88);
    assert_eq!((s.pc, s.instret), (0x8000_000c, 103));
}

#[test]
fn a_trap_in_the_slow_path_leaves_precise_state() {
    let mut rig = Rig::new();
    let (code, s) = rig.run(
        &[
            insn(Op::Addi, 5, 0, 0, 7),
            insn(Op::Addi, 6, 0, 0, 8),
            insn(Op::Ld, 6, 1, 0, 0),
            insn(Op::Addi, 7, 0, 0, 9),
        ],
        &[(1, TRAP_ADDR)],
    );
    assert_eq!(code, EXIT_TRAP);
    assert_eq!(s.calls, vec![("load", 0x8000_0008, 102, TRAP_ADDR)]);
    assert_eq!(s.pc, HANDLER);
    assert_eq!((s.x[5], s.x[6], s.x[7]), (7, 8, 0));
}

#[test]
fn other_instructions_run_through_exec_one() {
    let mut rig = Rig::new();
    let (code, s) = rig.run(
        &[
            insn(Op::Addi, 5, 0, 0, 7),
            insn(Op::Csrrs, 5, 0, 0, 0xc00),
            insn(Op::Addi, 6, 5, 0, 1),
            insn(Op::Ecall, 0, 0, 0, 0),
        ],
        &[],
    );
    assert_eq!(code, EXIT_NEXT);
    assert_eq!(
        s.calls,
        vec![
            ("exec", 0x8000_0004, 101, Op::Csrrs as u64),
            ("exec", 0x8000_000c, 103, Op::Ecall as u64),
        ]
    );
    assert_eq!(s.x[6], 0x1235, "rd of exec_one reloaded");
    assert_eq!(s.pc, 0x8000_0010, "pc from the last exec_one");
    assert_eq!(s.instret, 104);
}

#[test]
fn self_loops_iterate_inside_compiled_code_until_the_chain_key_is_cleared() {
    let mut rig = Rig::new();
    rig.compiler.loops = true;
    let body = [insn(Op::Addi, 1, 1, 0, -1), insn(Op::Bne, 0, 1, 0, -4)];
    let (code, s) = rig.run(&body, &[(1, 1000)]);
    assert_eq!(code, EXIT_NEXT);
    assert_eq!((s.x[1], s.pc, s.instret), (0, 0x8000_0008, 100 + 2000));
    // The third exec_one clears the key: that iteration's back edge returns.
    let body = [
        insn(Op::Csrrs, 5, 0, 0, 0xc00),
        insn(Op::Addi, 1, 1, 0, -1),
        insn(Op::Bne, 0, 1, 0, -8),
    ];
    let (code, s) = rig.run_until(&body, &[(1, 1000)], Some(2));
    assert_eq!(code, EXIT_NEXT);
    assert_eq!((s.x[1], s.pc, s.instret), (997, 0x8000_0000, 109));
    rig.compiler.loops = false;
    let (_, s) = rig.run(&body, &[(1, 3)]);
    assert_eq!(
        (s.x[1], s.pc, s.instret),
        (2, 0x8000_0000, 103),
        "no loops: one pass"
    );
}

#[test]
fn a_slow_access_in_a_later_loop_iteration_leaves_precise_state() {
    let mut rig = Rig::new();
    rig.compiler.loops = true;
    let body = [
        insn(Op::Ld, 5, 2, 0, 0),
        insn(Op::Addi, 2, 2, 0, 8),
        insn(Op::Addi, 3, 3, 0, 1),
        insn(Op::Bne, 0, 3, 4, -12),
    ];
    // A refill in the first iteration, a hit in the second, and in the third the
    // next page, which the helper loads itself.
    let (code, s) = rig.run(&body, &[(2, REFILL_PAGE + 0xff0), (4, 100)]);
    assert_eq!(code, EXIT_NEXT);
    assert_eq!(
        s.calls,
        vec![
            ("load", 0x8000_0000, 100, REFILL_PAGE + 0xff0),
            ("load", 0x8000_0000, 108, REFILL_PAGE + 0x1000),
        ]
    );
    assert_eq!(
        (s.x[2], s.x[3]),
        (REFILL_PAGE + 0x1000, 2),
        "registers of two full iterations"
    );
    assert_eq!(
        s.x[5],
        (REFILL_PAGE + 0x1000) ^ 0xffff_ffff_ffff_ff80,
        "the third load"
    );
    assert_eq!((s.pc, s.instret), (0x8000_0004, 109));
}

/// A loop of two blocks compiled as one region: `A: x1 -= 1; if x1 == 0 goto out;
/// B: x2 += x1 (or a load through x3); goto A`.
fn two_block_loop(second: Insn) -> [Vec<Insn>; 2] {
    [
        vec![insn(Op::Addi, 1, 1, 0, -1), insn(Op::Beq, 0, 1, 0, 16)],
        vec![second, insn(Op::Jal, 0, 0, 0, -12)],
    ]
}

impl Rig {
    fn run_region(&mut self, blocks: &[Vec<Insn>; 2], x: &[(usize, u64)]) -> (u64, State) {
        let members = [
            Member {
                pc: 0x4000_0000,
                insns: &blocks[0],
            },
            Member {
                pc: 0x4000_0008,
                insns: &blocks[1],
            },
        ];
        let f = self
            .compiler
            .compile_region(&members, None)
            .expect("compiles");
        let mut s = self.state(x);
        let hart = &mut *s as *mut State as *mut u8;
        // SAFETY: as in `Rig::run_until`.
        let code = unsafe { self.entry.run(hart, f, 0x8000_0000, 100) };
        (code, *s)
    }
}

#[test]
fn a_region_runs_its_loop_across_blocks() {
    let mut rig = Rig::new();
    rig.compiler.loops = true;
    let blocks = two_block_loop(insn(Op::Add, 2, 2, 1, 0));
    let (code, s) = rig.run_region(&blocks, &[(1, 10)]);
    assert_eq!(code, EXIT_NEXT);
    assert_eq!((s.x[1], s.x[2]), (0, 45));
    assert_eq!((s.pc, s.instret), (0x8000_0014, 100 + 9 * 4 + 2));
}

#[test]
fn a_trap_in_a_later_block_of_a_region_is_precise() {
    let mut rig = Rig::new();
    rig.compiler.loops = true;
    let blocks = two_block_loop(insn(Op::Ld, 5, 3, 0, 0));
    let (code, s) = rig.run_region(&blocks, &[(1, 10), (3, TRAP_ADDR)]);
    assert_eq!(code, EXIT_TRAP);
    assert_eq!(s.calls, vec![("load", 0x8000_0008, 102, TRAP_ADDR)]);
    assert_eq!(s.x[1], 9, "the first block's write is in memory");
}

#[test]
fn exits_jump_through_link_cells_and_the_entry_checks_the_chain_key() {
    let mut rig = Rig::new();
    let miss = rig.entry.miss_stub();
    let cells: Vec<LinkCell> = (0..2).map(|_| LinkCell::new(miss)).collect();
    // A: x1 += 1, then on to B (the fall-through at +4); B: x2 = x1 + 100.
    let a = [insn(Op::Addi, 1, 1, 0, 1)];
    let b = [insn(Op::Addi, 2, 1, 0, 100), insn(Op::Ecall, 0, 0, 0, 0)];
    let fa = rig
        .compiler
        .compile_region(
            &[Member {
                pc: 0x4000_0000,
                insns: &a,
            }],
            Some(&cells),
        )
        .expect("compiles");
    let fb = rig.compiler.compile(&b, 0x4000_0004).expect("compiles");
    let run = |rig: &mut Rig, key: u64| {
        let mut s = rig.state(&[(1, 7)]);
        s.key = key;
        let hart = &mut *s as *mut State as *mut u8;
        // SAFETY: as in `Rig::run_until`.
        let code = unsafe { rig.entry.run(hart, fa, 0x8000_0000, 100) };
        (code, *s)
    };
    // Unlinked: the miss stub stores the position and names the cell.
    let (code, s) = run(&mut rig, 1);
    assert_eq!(code, EXIT_NEXT);
    assert_eq!((s.x[1], s.pc, s.instret), (8, 0x8000_0004, 101));
    assert_eq!(s.last_exit, &cells[0] as *const LinkCell as usize);
    // Linked: A jumps to B, which runs at the pc A passes.
    cells[0].link(fb);
    let (_, s) = run(&mut rig, 1);
    assert_eq!((s.x[2], s.last_exit), (108, 0));
    assert_eq!(s.calls, vec![("exec", 0x8000_0008, 102, Op::Ecall as u64)]);
    // A cleared chain key: A returns before its first instruction.
    let (code, s) = run(&mut rig, 0);
    assert_eq!(code, EXIT_NEXT);
    assert_eq!((s.x[1], s.pc, s.instret), (7, 0x8000_0000, 100));
    cells[0].unlink(miss);
    let (_, s) = run(&mut rig, 1);
    assert_eq!((s.x[2], s.pc), (0, 0x8000_0004));
}

fn fp_insn(op: Op, rd: u8, rs1: u8, rs2: u8, rm: u8) -> Insn {
    Insn {
        rm,
        ..insn(op, rd, rs1, rs2, 0)
    }
}

/// Runs `insns` with f registers `f` and `fflags`, returning the state.
fn run_fp(rig: &mut Rig, insns: &[Insn], f: &[(usize, u64)], fflags: u8) -> (u64, State) {
    let code = rig.compiler.compile(insns, 0x4000_0000).expect("compiles");
    let mut s = rig.state(&[]);
    for &(r, v) in f {
        s.f[r] = v;
    }
    s.fflags = fflags;
    let hart = &mut *s as *mut State as *mut u8;
    // SAFETY: as in `Rig::run_until`.
    let status = unsafe { rig.entry.run(hart, code, 0x8000_0000, 100) };
    (status, *s)
}

#[test]
fn double_arithmetic_runs_on_the_host_with_exact_inexact_flags() {
    let mut rig = Rig::new();
    let d = |v: f64| v.to_bits();
    let cases: &[(Op, f64, f64, f64, u8)] = &[
        (Op::FaddD, 1.5, 2.25, 3.75, 0),
        (Op::FaddD, 0.1, 0.2, 0.1 + 0.2, 1),
        (Op::FsubD, 1.0, 1.0, 0.0, 0),
        (Op::FmulD, 3.0, 0.5, 1.5, 0),
        (Op::FmulD, 0.1, 3.0, 0.1 * 3.0, 1),
        (Op::FmulD, 0.0, -5.0, -0.0, 0),
        (Op::FdivD, 1.0, 4.0, 0.25, 0),
        (Op::FdivD, 1.0, 3.0, 1.0 / 3.0, 1),
        (Op::FsqrtD, 9.0, 0.0, 3.0, 0),
        (Op::FsqrtD, 2.0, 0.0, std::f64::consts::SQRT_2, 1),
    ];
    for &(op, a, b, want, nx) in cases {
        let (code, s) = run_fp(
            &mut rig,
            &[fp_insn(op, 3, 1, 2, 0)],
            &[(1, d(a)), (2, d(b))],
            0,
        );
        assert_eq!(code, EXIT_NEXT);
        assert_eq!((s.f[3], s.fflags), (d(want), nx), "{op:?} {a} {b}");
        assert!(s.calls.is_empty(), "{op:?} {a} {b}: fast path");
        assert_eq!(s.mstatus & (3 << 13), 3 << 13, "FS dirty");
    }
}

#[test]
fn special_values_and_other_rounding_modes_take_the_slow_path() {
    let mut rig = Rig::new();
    let d = |v: f64| v.to_bits();
    let cases: &[(Op, f64, f64, u8)] = &[
        (Op::FaddD, f64::NAN, 1.0, 0),
        (Op::FdivD, 1.0, 0.0, 0),
        (Op::FmulD, f64::MAX, 2.0, 0),
        (Op::FmulD, 1e-300, 1e-300, 0),
        (Op::FmulD, f64::MIN_POSITIVE, 0.5, 0),
    ];
    for &(op, a, b, rm) in cases {
        let block = [fp_insn(op, 3, 1, 2, rm), insn(Op::Addi, 5, 0, 0, 1)];
        let (code, s) = run_fp(&mut rig, &block, &[(1, d(a)), (2, d(b))], 0);
        assert_eq!(code, EXIT_NEXT);
        assert_eq!(
            s.calls,
            vec![("exec", 0x8000_0000, 100, op as u64)],
            "{op:?} {a} {b} rm {rm}: exec_one, then the run ends"
        );
        assert_eq!((s.pc, s.x[5]), (0x8000_0004, 0));
    }
    // Another static rounding mode: the interpreter's semantics, and on.
    let block = [fp_insn(Op::FaddD, 3, 1, 2, 3), insn(Op::Addi, 5, 0, 0, 1)];
    let (_, s) = run_fp(&mut rig, &block, &[(1, d(1.0)), (2, d(2.0))], 0);
    assert_eq!(s.calls, vec![("exec", 0x8000_0000, 100, Op::FaddD as u64)]);
    assert_eq!((s.pc, s.x[5]), (0x8000_0008, 1));
    // FS = Off: the slow path raises the illegal-instruction exception.
    let code = rig
        .compiler
        .compile(&[fp_insn(Op::FaddD, 3, 1, 2, 0)], 0x4000_0000)
        .expect("compiles");
    let mut s = rig.state(&[]);
    s.mstatus = 0;
    let hart = &mut *s as *mut State as *mut u8;
    // SAFETY: as in `Rig::run_until`.
    unsafe { rig.entry.run(hart, code, 0x8000_0000, 100) };
    assert_eq!(s.calls, vec![("exec", 0x8000_0000, 100, Op::FaddD as u64)]);
}

#[test]
fn single_precision_operands_must_be_nan_boxed() {
    let mut rig = Rig::new();
    let s = |v: f32| 0xffff_ffff_0000_0000 | u64::from(v.to_bits());
    let (_, st) = run_fp(
        &mut rig,
        &[fp_insn(Op::FaddS, 3, 1, 2, 0)],
        &[(1, s(1.5)), (2, s(2.0))],
        0,
    );
    assert_eq!((st.f[3], st.fflags), (s(3.5), 0));
    assert!(st.calls.is_empty());
    // An unboxed operand reads as the canonical NaN: the slow path.
    let (_, st) = run_fp(
        &mut rig,
        &[fp_insn(Op::FaddS, 3, 1, 2, 0)],
        &[(1, u64::from(1.5f32.to_bits())), (2, s(2.0))],
        0,
    );
    assert_eq!(st.calls.len(), 1);
    // Sign injection and moves are bit operations.
    let block = [
        fp_insn(Op::FsgnjnD, 4, 1, 1, 0),
        fp_insn(Op::FmvXD, 6, 4, 0, 0),
        fp_insn(Op::FsgnjxS, 5, 2, 2, 0),
    ];
    let (_, st) = run_fp(&mut rig, &block, &[(1, 2.5f64.to_bits()), (2, s(-1.0))], 0);
    assert_eq!(st.f[4], (-2.5f64).to_bits());
    assert_eq!(st.x[6], (-2.5f64).to_bits());
    assert_eq!(st.f[5], s(1.0));
    assert!(st.calls.is_empty());
}

#[test]
fn fp_loads_box_singles_and_conversions_to_integers_truncate() {
    let mut rig = Rig::new();
    rig.page.0[0..4].copy_from_slice(&2.5f32.to_bits().to_le_bytes());
    let block = [
        insn(Op::Flw, 1, 10, 0, 0),
        insn(Op::Fsd, 0, 10, 1, 8),
        fp_insn(Op::FcvtWD, 5, 2, 0, 1),
        fp_insn(Op::FcvtDW, 3, 11, 0, 0),
        fp_insn(Op::FltD, 6, 3, 2, 0),
    ];
    let code = rig.compiler.compile(&block, 0x4000_0000).expect("compiles");
    let mut s = rig.state(&[(10, PAGE), (11, (-7i64) as u64)]);
    s.f[2] = (-3.75f64).to_bits();
    let hart = &mut *s as *mut State as *mut u8;
    // SAFETY: as in `Rig::run_until`.
    unsafe { rig.entry.run(hart, code, 0x8000_0000, 100) };
    assert_eq!(s.f[1], 0xffff_ffff_0000_0000 | u64::from(2.5f32.to_bits()));
    assert_eq!(
        u64::from_le_bytes(rig.page.0[8..16].try_into().unwrap()),
        s.f[1],
        "fsd stores all 64 bits"
    );
    assert_eq!(s.x[5], (-3i64) as u64, "rtz");
    assert_eq!(s.fflags, 1, "the fraction was dropped: NX");
    assert_eq!(s.f[3], (-7.0f64).to_bits());
    assert_eq!(s.x[6], 1, "-7 < -3.75");
    assert!(s.calls.is_empty());
}

#[test]
fn csr_reads_of_hart_fields_run_inline_after_a_privilege_check() {
    let mut rig = Rig::new();
    // csrrs x5, sscratch, x0; addi x6, x5, 1
    let block = [insn(Op::Csrrs, 5, 0, 0, 0x140), insn(Op::Addi, 6, 5, 0, 1)];
    let code = rig.compiler.compile(&block, 0x4000_0000).expect("compiles");
    for (prv, inline) in [(3u8, true), (1, true), (0, false)] {
        let mut s = rig.state(&[]);
        s.prv = prv;
        s.sscratch = 41;
        let hart = &mut *s as *mut State as *mut u8;
        // SAFETY: as in `Rig::run_until`.
        unsafe { rig.entry.run(hart, code, 0x8000_0000, 100) };
        if inline {
            assert!(s.calls.is_empty(), "prv {prv}");
            assert_eq!(
                (s.x[5], s.x[6], s.pc, s.instret),
                (41, 42, 0x8000_0008, 102)
            );
        } else {
            // U-mode may not read an S-mode CSR: the slow path takes the trap.
            assert_eq!(s.calls, vec![("exec", 0x8000_0000, 100, Op::Csrrs as u64)]);
        }
    }
}
