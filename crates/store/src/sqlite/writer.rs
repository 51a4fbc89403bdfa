//! The group-commit writer: one OS thread owns the only write connection.
//!
//! It blocks for the first job, drains every job already queued (up to `max_batch`), runs
//! them in ONE transaction, commits once (one fsync for the whole batch with
//! `synchronous=FULL`), and only then answers each job. So an awaited write has reached the
//! disk when it returns.
//!
//! A failing job undoes only itself. The batch first runs without savepoints: jobs rarely
//! fail, and a savepoint per job (its statements, the sub-journal copy of every page it
//! touches, a full-text index flush) cost a seventh of the writer's time in chat. When a job
//! fails, the transaction is rolled back and the batch runs again with each job inside its own
//! SAVEPOINT, so a job's work may run twice: it must have no effect outside the connection that
//! a second run would get wrong.
//!
//! The answers of a batch go to the async runtime in one message, to a task that hands them out there. Answering
//! from this thread woke the runtime once per job: with the writer at a lower priority than the runtime's
//! workers (`background_nice`), every wake switched to a worker and back, so a batch of 40 jobs cost 40 pairs of
//! context switches and eventfd writes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::WalRestart;
use crate::StoreError;

/// What the writer thread receives. FIFO: a `Flush` or `Close` is answered after every
/// job queued before it has been committed (or has failed).
enum Message {
    Write(Box<dyn Job>),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// One write, type-erased so jobs of any result type share the queue.
trait Job: Send {
    /// Runs the job's SQL (again, if the batch is run a second time: the last run's result is
    /// the answer). An error (a copy; the job keeps its own for its caller) means its changes
    /// must be undone.
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError>;
    /// Answers the caller once the batch has ended: `None` if it committed, else the
    /// error that undid the whole batch.
    fn finish(self: Box<Self>, batch_error: Option<&StoreError>);
}

struct TypedJob<F, T> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Job for TypedJob<F, T>
where
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let result = match catch_unwind(AssertUnwindSafe(|| (self.work)(conn))) {
            Ok(result) => result,
            Err(_) => {
                tracing::error!("store write job panicked; rolled back");
                Err(StoreError::internal("store write job panicked".into()))
            }
        };
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(error) => Err(error.replicate()),
        };
        self.result = Some(result);
        outcome
    }

    fn finish(self: Box<Self>, batch_error: Option<&StoreError>) {
        let answer = match (batch_error, self.result) {
            (Some(error), _) => Err(error.replicate()),
            (None, Some(result)) => result,
            (None, None) => Err(StoreError::internal("store write job never ran".into())),
        };
        // The caller may have stopped waiting (its future was dropped); nothing to do then.
        let _ = self.reply.send(answer);
    }
}

/// The answers of one batch, in queue order: the jobs (with the error that undid the batch, if one did), then
/// the `Flush` and `Close` waiters queued with them.
struct Answers {
    jobs: Vec<Box<dyn Job>>,
    batch_error: Option<StoreError>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Answers {
    fn deliver(self) {
        for job in self.jobs {
            job.finish(self.batch_error.as_ref());
        }
        for done in self.waiters {
            let _ = done.send(());
        }
    }
}

/// Where the writer thread sends a batch's answers: a task of the multi-threaded runtime the store was opened
/// in, or nowhere (answered from the thread). A current-thread runtime may be blocked in synchronous code while it
/// waits for a write (tests, examples), so it gets no task.
struct Answerer(Option<mpsc::UnboundedSender<Answers>>);

impl Answerer {
    fn start() -> Answerer {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return Answerer(None) };
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Answerer(None);
        }
        let (sender, mut receiver) = mpsc::unbounded_channel::<Answers>();
        runtime.spawn(async move {
            while let Some(answers) = receiver.recv().await {
                answers.deliver();
            }
        });
        Answerer(Some(sender))
    }

    fn send(&self, answers: Answers) {
        // The runtime is gone (shut down before the store): answer from here.
        match &self.0 {
            Some(sender) => {
                if let Err(mpsc::error::SendError(answers)) = sender.send(answers) {
                    answers.deliver();
                }
            }
            None => answers.deliver(),
        }
    }
}

#[derive(Default)]
struct Counts {
    commits: AtomicU64,
    rollbacks: AtomicU64,
}

/// The handle every clone of the store shares: the queue's sender and the thread.
pub(crate) struct Writer {
    queue: mpsc::Sender<Message>,
    counts: Arc<Counts>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on an already configured and migrated connection.
    pub(crate) fn spawn(
        conn: Connection,
        max_batch: usize,
        queue_capacity: usize,
        wal_restart: Arc<WalRestart>,
        nice: i32,
    ) -> Result<Writer, StoreError> {
        let (queue, receiver) = mpsc::channel(queue_capacity.max(1));
        let counts = Arc::new(Counts::default());
        let answerer = Answerer::start();
        let thread = std::thread::Builder::new().name("drupe-store-writer".into()).spawn({
            let counts = counts.clone();
            move || {
                super::lower_thread_priority(nice);
                run(conn, receiver, max_batch.max(1), &counts, &wal_restart, &answerer)
            }
        })?;
        Ok(Writer { queue, counts, thread: Mutex::new(Some(thread)) })
    }

    /// Queues `work` and waits until the batch holding it is committed. `work` may run twice
    /// (see the module doc); only its last run's changes and result count. Waiting for room
    /// in a full queue is async backpressure, never a blocked worker thread.
    ///
    /// Dropping the returned future does not cancel the write: it may still commit.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob { work, result: None, reply };
        self.queue.send(Message::Write(Box::new(job))).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Waits until every write queued before this call has been committed or has failed.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.queue.send(Message::Flush(done)).await.map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)
    }

    /// Lets every write queued so far finish, then stops the thread and closes the write
    /// connection. Writes queued after this get `StoreError::Closed`. Idempotent.
    pub(crate) async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            // The thread has answered `Close` and is about to return; joining is short but
            // still a blocking call, so it runs off the async workers.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    pub(crate) fn commit_count(&self) -> u64 {
        self.counts.commits.load(Ordering::Relaxed)
    }

    /// Transactions rolled back so far (a batch run again with savepoints, or undone by an error): what a job did
    /// outside the connection in them may not have happened.
    pub(crate) fn rollback_count(&self) -> u64 {
        self.counts.rollbacks.load(Ordering::Relaxed)
    }

    pub(crate) fn queue_len(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// The thread's loop. Ends on `Close` or when every sender is gone; dropping the receiver
/// then fails whatever was queued behind (`StoreError::Closed` for their callers).
fn run(
    conn: Connection,
    mut receiver: mpsc::Receiver<Message>,
    max_batch: usize,
    counts: &Counts,
    wal_restart: &WalRestart,
    answerer: &Answerer,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch && !matches!(batch.last(), Some(Message::Close(_))) {
            match receiver.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let mut jobs = Vec::with_capacity(batch.len());
        let mut waiters = Vec::new();
        let mut close = None;
        for message in batch.drain(..) {
            match message {
                Message::Write(job) => jobs.push(job),
                Message::Flush(done) => waiters.push(done),
                Message::Close(done) => close = Some(done),
            }
        }
        let batch_error = if jobs.is_empty() { None } else { commit_batch(&conn, &mut jobs, counts) };
        if !jobs.is_empty() || !waiters.is_empty() {
            answerer.send(Answers { jobs, batch_error, waiters });
        }
        if wal_restart.take() {
            // Between two batches this is the only writer, so the pass copies back every frame (unless a reader
            // still needs an old one) and the next BEGIN rewinds the log (see checkpoint.rs).
            let started = Instant::now();
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            }) {
                Ok((frames, copied)) => {
                    tracing::debug!(frames, copied, took = ?started.elapsed(), "WAL checkpoint by the writer");
                }
                Err(error) => tracing::warn!(%error, "WAL checkpoint by the writer failed"),
            }
        }
        if let Some(done) = close {
            drop(receiver);
            drop(conn);
            // After the batch's answers, in the same order.
            answerer.send(Answers { jobs: Vec::new(), batch_error: None, waiters: vec![done] });
            tracing::debug!("store writer closed");
            return;
        }
    }
    tracing::debug!("store writer stopped: every handle dropped");
}

/// Runs one batch in one transaction; returns the error that undid it, if one did.
fn commit_batch(conn: &Connection, jobs: &mut [Box<dyn Job>], counts: &Counts) -> Option<StoreError> {
    let started = Instant::now();
    let size = jobs.len();
    let outcome = run_batch(conn, jobs, &counts.rollbacks);
    match &outcome {
        Ok(()) => {
            counts.commits.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(jobs = size, elapsed_us = started.elapsed().as_micros() as u64, "store batch committed");
        }
        Err(error) => {
            counts.rollbacks.fetch_add(1, Ordering::Relaxed);
            if !conn.is_autocommit() {
                if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(%rollback, "store batch rollback failed");
                }
            }
            tracing::warn!(%error, jobs = size, "store batch failed; every write in it was refused");
        }
    }
    outcome.err()
}

/// BEGIN, every job, COMMIT; if a job fails, ROLLBACK and again with one SAVEPOINT per job. An
/// error is one that undid the whole batch (the caller then rolls back whatever is left of the
/// transaction).
fn run_batch(conn: &Connection, jobs: &mut [Box<dyn Job>], rollbacks: &AtomicU64) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock now: another process holding it makes us wait
    // (busy_timeout) here rather than fail halfway through the batch.
    cached(conn, "BEGIN IMMEDIATE")?;
    let mut failed = false;
    for job in jobs.iter_mut() {
        match job.run(conn) {
            Ok(()) => {}
            Err(error) if conn.is_autocommit() => return Err(error),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        return cached(conn, "COMMIT");
    }
    cached(conn, "ROLLBACK")?;
    rollbacks.fetch_add(1, Ordering::Relaxed);
    cached(conn, "BEGIN IMMEDIATE")?;
    for job in jobs {
        cached(conn, "SAVEPOINT job")?;
        match job.run(conn) {
            Ok(()) => cached(conn, "RELEASE job")?,
            // On some errors (SQLITE_FULL, IOERR, NOMEM) SQLite may already have rolled
            // back the whole transaction: then every job of the batch is undone, by this
            // job's error.
            Err(error) if conn.is_autocommit() => return Err(error),
            Err(_) => {
                cached(conn, "ROLLBACK TO job")?;
                cached(conn, "RELEASE job")?;
            }
        }
    }
    cached(conn, "COMMIT")?;
    Ok(())
}

/// Runs a statement without parameters through the statement cache: the batch statements run for every job, and
/// parsing them each time cost more than some jobs.
fn cached(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}
