//! A write gate for the providers' tests: lets the first `open` writes
//! through, then says no, and counts how often it was asked.

use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Gate {
    open: usize,
    asked: AtomicUsize,
}

impl Gate {
    pub(crate) fn open_for(open: usize) -> Gate {
        Gate {
            open,
            asked: AtomicUsize::new(0),
        }
    }

    pub(crate) fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl crate::WriteGate for Gate {
    fn may_write(&self) -> bool {
        self.asked.fetch_add(1, Ordering::SeqCst) < self.open
    }
}
