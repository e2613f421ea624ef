//! The accept loop of the approval service: every connection is accepted at once (so the
//! listen backlog never fills), counted against a cap that leaves descriptors to the engine,
//! and served by [`conn`] under the [`ServeLimits`] timeouts.
//!
//! - [`limits`]: the settings and the cap; [`rlimit`]: the descriptor limit.
//! - [`activity`]: what each connection is doing, and the registry that picks the idlest one
//!   to close when a new connection needs room; [`conn`]: one connection and its watchdog;
//!   [`body`]: the request body deadline and the response's end.
//! - [`refuse`]: the 503 for a connection with no room; [`notes`]: rate-limited log lines.
//!
//! Accept errors never end the loop: a connection that failed before it was accepted is
//! skipped, and anything else (out of descriptors, `ENFILE`, `ENOBUFS`) is logged and waited
//! out with a short, growing pause, after asking the idlest connection to close.

pub mod activity;
pub mod body;
pub mod conn;
pub mod limits;
pub mod notes;
pub mod refuse;
pub mod rlimit;

use crate::state::AppState;
use activity::{Activity, Registry};
use limits::ServeLimits;
use notes::Throttled;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::text::printable;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// How long a new connection waits for the place of the connection closed to make room.
const ROOM_WAIT: Duration = Duration::from_millis(200);
/// The longest pause after an accept error.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Lines of one kind on stderr, at most once per this.
const NOTE_EVERY: Duration = Duration::from_secs(10);

/// Serves `state`'s router on `listener` with the default [`ServeLimits`] until `shutdown`
/// resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, state, ServeLimits::default(), shutdown).await
}

/// Serves `state`'s router on `listener` under `limits` until `shutdown` resolves; then stops
/// accepting, lets requests in progress finish (for up to [`ServeLimits::shutdown_grace`]) and
/// closes idle connections. Handlers see the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let nofile = rlimit::nofile_limit().ok().map(|l| l.soft);
    let cap = limits.connection_cap(nofile);
    if cap < limits.max_connections {
        tracing::warn!(
            target: "steppy::serve",
            cap,
            "the approval service takes at most {cap} connections (descriptor limit {}, {} kept for the engine); raise LimitNOFILE for more",
            nofile.map_or_else(|| "unknown".to_string(), |n| n.to_string()),
            limits.fd_reserve,
        );
    }
    let router = crate::routes::router(state);
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(cap));
    let registry = Arc::new(Registry::default());
    let (stop, stopping) = watch::channel(false);
    let mut at_cap = Throttled::new(NOTE_EVERY);
    let mut accept_failing = Throttled::new(NOTE_EVERY);
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) if gone_before_accept(&e) => continue,
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                accept_failing.note(|| {
                    format!(
                        "the approval service cannot accept connections: {} (pausing {} ms)",
                        printable(&e.to_string()),
                        backoff.as_millis()
                    )
                });
                if out_of_descriptors(&e) {
                    // An idle connection's descriptor is the one we can give back.
                    registry.close_idlest();
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                at_cap.note(|| format!("the approval service reached its cap of {cap} connections: the idlest are closed to make room, and new ones are answered 503 while all are busy"));
                make_room(&registry, &slots).await
            }
        };
        let Some(permit) = permit else {
            refuse::refuse(stream);
            continue;
        };
        let activity = Arc::new(Activity::new(tokio::time::Instant::now()));
        let entry = registry.enter(activity.clone());
        let (router, limits, stopping) = (router.clone(), limits.clone(), stopping.clone());
        tokio::spawn(async move {
            conn::serve_connection(stream, peer, router, activity, limits, stopping).await;
            drop(entry);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        registry.close_all();
    }
    Ok(())
}

/// A place at the cap: the idlest connection is asked to close and its place awaited briefly.
/// `None` when every connection is busy (or the place did not come free in time).
async fn make_room(registry: &Registry, slots: &Arc<Semaphore>) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if !registry.close_idlest() {
        return None;
    }
    tokio::time::timeout(ROOM_WAIT, slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// `EMFILE` or `ENFILE`: this process or the system is out of descriptors.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Errors about one connection that went away before it was accepted: nothing to wait for.
fn gone_before_accept(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}
