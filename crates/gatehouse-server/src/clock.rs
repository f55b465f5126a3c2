//! The server's clock: the system clock in production, a settable one in tests,
//! so that anything time-dependent is testable without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use gatehouse_core::Timestamp;

#[derive(Clone, Debug)]
pub struct Clock(Inner);

#[derive(Clone, Debug)]
enum Inner {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn system() -> Self {
        Clock(Inner::System)
    }

    /// A clock that stands still at `start` until moved.
    pub fn manual(start: Timestamp) -> Self {
        Clock(Inner::Manual(Arc::new(AtomicI64::new(start.as_micros()))))
    }

    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Inner::System => {
                let us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or(0);
                Timestamp::from_micros(us)
            }
            Inner::Manual(t) => Timestamp::from_micros(t.load(Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance_micros(&self, us: i64) {
        if let Inner::Manual(t) = &self.0 {
            t.fetch_add(us, Ordering::SeqCst);
        }
    }

    /// Sets a manual clock; no effect on the system clock.
    pub fn set(&self, at: Timestamp) {
        if let Inner::Manual(t) = &self.0 {
            t.store(at.as_micros(), Ordering::SeqCst);
        }
    }
}
