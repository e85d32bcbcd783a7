//! What a run measures: wall time, process CPU time (getrusage, every thread)
//! and heap allocations (with the `count-allocations` feature) between the end
//! of the warm-up and the last entry the leader applied, plus each entry's
//! latency from submission until the leader applied it.

use std::sync::Mutex;
use std::time::Instant;

#[cfg(feature = "count-allocations")]
mod counting {
    // A counting global allocator is the one place that needs `unsafe`.
    #![allow(unsafe_code)]
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

    pub struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;
}

/// Heap allocations (and reallocations) so far, if counted.
pub fn allocations() -> Option<u64> {
    #[cfg(feature = "count-allocations")]
    {
        Some(counting::ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed))
    }
    #[cfg(not(feature = "count-allocations"))]
    {
        None
    }
}

/// User plus system CPU time of the whole process, in nanoseconds.
pub fn cpu_ns() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// One moment of the process.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pub at: Instant,
    pub cpu_ns: u64,
    pub allocations: Option<u64>,
}

impl Mark {
    pub fn now() -> Mark {
        Mark {
            at: Instant::now(),
            cpu_ns: cpu_ns(),
            allocations: allocations(),
        }
    }
}

/// The measured window of one run; drivers call `start` when the leader
/// applied the last warm-up entry and `stop` when it applied the last entry.
/// Shared between threads in the thread-per-node shape.
#[derive(Default)]
pub struct Meter {
    marks: Mutex<(Option<Mark>, Option<Mark>)>,
}

impl Meter {
    pub fn start(&self) {
        let mark = Mark::now();
        self.marks.lock().expect("meter lock").0 = Some(mark);
    }

    pub fn stop(&self) {
        let mark = Mark::now();
        self.marks.lock().expect("meter lock").1 = Some(mark);
    }

    /// The window, once both ends are marked.
    pub fn window(&self) -> Option<(Mark, Mark)> {
        let m = self.marks.lock().expect("meter lock");
        m.0.zip(m.1)
    }
}

/// The workload every peer runs.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Entries applied before the measured window opens.
    pub warmup: u64,
    /// Entries in the measured window.
    pub entries: u64,
    /// At most this many proposals submitted and not yet applied by the leader.
    pub inflight: usize,
    /// Bytes per entry.
    pub entry_bytes: usize,
}

impl Workload {
    pub fn total(&self) -> u64 {
        self.warmup + self.entries
    }
}

/// What a driver hands back besides the meter.
#[derive(Debug)]
pub struct Outcome {
    /// Latencies (ns) of the measured entries, submission to leader apply.
    pub latencies_ns: Vec<u64>,
    /// Command entries each node applied by the end (every node must reach
    /// `Workload::total`).
    pub applied: Vec<u64>,
}

/// Submission times of the leader's outstanding proposals, oldest first: on a
/// stable leader proposals are applied in the order they were submitted.
#[derive(Default)]
pub struct Inflight {
    submitted: std::collections::VecDeque<Instant>,
    /// Proposals submitted so far.
    pub proposed: u64,
    /// Proposals the leader applied so far.
    pub applied: u64,
    pub latencies_ns: Vec<u64>,
}

impl Inflight {
    /// How many more proposals the workload allows right now.
    pub fn room(&self, w: &Workload) -> u64 {
        let open = w.inflight as u64 - self.submitted.len() as u64;
        open.min(w.total() - self.proposed)
    }

    pub fn submitted(&mut self, at: Instant) {
        self.submitted.push_back(at);
        self.proposed += 1;
    }

    /// The leader applied one of its proposals; opens and closes the window.
    pub fn applied(&mut self, now: Instant, w: &Workload, meter: &Meter) {
        let at = self
            .submitted
            .pop_front()
            .expect("the leader applied a command nobody proposed");
        self.applied += 1;
        if self.applied > w.warmup {
            self.latencies_ns.push((now - at).as_nanos() as u64);
        }
        if self.applied == w.warmup {
            meter.start();
        }
        if self.applied == w.total() {
            meter.stop();
        }
    }

    pub fn done(&self, w: &Workload) -> bool {
        self.applied >= w.total()
    }
}
