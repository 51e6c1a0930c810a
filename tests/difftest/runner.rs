//! Builds test programs with the cross compiler (cached by content hash under
//! target/difftest/), runs them on QEMU and on Rivet with a timeout each, and
//! compares the console output line by line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// ISA string for the cross compiler: everything the generated code uses that
/// binutils 2.40 knows (Zicond and Zfa are emitted as `.word`).
pub const MARCH: &str = "rv64gc_zba_zbb_zbc_zbs_zicbom_zicboz_zicbop_zawrs";

/// QEMU's CPU: the extensions Rivet implements, each stated explicitly so that a
/// change of QEMU's defaults cannot change the reference. On: H (the directed
/// hypervisor programs need it; the others only see it in misa). Off: V, Sstc
/// (stimecmp), Svvptc, Zihpm (and pmu-mask=0: no programmable counters, so
/// mcounteren holds only CY/TM/IR), Zihintntl, Zcb. Svadu on with Svade off: A/D
/// updates are then chosen by software through menvcfg.ADUE and henvcfg.ADUE, and
/// the tests exercise both settings.
pub const QEMU_CPU: &str = "rv64,i=true,m=true,a=true,f=true,d=true,c=true,s=true,u=true,\
h=true,v=false,zicsr=true,zifencei=true,zba=true,zbb=true,zbc=true,zbs=true,zicond=true,\
zicbom=true,zicboz=true,zicbop=true,zfa=true,zawrs=true,zihintpause=true,zicntr=true,\
zihpm=false,zihintntl=false,zcb=false,sstc=false,svadu=true,svade=false,svvptc=false,\
mmu=true,pmp=true,sv57=true,pmu-mask=0";

/// Why the suite cannot run here.
#[derive(Debug)]
pub struct Missing(pub String);

pub struct Toolchain {
    gcc: String,
    qemu: String,
    /// Mixed into every cache key.
    versions: String,
    out_dir: PathBuf,
}

fn version_of(prog: &str) -> Result<String, Missing> {
    let out = Command::new(prog)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Missing(format!("`{prog}` not runnable ({e})")))?;
    if !out.status.success() {
        return Err(Missing(format!("`{prog} --version` failed")));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

impl Toolchain {
    pub fn find() -> Result<Toolchain, Missing> {
        let gcc = std::env::var("RIVET_DIFFTEST_GCC")
            .unwrap_or_else(|_| "riscv64-unknown-elf-gcc".to_string());
        let qemu = std::env::var("RIVET_DIFFTEST_QEMU")
            .unwrap_or_else(|_| "qemu-system-riscv64".to_string());
        let versions = format!("{}\n{}", version_of(&gcc)?, version_of(&qemu)?);
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let out_dir = tmp
            .parent()
            .map(|p| p.join("difftest"))
            .unwrap_or_else(|| tmp.join("difftest"));
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| Missing(format!("cannot create {}: {e}", out_dir.display())))?;
        Ok(Toolchain {
            gcc,
            qemu,
            versions,
            out_dir,
        })
    }

    /// Compiles `sources` (name, text) with the runtime into an ELF; reuses a
    /// previous build with the same inputs. `stream` selects the random-stream
    /// runtime (stream.c, and the M-mode trap entry on sscratch).
    pub fn build(
        &self,
        name: &str,
        sources: &[(String, String)],
        stream: bool,
        defines: &[&str],
    ) -> PathBuf {
        let rt = runtime_dir();
        let mut rt_files: Vec<&str> = vec!["crt0.S", "rt.c"];
        if stream {
            rt_files.push("stream.c");
        }
        let mut key = Fnv::new();
        key.add(self.versions.as_bytes());
        key.add(MARCH.as_bytes());
        key.add(QEMU_CPU.as_bytes());
        for f in ["link.ld", "rt.h", "crt0.S", "rt.c", "stream.c"] {
            key.add(f.as_bytes());
            key.add(&std::fs::read(rt.join(f)).unwrap_or_default());
        }
        // Headers shared by the directed programs.
        let mut headers: Vec<PathBuf> = std::fs::read_dir(programs_dir())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        headers.retain(|p| p.extension().is_some_and(|e| e == "h"));
        headers.sort();
        for h in &headers {
            key.add(&std::fs::read(h).unwrap_or_default());
        }
        for (n, text) in sources {
            key.add(n.as_bytes());
            key.add(text.as_bytes());
        }
        key.add(format!("{stream}{defines:?}").as_bytes());
        let dir = self.out_dir.join(format!("{name}-{:016x}", key.0));
        let elf = dir.join("prog.elf");
        if elf.exists() {
            return elf;
        }
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let mut cmd = Command::new(&self.gcc);
        cmd.args([
            &format!("-march={MARCH}"),
            "-mabi=lp64d",
            "-mcmodel=medany",
            "-mno-relax",
            "-O2",
            "-g",
            "-nostdlib",
            "-nostartfiles",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-tree-loop-distribute-patterns",
            "-Wall",
            "-Werror",
            "-Wl,--no-warn-rwx-segments",
        ]);
        if stream {
            cmd.arg("-DRT_SCRATCH=sscratch");
        }
        for d in defines {
            cmd.arg(format!("-D{d}"));
        }
        cmd.arg(format!("-I{}", rt.display()));
        cmd.arg(format!("-I{}", programs_dir().display()));
        cmd.arg("-T").arg(rt.join("link.ld"));
        for f in &rt_files {
            cmd.arg(rt.join(f));
        }
        for (n, text) in sources {
            let p = dir.join(n);
            std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
            cmd.arg(p);
        }
        let tmp_elf = dir.join(format!("prog.elf.tmp{}", std::process::id()));
        cmd.arg("-o").arg(&tmp_elf);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.gcc));
        if !out.status.success() {
            panic!(
                "building {name} failed (sources kept in {}):\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::rename(&tmp_elf, &elf).unwrap_or_else(|e| panic!("rename {}: {e}", elf.display()));
        elf
    }

    pub fn qemu_command(&self, elf: &Path) -> Command {
        let mut c = Command::new(&self.qemu);
        c.args([
            "-M",
            "virt",
            "-m",
            "256M",
            "-smp",
            "1",
            "-nographic",
            "-bios",
            "none",
        ])
        .arg("-kernel")
        .arg(elf)
        .args(["-cpu", QEMU_CPU]);
        c
    }

    /// QEMU's output for `elf` with one guest instruction per translation block.
    ///
    /// QEMU's TCG optimises across the instructions of a block, and its result can
    /// differ from what the same instructions give one at a time (seen with Zbb
    /// sign-extension after `rorw`, and with Zfa accrued flags). The single-step run is
    /// QEMU's own reference semantics: when Rivet disagrees with the normal run, it must
    /// agree with this one. Cached next to the ELF like the normal run.
    pub fn qemu_single_step(&self, elf: &Path, timeout: Duration) -> RunResult {
        let cache = elf.with_extension("qemu1.out");
        if let Ok(text) = std::fs::read_to_string(&cache) {
            if let Some(stdout) = text.strip_prefix("exit 0\n") {
                return RunResult {
                    stdout: stdout.to_string(),
                    status: Some(0),
                    timed_out: false,
                    elapsed: Duration::ZERO,
                };
            }
        }
        let mut cmd = self.qemu_command(elf);
        cmd.args(["-accel", "tcg,one-insn-per-tb=on"]);
        let r = run(cmd, timeout * 4);
        if r.status == Some(0) && !r.timed_out {
            let _ = std::fs::write(&cache, format!("exit 0\n{}", r.stdout));
        }
        r
    }

    /// QEMU's output for `elf`, cached next to the ELF (the key is the ELF's
    /// directory, which already hashes QEMU's version).
    pub fn qemu_reference(&self, elf: &Path, timeout: Duration, use_cache: bool) -> RunResult {
        let cache = elf.with_extension("qemu.out");
        if use_cache {
            if let Ok(text) = std::fs::read_to_string(&cache) {
                if let Some(stdout) = text.strip_prefix("exit 0\n") {
                    return RunResult {
                        stdout: stdout.to_string(),
                        status: Some(0),
                        timed_out: false,
                        elapsed: Duration::ZERO,
                    };
                }
            }
        }
        let r = run(self.qemu_command(elf), timeout);
        if use_cache && r.status == Some(0) && !r.timed_out {
            let _ = std::fs::write(&cache, format!("exit 0\n{}", r.stdout));
        }
        r
    }
}

/// Rivet's execution engines the differential tests cover: `RIVET_DIFFTEST_ENGINES`
/// (comma-separated, of `interp`, `jit` and `lockstep`), by default all three.
pub fn engines() -> Vec<String> {
    let v =
        std::env::var("RIVET_DIFFTEST_ENGINES").unwrap_or_else(|_| "interp,jit,lockstep".into());
    let list: Vec<String> = v
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    for e in &list {
        assert!(
            e == "interp" || e == "jit" || e == "lockstep",
            "RIVET_DIFFTEST_ENGINES: unknown engine '{e}' (known: interp, jit, lockstep)"
        );
    }
    list
}

/// Runs `elf` on Rivet with `engine`: `interp`; `jit`, which compiles every block on
/// its second run on the hart's thread (so compiled code, loops and chaining run
/// deterministically); `lockstep`, which compiles every block on its first run and
/// cross-checks each block against the interpreter (`--lockstep`).
pub fn rivet_command(elf: &Path, engine: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rivet"));
    c.args([
        "run",
        "--machine",
        "virt",
        "--memory",
        "256M",
        "--bios",
        "none",
    ]);
    match engine {
        "interp" => c.args(["--engine", "interp"]),
        "jit" => c.args(["--engine", "jit", "--jit-threshold", "2", "--jit-sync"]),
        _ => c.args(["--engine", "jit", "--jit-threshold", "1", "--lockstep"]),
    };
    c.arg("--kernel").arg(elf);
    c
}

pub fn runtime_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/difftest/runtime")
}

pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/difftest/programs")
}

/// FNV-1a, stable across Rust versions (the cache key must not change with
/// the standard library's hasher).
pub struct Fnv(pub u64);

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        // Length separator so ("ab","c") and ("a","bc") differ.
        self.0 = (self.0 ^ bytes.len() as u64).wrapping_mul(0x100_0000_01b3);
    }
}

pub struct RunResult {
    pub stdout: String,
    pub status: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl RunResult {
    pub fn describe_exit(&self) -> String {
        if self.timed_out {
            format!(
                "killed after {:.1?} (timeout: a hang is a failure)",
                self.elapsed
            )
        } else {
            match self.status {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".to_string(),
            }
        }
    }
}

/// Output beyond this is cut (a runaway guest must not exhaust host memory).
const MAX_OUTPUT: u64 = 64 << 20;

/// Runs `cmd` with stdin closed, collecting stdout; kills it at `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> RunResult {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return RunResult {
                stdout: format!("<could not start {:?}: {e}>", cmd.get_program()),
                status: None,
                timed_out: false,
                elapsed: start.elapsed(),
            }
        }
    };
    let mut out = child.stdout.take().map(|o| o.take(MAX_OUTPUT));
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut buf);
        }
        buf
    });
    let mut err = child.stderr.take().map(|o| o.take(1 << 20));
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(o) = err.as_mut() {
            let _ = o.read_to_end(&mut buf);
        }
        buf
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code(),
            Ok(None) => {}
            Err(_) => break None,
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = true;
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let buf = reader.join().unwrap_or_default();
    let ebuf = err_reader.join().unwrap_or_default();
    let mut stdout = String::from_utf8_lossy(&buf).replace("\r\n", "\n");
    if !ebuf.is_empty() && status != Some(0) {
        let _ = write!(stdout, "\n<stderr>\n{}", String::from_utf8_lossy(&ebuf));
    }
    RunResult {
        stdout,
        status,
        timed_out,
        elapsed,
    }
}

/// Lines of a stream program's output, grouped by stream number.
pub fn by_stream(out: &str) -> BTreeMap<usize, Vec<&str>> {
    let mut m: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix('S') {
            if let Some((n, _)) = rest.split_once(' ') {
                if let Ok(n) = n.parse() {
                    m.entry(n).or_default().push(l);
                }
            }
        }
    }
    m
}

/// Checks that a reference run is complete: clean exit, the END marker and,
/// for stream programs, `streams` dumps. Returns what is wrong.
pub fn completeness(r: &RunResult, streams: Option<usize>) -> Result<(), String> {
    if r.timed_out || r.status != Some(0) {
        return Err(format!("did not exit cleanly: {}", r.describe_exit()));
    }
    let last = r.stdout.lines().last().unwrap_or("");
    if last != "END" {
        return Err(format!("last line is {last:?}, not \"END\""));
    }
    if let Some(n) = streams {
        if !r.stdout.contains(&format!("\nDONE {n}\n")) {
            return Err(format!("no \"DONE {n}\" line"));
        }
        let m = by_stream(&r.stdout);
        for i in 0..n {
            let has_hash = m
                .get(&i)
                .is_some_and(|ls| ls.last().is_some_and(|l| l.contains(" mhash=")));
            if !has_hash {
                return Err(format!("stream {i} has no complete dump"));
            }
        }
        if m.len() != n {
            return Err(format!("{} streams dumped, expected {n}", m.len()));
        }
    }
    Ok(())
}

/// Line-level comparison for directed programs: None when equal, otherwise a
/// report of the first difference with context.
pub fn compare_lines(expected: &str, actual: &str) -> Option<String> {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = (0..e.len().max(a.len())).find(|&i| e.get(i) != a.get(i))?;
    let mut s = String::new();
    let _ = writeln!(s, "first difference at line {}:", first + 1);
    let from = first.saturating_sub(6);
    for line in &e[from.min(e.len())..first.min(e.len())] {
        let _ = writeln!(s, "    {line}");
    }
    for line in e.iter().skip(first).take(8) {
        let _ = writeln!(s, "  - {line}");
    }
    if first >= e.len() {
        let _ = writeln!(s, "  - <end of QEMU output>");
    }
    for line in a.iter().skip(first).take(8) {
        let _ = writeln!(s, "  + {line}");
    }
    if first >= a.len() {
        let _ = writeln!(s, "  + <end of output>");
    }
    let _ = writeln!(s, "({} lines expected, {} lines got)", e.len(), a.len());
    Some(s)
}

/// Timeout for one emulator run: RIVET_DIFFTEST_TIMEOUT seconds, default 120.
pub fn timeout() -> Duration {
    let secs = std::env::var("RIVET_DIFFTEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_lines_reports_first_difference() {
        assert!(compare_lines("a\nb\nEND\n", "a\nb\nEND\n").is_none());
        let r = compare_lines("a\nb\nEND\n", "a\nc\nEND\n").unwrap_or_default();
        assert!(
            r.contains("line 2") && r.contains("- b") && r.contains("+ c"),
            "{r}"
        );
        let r = compare_lines("a\nb\nEND\n", "a\n").unwrap_or_default();
        assert!(r.contains("<end of output>"), "{r}");
    }

    #[test]
    fn completeness_detects_truncation() {
        let ok = RunResult {
            stdout: "S0 x1=0\nS0 mhash=1\nS1 mhash=2\nDONE 2\nEND\n".to_string(),
            status: Some(0),
            timed_out: false,
            elapsed: Duration::ZERO,
        };
        assert!(completeness(&ok, Some(2)).is_ok());
        assert!(completeness(&ok, Some(3)).is_err());
        let cut = RunResult {
            stdout: "S0 x1=0\n".to_string(),
            ..ok
        };
        assert!(completeness(&cut, Some(2)).is_err());
    }
}
