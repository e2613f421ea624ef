//! Leases: at most one process drives an execution at a time.
//!
//! A lease row names its owner (a random id per engine), the owner's pid and a heartbeat. Another
//! process may take the lease over only if the heartbeat is older than [`LEASE_STALE_MS`] or the
//! owner's pid no longer exists on this machine (so a restart right after `kill -9` does not
//! have to wait for the lease to go stale).

use super::{Store, StoreResult};
use rusqlite::{OptionalExtension, params};

/// A lease whose heartbeat is older than this may be taken over.
pub const LEASE_STALE_MS: i64 = 15_000;

/// True if a process with this pid exists (or exists but belongs to another user).
fn pid_alive(pid: i64) -> bool {
    if pid <= 0 || pid > i32::MAX as i64 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for the process; it sends nothing.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The current holder of the lease on `id`, if anyone.
struct Holder {
    owner: String,
    pid: i64,
    heartbeat_ms: i64,
}

impl Holder {
    fn of(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Holder>> {
        conn.query_row(
            "SELECT owner, pid, heartbeat_ms FROM leases WHERE execution_id = ?1",
            [id],
            |r| {
                Ok(Holder {
                    owner: r.get(0)?,
                    pid: r.get(1)?,
                    heartbeat_ms: r.get(2)?,
                })
            },
        )
        .optional()
    }

    /// True if this is a live process other than `owner`: its lease may not be taken over.
    fn excludes(&self, owner: &str, now_ms: i64) -> bool {
        self.owner != owner && now_ms - self.heartbeat_ms <= LEASE_STALE_MS && pid_alive(self.pid)
    }
}

impl Store {
    /// Takes the lease on execution `id` for `owner`. Returns false if a live process holds it.
    pub fn try_lease(&self, id: &str, owner: &str, now_ms: i64) -> StoreResult<bool> {
        self.write(|tx| {
            let holder = Holder::of(tx, id)?;
            if holder.is_some_and(|h| h.excludes(owner, now_ms)) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO leases (execution_id, owner, pid, heartbeat_ms) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (execution_id) DO UPDATE SET owner = ?2, pid = ?3, heartbeat_ms = ?4",
                params![id, owner, std::process::id() as i64, now_ms],
            )?;
            Ok(true)
        })
    }

    /// Refreshes every lease `owner` holds and returns the ids of those executions: an
    /// execution the caller drives that is missing was taken over by another process.
    pub fn heartbeat(&self, owner: &str, now_ms: i64) -> StoreResult<std::collections::HashSet<String>> {
        self.write(|tx| {
            let mut st =
                tx.prepare_cached("UPDATE leases SET heartbeat_ms = ?2 WHERE owner = ?1 RETURNING execution_id")?;
            let held = st
                .query_map(params![owner, now_ms], |r| r.get(0))
                .and_then(|rows| rows.collect())?;
            Ok(held)
        })
    }

    /// Gives up the lease on `id` if `owner` holds it.
    pub fn release(&self, id: &str, owner: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE execution_id = ?1 AND owner = ?2",
                params![id, owner],
            )?;
            Ok(())
        })
    }

    /// True if some live process other than `owner` holds the lease on `id`.
    pub fn leased_by_other(&self, id: &str, owner: &str, now_ms: i64) -> StoreResult<bool> {
        let holder = self.read(|conn| Ok(Holder::of(conn, id)?))?;
        Ok(holder.is_some_and(|h| h.excludes(owner, now_ms)))
    }
}
