//! The Cranelift backend (tier 1): compiles one block of [`Insn`]s into a host function
//! `extern "C" fn(hart: *mut u8) -> u64`.
//!
//! This crate cannot name the runtime's hart type (dependencies point from the runtime
//! to the JIT), so the runtime describes the state compiled code touches with a
//! [`StateLayout`] and hands over the functions compiled code may call as a
//! [`Helpers`] table (declared once, in [`helpers!`]).
//!
//! What compiled code does inline: RV64I integer ops, M, most of Zba/Zbb/Zbs, Zicond,
//! branches and jumps, integer loads and stores through the inline L1 TLB probe
//! ([`mem`]). Every other instruction is one call of the `exec_one` helper, which runs
//! the interpreter's semantics for it, so every instruction works in compiled code.
//!
//! Precise state at helper calls: before any helper that can trap or read `pc`/`instret`,
//! compiled code writes back the x registers it changed, the current pc and the exact
//! retired-instruction count. Helpers report traps through their return value (non-zero:
//! the trap was taken, stop); nothing unwinds through compiled frames.
//!
//! Exit codes of a block function: [`EXIT_NEXT`] (the block ran to its end, `pc` holds
//! the next pc), [`EXIT_TRAP`] (a helper took a trap; `pc` is the handler), or the
//! address of the compiled successor to call next (block chaining, below).
//!
//! Block chaining: an exit to a fixed successor in the block's own page (a branch, a
//! `jal`, the fall-through) goes through a [`LinkCell`] the runtime owns. When the
//! cell's epoch equals the state's `link_epoch` and the state's `chain_left` is not
//! zero, the block decrements `chain_left` and returns the cell's target instead of
//! [`EXIT_NEXT`]; otherwise it stores the cell's address in `last_exit` so the runtime
//! can fill the cell once it knows the successor's code. The same page means the same
//! physical page (translation and PMP were checked when the chain was entered); the
//! runtime bumps `link_epoch` whenever code or PMP may have changed, which unlinks every
//! cell at once.

mod arena;
mod mem;
mod translate;

pub use arena::CODE_CACHE_BYTES;

use cranelift_codegen::ir::{self, AbiParam, InstBuilder, UserFuncName};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::frontend::Insn;

/// The block ran to its end; the hart's pc holds the next pc.
pub const EXIT_NEXT: u64 = 0;
/// A helper raised a trap (the hart already entered the handler).
pub const EXIT_TRAP: u64 = 1;

/// A compiled block: code in Cranelift's `tail` calling convention that takes a
/// pointer to the hart state the [`StateLayout`] describes and returns [`EXIT_NEXT`]
/// or [`EXIT_TRAP`]. The `tail` convention has no callee-saved registers (a block's
/// prologue saves nothing) and lets a block jump to its successor with
/// `return_call_indirect`, so a chain of blocks runs without returning. Rust enters
/// blocks through [`Entry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct BlockFn(std::ptr::NonNull<u8>);

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
/// `extern "C" fn(hart, block) -> u64` that calls `block(hart)`.
pub struct Entry {
    _module: JITModule,
    f: unsafe extern "C" fn(*mut u8, *const u8) -> u64,
}

impl Entry {
    pub fn new() -> Result<Self, Error> {
        let isa = host_isa()?;
        let mut module = JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()));
        let ptr = isa.pointer_type();
        let mut sig = module.make_signature();
        sig.params.push(AbiParam::new(ptr));
        sig.params.push(AbiParam::new(ptr));
        sig.returns.push(AbiParam::new(ir::types::I64));
        let mut ctx = module.make_context();
        ctx.func.signature = sig.clone();
        let mut fctx = FunctionBuilderContext::new();
        {
            let mut b = cranelift_frontend::FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let block = b.create_block();
            b.append_block_params_for_function_params(block);
            b.switch_to_block(block);
            let (hart, code) = (b.block_params(block)[0], b.block_params(block)[1]);
            let callee = b.import_signature(block_signature(ptr));
            let call = b.ins().call_indirect(callee, code, &[hart]);
            let status = b.inst_results(call)[0];
            b.ins().return_(&[status]);
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        let err = |source| Error::Compile {
            pc: 0,
            source: Box::new(source),
        };
        let id = module
            .declare_function("rivet_enter", Linkage::Local, &sig)
            .map_err(err)?;
        module.define_function(id, &mut ctx).map_err(err)?;
        module.finalize_definitions().map_err(err)?;
        let code = module.get_finalized_function(id);
        Ok(Self {
            _module: module,
            // SAFETY: the function just compiled has this signature in the host's
            // default (C) calling convention.
            f: unsafe {
                std::mem::transmute::<*const u8, unsafe extern "C" fn(*mut u8, *const u8) -> u64>(
                    code,
                )
            },
        })
    }

    /// Runs `block` (and the blocks it chains to) on `hart`.
    ///
    /// # Safety
    /// `block` is live code compiled against the layout of the state `hart` points to,
    /// which nothing else uses during the call.
    #[inline]
    pub unsafe fn run(&self, hart: *mut u8, block: BlockFn) -> u64 {
        // SAFETY: guaranteed by the caller.
        unsafe { (self.f)(hart, block.0.as_ptr()) }
    }
}

/// The signature of a compiled block.
pub(crate) fn block_signature(ptr: ir::Type) -> ir::Signature {
    let mut sig = ir::Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(ptr));
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
    ] {
        flags.set(k, v).map_err(Error::Settings)?;
    }
    cranelift_native::builder()
        .map_err(|e| Error::Host(e.to_string()))?
        .finish(settings::Flags::new(flags))
        .map_err(Error::Isa)
}

/// One chaining link of a block exit: the successor's code and the `link_epoch` it was
/// linked in. Compiled code reads it; the runtime writes it between blocks.
#[repr(C)]
#[derive(Debug, Default)]
pub struct LinkCell {
    pub target: std::cell::Cell<usize>,
    pub epoch: std::cell::Cell<u64>,
}

impl LinkCell {
    const TARGET: i32 = std::mem::offset_of!(LinkCell, target) as i32;
    const EPOCH: i32 = std::mem::offset_of!(LinkCell, epoch) as i32;

    /// Links the exit to `f` for the current `epoch`.
    pub fn link(&self, f: BlockFn, epoch: u64) {
        self.target.set(f.addr());
        self.epoch.set(epoch);
    }
}

/// The link cells of one block: exit 0 is the taken branch or jump (or a loop's
/// restart), exit 1 the fall-through.
pub type Links = [LinkCell; 2];

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
    /// Where the `load` helper leaves the value it loaded.
    pub mem_value: i32,
    /// Chaining (see the module docs): the current link epoch (u64), chained blocks
    /// still allowed (u64), and the link cell of the last unchained exit (pointer).
    pub link_epoch: i32,
    pub chain_left: i32,
    pub last_exit: i32,
    /// Indirect jumps chain too: a pointer to the L1 table of instruction fetches
    /// (of [`L1Layout`]'s shape), and a pointer to the table of compiled blocks by pc.
    pub l1_exec: i32,
    pub fast_table: i32,
    pub fast: FastLayout,
    pub l1: L1Layout,
}

/// The shape of the runtime's table of compiled blocks: entry `(pc >> 1) & (2^bits - 1)`
/// holds a block's `pc`, the host address its code was read from (`host`, which the
/// L1 fetch entry must still give for `pc`), the `link_epoch` it was verified in, and
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
    /// The load slow path (L1 miss, MMIO, misaligned): loads `size` (1, 2, 4, 8) bytes
    /// zero-extended into the state's `mem_value`; returns 0, or non-zero after taking
    /// the access's trap.
    fn load / Load(hart, vaddr: u64, size: u64);
    /// The store slow path: stores the low `size` bytes of `value`.
    fn store / Store(hart, vaddr: u64, size: u64, value: u64);
    /// Executes the instruction `insn` at `pc` with the interpreter's semantics: sets pc
    /// to the next pc and counts the instruction retired; returns non-zero after taking
    /// a trap.
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
    helpers: Helpers,
    /// Bytes of the code cache in use (shared with its arena).
    code_used: Arc<AtomicUsize>,
    cache_bytes: usize,
    blocks: usize,
    /// Iterations a self-looping block may run per call (0: never loop inside compiled
    /// code, so one call runs the block exactly once).
    pub loop_iterations: u32,
    /// Print the host code of every compiled block to stderr.
    pub dump: bool,
}

impl Compiler {
    /// A compiler whose code cache reserves `cache_bytes` (see [`CODE_CACHE_BYTES`]).
    pub fn new(layout: StateLayout, helpers: Helpers, cache_bytes: usize) -> Result<Self, Error> {
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
            loop_iterations: 0,
            dump: false,
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

    /// Compiles the block `insns` whose first instruction is at virtual `pc`.
    ///
    /// The returned code embeds pointers into `insns` (for `exec_one`): the caller keeps
    /// `insns` alive and unmoved as long as it may call the function.
    pub fn compile(&mut self, insns: &[Insn], pc: u64) -> Result<BlockFn, Error> {
        self.compile_linked(insns, pc, None)
    }

    /// As [`Compiler::compile`], with the exits to fixed successors in the block's page
    /// going through `links` (which the caller keeps alive and unmoved as `insns`).
    pub fn compile_linked(
        &mut self,
        insns: &[Insn],
        pc: u64,
        links: Option<&Links>,
    ) -> Result<BlockFn, Error> {
        let err = |source| Error::Compile {
            pc,
            source: Box::new(source),
        };
        self.module.clear_context(&mut self.ctx);
        let ptr = self.module.target_config().pointer_type();
        let sig = block_signature(ptr);
        self.ctx.func.signature = sig.clone();
        self.ctx.func.name = UserFuncName::user(0, self.blocks as u32);
        translate::translate(
            &mut self.ctx.func,
            &mut self.fctx,
            &self.layout,
            &self.helpers,
            insns,
            pc,
            self.module.target_config(),
            self.loop_iterations,
            links.map(|l| {
                [
                    &l[0] as *const LinkCell as i64,
                    &l[1] as *const LinkCell as i64,
                ]
            }),
        );
        // Named after the guest pc, so profiles of compiled code (cranelift-jit writes
        // /tmp/perf-PID.map under `perf record`) say which guest code ran.
        let name = format!("guest_{pc:x}_{}", self.blocks);
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(err)?;
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
