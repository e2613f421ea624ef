//! Group commit for decisions: concurrent POSTs are decided together in one transaction.
//!
//! Each decision must be durable before it is answered, and on SQLite that is one fsync per
//! commit — a few milliseconds, so at most a few hundred commits a second. A single worker
//! takes the decisions that arrived while the previous commit was being written and hands them
//! to [`Store::decide_batch`] (one transaction, a savepoint each, one fsync). With one request
//! in flight a batch is that one request, so a lone click waits no longer than before; under
//! load the batches grow by themselves and throughput follows.

use crate::error::ApiError;
use std::sync::OnceLock;
use steppy_engine::store::{Attempt, DecideError, Decided, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most decisions committed together.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Decided, DecideError>>;

struct Job {
    token_sha256: String,
    attempt: Attempt,
    reply: Reply,
}

/// The queue in front of the decision worker, started on first use (inside the runtime).
#[derive(Default)]
pub struct Decisions {
    queue: OnceLock<mpsc::UnboundedSender<Job>>,
}

impl Decisions {
    /// Decides `attempt` with the token whose hash is `token_sha256`, in the next batch.
    pub async fn decide(&self, store: &Store, token_sha256: String, attempt: Attempt) -> Result<Decided, ApiError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(worker(store.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        queue
            .send(Job { token_sha256, attempt, reply })
            .map_err(|_| ApiError::internal("the decision worker has stopped"))?;
        match answer.await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(ApiError::internal("the decision worker dropped a decision")),
        }
    }
}

/// Nothing of the batch was committed: every request in it gets the error (a locked database
/// stays "locked", so clients see 503 and may try again).
fn fail_all(jobs: Vec<Job>, e: &StoreError) {
    for job in jobs {
        let copy = match e {
            StoreError::Locked(path) => StoreError::Locked(path.clone()),
            other => StoreError::Sqlite(other.to_string()),
        };
        let _ = job.reply.send(Err(DecideError::Store(copy)));
    }
}

async fn worker(store: Store, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let store = store.clone();
        let now = steppy_engine::clock::system_now_ms();
        let attempts: Vec<(String, Attempt)> = jobs.iter().map(|j| (j.token_sha256.clone(), j.attempt.clone())).collect();
        let outcome = tokio::task::spawn_blocking(move || store.decide_batch(&attempts, now)).await;
        match outcome {
            Ok(Ok(results)) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Ok(Err(e)) => fail_all(jobs, &e),
            Err(join) => fail_all(jobs, &StoreError::Sqlite(format!("the decision task failed: {join}"))),
        }
    }
}
