//! Checkpoints off the commit path ([`Store::checkpoint_in_background`]).
//!
//! In WAL mode SQLite copies the log back into the database file (a checkpoint) once the log
//! holds 1,000 pages, and by default it does so inside the commit that crossed the mark: that
//! commit then also waits for the copy and two more fsyncs (a few ms on a quiet disk, tens on
//! a busy one), and so does every decision queued behind it. With a background checkpointer
//! the writing connection's WAL hook only signals a thread that checkpoints on a connection of
//! its own, once per [`SIGNAL_PAGES`] new pages. Its checkpoints are `PASSIVE`: they never wait
//! for, or block, the writer.
//!
//! Durability is unchanged: commits are synced as before, and the checkpointer syncs the log
//! before copying and the database file after, at the store's own `synchronous` level.
//!
//! SQLite starts the log over only when a write transaction begins while every frame is
//! already copied, which a busy writer rarely allows a background pass. So when the log reaches
//! [`INLINE_PAGES`], the committing connection checkpoints inline, as SQLite would have: it
//! copies only what the background passes have not (at most about [`SIGNAL_PAGES`]), and the
//! next transaction starts the log over. The log stays bounded, and the writer pays for one
//! small checkpoint per [`INLINE_PAGES`] instead of a full one per 1,000 pages.

use super::{Store, StoreError, StoreResult};
use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

/// New log pages (4 KiB each) per background checkpoint: SQLite's own autocheckpoint mark.
pub const SIGNAL_PAGES: i32 = 1000;

/// Log size (pages) at which the committing connection checkpoints inline after all.
pub const INLINE_PAGES: i32 = 10 * SIGNAL_PAGES;

/// What the WAL hook does after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterCommit {
    Nothing,
    /// Wake the checkpointer.
    Signal,
    /// Checkpoint now, on the committing connection.
    Inline,
}

/// The hook's memory between commits: how long the log was at the last signal.
#[derive(Debug, Default)]
struct Trigger {
    signalled_at: i32,
}

impl Trigger {
    /// What to do now that the log holds `pages` pages.
    fn after_commit(&mut self, pages: i32) -> AfterCommit {
        if pages >= INLINE_PAGES {
            return AfterCommit::Inline;
        }
        if pages < self.signalled_at {
            self.signalled_at = 0; // the log started over
        }
        if pages - self.signalled_at >= SIGNAL_PAGES {
            self.signalled_at = pages;
            return AfterCommit::Signal;
        }
        AfterCommit::Nothing
    }
}

impl Store {
    /// Moves WAL checkpoints to a thread of their own for as long as this store is open (for
    /// long-running processes: the approval API). Does nothing in memory. Calling it again
    /// replaces the checkpointer.
    pub fn checkpoint_in_background(&self) -> StoreResult<()> {
        let passes = self.checkpoints.clone();
        self.with_connection(|conn| {
            let Some(file) = conn.path().filter(|p| !p.is_empty()).map(str::to_string) else {
                return Ok(()); // in memory: no log to checkpoint
            };
            let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
            let checkpointer = open_checkpointer(&file, synchronous)?;
            let (signal, wake) = sync_channel::<()>(1);
            std::thread::Builder::new()
                .name("steppy-checkpoint".into())
                .spawn(move || checkpoint_when_signalled(&checkpointer, &wake, &passes))
                .map_err(StoreError::Thread)?;
            // The hook replaces SQLite's autocheckpoint on this connection. It runs inside each
            // commit, after the commit itself. It must not fail: SQLite would report its error as
            // the commit's own, for a transaction that did commit.
            let mut trigger = Trigger::default();
            conn.wal_hook(Some(move |wal: &mut Wal, pages: i32| {
                match trigger.after_commit(pages) {
                    AfterCommit::Nothing => {}
                    AfterCommit::Signal => {
                        let _ = signal.try_send(()); // already signalled: one pass covers both
                    }
                    AfterCommit::Inline => {
                        let _ = wal.checkpoint(); // busy if a background pass is running: the next commit retries
                    }
                }
                Ok(())
            }))?;
            Ok(())
        })
    }

    /// How many passes the background checkpointer has made (tests, benchmarks).
    pub fn background_checkpoints(&self) -> usize {
        self.checkpoints.load(Ordering::Relaxed)
    }
}

/// A second connection to the database file `path`, syncing at the store's `synchronous`
/// level (as read from its connection), and never less than NORMAL: the copy must be synced.
fn open_checkpointer(path: &str, synchronous: i64) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.pragma_update(None, "synchronous", synchronous.max(1))?;
    Ok(conn)
}

/// The checkpointer's loop: one passive checkpoint per signal, until the store is closed (the
/// hook, holding the sender, is dropped with the writing connection).
fn checkpoint_when_signalled(conn: &Connection, wake: &Receiver<()>, passes: &AtomicUsize) {
    while wake.recv().is_ok() {
        // A failed pass is not fatal: the next signal tries again, and the writer checkpoints
        // inline if the log keeps growing.
        if conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).is_ok() {
            passes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpointer_is_woken_once_per_signal_pages_and_the_writer_only_past_the_limit() {
        let mut t = Trigger::default();
        let seen: Vec<AfterCommit> = [5, 999, 1000, 1500, 1999, 2000, 9999, INLINE_PAGES, INLINE_PAGES + 3]
            .into_iter()
            .map(|pages| t.after_commit(pages))
            .collect();
        use AfterCommit::*;
        assert_eq!(
            seen,
            [
                Nothing, Nothing, Signal, Nothing, Nothing, Signal, Signal, Inline, Inline
            ]
        );
        // The log started over (after the inline checkpoint): counting starts from zero again.
        assert_eq!(t.after_commit(12), Nothing);
        assert_eq!(t.after_commit(SIGNAL_PAGES + 12), Signal);
    }

    #[test]
    fn background_passes_copy_the_log_into_the_database_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let store = Store::open(&path).expect("open");
        store.checkpoint_in_background().expect("checkpointer");
        let before = std::fs::metadata(&path).expect("db file").len();
        let plan: crate::Plan = serde_json::from_value(serde_json::json!({
            "name": "p", "stages": [{ "name": "s", "steps": [{ "type": "Human", "name": "h", "message": "ok?" }] }]
        }))
        .expect("plan");
        let exec = store.submit(&plan, 1, Default::default()).expect("submit");
        // Each approval carries three pages of message: well over SIGNAL_PAGES of log in all.
        let message = "x".repeat(12_000);
        for i in 0..400 {
            let new = super::super::NewApproval {
                execution_id: exec.clone(),
                stage: 0,
                index: 0,
                idempotency_key: format!("k{i}"),
                token_sha256: format!("h{i}"),
                message: message.clone(),
                approvers: vec![],
                required: 1,
                forbid_self: false,
                requested_by: "t".into(),
                deadline_ms: None,
                on_timeout: crate::plan::OnTimeout::Reject,
            };
            store.create_approval(&new, 1).expect("approval");
        }
        // The pass runs on its own thread: wait for it (generously; this asserts no timing).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while store.background_checkpoints() == 0 {
            assert!(std::time::Instant::now() < deadline, "the checkpointer was never woken");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let after = std::fs::metadata(&path).expect("db file").len();
        assert!(
            after > before + 1_000_000,
            "the pass copied the log into the database file ({before} -> {after} bytes)"
        );
        assert_eq!(
            store.approval_by_token("h399").expect("read").map(|a| a.message.len()),
            Some(12_000)
        );
    }
}
