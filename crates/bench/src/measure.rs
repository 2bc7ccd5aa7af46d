//! What the harness measures besides time: CPU (the machine's and the process's), memory
//! allocated per thread, and the figures a run reports.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

/// One figure of one run.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub(crate) name: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) value: f64,
    pub(crate) higher_is_better: bool,
}

impl Metric {
    pub(crate) fn higher(name: &'static str, unit: &'static str, value: f64) -> Metric {
        Metric {
            name,
            unit,
            value,
            higher_is_better: true,
        }
    }

    pub(crate) fn lower(name: &'static str, unit: &'static str, value: f64) -> Metric {
        Metric {
            name,
            unit,
            value,
            higher_is_better: false,
        }
    }

    pub(crate) fn renamed(self, name: &'static str) -> Metric {
        Metric { name, ..self }
    }
}

/// Busy time of all CPUs of the machine so far (user, nice, system, irq and softirq from
/// `/proc/stat`). The machine-wide figure, not the process's: a veth's receive work runs in
/// softirq context, which is not charged to any thread, and it is part of the cost of a
/// transfer whichever stack drives it.
pub(crate) fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .enumerate()
        // user nice system idle iowait irq softirq: skip idle and iowait.
        .filter(|&(i, _)| matches!(i, 0 | 1 | 2 | 5 | 6))
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// CPU time (user and system) of this process so far.
pub(crate) fn process_cpu() -> Duration {
    // SAFETY: getrusage writes only the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

thread_local! {
    /// Bytes allocated minus bytes freed by this thread. `const`-initialised and without a
    /// destructor, so the allocator may touch it at any time.
    static ALLOCATED: Cell<i64> = const { Cell::new(0) };
}

/// Bytes allocated and not yet freed by the calling thread (frees of memory another thread
/// allocated count against the freeing thread).
pub(crate) fn thread_allocated() -> i64 {
    ALLOCATED.with(Cell::get)
}

/// The system allocator, counting each thread's bytes for [`thread_allocated`].
pub(crate) struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the counting only reads the layout.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.with(|c| c.set(c.get() + layout.size() as i64));
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.with(|c| c.set(c.get() + layout.size() as i64));
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.with(|c| c.set(c.get() - layout.size() as i64));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.with(|c| c.set(c.get() + new_size as i64 - layout.size() as i64));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
