//! A counting global allocator for the memory benchmarks.
//!
//! Two sets of counters: process-wide ones (every thread, always on) and gated ones that count
//! only the calling thread's allocations inside [`gated`], so that an in-memory server driven on
//! the same thread is left out of the client's figures.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The allocator; install with `#[global_allocator] static A: Counting = Counting;`.
pub struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static GATE: Cell<bool> = const { Cell::new(false) };
    static G_ALLOCS: Cell<u64> = const { Cell::new(0) };
    static G_ALLOCATED: Cell<u64> = const { Cell::new(0) };
    static G_FREED: Cell<u64> = const { Cell::new(0) };
}

fn gate_open() -> bool {
    GATE.try_with(Cell::get).unwrap_or(false)
}

fn add(cell: &'static std::thread::LocalKey<Cell<u64>>, n: u64) {
    let _ = cell.try_with(|c| c.set(c.get() + n));
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count_alloc(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count_alloc(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.count_free(layout.size());
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count_free(layout.size());
        self.count_alloc(new_size);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

impl Counting {
    fn count_alloc(&self, size: usize) {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOCATED.fetch_add(size as u64, Relaxed);
        if gate_open() {
            add(&G_ALLOCS, 1);
            add(&G_ALLOCATED, size as u64);
        }
    }

    fn count_free(&self, size: usize) {
        FREED.fetch_add(size as u64, Relaxed);
        if gate_open() {
            add(&G_FREED, size as u64);
        }
    }
}

/// A snapshot of counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    /// Allocation calls (a `realloc` counts as one).
    pub allocs: u64,
    /// Bytes allocated.
    pub allocated: u64,
    /// Bytes freed.
    pub freed: u64,
}

impl Snapshot {
    /// Bytes held (allocated − freed).
    pub fn live(&self) -> i64 {
        self.allocated as i64 - self.freed as i64
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            allocs: self.allocs - earlier.allocs,
            allocated: self.allocated - earlier.allocated,
            freed: self.freed - earlier.freed,
        }
    }
}

/// The process-wide counters.
pub fn global() -> Snapshot {
    Snapshot {
        allocs: ALLOCS.load(Relaxed),
        allocated: ALLOCATED.load(Relaxed),
        freed: FREED.load(Relaxed),
    }
}

/// This thread's gated counters.
pub fn gated_counters() -> Snapshot {
    Snapshot {
        allocs: G_ALLOCS.with(Cell::get),
        allocated: G_ALLOCATED.with(Cell::get),
        freed: G_FREED.with(Cell::get),
    }
}

/// Runs `f` with this thread's gated counting on.
pub fn gated(f: &mut dyn FnMut()) {
    let before = GATE.with(|g| g.replace(true));
    f();
    GATE.with(|g| g.set(before));
}
