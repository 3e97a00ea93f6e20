//! Latencies, failures by kind, and what `/proc` says about a process.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// The longest latency kept apart from the others; anything slower counts as this.
const MAX_RECORDED: Duration = Duration::from_secs(3600);

/// A histogram of microseconds in fixed memory (three significant digits: exact below
/// 2,048 µs, within 0.1 % above), so a long soak measures the code under test rather than
/// this bookkeeping.
pub fn micros() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_RECORDED.as_micros() as u64, 3)
        .expect("valid histogram bounds")
}

/// The same in nanoseconds, for round trips of a few microseconds.
pub fn nanos() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_RECORDED.as_nanos() as u64, 3)
        .expect("valid histogram bounds")
}

/// Latencies of what succeeded, and failures by kind.
pub struct Outcome {
    pub latencies: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
    /// CPU time of the whole process during the run (10 ms resolution).
    pub cpu_us: u64,
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            latencies: micros(),
            errors: BTreeMap::new(),
            cpu_us: 0,
        }
    }
}

impl Outcome {
    fn record(&mut self, result: Result<(), String>, latency: Duration) {
        match result {
            Ok(()) => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latencies.saturating_record(micros.max(1));
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: Outcome) {
        self.latencies
            .add(&other.latencies)
            .expect("histograms of the same bounds");
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.cpu_us += other.cpu_us;
    }
}

/// Runs `op` `total` times over `concurrency` workers (worker, index) and gathers outcomes.
///
/// Workers share one histogram behind a lock: a histogram per worker would cost hundreds of
/// KiB each at concurrency 256, which the soak's RSS samples would see. The lock is held for
/// a few nanoseconds per request by at most as many threads as the runtime has.
pub async fn drive<F, Fut>(total: usize, concurrency: usize, op: F) -> (Outcome, f64)
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let cpu_before = cpu_us();
    let shared = Arc::new(Mutex::new(Outcome::default()));
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let (op, shared) = (op.clone(), Arc::clone(&shared));
        let count = total / concurrency + usize::from(worker < total % concurrency);
        workers.push(tokio::spawn(async move {
            for index in 0..count {
                let begun = Instant::now();
                let result = op(worker, index).await;
                let latency = begun.elapsed();
                shared
                    .lock()
                    .expect("no worker panics holding the outcome")
                    .record(result, latency);
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker finished");
    }
    let mut outcome =
        std::mem::take(&mut *shared.lock().expect("no worker panics holding the outcome"));
    outcome.cpu_us = cpu_us().saturating_sub(cpu_before);
    (outcome, started.elapsed().as_secs_f64())
}

/// Rounds to three decimals, as the JSON lines show seconds and ratios.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// One scenario's JSON line.
pub fn line(
    scenario: &str,
    concurrency: usize,
    outcome: Outcome,
    seconds: f64,
    upstream: u64,
) -> Value {
    let done = outcome.latencies.len();
    let percentile = |q| {
        if done == 0 {
            0
        } else {
            outcome.latencies.value_at_quantile(q)
        }
    };
    json!({
        "scenario": scenario,
        "requests": done,
        "concurrency": concurrency,
        "seconds": round3(seconds),
        "per_second": (done as f64 / seconds).round(),
        "p50_us": percentile(0.50),
        "p99_us": percentile(0.99),
        "upstream_connections": upstream,
        "rss_kib": rss_kib(),
        "cpu_us_per_request": outcome.cpu_us.checked_div(done).unwrap_or(0),
        "errors": outcome.errors,
    })
}

/// Resident set size of this process, from /proc (0 where unavailable).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time this process has used (user + system), in microseconds, from /proc.
pub fn cpu_us() -> u64 {
    let ticks_per_second = 100; // USER_HZ, fixed at 100 on Linux
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks * 1_000_000 / ticks_per_second)
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// This process's open descriptors, sockets sorted by the peer they belong to: `app` (either end
/// of a connection to the app under test, and its listener), `emulator` (connections to or from
/// the emulator's port), and `other` (everything else: files, pipes, the runtime's own).
pub fn descriptor_census(app_port: u16, emulator_port: u16) -> Value {
    // inode -> (local port, remote port), from the kernel's socket tables.
    let mut ports = HashMap::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let port = |field: Option<&&str>| {
                let hex = field?.rsplit_once(':')?.1;
                u16::from_str_radix(hex, 16).ok()
            };
            if let (Some(local), Some(remote), Some(inode)) =
                (port(fields.get(1)), port(fields.get(2)), fields.get(9))
            {
                ports.insert(inode.to_string(), (local, remote));
            }
        }
    }
    let (mut app, mut emulator, mut other) = (0, 0, 0);
    for entry in std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'));
        match inode.and_then(|inode| ports.get(inode)) {
            Some(&(local, remote)) if local == app_port || remote == app_port => app += 1,
            Some(&(local, remote)) if local == emulator_port || remote == emulator_port => {
                emulator += 1
            }
            _ => other += 1,
        }
    }
    json!({"app": app, "emulator": emulator, "other": other})
}

/// CPU time and context switches of a process, summed over its live threads from
/// `/proc/PID/task/*/sched` (nanosecond CPU time, unlike `/proc/PID/stat`'s 10 ms ticks).
/// Threads that end between two readings drop out of the sum; the floor's processes keep
/// theirs for the whole run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub cpu_ns: f64,
    pub switches: u64,
}

impl Usage {
    /// `pid` of `None` means this process. `None` where /proc has no such figures.
    pub fn of(pid: Option<u32>) -> Option<Usage> {
        let dir = match pid {
            Some(pid) => format!("/proc/{pid}/task"),
            None => "/proc/self/task".to_owned(),
        };
        let mut total = Usage::default();
        let mut threads = 0;
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("sched")) else {
                continue;
            };
            let field = |name| sched_field(&text, name);
            // sum_exec_runtime is in milliseconds with six decimals.
            total.cpu_ns += field("se.sum_exec_runtime")? * 1e6;
            total.switches += field("nr_switches")? as u64;
            threads += 1;
        }
        (threads > 0).then_some(total)
    }

    pub fn since(self, before: Usage) -> Usage {
        Usage {
            cpu_ns: (self.cpu_ns - before.cpu_ns).max(0.0),
            switches: self.switches.saturating_sub(before.switches),
        }
    }
}

/// What the rest of the machine did: CPU time of every thread of every other process (kernel
/// threads included), from their `/proc/PID/task/TID/sched`, and the hypervisor's steal from
/// `/proc/stat`. (`/proc/stat`'s busy time and `/proc/PID/stat` are sampled at clock ticks,
/// which on this kind of VM can be far off: a kernel worker once showed 57 % of a CPU there
/// while its own scheduler figures said 0.01 %.)
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// (pid, tid) to CPU nanoseconds, for every process but the two excluded.
    threads: HashMap<(u32, u32), f64>,
    steal_ticks: u64,
}

impl Machine {
    /// A snapshot of all processes but this one and `peer`.
    pub fn now(peer: Option<u32>) -> Machine {
        let own = std::process::id();
        let mut threads = HashMap::new();
        for process in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = process.file_name().to_str().and_then(|p| p.parse().ok()) else {
                continue;
            };
            if pid == own || Some(pid) == peer {
                continue;
            }
            for task in std::fs::read_dir(process.path().join("task"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                if let Some(ms) = std::fs::read_to_string(task.path().join("sched"))
                    .ok()
                    .and_then(|text| sched_field(&text, "se.sum_exec_runtime"))
                {
                    threads.insert((pid, tid), ms * 1e6);
                }
            }
        }
        let steal_ticks = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| stat.lines().next()?.split_whitespace().nth(8)?.parse().ok())
            .unwrap_or(0);
        Machine {
            threads,
            steal_ticks,
        }
    }

    /// CPU nanoseconds the others used since `before` (threads that ended meanwhile are not
    /// counted), and the steal in nanoseconds.
    pub fn since(&self, before: &Machine) -> (f64, f64) {
        let others = self
            .threads
            .iter()
            .map(|(id, ns)| (ns - before.threads.get(id).copied().unwrap_or(0.0)).max(0.0))
            .sum();
        let steal = self.steal_ticks.saturating_sub(before.steal_ticks) as f64 * 1e7;
        (others, steal)
    }
}

/// A field of a `/proc/…/sched` file, such as `se.sum_exec_runtime` (milliseconds).
fn sched_field(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.rsplit(':').next()?.trim().parse().ok())
}

/// The calling thread pinned to one CPU, until this is dropped (then it may run where it
/// could before).
pub struct Pinned {
    before: libc::cpu_set_t,
}

impl Pinned {
    pub fn to(cpu: usize) -> std::io::Result<Pinned> {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: cpu_set_t is a plain bit array, valid when zeroed; sched_getaffinity writes
        // and sched_setaffinity reads at most `size` bytes of it; CPU_SET checks its index
        // against the set's size; pid 0 is the calling thread.
        unsafe {
            let mut before: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, size, &mut before) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut only: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut only);
            if libc::sched_setaffinity(0, size, &only) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Pinned { before })
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: as above; `before` came from sched_getaffinity.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.before);
        }
    }
}
