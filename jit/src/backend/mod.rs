//! The Cranelift backend (tier 1): compiles one block of [`Insn`]s into a host function
//! `extern "C" fn(hart: *mut u8) -> u64`.
//!
//! This crate cannot name the runtime's hart type (dependencies point from the runtime
//! to the JIT), so the runtime describes the state compiled code touches with a
//! [`StateLayout`] and hands over the functions compiled code may call as a
//! [`Helpers`] table (declared once, in [`helpers!`]).
//!
//! What compiled code does inline: RV64I integer ops, M, most of Zba/Zbb/Zbs, Zicond,
//! branches and jumps, integer and floating-point loads and stores through the inline
//! L1 TLB probe ([`mem`]), and F/D moves, sign injection, and arithmetic, comparisons
//! and conversions where the host FPU is bit-exact ([`fp`]). Every other instruction is
//! one call of the `exec_one` helper, which runs the interpreter's semantics for it, so
//! every instruction works in compiled code.
//!
//! Precise state at helper calls: before any helper that can trap or read `pc`/`instret`,
//! compiled code writes back the x registers it changed, the current pc and the exact
//! retired-instruction count. Helpers report traps through their return value (non-zero:
//! the trap was taken, stop); nothing unwinds through compiled frames.
//!
//! Exit codes of a block function: [`EXIT_NEXT`] (the block ran to its end, `pc` holds
//! the next pc), or [`EXIT_TRAP`] (a helper took a trap; `pc` is the handler).
//!
//! Block chaining: a compiled function takes the hart pointer, its run-time pc, the
//! retired-instruction count and a link cell (below), so one block can jump to the
//! next (a tail call) without going through memory or the runtime. An exit to a fixed
//! successor in the block's own page (a branch, a `jal`, the fall-through) jumps
//! through a [`LinkCell`] the runtime owns, unconditionally: the cell holds either the
//! successor's code or the runtime's *miss stub* ([`Entry::miss_stub`]), which stores
//! the pc, the count and the cell's address (`last_exit`) and returns, so the runtime
//! can fill the cell once it knows the successor's code. The runtime points every cell
//! it filled back at the stub whenever code or PMP may have changed. An indirect jump
//! (and a fixed successor elsewhere) probes the runtime's table of compiled blocks,
//! whose entries carry the link epoch they were made in.
//!
//! The chain key is the exit-request word (Architecture: "Harts, threads, devices"),
//! checked on entry to every compiled function and at loop back-edges. While compiled
//! code may chain it holds the hart's link epoch (bumped whenever code or PMP may have
//! changed); any thread that needs the hart back (a pending interrupt, a timer
//! deadline, a stop) clears it, and compiled code returns at the next block it enters.
//! The same page means the same physical page: translation and PMP were checked when
//! the chain was entered.

mod arena;
mod fp;
mod mem;
mod translate;

pub use arena::CODE_CACHE_BYTES;

use cranelift_codegen::ir::{self, AbiParam, InstBuilder, UserFuncName};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::frontend::Insn;

/// The block ran to its end; the hart's pc holds the next pc.
pub const EXIT_NEXT: u64 = 0;
/// A helper raised a trap (the hart already entered the handler).
pub const EXIT_TRAP: u64 = 1;
/// What `exec_one` returns after a CSR write that changed nothing chaining relies on:
/// compiled code goes on to the next block (never returned to the runtime).
pub const EXIT_CHAIN: u64 = 2;
/// A memory helper's status: the L1 entry now grants the access (compiled code does it).
pub const MEM_HIT: u64 = 0;
/// A memory helper's status: it performed the whole instruction (the hart is at the
/// next one); compiled code returns [`EXIT_NEXT`].
pub const MEM_DONE: u64 = 2;

/// What a memory helper needs to finish a load or store itself: the access size (1, 2,
/// 4, 8), whether a load sign-extends, whether its register is an f register (`flw`,
/// `fld`, `fsw`, `fsd`; a single is NaN-boxed), the instruction's length and a load's
/// `rd` (a store's `rs2`), packed into one integer argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemKind {
    pub size: u8,
    pub signed: bool,
    pub fp: bool,
    pub len: u8,
    pub rd: u8,
}

impl MemKind {
    pub const fn pack(size: u8, signed: bool, fp: bool, len: u8, rd: u8) -> u64 {
        size as u64
            | (signed as u64) << 8
            | (fp as u64) << 9
            | (len as u64) << 16
            | (rd as u64) << 24
    }

    pub const fn unpack(k: u64) -> Self {
        Self {
            size: k as u8,
            signed: (k >> 8) & 1 != 0,
            fp: (k >> 9) & 1 != 0,
            len: (k >> 16) as u8,
            rd: (k >> 24) as u8 & 31,
        }
    }
}

/// A compiled block: code in Cranelift's `tail` calling convention that takes a
/// pointer to the hart state the [`StateLayout`] describes, the pc it runs at, the
/// retired-instruction count and the link cell it was entered through (or 0), and
/// returns [`EXIT_NEXT`] or [`EXIT_TRAP`] with the state's pc and count stored. The `tail` convention has no callee-saved registers (a
/// block's prologue saves nothing) and lets a block jump to its successor with
/// `return_call_indirect`, so a chain of blocks runs without returning. Rust enters
/// blocks through [`Entry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct BlockFn(std::ptr::NonNull<u8>);

// SAFETY: a BlockFn is the address of finished, immutable code; calling it is what
// needs care (see `Entry::run`), not holding or passing it between threads.
unsafe impl Send for BlockFn {}
unsafe impl Sync for BlockFn {}

impl BlockFn {
    pub fn addr(self) -> usize {
        self.0.as_ptr() as usize
    }

    /// # Safety
    /// `addr` is the address of a compiled block (from [`BlockFn::addr`]).
    pub unsafe fn from_addr(addr: usize) -> Option<Self> {
        std::ptr::NonNull::new(addr as *mut u8).map(Self)
    }
}

/// The bridge from Rust's calling convention to compiled blocks': a function
/// `extern "C" fn(hart, block, pc, instret) -> u64` that calls
/// `block(hart, pc, instret, 0)`; and the miss stub that link cells not linked to a
/// block point at.
pub struct Entry {
    _module: JITModule,
    f: EntryFn,
    miss: usize,
    thunks: Thunks,
}

type EntryFn = unsafe extern "C" fn(*mut u8, *const u8, u64, u64) -> u64;

// SAFETY: after `Entry::new` the module is never used again except to be dropped; what
// threads share are the addresses of its finished code (the trampoline, the miss stub,
// the thunks), which nothing writes.
unsafe impl Send for Entry {}
unsafe impl Sync for Entry {}

impl Entry {
    /// The trampoline, the miss stub and the helper thunks, for a state of `layout`.
    ///
    /// Compiled code calls each of `helpers` through a thunk in the `preserve_all`
    /// calling convention, which saves every register the helper (a C function) may
    /// clobber: a helper call on a slow path then costs the main line no registers,
    /// where C's convention would make the block keep every value live across it in
    /// one of the few callee-saved registers (saved and restored on each entry and
    /// exit of the block) or on the stack. `preserve_all` returns no values, so a thunk
    /// leaves the helper's status in the state (`helper_status`).
    pub fn new(layout: &StateLayout, helpers: &Helpers) -> Result<Self, Error> {
        let isa = host_isa()?;
        let mut module = JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()));
        let ptr = isa.pointer_type();
        let err = |source| Error::Compile {
            pc: 0,
            source: Box::new(source),
        };
        let mut ctx = module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        // Defines a one-block function `name` of `sig` whose body `body` builds from
        // the function's parameters.
        let mut define = |module: &mut JITModule,
                          name: &str,
                          sig: ir::Signature,
                          body: &mut dyn FnMut(&mut FunctionBuilder, &[ir::Value])|
         -> Result<FuncId, Error> {
            ctx.func.signature = sig.clone();
            {
                let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
                let block = b.create_block();
                b.append_block_params_for_function_params(block);
                b.switch_to_block(block);
                let p = b.block_params(block).to_vec();
                body(&mut b, &p);
                b.seal_all_blocks();
                b.finalize(module.target_config());
            }
            let id = module
                .declare_function(name, Linkage::Local, &sig)
                .map_err(err)?;
            module.define_function(id, &mut ctx).map_err(err)?;
            module.clear_context(&mut ctx);
            Ok(id)
        };

        let mut sig = module.make_signature();
        for ty in [ptr, ptr, ir::types::I64, ir::types::I64] {
            sig.params.push(AbiParam::new(ty));
        }
        sig.returns.push(AbiParam::new(ir::types::I64));
        let entry = define(&mut module, "rivet_enter", sig, &mut |b, p| {
            let callee = b.import_signature(block_signature(ptr));
            let no_cell = b.ins().iconst(ptr, 0);
            let call = b
                .ins()
                .call_indirect(callee, p[1], &[p[0], p[2], p[3], no_cell]);
            let status = b.inst_results(call)[0];
            b.ins().return_(&[status]);
        })?;

        // The miss stub: a block's exit through a cell not linked to code.
        let miss = define(
            &mut module,
            "rivet_miss",
            block_signature(ptr),
            &mut |b, p| {
                let flags = translate::state_flags();
                b.ins().store(flags, p[1], p[0], layout.pc);
                b.ins().store(flags, p[2], p[0], layout.instret);
                b.ins().store(flags, p[3], p[0], layout.last_exit);
                let next = b.ins().iconst(ir::types::I64, EXIT_NEXT as i64);
                b.ins().return_(&[next]);
            },
        )?;

        let mut thunk_ids = Vec::new();
        for &h in Helper::ALL {
            let (addr, arity) = helpers.get(h);
            let mut sig = ir::Signature::new(CallConv::PreserveAll);
            let mut c_sig = ir::Signature::new(isa.default_call_conv());
            for _ in 0..arity {
                sig.params.push(AbiParam::new(ir::types::I64));
                c_sig.params.push(AbiParam::new(ir::types::I64));
            }
            c_sig.returns.push(AbiParam::new(ir::types::I64));
            let name = format!("rivet_thunk_{h:?}");
            let id = define(&mut module, &name, sig, &mut |b, p| {
                let c_sig = b.import_signature(c_sig.clone());
                let callee = b.ins().iconst(ir::types::I64, addr as i64);
                let call = b.ins().call_indirect(c_sig, callee, p);
                let status = b.inst_results(call)[0];
                b.ins()
                    .store(translate::state_flags(), status, p[0], layout.helper_status);
                b.ins().return_(&[]);
            })?;
            thunk_ids.push((id, arity));
        }

        module.finalize_definitions().map_err(err)?;
        let code = module.get_finalized_function(entry);
        let miss = module.get_finalized_function(miss) as usize;
        let thunks = Thunks(
            thunk_ids
                .into_iter()
                .map(|(id, arity)| (module.get_finalized_function(id) as usize, arity))
                .collect(),
        );
        Ok(Self {
            _module: module,
            // SAFETY: the function just compiled has this signature in the host's
            // default (C) calling convention.
            f: unsafe { std::mem::transmute::<*const u8, EntryFn>(code) },
            miss,
            thunks,
        })
    }

    /// The helper thunks, for [`Compiler::new`]. They live as long as this `Entry`.
    pub fn thunks(&self) -> Thunks {
        self.thunks.clone()
    }

    /// The address of the miss stub, for [`LinkCell::new`]. It lives as long as this
    /// `Entry`.
    pub fn miss_stub(&self) -> usize {
        self.miss
    }

    /// Runs `block` (and the blocks it chains to) on `hart`, at `pc` with `instret`
    /// instructions retired (the state's own values).
    ///
    /// # Safety
    /// `block` is live code compiled against the layout of the state `hart` points to,
    /// which nothing else uses during the call.
    #[inline]
    pub unsafe fn run(&self, hart: *mut u8, block: BlockFn, pc: u64, instret: u64) -> u64 {
        // SAFETY: guaranteed by the caller.
        unsafe { (self.f)(hart, block.0.as_ptr(), pc, instret) }
    }
}

/// The signature of a compiled block.
pub(crate) fn block_signature(ptr: ir::Type) -> ir::Signature {
    let mut sig = ir::Signature::new(CallConv::Tail);
    for ty in [ptr, ir::types::I64, ir::types::I64, ptr] {
        sig.params.push(AbiParam::new(ty));
    }
    sig.returns.push(AbiParam::new(ir::types::I64));
    sig
}

/// Cranelift for this host, with Rivet's settings.
fn host_isa() -> Result<OwnedTargetIsa, Error> {
    let mut flags = settings::builder();
    // cranelift-jit needs non-PIC code and absolute libcall addresses.
    for (k, v) in [
        ("use_colocated_libcalls", "false"),
        ("is_pic", "false"),
        ("opt_level", "none"),
        // The translator's output is checked by tests and `--lockstep`; the IR
        // verifier would cost a tenth of all compile time.
        ("enable_verifier", "false"),
        // The single-pass allocator compiles a third faster but spills every value
        // to the stack; the code it emits ran the Linux boot 35% slower.
        ("regalloc_algorithm", "backtracking"),
        // Profilers walk chains of compiled blocks by frame pointer.
        ("preserve_frame_pointers", "true"),
        // Nothing unwinds through compiled code (helpers are `extern "C"` and do not
        // unwind); without unwind tables regions compile 10% faster.
        ("unwind_info", "false"),
    ] {
        flags.set(k, v).map_err(Error::Settings)?;
    }
    cranelift_native::builder()
        .map_err(|e| Error::Host(e.to_string()))?
        .finish(settings::Flags::new(flags))
        .map_err(Error::Isa)
}

/// One chaining link of a block exit: the code compiled code jumps to when it leaves
/// through this exit, the successor's or the miss stub. Compiled code reads it (a plain
/// aligned load, single-copy atomic on the hosts Cranelift supports); the runtime writes
/// it, from any thread, while other harts may be running the code that reads it.
#[repr(C)]
#[derive(Debug)]
pub struct LinkCell {
    pub target: AtomicUsize,
}

impl LinkCell {
    const TARGET: i32 = std::mem::offset_of!(LinkCell, target) as i32;

    /// A cell not linked: it leads to `miss_stub` ([`Entry::miss_stub`]).
    pub fn new(miss_stub: usize) -> Self {
        Self {
            target: AtomicUsize::new(miss_stub),
        }
    }

    /// Links the exit to `f`.
    pub fn link(&self, f: BlockFn) {
        self.target.store(f.addr(), Ordering::Release);
    }

    /// Points the exit back at `miss_stub`.
    pub fn unlink(&self, miss_stub: usize) {
        self.target.store(miss_stub, Ordering::Release);
    }

    /// Where the exit leads now.
    pub fn get(&self) -> usize {
        self.target.load(Ordering::Acquire)
    }
}

/// The epoch of an empty entry of the table of compiled blocks: no chain key has it
/// (keys are link epochs, counted up from 1, or 0).
pub const UNLINKED: u64 = u64::MAX;

/// One block of a region (see [`Compiler::compile_region`]): its instructions and the
/// virtual pc they were decoded at.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub pc: u64,
    pub insns: &'a [Insn],
}

/// The fixed pcs a block (`insns` at `pc`) may continue at when it runs to its end:
/// both sides of a final branch, the target of a final `jal`, or the next pc when the
/// block stopped before a page boundary or at its length limit. None after any other
/// block-ending instruction (its successor is known only at run time).
pub fn successors(insns: &[Insn], pc: u64) -> [Option<u64>; 2] {
    let Some(last) = insns.last() else {
        return [None, None];
    };
    let at = insns[..insns.len() - 1]
        .iter()
        .fold(pc, |p, i| p.wrapping_add(u64::from(i.len)));
    let next = at.wrapping_add(u64::from(last.len));
    let target = at.wrapping_add(i64::from(last.imm) as u64);
    use crate::frontend::Op;
    match last.op {
        Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu => [Some(target), Some(next)],
        Op::Jal => [Some(target), None],
        _ if !last.ends_block() => [Some(next), None],
        _ => [None, None],
    }
}

/// Link cells a region of `blocks` blocks needs: each block has at most two fixed
/// exits.
pub fn link_cells_for(blocks: usize) -> usize {
    2 * blocks
}

/// The thunks compiled code calls helpers through (see [`Entry::new`]): their
/// addresses and numbers of arguments, by [`Helper`].
#[derive(Debug, Clone)]
pub struct Thunks(Vec<(usize, usize)>);

impl Thunks {
    pub(crate) fn get(&self, h: Helper) -> (usize, usize) {
        self.0[h as usize]
    }
}

/// Where compiled code finds the hart state: byte offsets from the hart pointer.
#[derive(Debug, Clone, Copy)]
pub struct StateLayout {
    /// `x[0..32]`, 8 bytes each, little-endian host.
    pub x: i32,
    pub pc: i32,
    pub instret: i32,
    /// A pointer to the L1 TLB table (of [`L1Layout::entries`] entries) of the data
    /// regime in effect. The runtime keeps it current at block entry and after every
    /// `exec_one` call (which may change privilege or `mstatus`).
    pub l1_data: i32,
    /// Where a helper thunk leaves the helper's status (u64).
    pub helper_status: i32,
    /// The current privilege (u8: 0 U, 1 S, 3 M), the virtualization mode V (u8: 0
    /// or 1), and the CSRs compiled code reads inline. With V=1 the S-level numbers
    /// reach the VS copies (H chapter), so inline reads of CSRs above U level are for
    /// V=0 only; the slow path serves V=1.
    pub prv: i32,
    pub virt: i32,
    pub csr_reads: &'static [CsrRead],
    /// `f[0..32]` (8 bytes each), `mstatus` and `vsstatus` (u64), `fflags` and `frm`
    /// (u8 each). With V=1 both `mstatus.FS` and `vsstatus.FS` gate floating point and
    /// both become Dirty.
    pub f: i32,
    pub mstatus: i32,
    pub vsstatus: i32,
    pub fflags: i32,
    pub frm: i32,
    /// Chaining (see the module docs): a pointer to the chain key (a u64 other
    /// threads may clear), and the link cell of the last exit that reached the miss
    /// stub (pointer).
    pub chain_key: i32,
    pub last_exit: i32,
    /// Indirect jumps chain too: a pointer to the L1 table of instruction fetches
    /// (of [`L1Layout`]'s shape), and a pointer to the table of compiled blocks by pc.
    pub l1_exec: i32,
    pub fast_table: i32,
    pub fast: FastLayout,
    pub l1: L1Layout,
}

/// A CSR whose value is a field of the hart state: a read of `num` (by a privilege the
/// CSR number allows) gives the u64 at `offset` masked with `mask`, with `mstatus.SD`
/// set when the field holds mstatus with FS or XS Dirty and `sd`.
#[derive(Debug, Clone, Copy)]
pub struct CsrRead {
    pub num: u16,
    pub offset: i32,
    pub mask: u64,
    pub sd: bool,
}

/// The shape of the runtime's table of compiled blocks: entry `(pc >> 1) & (2^bits - 1)`
/// holds a block's `pc`, the host address its code was read from (`host`, which the
/// L1 fetch entry must still give for `pc`), the link epoch it was verified in, and
/// its code `f` (each a u64).
#[derive(Debug, Clone, Copy)]
pub struct FastLayout {
    pub index_bits: u32,
    pub entry_shift: u32,
    pub pc: i32,
    pub host: i32,
    pub epoch: i32,
    pub f: i32,
}

/// The shape of one L1 TLB table (see the runtime's `tlb.rs`).
#[derive(Debug, Clone, Copy)]
pub struct L1Layout {
    /// log2 of the number of entries.
    pub index_bits: u32,
    /// log2 of the size of one entry in bytes.
    pub entry_shift: u32,
    /// log2 of the page size.
    pub page_shift: u32,
    /// Offsets of the load tag, store tag, fetch tag and host addend inside an entry.
    pub read: i32,
    pub write: i32,
    pub exec: i32,
    pub addend: i32,
    /// `l1_tag_mask(size)` for access sizes 1, 2, 4, 8.
    pub tag_mask: [u64; 4],
}

/// Declares the runtime functions compiled code calls, once: the [`Helpers`] table the
/// runtime fills in, and the [`Helper`] names the translator calls them by. Helpers
/// take the hart pointer first, then only integers and pointers, and return a `u64`
/// status (0: continue; non-zero: a trap was taken).
macro_rules! helpers {
    ($( $(#[$doc:meta])* fn $name:ident / $variant:ident ( hart $(, $arg:ident : $ty:ty)* ); )*) => {
        /// The runtime functions compiled code may call.
        #[derive(Clone, Copy)]
        pub struct Helpers {
            $( $(#[$doc])* pub $name: unsafe extern "C" fn(hart: *mut u8 $(, $arg: $ty)*) -> u64, )*
        }

        /// The name of one helper.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Helper {
            $( $variant, )*
        }

        impl Helper {
            pub(crate) const ALL: &[Helper] = &[$( Helper::$variant, )*];
        }

        impl Helpers {
            /// The helper's address and its number of arguments (the hart included).
            pub(crate) fn get(&self, h: Helper) -> (usize, usize) {
                match h {
                    $( Helper::$variant => {
                        let args: &[&str] = &["hart" $(, stringify!($arg))*];
                        (self.$name as usize, args.len())
                    } )*
                }
            }
        }
    };
}

helpers! {
    /// The slow path of the load at `pc` (`kind` packs a [`MemKind`]), with the x
    /// registers in the state exact and `instret` instructions retired before it:
    /// returns [`MEM_HIT`] when the L1 entry now grants the access (nothing was
    /// loaded); else performs the load (a device, a misaligned access), writes `rd`,
    /// sets pc and the retired count past it and returns [`MEM_DONE`], or takes its
    /// trap and returns [`EXIT_TRAP`].
    fn load / Load(hart, vaddr: u64, kind: u64, pc: u64, instret: u64);
    /// The slow path of a store of the low bytes of `value`, as `load`.
    fn store / Store(hart, vaddr: u64, value: u64, kind: u64, pc: u64, instret: u64);
    /// The slow path of the AMO `insn` at `pc` (`kind` packs its [`MemKind`]), as
    /// `store`: returns [`MEM_HIT`] when the L1 entry now grants the write (the fast
    /// path does the AMO on the host atomic); else executes the whole instruction and
    /// returns [`MEM_DONE`] or [`EXIT_TRAP`]. The slow path of `cbo.zero` too, which
    /// it always executes whole (it may be a privilege check that failed).
    fn amo / Amo(hart, vaddr: u64, insn: *const Insn, kind: u64, pc: u64, instret: u64);
    /// Executes the instruction `insn` at `pc` with the interpreter's semantics: sets pc
    /// to the next pc and counts the instruction retired; returns [`EXIT_TRAP`] after
    /// taking a trap, [`EXIT_NEXT`] to return to the runtime, or, only for a CSR write
    /// (which ends its block), [`EXIT_CHAIN`] when translation, privilege and the link
    /// epoch are as before and no interrupt is pending: the block then chains on.
    fn exec_one / ExecOne(hart, insn: *const Insn, pc: u64);
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("The host is not supported by Cranelift: {0}")]
    Host(String),
    #[error("Cranelift settings rejected")]
    Settings(#[source] settings::SetError),
    #[error("Cranelift could not compile the block at {pc:#x}")]
    Compile {
        pc: u64,
        #[source]
        source: Box<cranelift_module::ModuleError>,
    },
    #[error("Cranelift returned no code for the block at {0:#x}")]
    NoCode(u64),
    #[error("Cranelift could not build the ISA")]
    Isa(#[source] cranelift_codegen::CodegenError),
}

/// Compiles blocks into one code module. Code lives until [`Compiler::flush`].
pub struct Compiler {
    isa: OwnedTargetIsa,
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    layout: StateLayout,
    helpers: Thunks,
    /// Bytes of the code cache in use (shared with its arena).
    code_used: Arc<AtomicUsize>,
    cache_bytes: usize,
    blocks: usize,
    /// Whether jumps back to an earlier block of a region (or to the start of the same
    /// block) stay in compiled code, checking the chain key (else every such jump
    /// returns, so one call runs each block at most once).
    pub loops: bool,
    /// Print the host code of every compiled block to stderr.
    pub dump: bool,
    /// Write every region compiled, one line each (see [`parse_region`]), for
    /// replaying the compiles of a real run (`examples/compile_bench.rs`).
    pub record: Option<Box<dyn std::io::Write + Send>>,
    last: CompileStats,
}

/// The size of the last compiled function, for tuning the translator.
#[derive(Debug, Default, Clone, Copy)]
pub struct CompileStats {
    /// Cranelift IR instructions and blocks.
    pub ir_insts: usize,
    pub ir_blocks: usize,
    /// Bytes of host code.
    pub code_bytes: usize,
}

/// A region as one line of text: its members as `pc:raw,raw,...`, separated by spaces.
pub fn format_region(members: &[Member]) -> String {
    let mut line = String::new();
    for (n, m) in members.iter().enumerate() {
        if n > 0 {
            line.push(' ');
        }
        line.push_str(&format!("{:x}:", m.pc));
        let raws: Vec<String> = m.insns.iter().map(|i| format!("{:x}", i.raw)).collect();
        line.push_str(&raws.join(","));
    }
    line
}

/// The members of a region written by [`format_region`] (pc and decoded instructions).
pub fn parse_region(line: &str) -> Option<Vec<(u64, Vec<Insn>)>> {
    line.split_whitespace()
        .map(|m| {
            let (pc, raws) = m.split_once(':')?;
            let pc = u64::from_str_radix(pc, 16).ok()?;
            let insns = raws
                .split(',')
                .map(|r| u32::from_str_radix(r, 16).ok().map(crate::frontend::decode))
                .collect::<Option<Vec<_>>>()?;
            Some((pc, insns))
        })
        .collect()
}

impl Compiler {
    /// A compiler whose code cache reserves `cache_bytes` (see [`CODE_CACHE_BYTES`]),
    /// for code that calls helpers through `helpers` (of an [`Entry`] that outlives it).
    pub fn new(layout: StateLayout, helpers: Thunks, cache_bytes: usize) -> Result<Self, Error> {
        let isa = host_isa()?;
        let code_used = Arc::new(AtomicUsize::new(0));
        // Where the host refuses read-write-execute memory, cranelift-jit's own provider
        // (a mapping per block, no size limit) still works.
        let arena = arena::Arena::new(cache_bytes, code_used.clone()).ok();
        let module = Self::new_module(&isa, arena);
        let ctx = module.make_context();
        Ok(Self {
            isa,
            module,
            code_used,
            cache_bytes,
            ctx,
            fctx: FunctionBuilderContext::new(),
            layout,
            helpers,
            blocks: 0,
            loops: false,
            dump: false,
            record: None,
            last: CompileStats::default(),
        })
    }

    /// A module whose code goes to `arena`, or (when no arena could be mapped) to
    /// cranelift-jit's page-per-block memory.
    fn new_module(isa: &OwnedTargetIsa, arena: Option<arena::Arena>) -> JITModule {
        let mut builder = JITBuilder::with_isa(isa.clone(), default_libcall_names());
        if let Some(a) = arena {
            builder.memory_provider(Box::new(a));
        }
        JITModule::new(builder)
    }

    /// Bytes of the code cache in use.
    pub fn code_used(&self) -> usize {
        self.code_used.load(Ordering::Relaxed)
    }

    /// Blocks compiled since the last flush.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// The size of the function compiled last.
    pub fn last_stats(&self) -> CompileStats {
        self.last
    }

    /// Compiles the block `insns` whose first instruction is at virtual `pc`.
    ///
    /// The returned code embeds pointers into `insns` (for `exec_one`): the caller keeps
    /// `insns` alive and unmoved as long as it may call the function.
    pub fn compile(&mut self, insns: &[Insn], pc: u64) -> Result<BlockFn, Error> {
        self.compile_region(&[Member { pc, insns }], None)
    }

    /// Compiles a region: the block `members[0]` and blocks of the same page it may
    /// continue at (by [`successors`]); control passes between members inside the
    /// function, with guest registers kept in host registers. Exits to fixed pcs
    /// outside the region chain through `links` (cells the caller keeps alive and
    /// unmoved as the members' instructions, at least [`link_cells_for`] of them) and
    /// the table of compiled blocks; without `links` every exit returns.
    pub fn compile_region(
        &mut self,
        members: &[Member],
        links: Option<&[LinkCell]>,
    ) -> Result<BlockFn, Error> {
        let pc = members.first().map_or(0, |m| m.pc);
        if let Some(out) = &mut self.record {
            // Best effort: a developer's aid.
            let _ = writeln!(out, "{}", format_region(members));
        }
        let err = |source| Error::Compile {
            pc,
            source: Box::new(source),
        };
        self.module.clear_context(&mut self.ctx);
        let ptr = self.module.target_config().pointer_type();
        let sig = block_signature(ptr);
        self.ctx.func.signature = sig.clone();
        self.ctx.func.name = UserFuncName::user(0, self.blocks as u32);
        let cells: Option<Vec<i64>> =
            links.map(|l| l.iter().map(|c| c as *const LinkCell as i64).collect());
        translate::translate(
            &mut self.ctx.func,
            &mut self.fctx,
            &self.layout,
            &self.helpers,
            members,
            self.module.target_config(),
            self.loops,
            cells.as_deref(),
        );
        // Named after the guest pc, so profiles of compiled code (cranelift-jit writes
        // /tmp/perf-PID.map under `perf record`) say which guest code ran.
        let name = format!("guest_{pc:x}_{}", self.blocks);
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(err)?;
        self.last = CompileStats {
            ir_insts: self
                .ctx
                .func
                .layout
                .blocks()
                .fold(0, |n, b| n + self.ctx.func.layout.block_insts(b).count()),
            ir_blocks: self.ctx.func.layout.blocks().count(),
            code_bytes: 0,
        };
        let dump = self.dump;
        self.ctx.set_disasm(dump);
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(err)?;
        if dump {
            if let Some(vcode) = self.ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
                eprintln!("{name}:\n{vcode}");
            }
        }
        self.last.code_bytes = self
            .ctx
            .compiled_code()
            .map_or(0, |c| c.code_buffer().len());
        self.module.finalize_definitions().map_err(err)?;
        let code = self.module.get_finalized_function(id);
        self.blocks += 1;
        std::ptr::NonNull::new(code as *mut u8)
            .map(BlockFn)
            .ok_or(Error::NoCode(pc))
    }

    /// Frees all compiled code.
    ///
    /// # Safety
    /// No [`BlockFn`] returned by this compiler may run or be called afterwards.
    pub unsafe fn flush(&mut self) {
        let arena = arena::Arena::new(self.cache_bytes, self.code_used.clone()).ok();
        let old = std::mem::replace(&mut self.module, Self::new_module(&self.isa, arena));
        // SAFETY: the caller guarantees no code of the old module runs again.
        unsafe { old.free_memory() };
        self.blocks = 0;
    }
}

#[cfg(test)]
mod tests;
