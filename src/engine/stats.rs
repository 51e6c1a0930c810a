//! Counters of the dispatcher, for `--stats`.

/// How block lookups were satisfied, for `--stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct DispatchStats {
    /// Compiled blocks found in the compact table.
    pub fast: u64,
    /// Blocks found as the cached successor of the block interpreted before.
    pub next: u64,
    /// Instructions the interpreter retired (the rest ran in compiled code).
    pub interpreted: u64,
    /// Of those, instructions of blocks already sent to the compiler thread: the
    /// interpreter runs them while their code is on its way.
    pub queued: u64,
    /// Blocks found in the jump cache.
    pub jump: u64,
    /// Blocks found by physical address after a jump-cache miss.
    pub map: u64,
    /// Blocks decoded.
    pub decoded: u64,
    /// `fence.i` executions.
    pub fence_i: u64,
    /// Compiled code entered from the dispatcher.
    pub compiled_runs: u64,
    /// `--lockstep`: compiled runs compared with the interpreter, and runs left
    /// unchecked (they store to memory, read the host clock or touch a device).
    pub checked: u64,
    pub unchecked: u64,
}

impl DispatchStats {
    pub fn add(&mut self, o: &DispatchStats) {
        self.fast += o.fast;
        self.next += o.next;
        self.interpreted += o.interpreted;
        self.queued += o.queued;
        self.jump += o.jump;
        self.map += o.map;
        self.decoded += o.decoded;
        self.fence_i += o.fence_i;
        self.compiled_runs += o.compiled_runs;
        self.checked += o.checked;
        self.unchecked += o.unchecked;
    }
}
