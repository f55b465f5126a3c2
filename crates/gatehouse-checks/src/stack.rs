//! Work on a thread of its own with a fixed, generous stack: the CEL parser
//! and interpreter recurse on the machine stack, and a stack overflow cannot
//! be caught. A panic on that thread is caught and returned as an error.
//!
//! [`run`] blocks the calling thread until the work is done (on a thread
//! started for it); [`spawn`] returns a future for async callers (the server,
//! the store), completed through a one-shot slot by one of a few threads kept
//! for the purpose (started as needed, at most [`CONCURRENT_MAX`], each with
//! the same stack), so no async worker's stack is used and no request pays
//! for starting a thread.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// The stack of a check thread: 64 MiB (mapped lazily by the OS; only what
/// is touched is used). An expression at the bounds of `bound` needs far
/// less, even in a debug build.
pub const STACK_SIZE: usize = 64 << 20;

/// What went wrong running the work, beside its own result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackError {
    /// The work panicked; the message of the panic.
    Panicked(String),
    /// The thread could not be started.
    Spawn(String),
}

impl std::fmt::Display for StackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Panicked(m) => write!(f, "the evaluator panicked: {m}"),
            Self::Spawn(m) => write!(f, "no thread to evaluate on: {m}"),
        }
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// At most this many check threads work at once; the others wait for a
/// turn (on their own thread, never on the caller's), so a burst of requests
/// cannot put more parsers on the CPUs than this.
pub const CONCURRENT_MAX: usize = 8;

static BUSY: Mutex<usize> = Mutex::new(0);
static TURN: Condvar = Condvar::new();

/// A turn to work, given back when dropped (even by a panic).
struct Turn;

impl Turn {
    fn take() -> Self {
        let mut busy = BUSY.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy >= CONCURRENT_MAX {
            busy = TURN.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        *busy += 1;
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(PoisonError::into_inner);
        *busy = busy.saturating_sub(1);
        TURN.notify_one();
    }
}

fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, StackError> {
    let _turn = Turn::take();
    catch_unwind(AssertUnwindSafe(work)).map_err(|p| StackError::Panicked(panic_text(p)))
}

fn builder() -> std::thread::Builder {
    std::thread::Builder::new()
        .name("gatehouse-check".into())
        .stack_size(STACK_SIZE)
}

/// Runs `work` on a check thread and waits for it.
pub fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, StackError> {
    let handle = builder()
        .spawn(move || guarded(work))
        .map_err(|e| StackError::Spawn(e.to_string()))?;
    handle
        .join()
        .map_err(|p| StackError::Panicked(panic_text(p)))?
}

struct Slot<T> {
    value: Option<Result<T, StackError>>,
    waker: Option<Waker>,
}

/// The future of [`spawn`].
pub struct OnStack<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Future for OnStack<T> {
    type Output = Result<T, StackError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = match self.slot.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

std::thread_local! {
    /// Whether this thread declared a stack of [`STACK_SIZE`]: see
    /// [`this_thread_has_the_stack`].
    static HAS_THE_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Declares that the calling thread was started with a stack of at least
/// [`STACK_SIZE`] (a runtime built with `thread_stack_size(STACK_SIZE)`
/// calls it in `on_thread_start`): [`spawn`] then runs its work on this
/// thread, where it is awaited, instead of handing it to a check thread and
/// waiting to be woken. A panic is still caught. The bound on work at once
/// does not apply: such a runtime has its own, its worker threads.
pub fn this_thread_has_the_stack() {
    HAS_THE_STACK.with(|h| h.set(true));
}

/// Runs `work` on a check thread (or here, on a thread that declared the
/// stack: [`this_thread_has_the_stack`]); the future completes with its
/// result.
pub fn spawn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> OnStack<T> {
    if HAS_THE_STACK.with(std::cell::Cell::get) {
        let done =
            catch_unwind(AssertUnwindSafe(work)).map_err(|p| StackError::Panicked(panic_text(p)));
        return OnStack {
            slot: Arc::new(Mutex::new(Slot {
                value: Some(done),
                waker: None,
            })),
        };
    }
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    let theirs = Arc::clone(&slot);
    let deliver = move |v: Result<T, StackError>| {
        let mut s = match theirs.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        s.value = Some(v);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    };
    // The closure is moved into the thread; if the spawn fails it comes
    // back in no form, so the failure is delivered from here.
    let deliver_here = {
        let slot = Arc::clone(&slot);
        move |e: StackError| {
            let mut s = match slot.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            s.value = Some(Err(e));
        }
    };
    if let Err(e) = POOL.submit(Box::new(move || deliver(guarded(work)))) {
        deliver_here(e);
    }
    OnStack { slot }
}

/// Work for a pool thread: it delivers its own result.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// The threads [`spawn`] runs work on, and the work waiting for one.
struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
}

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        queue: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    ready: Condvar::new(),
};

impl Pool {
    /// Queues `job`, starting a thread for it if the idle ones are all
    /// spoken for by queued jobs and fewer than [`CONCURRENT_MAX`] run.
    fn submit(&'static self, job: Job) -> Result<(), StackError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.idle <= state.queue.len() && state.threads < CONCURRENT_MAX {
            builder()
                .spawn(move || self.work())
                .map_err(|e| StackError::Spawn(e.to_string()))?;
            state.threads += 1;
            // Counted idle until it takes its first job.
            state.idle += 1;
        }
        state.queue.push_back(job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// A pool thread's life: take a job, do it, again. A job never unwinds
    /// into here ([`guarded`] catches its panic).
    fn work(&'static self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match state.queue.pop_front() {
                Some(job) => {
                    state.idle -= 1;
                    drop(state);
                    job();
                    state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.idle += 1;
                }
                None => {
                    state = self
                        .ready
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        use std::task::Wake;
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    /// Recursion that would overflow a 2 MiB stack in any build.
    fn deep(n: u32) -> u32 {
        let pad = std::hint::black_box([0u8; 1024]);
        if n == 0 {
            u32::from(pad[0])
        } else {
            deep(n - 1) + u32::from(pad[1])
        }
    }

    #[test]
    fn results_and_panics_come_back() {
        assert_eq!(run(|| 41 + 1), Ok(42));
        let e = run(|| -> u8 { panic!("boom") }).unwrap_err();
        assert_eq!(e, StackError::Panicked("boom".into()));
        assert_eq!(block_on(spawn(|| "hi".to_owned())), Ok("hi".to_owned()));
        let e = block_on(spawn(|| -> u8 { panic!("{}", "bang") })).unwrap_err();
        assert_eq!(e, StackError::Panicked("bang".into()));
    }

    #[test]
    fn no_more_than_the_maximum_work_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NOW: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        let futures: Vec<_> = (0..CONCURRENT_MAX * 3)
            .map(|_| {
                spawn(|| {
                    let n = NOW.fetch_add(1, Ordering::SeqCst) + 1;
                    PEAK.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    NOW.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for f in futures {
            assert_eq!(block_on(f), Ok(()));
        }
        assert!(PEAK.load(Ordering::SeqCst) <= CONCURRENT_MAX);
        let threads = POOL.state.lock().unwrap().threads;
        assert!(
            (1..=CONCURRENT_MAX).contains(&threads),
            "{threads} pool threads"
        );
    }

    #[test]
    fn pool_threads_have_the_stack_too_and_survive_panics() {
        for _ in 0..CONCURRENT_MAX * 2 {
            assert!(block_on(spawn(|| -> u8 { panic!("again") })).is_err());
        }
        assert_eq!(block_on(spawn(|| deep(16_000))), Ok(0));
    }

    #[test]
    fn a_thread_with_the_stack_does_the_work_itself() {
        let here = std::thread::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn(|| {
                this_thread_has_the_stack();
                let me = std::thread::current().id();
                let ran_on = block_on(spawn(|| std::thread::current().id())).unwrap();
                let deep = block_on(spawn(|| deep(16_000)));
                let e = block_on(spawn(|| -> u8 { panic!("inline") })).unwrap_err();
                (ran_on == me, deep, e)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(here, (true, Ok(0), StackError::Panicked("inline".into())));
        // Other threads still hand their work to a check thread.
        let me = std::thread::current().id();
        assert_ne!(block_on(spawn(|| std::thread::current().id())), Ok(me));
    }

    #[test]
    fn the_thread_has_the_stack_it_says() {
        assert_eq!(run(|| deep(16_000)), Ok(0));
    }
}
