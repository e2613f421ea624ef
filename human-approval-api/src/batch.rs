//! Group commit for decisions: concurrent POSTs are decided together in one transaction.
//!
//! Each decision must be durable before it is answered, and on SQLite that is one fsync per
//! commit, so at most a few hundred commits a second. One OS thread, the decision writer, takes
//! every decision that arrived while it was committing the previous batch and hands them to
//! [`Store::decide_batch`] (one transaction, a savepoint each, one fsync), then answers each
//! request. With one request in flight a batch is that one request, so a lone click waits no
//! longer than before; under load the batches grow by themselves and throughput follows.
//!
//! The writer is a plain thread rather than a task on the async runtime: a commit blocks for
//! the fsync, and a thread of its own needs no hop through tokio's blocking pool per batch
//! (which added wake-ups, and tail latency, on a busy machine). It is started on first use and
//! ends when the last [`Decisions`] handle is dropped.

use crate::error::ApiError;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use steppy_engine::store::{Attempt, DecideError, Decided, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most decisions committed together.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Decided, DecideError>>;

/// One queued decision and where its answer goes.
struct Job {
    token_sha256: String,
    attempt: Attempt,
    reply: Reply,
}

/// The queue in front of the decision writer.
#[derive(Default)]
pub struct Decisions {
    queue: OnceLock<mpsc::UnboundedSender<Job>>,
}

impl Decisions {
    /// Decides `attempt` with the token whose hash is `token_sha256`, in the next batch, and
    /// answers once that batch is committed.
    pub async fn decide(&self, store: &Store, token_sha256: String, attempt: Attempt) -> Result<Decided, ApiError> {
        let queue = self.queue.get_or_init(|| start(store.clone()));
        let (reply, answer) = oneshot::channel();
        queue
            .send(Job {
                token_sha256,
                attempt,
                reply,
            })
            .map_err(|_| ApiError::internal("the decision writer has stopped"))?;
        match answer.await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(ApiError::internal("the decision writer dropped a decision")),
        }
    }
}

/// Starts the decision writer on `store` and returns its queue. If the thread cannot be
/// started, the queue is already closed and every decision is answered 500 (no panic).
fn start(store: Store) -> mpsc::UnboundedSender<Job> {
    let (queue, jobs) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("steppy-decisions".into())
        .spawn(move || write_decisions(&store, jobs));
    if let Err(e) = spawned {
        tracing::error!(target: "steppy::serve", "cannot start the decision writer: {e}");
    }
    queue
}

/// The writer's loop: wait for a decision, gather whatever else is queued, commit, answer.
fn write_decisions(store: &Store, mut jobs: mpsc::UnboundedReceiver<Job>) {
    // WAL checkpoints, too, would otherwise run inside some decision's commit.
    if let Err(e) = store.checkpoint_in_background() {
        tracing::warn!(target: "steppy::serve", "checkpoints stay in the commit path: {e}");
    }
    while let Some(first) = jobs.blocking_recv() {
        let batch = gather(first, &mut jobs);
        commit(store, batch);
    }
}

/// `first` and every decision queued behind it, up to [`MAX_BATCH`].
fn gather(first: Job, jobs: &mut mpsc::UnboundedReceiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// Decides `batch` in one transaction and answers each request with its own result.
fn commit(store: &Store, batch: Vec<Job>) {
    let (attempts, replies): (Vec<(String, Attempt)>, Vec<Reply>) = batch
        .into_iter()
        .map(|job| ((job.token_sha256, job.attempt), job.reply))
        .unzip();
    let now = steppy_engine::clock::system_now_ms();
    // A panic in the store must not take the writer (and every later decision) down with it;
    // the transaction it was in is rolled back when its guard unwinds.
    match catch_unwind(AssertUnwindSafe(|| store.decide_batch(&attempts, now))) {
        Ok(Ok(results)) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Ok(Err(e)) => fail_all(replies, &e),
        Err(_) => fail_all(replies, &StoreError::Internal("the decision batch panicked".into())),
    }
}

/// Nothing of the batch was committed: every request in it gets the error (a locked database
/// stays "locked", so clients see 503 and may try again).
fn fail_all(replies: Vec<Reply>, e: &StoreError) {
    for reply in replies {
        let copy = match e {
            StoreError::Locked(path) => StoreError::Locked(path.clone()),
            other => StoreError::Internal(other.to_string()),
        };
        let _ = reply.send(Err(DecideError::Store(copy)));
    }
}
