//! The processor shared fairly among namespaces. Guest work — a workflow's
//! execution, an activity attempt — is let onto the executor only while it
//! holds one of a few permits (as many as there are cores). A gated future
//! that is woken (its commit done, its activity's result in, its epoch
//! slice over) waits in its namespace's queue; a permit freed when a
//! running one waits again goes to the namespaces with waiters, in turn.
//! So the executor's run queue never holds more guest work than there are
//! permits, and a namespace with a backlog of thousands delays another's
//! next step by one slice of its own, not by the backlog. Guest work runs
//! on threads of its own (as many as the permits) at a lower priority than
//! the server's other threads, which every step waits on.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

pub struct Cpu {
    state: Mutex<State>,
    /// The threads guest work runs on, apart from the server's runtime:
    /// there a permit's holder would wait in the run queue behind every
    /// other task (a flood's requests, reads, commits' replies), and the
    /// turns would count for little. (An option only to be shut down
    /// without blocking when dropped.)
    threads: Option<tokio::runtime::Runtime>,
}

#[derive(Default)]
struct State {
    free: usize,
    next_id: u64,
    entries: HashMap<u64, Entry>,
    /// Woken futures by namespace, oldest first.
    queues: HashMap<Arc<str>, VecDeque<u64>>,
    /// Namespaces with woken futures, in the order they are served.
    turns: VecDeque<Arc<str>>,
}

struct Entry {
    namespace: Arc<str>,
    stage: Stage,
    /// Woken while running: it queues again when the poll ends.
    woken_while_running: bool,
    /// The task to wake when a permit is granted.
    task: Option<Waker>,
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    /// Waiting on something outside (a commit, a timer, the network).
    Waiting,
    /// Woken, in its namespace's queue.
    Queued,
    /// Holds a permit: runnable or running.
    Granted,
}

impl State {
    fn enqueue(&mut self, id: u64) {
        let entry = self.entries.get_mut(&id).expect("a live entry");
        entry.stage = Stage::Queued;
        let namespace = entry.namespace.clone();
        let queue = self.queues.entry(namespace.clone()).or_default();
        queue.push_back(id);
        if queue.len() == 1 {
            self.turns.push_back(namespace);
        }
    }

    /// Hand free permits to the queued, namespaces in turn.
    fn dispatch(&mut self) {
        while self.free > 0 {
            let Some(namespace) = self.turns.pop_front() else {
                return;
            };
            let queue = self.queues.get_mut(&namespace).expect("a queue per turn");
            let id = queue.pop_front().expect("a turn has a waiter");
            if queue.is_empty() {
                self.queues.remove(&namespace);
            } else {
                self.turns.push_back(namespace);
            }
            let entry = self.entries.get_mut(&id).expect("queued entries live");
            entry.stage = Stage::Granted;
            self.free -= 1;
            if let Some(task) = &entry.task {
                task.wake_by_ref();
            }
        }
    }

    /// The future `id` was woken.
    fn woken(&mut self, id: u64) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        match entry.stage {
            Stage::Waiting => {
                self.enqueue(id);
                self.dispatch();
            }
            Stage::Queued => {}
            Stage::Granted => entry.woken_while_running = true,
        }
    }
}

impl Cpu {
    /// `cores` permits (at least one), and as many threads of their own.
    pub fn new(cores: usize) -> std::io::Result<Arc<Cpu>> {
        let cores = cores.max(1);
        let threads = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .thread_name("weft-guest")
            .on_thread_start(yield_to_the_server)
            .enable_all()
            .build()?;
        Ok(Arc::new(Cpu {
            state: Mutex::new(State {
                free: cores,
                ..State::default()
            }),
            threads: Some(threads),
        }))
    }

    /// Gated futures woken or running: guest work that is not waiting on
    /// something outside.
    pub fn busy(&self) -> usize {
        let state = self.state.lock().unwrap();
        let waiting = |e: &&Entry| e.stage == Stage::Waiting;
        state.entries.values().filter(|e| !waiting(e)).count()
    }

    /// `work`, gated (see [`Cpu::gate`]), on the guest threads. Dropping
    /// the answer stops the work.
    pub async fn run<F>(self: &Arc<Self>, namespace: &str, work: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // The guest threads log within the caller's span (its run).
        let work = tracing::Instrument::instrument(work, tracing::Span::current());
        let gated = self.gate(namespace, work);
        let threads = self
            .threads
            .as_ref()
            .expect("the guest threads live until dropped");
        let mut task = Running(threads.spawn(gated));
        match (&mut task.0).await {
            Ok(output) => output,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("the guest threads stopped while work was running"),
        }
    }

    /// `work`, run only while it holds a permit given in `namespace`'s turn.
    pub fn gate<F: Future>(self: &Arc<Self>, namespace: &str, work: F) -> Gated<F> {
        let id = {
            let mut state = self.state.lock().unwrap();
            state.next_id += 1;
            let id = state.next_id;
            state.entries.insert(
                id,
                Entry {
                    namespace: namespace.into(),
                    stage: Stage::Waiting,
                    // Not yet polled: it starts as woken.
                    woken_while_running: false,
                    task: None,
                },
            );
            state.woken(id);
            id
        };
        Gated {
            waker: Waker::from(Arc::new(GateWaker {
                cpu: Arc::downgrade(self),
                id,
            })),
            cpu: self.clone(),
            id,
            work: Box::pin(work),
        }
    }
}

/// How much lower the guest threads' priority is than the server's other
/// threads' (Linux niceness; raising it needs no privilege). The journal
/// writer, the database's threads and the HTTP handlers run first: every
/// step of every namespace waits on a commit, and a flood's guests would
/// otherwise delay each statement of it.
const GUEST_NICENESS: libc::c_int = 10;

/// The guest threads run at a lower priority than the server's others.
fn yield_to_the_server() {
    // SAFETY: setpriority on this thread's id changes only its niceness
    // (on Linux a thread's own; elsewhere the whole process', so not there).
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            GUEST_NICENESS,
        );
    }
}

/// A task on the guest threads, stopped when its awaiter lets go of it (a
/// timeout, an aborted run).
struct Running<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for Cpu {
    fn drop(&mut self) {
        // Possibly inside the server's runtime, where a runtime may not
        // block to shut down.
        if let Some(threads) = self.threads.take() {
            threads.shutdown_background();
        }
    }
}

/// The waker the gated work sees: it queues the future for a permit
/// instead of waking the task at once.
struct GateWaker {
    cpu: Weak<Cpu>,
    id: u64,
}

impl Wake for GateWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(cpu) = self.cpu.upgrade() {
            cpu.state.lock().unwrap().woken(self.id);
        }
    }
}

/// A future let onto the executor only with a permit (see [`Cpu::gate`]).
pub struct Gated<F> {
    cpu: Arc<Cpu>,
    id: u64,
    waker: Waker,
    work: Pin<Box<F>>,
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        {
            let mut state = this.cpu.state.lock().unwrap();
            let entry = state.entries.get_mut(&this.id).expect("our entry");
            // The task to wake at its next grant, whatever this poll does.
            match &mut entry.task {
                Some(task) => task.clone_from(cx.waker()),
                task => *task = Some(cx.waker().clone()),
            }
            if entry.stage != Stage::Granted {
                return Poll::Pending;
            }
        }
        let polled = this
            .work
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker));
        let mut state = this.cpu.state.lock().unwrap();
        state.free += 1;
        let entry = state.entries.get_mut(&this.id).expect("our entry");
        entry.stage = Stage::Waiting;
        if polled.is_pending() && std::mem::take(&mut entry.woken_while_running) {
            // It yielded (or its wait ended at once): back of the line.
            state.enqueue(this.id);
        }
        state.dispatch();
        polled
    }
}

impl<F> Drop for Gated<F> {
    fn drop(&mut self) {
        let mut state = self.cpu.state.lock().unwrap();
        let Some(entry) = state.entries.remove(&self.id) else {
            return;
        };
        match entry.stage {
            Stage::Waiting => {}
            Stage::Granted => {
                state.free += 1;
                state.dispatch();
            }
            Stage::Queued => {
                let namespace = entry.namespace;
                if let Some(queue) = state.queues.get_mut(&namespace) {
                    queue.retain(|id| *id != self.id);
                    if queue.is_empty() {
                        state.queues.remove(&namespace);
                        state.turns.retain(|n| *n != namespace);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Yield as wasmtime does at an epoch tick: wake at once, return
    /// pending once.
    async fn epoch_yield() {
        let mut yielded = false;
        std::future::poll_fn(move |cx| {
            if std::mem::replace(&mut yielded, true) {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    /// Work of `slices` polls, yielding between them, logging each.
    async fn slices(log: Arc<Mutex<Vec<&'static str>>>, namespace: &'static str, slices: usize) {
        for _ in 0..slices {
            log.lock().unwrap().push(namespace);
            epoch_yield().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_namespace_with_a_backlog_delays_another_by_a_slice() {
        let cpu = Cpu::new(1).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let work = cpu.gate("a", slices(log.clone(), "a", 5));
            tasks.push(tokio::spawn(work));
        }
        // Once a's backlog runs, b arrives with 3 slices of work.
        let (b_cpu, b_log) = (cpu.clone(), log.clone());
        let b = tokio::spawn(async move {
            while b_log.lock().unwrap().len() < 10 {
                epoch_yield().await;
            }
            let arrived = b_log.lock().unwrap().len();
            b_cpu.gate("b", slices(b_log.clone(), "b", 3)).await;
            arrived
        });
        let arrived = b.await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 103);
        // Without the gate, each of b's slices would wait behind all twenty
        // of a's; with it, behind one.
        let b_at: Vec<usize> = (0..log.len()).filter(|&i| log[i] == "b").collect();
        for pair in b_at.windows(2) {
            assert!(pair[1] - pair[0] <= 2, "b waited behind a: {b_at:?}");
        }
        assert!(
            b_at[0] <= arrived + 2,
            "b arrived at {arrived}, ran first at {}",
            b_at[0]
        );
        let state = cpu.state.lock().unwrap();
        assert_eq!((state.free, state.entries.len()), (1, 0));
    }

    #[tokio::test]
    async fn a_dropped_future_hands_its_permit_and_its_place_on() {
        let cpu = Cpu::new(1).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let holder = tokio::spawn(cpu.gate("a", rx));
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The holder waits outside its permit: b gets it.
        let b = tokio::time::timeout(Duration::from_secs(1), cpu.gate("b", async { 7 })).await;
        assert_eq!(b.unwrap(), 7);
        // One that spins forever and is dropped gives its permit back.
        let spinner = tokio::spawn(cpu.gate("c", async {
            loop {
                epoch_yield().await;
            }
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        spinner.abort();
        let _ = spinner.await;
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(1), holder)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let state = cpu.state.lock().unwrap();
        assert_eq!(
            (state.free, state.entries.len(), state.turns.len()),
            (1, 0, 0)
        );
    }
}
