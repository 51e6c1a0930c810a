//! Instruction IR -> Cranelift IR for one region: a block and the blocks of its page
//! it continues at (see [`super::Compiler::compile_region`]).
//!
//! Each member block is a Cranelift block; a jump to a member's pc is a jump inside the
//! function. x registers live in Cranelift variables: in a region of one block without
//! a loop they are loaded from the hart on first use; otherwise every register the
//! region names is loaded on entry, so each variable is defined before any member and
//! Cranelift's SSA construction joins the values at members with several predecessors.
//! Registers are written back when dirty before any helper call and at every exit. The
//! registers dirty on entry to a member are computed before translation (the union
//! over its predecessors); a jump into a member writes back what is dirty beyond that.
//!
//! `instret` is kept as (`base`, `k`): `base` is a variable (the count at the member's
//! entry, or after the last `exec_one`, which counts its own instruction) and `k` the
//! instructions retired since, known at compile time; writing `base + k` is idempotent,
//! so a slow path may write it and the main line write it again.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64, I8};
use cranelift_codegen::ir::{
    self, AbiParam, AtomicRmwOp, Function, InstBuilder, MemFlagsData, Value,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

use super::{
    successors, Helper, LinkCell, Member, StateLayout, Thunks, EXIT_CHAIN, EXIT_NEXT, EXIT_TRAP,
    MEM_DONE,
};
use crate::arch::csr::mstatus;
use crate::frontend::{Insn, Op};

pub(super) struct Tx<'a> {
    pub b: FunctionBuilder<'a>,
    pub hart: Value,
    pub layout: &'a StateLayout,
    helpers: &'a Thunks,
    vars: [Option<Variable>; 32],
    dirty: u32,
    /// The retired-instruction count at the current member's entry (or after the last
    /// `exec_one`): `instret_base` is its value in the block being translated.
    instret: Variable,
    instret_base: Value,
    /// The pc the region was entered at, and the pc `start` it was compiled for: code
    /// is keyed by physical address and may run at any virtual address that maps it, so
    /// every pc compiled code produces is `pc0 + (pc - start)`.
    pc0: Value,
    start: u64,
    /// Instructions retired since `instret_base` was read.
    pub k: i64,
    sigs: [Option<ir::SigRef>; 8],
    /// The region's members: pc, Cranelift block, registers dirty on entry.
    members: Vec<(u64, ir::Block, u32)>,
    /// The member being translated.
    cur: usize,
    /// Whether jumps back to an earlier member (or the same one) stay inside the
    /// function (see `Compiler::loops`).
    loops: bool,
    /// The address of the chain key (loaded once, on entry).
    key_ptr: Value,
    /// The registers whose values pass from member to member in host registers (the
    /// rest is loaded in each member that uses it and written back before it leaves).
    carried: u32,
    /// This member checked that FS is not Off, and set FS to Dirty (see `fp.rs`).
    pub fp_checked: bool,
    pub fs_dirty: bool,
    /// The region's members continue at each other (so it may loop): memory slow
    /// paths write back the dirty registers themselves rather than the main line
    /// before every access (see `mem.rs`).
    pub joined: bool,
    /// Addresses of the region's link cells when it chains, and how many are used.
    links: Option<&'a [i64]>,
    links_used: usize,
    /// The L1 table pointer of the data regime, once loaded in the current member (it
    /// changes only in `exec_one`, after which it is loaded again).
    pub l1_table: Option<Value>,
    /// The block that returns a helper's non-zero status (see [`Tx::exit_if_trap`]).
    trap: Option<ir::Block>,
    /// The blocks' signature.
    block_sig: Option<ir::SigRef>,
    /// 64-bit values made by sign-extending a 32-bit one, and that one: a W
    /// operation on such a value takes the 32-bit value instead of truncating again,
    /// so chains of W operations extend only the values that are used at 64 bits (the
    /// others are never lowered).
    narrow: HashMap<Value, Value>,
}

/// The x registers `i` reads or writes, and those it writes (by its operand format).
fn x_regs(i: &Insn) -> (u32, u32) {
    let args = i.op.format().args();
    let bit = |r: u8| if r == 0 { 0 } else { 1u32 << (r & 31) };
    let writes = if args.starts_with('d') { bit(i.rd) } else { 0 };
    let mut uses = writes;
    if args.contains('s') {
        uses |= bit(i.rs1);
    }
    if args.contains('t') {
        uses |= bit(i.rs2);
    }
    (uses, writes)
}

/// Registers possibly dirty on entry to each member: the least solution of
/// `dirty[s] = union over members m continuing at s of (dirty[m] | writes(m))`.
fn dirty_on_entry(
    members: &[Member],
    carried: u32,
    index: impl Fn(u64) -> Option<usize>,
) -> Vec<u32> {
    let writes: Vec<u32> = members
        .iter()
        .map(|m| m.insns.iter().fold(0, |w, i| w | x_regs(i).1) & carried)
        .collect();
    let mut dirty = vec![0u32; members.len()];
    loop {
        let mut changed = false;
        for (n, m) in members.iter().enumerate() {
            let out = dirty[n] | writes[n];
            for s in successors(m.insns, m.pc).into_iter().flatten() {
                if let Some(s) = index(s) {
                    if dirty[s] | out != dirty[s] {
                        dirty[s] |= out;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return dirty;
        }
    }
}

/// Registers a region keeps in host registers from member to member: none without
/// joins; else the [`CARRIED`] the region's instructions name most often. More are
/// spilled by the register allocator anyway (x86-64 has 15 registers, and compiled
/// code keeps five values of its own), and each carried register is live, and costs
/// compile time, across the whole function: on the gzip workload's regions, carrying
/// 8 instead of all compiled 15% faster into 9% less code.
fn carried_registers(members: &[Member], index: impl Fn(u64) -> Option<usize>) -> u32 {
    let joined = members.iter().any(|m| {
        successors(m.insns, m.pc)
            .into_iter()
            .flatten()
            .any(|s| index(s).is_some())
    });
    if !joined {
        return 0;
    }
    let mut count = [0u32; 32];
    for i in members.iter().flat_map(|m| m.insns.iter()) {
        let uses = x_regs(i).0;
        for (r, c) in count.iter_mut().enumerate().skip(1) {
            *c += (uses >> r) & 1;
        }
    }
    let mut regs: Vec<usize> = (1..32).filter(|&r| count[r] > 0).collect();
    regs.sort_by_key(|&r| std::cmp::Reverse(count[r]));
    regs.iter().take(CARRIED).fold(0, |m, &r| m | 1 << r)
}

/// The access size of an AMO.
fn amo_size(op: Op) -> u8 {
    use Op::*;
    match op {
        AmoswapW | AmoaddW | AmoxorW | AmoandW | AmoorW | AmominW | AmomaxW | AmominuW
        | AmomaxuW => 4,
        _ => 8,
    }
}

/// See [`carried_registers`].
const CARRIED: usize = 8;

/// Flags for the hart state: always valid and aligned, never trapping.
pub(super) fn state_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

// One call site (`Compiler::compile_region`), which owns every argument separately.
#[allow(clippy::too_many_arguments)]
pub(super) fn translate(
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    layout: &StateLayout,
    helpers: &Thunks,
    members: &[Member],
    config: cranelift_codegen::isa::TargetFrontendConfig,
    loops: bool,
    links: Option<&[i64]>,
) {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let (hart, pc0, v) = {
        let p = b.block_params(entry);
        (p[0], p[1], p[2])
    };
    let instret = b.declare_var(I64);
    b.def_var(instret, v);
    let key_ptr = b.ins().load(I64, state_flags(), hart, layout.chain_key);
    let index = |pc: u64| members.iter().position(|m| m.pc == pc);
    let carried = carried_registers(members, index);
    let dirty = dirty_on_entry(members, carried, index);
    let blocks: Vec<(u64, ir::Block, u32)> = members
        .iter()
        .zip(dirty)
        .map(|(m, d)| (m.pc, b.create_block(), d))
        .collect();
    let start = members.first().map_or(0, |m| m.pc);
    let mut t = Tx {
        b,
        pc0,
        start,
        hart,
        layout,
        helpers,
        vars: [None; 32],
        dirty: 0,
        instret,
        instret_base: v,
        k: 0,
        sigs: [None; 8],
        members: blocks,
        cur: 0,
        loops,
        key_ptr,
        joined: false,
        fp_checked: false,
        fs_dirty: false,
        carried: 0,
        links,
        links_used: 0,
        l1_table: None,
        trap: None,
        block_sig: None,
        narrow: HashMap::new(),
    };
    let edges: Vec<(usize, usize)> = members
        .iter()
        .enumerate()
        .flat_map(|(n, m)| {
            successors(m.insns, m.pc)
                .into_iter()
                .flatten()
                .filter_map(move |s| index(s).map(|s| (n, s)))
        })
        .collect();
    t.joined = !edges.is_empty();
    t.carried = carried;
    // Control joins inside the function: define every register carried across
    // members here, where it dominates every member.
    for r in 1..32u8 {
        if carried & (1 << r) != 0 {
            t.get(r);
        }
    }
    // Return at once when another thread asked for the hart (the chain key cleared).
    let key = t.chain_key();
    let stop = t.b.create_block();
    t.b.set_cold_block(stop);
    match t.members.first() {
        Some(&(_, first, _)) => t.b.ins().brif(key, first, &[], stop, &[]),
        None => t.b.ins().jump(stop, &[]),
    };
    t.b.seal_block(stop);
    t.b.switch_to_block(stop);
    t.exit(pc0);
    for (n, m) in members.iter().enumerate() {
        t.enter_member(n);
        let mut pc = m.pc;
        let mut ended = false;
        for (k, i) in m.insns.iter().enumerate() {
            let last = k + 1 == m.insns.len();
            if t.insn(i, pc, last) {
                ended = true;
                break;
            }
            pc = pc.wrapping_add(u64::from(i.len));
        }
        if !ended {
            // The block stops before a page boundary or at its length limit.
            t.goto(pc);
        }
    }
    if let Some(trap) = t.trap {
        t.b.switch_to_block(trap);
        let status = t.b.block_params(trap)[0];
        // EXIT_TRAP stays, MEM_DONE becomes EXIT_NEXT.
        const _: () = assert!(EXIT_TRAP & 1 == 1 && MEM_DONE & 1 == EXIT_NEXT);
        let code = t.b.ins().band_imm_s(status, 1);
        t.b.ins().return_(&[code]);
    }
    t.b.seal_all_blocks();
    t.b.finalize(config);
}

impl Tx<'_> {
    /// Starts translating member `n`.
    fn enter_member(&mut self, n: usize) {
        let (_, block, dirty) = self.members[n];
        self.b.switch_to_block(block);
        self.cur = n;
        self.dirty = dirty;
        // The other registers are in the hart: loaded again on first use.
        for r in 1..32 {
            if self.carried & (1 << r) == 0 {
                self.vars[r] = None;
            }
        }
        self.instret_base = self.b.use_var(self.instret);
        self.k = 0;
        self.l1_table = None;
        self.fp_checked = false;
        self.fs_dirty = false;
    }

    /// Continues at the fixed pc `next`: inside the function when a member starts
    /// there, else by leaving the region ([`Tx::exit_to`]).
    fn goto(&mut self, next: u64) {
        let Some(n) = self.members.iter().position(|m| m.0 == next) else {
            return self.exit_to(next);
        };
        let (_, block, dirty) = self.members[n];
        // The member expects only `dirty` to differ from memory.
        for r in 1..32u8 {
            if self.dirty & !dirty & (1 << r) != 0 {
                let v = self.get(r);
                let off = self.layout.x + 8 * i32::from(r);
                self.b.ins().store(state_flags(), v, self.hart, off);
            }
        }
        let count = self.instret_now();
        self.b.def_var(self.instret, count);
        if n > self.cur {
            self.b.ins().jump(block, &[]);
            return;
        }
        // A loop: it goes round until the runtime asks compiled code to return (the
        // chain key cleared), so interrupts and stop requests are taken in time.
        let target = self.pc_value(next);
        if !self.loops {
            return self.exit(target);
        }
        let key = self.chain_key();
        let stop = self.b.create_block();
        self.b.set_cold_block(stop);
        self.b.ins().brif(key, block, &[], stop, &[]);
        self.b.switch_to_block(stop);
        self.exit(target);
    }

    /// The run-time value of the guest pc that is `pc` at compile time.
    fn pc_value(&mut self, pc: u64) -> Value {
        let delta = pc.wrapping_sub(self.start) as i64;
        self.add_imm(self.pc0, delta)
    }

    /// `v + imm` (Cranelift at `opt_level=none` would add a zero too).
    pub fn add_imm(&mut self, v: Value, imm: i64) -> Value {
        if imm == 0 {
            v
        } else {
            self.b.ins().iadd_imm_s(v, imm)
        }
    }

    /// The retired-instruction count before the instruction being translated.
    fn instret_now(&mut self) -> Value {
        self.add_imm(self.instret_base, self.k)
    }

    /// The value of x register `r`.
    pub fn get(&mut self, r: u8) -> Value {
        if r == 0 {
            return self.b.ins().iconst(I64, 0);
        }
        let var = self.var(r);
        self.b.use_var(var)
    }

    fn var(&mut self, r: u8) -> Variable {
        let r = usize::from(r & 31);
        if let Some(v) = self.vars[r] {
            return v;
        }
        let v = self.b.declare_var(I64);
        let off = self.layout.x + 8 * r as i32;
        let val = self.b.ins().load(I64, state_flags(), self.hart, off);
        self.b.def_var(v, val);
        self.vars[r] = Some(v);
        v
    }

    /// Writes x register `r` (writes to x0 are dropped).
    pub fn set(&mut self, r: u8, v: Value) {
        if r == 0 {
            return;
        }
        let r = r & 31;
        let var = match self.vars[usize::from(r)] {
            Some(var) => var,
            None => {
                let var = self.b.declare_var(I64);
                self.vars[usize::from(r)] = Some(var);
                var
            }
        };
        self.b.def_var(var, v);
        self.dirty |= 1 << r;
    }

    /// Stores the dirty x registers back into the hart; none is dirty afterwards.
    pub fn write_back(&mut self) {
        self.store_dirty();
        self.dirty = 0;
    }

    /// Stores the dirty x registers back into the hart, on a path that leaves them
    /// dirty on the main line (a slow path that may return).
    pub fn store_dirty(&mut self) {
        for r in 1..32u8 {
            if self.dirty & (1 << r) != 0 {
                let v = self.get(r);
                let off = self.layout.x + 8 * i32::from(r);
                self.b.ins().store(state_flags(), v, self.hart, off);
            }
        }
    }

    /// The run-time pc of the instruction at `pc` and the retired-instruction count
    /// before it, for a helper that stores them when it takes a trap.
    pub fn position(&mut self, pc: u64) -> (Value, Value) {
        let pcv = self.pc_value(pc);
        let n = self.instret_now();
        (pcv, n)
    }

    /// Makes the hart's pc, instret and x registers exact for the instruction at `pc`
    /// (not yet retired), before a helper that may trap or read them.
    pub fn sync(&mut self, pc: u64) {
        self.write_back();
        let pcv = self.pc_value(pc);
        self.b
            .ins()
            .store(state_flags(), pcv, self.hart, self.layout.pc);
        self.store_instret();
    }

    fn store_instret(&mut self) {
        let v = self.instret_now();
        self.b
            .ins()
            .store(state_flags(), v, self.hart, self.layout.instret);
    }

    /// Ends the function: state written back, pc = `next`, return [`EXIT_NEXT`].
    fn exit(&mut self, next: Value) {
        self.write_back();
        self.store_position(next);
        let code = self.b.ins().iconst(I64, EXIT_NEXT as i64);
        self.b.ins().return_(&[code]);
    }

    /// Stores the pc `next` and the retired-instruction count, for the runtime.
    fn store_position(&mut self, next: Value) {
        self.b
            .ins()
            .store(state_flags(), next, self.hart, self.layout.pc);
        self.store_instret();
    }

    /// The chain key now (see the module docs of [`super`]): loaded afresh at every
    /// use, since other threads clear it to ask compiled code to return.
    fn chain_key(&mut self) -> Value {
        let ptr = self.key_ptr;
        self.b.ins().load(I64, MemFlagsData::trusted(), ptr, 0)
    }

    /// Jumps to the compiled block at `code` for the pc `next`, entered through link
    /// cell `cell` (or 0): a tail call, whose exit is this function's. Registers must
    /// be written back.
    fn chain_to(&mut self, code: Value, next: Value, cell: Value) {
        let sig = match self.block_sig {
            Some(s) => s,
            None => {
                let ptr = self.b.func.dfg.value_type(self.hart);
                let s = self.b.import_signature(super::block_signature(ptr));
                self.block_sig = Some(s);
                s
            }
        };
        let n = self.instret_now();
        self.b
            .ins()
            .return_call_indirect(sig, code, &[self.hart, next, n, cell]);
    }

    /// Leaves the region for the fixed pc `next`: a pc in the region's page jumps
    /// through the next free link cell (see the module docs of [`super`]), any other
    /// chains through the table of compiled blocks, as an indirect jump does.
    fn exit_to(&mut self, next: u64) {
        let nextv = self.pc_value(next);
        let Some(cells) = self.links else {
            return self.exit(nextv);
        };
        let cell = match cells.get(self.links_used) {
            Some(&cell) if (next ^ self.start) & !0xfff == 0 => cell,
            _ => return self.exit_indirect(nextv),
        };
        self.links_used += 1;
        self.write_back();
        // The cell leads to the successor's code or to the miss stub.
        let cell = self.b.ins().iconst(I64, cell);
        let target = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), cell, LinkCell::TARGET);
        self.chain_to(target, nextv, cell);
    }

    /// Ends the function with a jump to the run-time pc `target`: when the region
    /// chains, the table of compiled blocks is probed inline and its code chained to
    /// when the entry is `target`'s, of the current chain key, and the L1 fetch entry
    /// of the current privilege still maps `target` to the host address the code was
    /// read from (the same checks as the dispatcher's).
    fn exit_indirect(&mut self, target: Value) {
        if self.links.is_none() {
            return self.exit(target);
        }
        self.write_back();
        let flags = MemFlagsData::trusted();
        let (fl, l1) = (self.layout.fast, self.layout.l1);
        let miss = self.b.create_block();
        let probe_l1 = self.b.create_block();
        let chain = self.b.create_block();
        self.b.set_cold_block(miss);
        // The table entry: its pc and epoch.
        let table = self
            .b
            .ins()
            .load(I64, flags, self.hart, self.layout.fast_table);
        let idx = self.b.ins().ushr_imm_u(target, 1);
        let idx = self.b.ins().band_imm_s(idx, (1i64 << fl.index_bits) - 1);
        let off = self.b.ins().ishl_imm_u(idx, i64::from(fl.entry_shift));
        let e = self.b.ins().iadd(table, off);
        let epc = self.b.ins().load(I64, flags, e, fl.pc);
        let epoch = self.b.ins().load(I64, flags, e, fl.epoch);
        let key = self.chain_key();
        let same_pc = self.b.ins().icmp(IntCC::Equal, epc, target);
        let same_key = self.b.ins().icmp(IntCC::Equal, epoch, key);
        let hit = self.b.ins().band(same_pc, same_key);
        self.b.ins().brif(hit, probe_l1, &[], miss, &[]);
        // The L1 fetch entry: the tag is the page when fetches may use it.
        self.b.switch_to_block(probe_l1);
        let l1t = self
            .b
            .ins()
            .load(I64, flags, self.hart, self.layout.l1_exec);
        let li = self.b.ins().ushr_imm_u(target, i64::from(l1.page_shift));
        let li = self.b.ins().band_imm_s(li, (1i64 << l1.index_bits) - 1);
        let loff = self.b.ins().ishl_imm_u(li, i64::from(l1.entry_shift));
        let le = self.b.ins().iadd(l1t, loff);
        let tag = self.b.ins().load(I64, flags, le, l1.exec);
        let page = self
            .b
            .ins()
            .band_imm_s(target, !((1i64 << l1.page_shift) - 1));
        let mapped = self.b.ins().icmp(IntCC::Equal, tag, page);
        let addend = self.b.ins().load(I64, flags, le, l1.addend);
        let host = self.b.ins().iadd(target, addend);
        let ehost = self.b.ins().load(I64, flags, e, fl.host);
        let same_host = self.b.ins().icmp(IntCC::Equal, host, ehost);
        let ok = self.b.ins().band(mapped, same_host);
        self.b.ins().brif(ok, chain, &[], miss, &[]);
        self.b.switch_to_block(chain);
        let f = self.b.ins().load(I64, flags, e, fl.f);
        let no_cell = self.b.ins().iconst(I64, 0);
        self.chain_to(f, target, no_cell);
        self.b.switch_to_block(miss);
        self.store_position(target);
        let code = self.b.ins().iconst(I64, EXIT_NEXT as i64);
        self.b.ins().return_(&[code]);
    }

    /// Calls helper `h` with the hart pointer followed by `args`; returns its result.
    /// The helper is reached through its thunk (see [`super::Entry::new`]), which
    /// preserves every register and leaves the status in the state.
    pub fn call(&mut self, h: Helper, args: &[Value]) -> Value {
        let (addr, arity) = self.helpers.get(h);
        debug_assert_eq!(arity, args.len() + 1);
        let sig = match self.sigs[arity] {
            Some(s) => s,
            None => {
                let mut sig = ir::Signature::new(cranelift_codegen::isa::CallConv::PreserveAll);
                for _ in 0..arity {
                    sig.params.push(AbiParam::new(I64));
                }
                let s = self.b.import_signature(sig);
                self.sigs[arity] = Some(s);
                s
            }
        };
        let callee = self.b.ins().iconst(I64, addr as i64);
        let mut all = Vec::with_capacity(arity);
        all.push(self.hart);
        all.extend_from_slice(args);
        self.b.ins().call_indirect(sig, callee, &all);
        self.b
            .ins()
            .load(I64, state_flags(), self.hart, self.layout.helper_status)
    }

    /// Returns the helper status `status` from the function when it is non-zero (the
    /// state in memory is then exact: see the callers). One block of the function does
    /// the returning for every helper call.
    pub fn exit_if_trap(&mut self, status: Value) {
        let cont = self.b.create_block();
        self.exit_if_trap_or(status, cont);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// Ends the current block: returns when the helper status `status` is non-zero
    /// ([`EXIT_TRAP`], or [`MEM_DONE`], which returns [`EXIT_NEXT`]), else continues
    /// at `cont`.
    pub fn exit_if_trap_or(&mut self, status: Value, cont: ir::Block) {
        let trap = match self.trap {
            Some(t) => t,
            None => {
                let t = self.b.create_block();
                self.b.set_cold_block(t);
                self.b.append_block_param(t, I64);
                self.trap = Some(t);
                t
            }
        };
        self.b.ins().brif(status, trap, &[status.into()], cont, &[]);
    }

    /// Branches to a new main-line block when `ok` is non-zero, else to a new cold
    /// one; leaves the builder in the cold block (sealed: its only predecessor is
    /// here) and returns the main-line one, for the caller to seal and switch to.
    pub(super) fn cold_unless(&mut self, ok: Value) -> ir::Block {
        let cont = self.b.create_block();
        let cold = self.b.create_block();
        self.b.set_cold_block(cold);
        self.b.ins().brif(ok, cont, &[], cold, &[]);
        self.b.seal_block(cold);
        self.b.switch_to_block(cold);
        cont
    }

    /// Continues on the main line when `ok` is non-zero; else the slow path: the
    /// instruction `i` runs through `exec_one` and the function returns.
    pub(super) fn slow_unless(&mut self, ok: Value, i: &Insn, pc: u64) {
        let cont = self.cold_unless(ok);
        self.store_dirty();
        let (pcv, n) = self.position(pc);
        self.b
            .ins()
            .store(state_flags(), pcv, self.hart, self.layout.pc);
        self.b
            .ins()
            .store(state_flags(), n, self.hart, self.layout.instret);
        let insn = self.b.ins().iconst(I64, i as *const Insn as i64);
        let status = self.call(Helper::ExecOne, &[insn, pcv]);
        self.b.ins().return_(&[status]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// Runs `i` through the interpreter's semantics.
    fn exec_one(&mut self, i: &Insn, pc: u64, last: bool) {
        self.sync(pc);
        // Registers in memory are now exact; exec_one may write rd (x or f).
        self.dirty = 0;
        let insn = self.b.ins().iconst(I64, i as *const Insn as i64);
        let pcv = self.pc_value(pc);
        let status = self.call(Helper::ExecOne, &[insn, pcv]);
        if last && i.writes_csr() {
            // EXIT_CHAIN: the write left what chaining relies on alone (see
            // `Helpers::exec_one`); the block goes on to its successor.
            let chain = self
                .b
                .ins()
                .icmp_imm_s(IntCC::Equal, status, EXIT_CHAIN as i64);
            let go = self.b.create_block();
            let ret = self.b.create_block();
            self.b.ins().brif(chain, go, &[], ret, &[]);
            self.b.seal_block(ret);
            self.b.switch_to_block(ret);
            self.b.ins().return_(&[status]);
            self.b.seal_block(go);
            self.b.switch_to_block(go);
            self.after_exec_one(i);
            self.goto(pc.wrapping_add(u64::from(i.len)));
            return;
        }
        if last {
            // exec_one set pc and instret; nothing else is dirty.
            self.b.ins().return_(&[status]);
            return;
        }
        self.exit_if_trap(status);
        self.after_exec_one(i);
    }

    /// After an `exec_one` call that retired `i`: its rd (in memory) and the retired
    /// count are read back.
    fn after_exec_one(&mut self, i: &Insn) {
        if i.rd != 0 {
            if let Some(var) = self.vars[usize::from(i.rd & 31)] {
                let off = self.layout.x + 8 * i32::from(i.rd & 31);
                let v = self.b.ins().load(I64, state_flags(), self.hart, off);
                self.b.def_var(var, v);
            }
        }
        // exec_one counted its instruction, and may have written minstret.
        self.instret_base = self
            .b
            .ins()
            .load(I64, state_flags(), self.hart, self.layout.instret);
        self.k = 0;
        // exec_one may have changed privilege or mstatus, and so the data regime.
        self.l1_table = None;
    }

    /// `n` (32 bits) sign-extended, remembered in `narrow`.
    pub(super) fn sextend32(&mut self, n: Value) -> Value {
        let v = self.b.ins().sextend(I64, n);
        self.narrow.insert(v, n);
        v
    }

    fn zext32(&mut self, v: Value) -> Value {
        let n = self.b.ins().ireduce(I32, v);
        self.b.ins().uextend(I64, n)
    }

    fn low32(&mut self, v: Value) -> Value {
        // The 32-bit value defines the extension, so it dominates every use of it.
        match self.narrow.get(&v) {
            Some(&n) => n,
            None => self.b.ins().ireduce(I32, v),
        }
    }

    fn flag(&mut self, cc: IntCC, a: Value, b: Value) -> Value {
        let c = self.b.ins().icmp(cc, a, b);
        self.b.ins().uextend(I64, c)
    }

    /// A 32-bit operation on the low halves of `a` and `b`, sign-extended.
    fn w(&mut self, a: Value, b: Value, f: impl FnOnce(&mut Self, Value, Value) -> Value) -> Value {
        let a = self.low32(a);
        let b = self.low32(b);
        let r = f(self, a, b);
        self.sextend32(r)
    }

    /// Division by the RISC-V rules (Unpriv spec "M", division table): x/0 = -1 (all
    /// ones), x%0 = x, MIN/-1 = MIN, MIN%-1 = 0. `a`, `b` have the operation's width.
    fn div(&mut self, a: Value, b: Value, signed: bool, rem: bool) -> Value {
        let ty = self.b.func.dfg.value_type(a);
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
        let mut bad = zero;
        if signed {
            let min = if ty == I32 {
                i64::from(i32::MIN)
            } else {
                i64::MIN
            };
            let amin = self.b.ins().icmp_imm_s(IntCC::Equal, a, min);
            let bm1 = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
            let ovf = self.b.ins().band(amin, bm1);
            bad = self.b.ins().bor(zero, ovf);
        }
        // A safe divisor: with 1, MIN/1 = MIN and MIN%1 = 0 are the overflow results.
        let one = self.b.ins().iconst(ty, 1);
        let d = self.b.ins().select(bad, one, b);
        let r = match (signed, rem) {
            (true, false) => self.b.ins().sdiv(a, d),
            (true, true) => self.b.ins().srem(a, d),
            (false, false) => self.b.ins().udiv(a, d),
            (false, true) => self.b.ins().urem(a, d),
        };
        let by_zero = if rem { a } else { self.b.ins().iconst(ty, -1) };
        self.b.ins().select(zero, by_zero, r)
    }

    /// Translates one instruction at `pc`; returns whether it ended the block (the
    /// function has returned).
    fn insn(&mut self, i: &Insn, pc: u64, last: bool) -> bool {
        let next = pc.wrapping_add(u64::from(i.len));
        let imm = i64::from(i.imm);
        let (rd, rs1, rs2) = (i.rd, i.rs1, i.rs2);

        macro_rules! rr {
            (|$t:ident, $a:ident, $b2:ident| $e:expr) => {{
                let $a = self.get(rs1);
                let $b2 = self.get(rs2);
                let $t = &mut *self;
                let v = $e;
                self.set(rd, v);
            }};
        }
        macro_rules! ri {
            (|$t:ident, $a:ident| $e:expr) => {{
                let $a = self.get(rs1);
                let $t = &mut *self;
                let v = $e;
                self.set(rd, v);
            }};
        }
        macro_rules! branch {
            ($cc:expr) => {{
                let a = self.get(rs1);
                let b = self.get(rs2);
                let c = self.b.ins().icmp($cc, a, b);
                self.k += 1;
                let taken = self.b.create_block();
                let fall = self.b.create_block();
                self.b.ins().brif(c, taken, &[], fall, &[]);
                self.b.switch_to_block(taken);
                // Leaving on one side writes back what is dirty on both.
                let dirty = self.dirty;
                self.goto(pc.wrapping_add(imm as u64));
                self.dirty = dirty;
                self.b.switch_to_block(fall);
                self.goto(next);
                return true;
            }};
        }

        match i.op {
            Op::Lui => {
                let v = self.b.ins().iconst(I64, imm);
                self.set(rd, v);
            }
            Op::Auipc => {
                let v = self.pc_value(pc.wrapping_add(imm as u64));
                self.set(rd, v);
            }
            Op::Jal => {
                let link = self.pc_value(next);
                self.set(rd, link);
                self.k += 1;
                self.goto(pc.wrapping_add(imm as u64));
                return true;
            }
            Op::Jalr => {
                // The target reads rs1 before rd is written (rd may equal rs1).
                let a = self.get(rs1);
                let t = self.add_imm(a, imm);
                let target = self.b.ins().band_imm_s(t, !1);
                let link = self.pc_value(next);
                self.set(rd, link);
                self.k += 1;
                self.exit_indirect(target);
                return true;
            }
            Op::Beq => branch!(IntCC::Equal),
            Op::Bne => branch!(IntCC::NotEqual),
            Op::Blt => branch!(IntCC::SignedLessThan),
            Op::Bge => branch!(IntCC::SignedGreaterThanOrEqual),
            Op::Bltu => branch!(IntCC::UnsignedLessThan),
            Op::Bgeu => branch!(IntCC::UnsignedGreaterThanOrEqual),

            Op::Lb => self.load(i, pc, 1, true),
            Op::Lh => self.load(i, pc, 2, true),
            Op::Lw => self.load(i, pc, 4, true),
            Op::Ld => self.load(i, pc, 8, false),
            Op::Lbu => self.load(i, pc, 1, false),
            Op::Lhu => self.load(i, pc, 2, false),
            Op::Lwu => self.load(i, pc, 4, false),
            Op::Sb => self.store(i, pc, 1),
            Op::Sh => self.store(i, pc, 2),
            Op::Sw => self.store(i, pc, 4),
            Op::Sd => self.store(i, pc, 8),
            Op::AmoswapW | Op::AmoswapD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::Xchg),
            Op::AmoaddW | Op::AmoaddD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::Add),
            Op::AmoxorW | Op::AmoxorD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::Xor),
            Op::AmoandW | Op::AmoandD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::And),
            Op::AmoorW | Op::AmoorD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::Or),
            Op::AmominW | Op::AmominD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::Smin),
            Op::AmomaxW | Op::AmomaxD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::Smax),
            Op::AmominuW | Op::AmominuD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::Umin),
            Op::AmomaxuW | Op::AmomaxuD => self.amo(i, pc, amo_size(i.op), AtomicRmwOp::Umax),

            Op::Addi => ri!(|t, a| t.add_imm(a, imm)),
            Op::Slti => ri!(|t, a| {
                let c = t.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, imm);
                t.b.ins().uextend(I64, c)
            }),
            Op::Sltiu => ri!(|t, a| {
                let c = t.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, a, imm);
                t.b.ins().uextend(I64, c)
            }),
            Op::Xori => ri!(|t, a| t.b.ins().bxor_imm_s(a, imm)),
            Op::Ori => ri!(|t, a| t.b.ins().bor_imm_s(a, imm)),
            Op::Andi => ri!(|t, a| t.b.ins().band_imm_s(a, imm)),
            Op::Slli => ri!(|t, a| t.b.ins().ishl_imm_s(a, imm & 63)),
            Op::Srli => ri!(|t, a| t.b.ins().ushr_imm_s(a, imm & 63)),
            Op::Srai => ri!(|t, a| t.b.ins().sshr_imm_s(a, imm & 63)),
            // Cranelift masks shift amounts to the type's width, as RISC-V does.
            Op::Add => rr!(|t, a, b| t.b.ins().iadd(a, b)),
            Op::Sub => rr!(|t, a, b| t.b.ins().isub(a, b)),
            Op::Sll => rr!(|t, a, b| t.b.ins().ishl(a, b)),
            Op::Slt => rr!(|t, a, b| t.flag(IntCC::SignedLessThan, a, b)),
            Op::Sltu => rr!(|t, a, b| t.flag(IntCC::UnsignedLessThan, a, b)),
            Op::Xor => rr!(|t, a, b| t.b.ins().bxor(a, b)),
            Op::Srl => rr!(|t, a, b| t.b.ins().ushr(a, b)),
            Op::Sra => rr!(|t, a, b| t.b.ins().sshr(a, b)),
            Op::Or => rr!(|t, a, b| t.b.ins().bor(a, b)),
            Op::And => rr!(|t, a, b| t.b.ins().band(a, b)),
            Op::Addiw => ri!(|t, a| {
                let a = t.low32(a);
                let s = t.add_imm(a, imm);
                t.sextend32(s)
            }),
            Op::Slliw => ri!(|t, a| {
                let a = t.low32(a);
                let s = t.b.ins().ishl_imm_s(a, imm & 31);
                t.sextend32(s)
            }),
            Op::Srliw => ri!(|t, a| {
                let a = t.low32(a);
                let s = t.b.ins().ushr_imm_s(a, imm & 31);
                t.sextend32(s)
            }),
            Op::Sraiw => ri!(|t, a| {
                let a = t.low32(a);
                let s = t.b.ins().sshr_imm_s(a, imm & 31);
                t.sextend32(s)
            }),
            Op::Addw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.b.ins().iadd(a, b))),
            Op::Subw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.b.ins().isub(a, b))),
            Op::Sllw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.b.ins().ishl(a, b))),
            Op::Srlw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.b.ins().ushr(a, b))),
            Op::Sraw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.b.ins().sshr(a, b))),

            // M
            Op::Mul => rr!(|t, a, b| t.b.ins().imul(a, b)),
            Op::Mulh => rr!(|t, a, b| t.b.ins().smulhi(a, b)),
            Op::Mulhu => rr!(|t, a, b| t.b.ins().umulhi(a, b)),
            // mulhsu(a, b) = mulhu(a, b) - (a < 0 ? b : 0): a signed a is a - 2^64 when
            // negative.
            Op::Mulhsu => rr!(|t, a, b| {
                let hi = t.b.ins().umulhi(a, b);
                let neg = t.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                let zero = t.b.ins().iconst(I64, 0);
                let fix = t.b.ins().select(neg, b, zero);
                t.b.ins().isub(hi, fix)
            }),
            Op::Div => rr!(|t, a, b| t.div(a, b, true, false)),
            Op::Divu => rr!(|t, a, b| t.div(a, b, false, false)),
            Op::Rem => rr!(|t, a, b| t.div(a, b, true, true)),
            Op::Remu => rr!(|t, a, b| t.div(a, b, false, true)),
            Op::Mulw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.b.ins().imul(a, b))),
            Op::Divw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.div(a, b, true, false))),
            Op::Divuw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.div(a, b, false, false))),
            Op::Remw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.div(a, b, true, true))),
            Op::Remuw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.div(a, b, false, true))),

            // Zba
            Op::AddUw => rr!(|t, a, b| {
                let a = t.zext32(a);
                t.b.ins().iadd(b, a)
            }),
            Op::Sh1add | Op::Sh2add | Op::Sh3add => rr!(|t, a, b| {
                let sh = match i.op {
                    Op::Sh1add => 1,
                    Op::Sh2add => 2,
                    _ => 3,
                };
                let s = t.b.ins().ishl_imm_s(a, sh);
                t.b.ins().iadd(b, s)
            }),
            Op::Sh1addUw | Op::Sh2addUw | Op::Sh3addUw => rr!(|t, a, b| {
                let sh = match i.op {
                    Op::Sh1addUw => 1,
                    Op::Sh2addUw => 2,
                    _ => 3,
                };
                let a = t.zext32(a);
                let s = t.b.ins().ishl_imm_s(a, sh);
                t.b.ins().iadd(b, s)
            }),
            Op::SlliUw => ri!(|t, a| {
                let a = t.zext32(a);
                t.b.ins().ishl_imm_s(a, imm & 63)
            }),
            // Zbb
            Op::Andn => rr!(|t, a, b| t.b.ins().band_not(a, b)),
            Op::Orn => rr!(|t, a, b| t.b.ins().bor_not(a, b)),
            Op::Xnor => rr!(|t, a, b| t.b.ins().bxor_not(a, b)),
            Op::Clz => ri!(|t, a| t.b.ins().clz(a)),
            Op::Ctz => ri!(|t, a| t.b.ins().ctz(a)),
            Op::Cpop => ri!(|t, a| t.b.ins().popcnt(a)),
            Op::Clzw | Op::Ctzw | Op::Cpopw => ri!(|t, a| {
                let a = t.low32(a);
                let r = match i.op {
                    Op::Clzw => t.b.ins().clz(a),
                    Op::Ctzw => t.b.ins().ctz(a),
                    _ => t.b.ins().popcnt(a),
                };
                t.b.ins().uextend(I64, r)
            }),
            Op::Max => rr!(|t, a, b| t.b.ins().smax(a, b)),
            Op::Maxu => rr!(|t, a, b| t.b.ins().umax(a, b)),
            Op::Min => rr!(|t, a, b| t.b.ins().smin(a, b)),
            Op::Minu => rr!(|t, a, b| t.b.ins().umin(a, b)),
            Op::SextB => ri!(|t, a| {
                let n = t.b.ins().ireduce(I8, a);
                t.b.ins().sextend(I64, n)
            }),
            Op::SextH => ri!(|t, a| {
                let n = t.b.ins().ireduce(ir::types::I16, a);
                t.b.ins().sextend(I64, n)
            }),
            Op::ZextH => ri!(|t, a| t.b.ins().band_imm_s(a, 0xffff)),
            Op::Rol => rr!(|t, a, b| t.b.ins().rotl(a, b)),
            Op::Ror => rr!(|t, a, b| t.b.ins().rotr(a, b)),
            Op::Rori => ri!(|t, a| t.b.ins().rotr_imm_s(a, imm & 63)),
            Op::Rolw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.b.ins().rotl(a, b))),
            Op::Rorw => rr!(|t, a, b| t.w(a, b, |t, a, b| t.b.ins().rotr(a, b))),
            Op::Roriw => ri!(|t, a| {
                let a = t.low32(a);
                let r = t.b.ins().rotr_imm_s(a, imm & 31);
                t.sextend32(r)
            }),
            Op::Rev8 => ri!(|t, a| t.b.ins().bswap(a)),
            // Each byte becomes 0xff when non-zero: adding 0x7f to its low seven bits
            // sets bit 7 unless they are all zero; bit 7 itself counts too.
            Op::OrcB => ri!(|t, a| {
                const LOW7: i64 = 0x7f7f_7f7f_7f7f_7f7f;
                let low = t.b.ins().band_imm_s(a, LOW7);
                let sum = t.b.ins().iadd_imm_s(low, LOW7);
                let any = t.b.ins().bor(sum, a);
                let top = t.b.ins().band_imm_s(any, 0x8080_8080_8080_8080_u64 as i64);
                let ones = t.b.ins().ushr_imm_s(top, 7);
                t.b.ins().imul_imm_s(ones, 0xff)
            }),
            // RVWMO fences (Unpriv spec "Memory Ordering Instructions") as one host
            // full barrier, as the interpreter does: x86-64 TSO alone would not order
            // earlier stores before later loads.
            Op::Fence | Op::FenceTso => {
                self.b.ins().fence();
            }
            // Zbs
            Op::Bclr | Op::Bext | Op::Binv | Op::Bset => rr!(|t, a, b| t.bit_op(i.op, a, b)),
            Op::Bclri | Op::Bexti | Op::Binvi | Op::Bseti => ri!(|t, a| {
                let n = t.b.ins().iconst(I64, imm & 63);
                t.bit_op(i.op, a, n)
            }),
            // Zicond
            Op::CzeroEqz | Op::CzeroNez => rr!(|t, a, b| {
                let zero = t.b.ins().iconst(I64, 0);
                if i.op == Op::CzeroEqz {
                    t.b.ins().select(b, a, zero)
                } else {
                    t.b.ins().select(b, zero, a)
                }
            }),

            Op::CboZero if self.cbo_zero(i, pc) => {}
            _ if self.fp_insn(i, pc) => {}
            _ if i.reads_csr_only() && self.csr_read(i, pc) => {}
            _ => {
                self.exec_one(i, pc, last);
                return last;
            }
        }
        self.k += 1;
        false
    }

    /// A read of a CSR of the layout's table (see [`super::CsrRead`]), inline: the
    /// privilege the CSR number requires (Priv spec 2.1) is checked at run time, the
    /// slow path raises the exception.
    fn csr_read(&mut self, i: &Insn, pc: u64) -> bool {
        let num = i.csr();
        if let Some(v) = self.fp_csr_read(i, pc) {
            self.set(i.rd, v);
            return true;
        }
        let Some(c) = self.layout.csr_reads.iter().find(|c| c.num == num).copied() else {
            return false;
        };
        let required = i64::from((num >> 8) & 3);
        if required > 0 {
            // The privilege the number needs, with V=0: with V=1 the S-level numbers
            // reach the VS copies and the rest trap, which the slow path does.
            let prv = self
                .b
                .ins()
                .uload8(I64, state_flags(), self.hart, self.layout.prv);
            let virt = self
                .b
                .ins()
                .uload8(I64, state_flags(), self.hart, self.layout.virt);
            let level = self
                .b
                .ins()
                .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, prv, required);
            let host = self.b.ins().icmp_imm_s(IntCC::Equal, virt, 0);
            let ok = self.b.ins().band(level, host);
            self.slow_unless(ok, i, pc);
        }
        let raw = self.b.ins().load(I64, state_flags(), self.hart, c.offset);
        let mut v = self.b.ins().band_imm_s(raw, c.mask as i64);
        if c.sd {
            // mstatus.SD: FS or XS Dirty (Priv spec 3.1.6.6).
            let sd = self.b.ins().iconst(I64, i64::MIN);
            let zero = self.b.ins().iconst(I64, 0);
            for field in [mstatus::FS as i64, mstatus::XS as i64] {
                let f = self.b.ins().band_imm_s(raw, field);
                let dirty = self.b.ins().icmp_imm_s(IntCC::Equal, f, field);
                let bit = self.b.ins().select(dirty, sd, zero);
                v = self.b.ins().bor(v, bit);
            }
        }
        self.set(i.rd, v);
        true
    }

    /// Zbs single-bit operations with bit index `n` (masked to 6 bits).
    fn bit_op(&mut self, op: Op, a: Value, n: Value) -> Value {
        let one = self.b.ins().iconst(I64, 1);
        let bit = self.b.ins().ishl(one, n);
        match op {
            Op::Bclr | Op::Bclri => self.b.ins().band_not(a, bit),
            Op::Binv | Op::Binvi => self.b.ins().bxor(a, bit),
            Op::Bset | Op::Bseti => self.b.ins().bor(a, bit),
            _ => {
                let s = self.b.ins().ushr(a, n);
                self.b.ins().band_imm_s(s, 1)
            }
        }
    }
}
