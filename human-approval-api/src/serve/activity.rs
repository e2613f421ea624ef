//! What each connection is doing, for its watchdog and for making room at the cap.
//!
//! A connection is [`Phase::Waiting`] for a request (new, or kept alive after a response),
//! reading a request [`Phase::Head`] once its first byte arrived, or [`Phase::Busy`] from the
//! complete head to the end of its response. [`Watched`] (the socket) moves it from waiting to
//! head, the service moves it to busy, and [`ResponseDone`] (dropped with the response body,
//! once hyper has written it) back to waiting. [`Registry`] knows every open connection and
//! closes the idlest one when a new connection needs its place.

use super::limits::ServeLimits;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No byte of a request yet: since the accept (`kept_alive: false`) or since the previous
    /// response ended.
    Waiting { since: Instant, kept_alive: bool },
    /// A request head is arriving; `since` is when it started counting (its first byte, or the
    /// accept for a connection's first request).
    Head { since: Instant },
    /// A request is being served.
    Busy,
}

/// One connection's phase, and the request to close it.
#[derive(Debug)]
pub struct Activity {
    phase: Mutex<Phase>,
    close: Notify,
    closing: AtomicBool,
}

impl Activity {
    pub fn new(now: Instant) -> Activity {
        Activity {
            phase: Mutex::new(Phase::Waiting {
                since: now,
                kept_alive: false,
            }),
            close: Notify::new(),
            closing: AtomicBool::new(false),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn now(&self) -> Phase {
        *self.phase()
    }

    /// Bytes arrived from the client.
    fn bytes_read(&self) {
        let mut p = self.phase();
        if let Phase::Waiting { since, kept_alive } = *p {
            // A connection's first request counts from the accept, so trickling the first
            // byte late buys no time.
            *p = Phase::Head {
                since: if kept_alive { Instant::now() } else { since },
            };
        }
    }

    /// A complete request head arrived; its handler runs.
    pub fn request_started(&self) {
        *self.phase() = Phase::Busy;
    }

    /// The response was written (or abandoned).
    fn response_done(&self) {
        *self.phase() = Phase::Waiting {
            since: Instant::now(),
            kept_alive: true,
        };
    }

    /// When this connection is to be closed unless something happens first (`None` while busy).
    pub fn deadline(&self, limits: &ServeLimits) -> Option<Instant> {
        match self.now() {
            Phase::Waiting {
                since,
                kept_alive: true,
            } => Some(since + limits.idle_timeout),
            Phase::Waiting {
                since,
                kept_alive: false,
            }
            | Phase::Head { since } => Some(since + limits.header_read_timeout),
            Phase::Busy => None,
        }
    }

    /// Resolves once the connection was asked to close ([`Registry::close_idlest`], shutdown).
    pub async fn close_requested(&self) {
        self.close.notified().await
    }

    fn ask_to_close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.close.notify_one();
    }
}

/// Ends the busy phase when dropped: held by the response body, which hyper drops once the
/// body is written (or the connection failed).
pub struct ResponseDone(pub Arc<Activity>);

impl Drop for ResponseDone {
    fn drop(&mut self) {
        self.0.response_done();
    }
}

/// A socket that tells its [`Activity`] when request bytes arrive.
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Watched<T> {
        Watched { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Every open connection, by id.
#[derive(Debug, Default)]
pub struct Registry {
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

/// A connection's place in the [`Registry`], given up when dropped.
pub struct Entry {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.registry.open().remove(&self.id);
    }
}

impl Registry {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new connection.
    pub fn enter(self: &Arc<Self>, activity: Arc<Activity>) -> Entry {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open().insert(id, activity);
        Entry {
            registry: self.clone(),
            id,
        }
    }

    /// Asks the idlest connection to close: the one waiting longest for a request, else the
    /// one sending its head longest. Busy connections are never chosen. False if none was.
    pub fn close_idlest(&self) -> bool {
        let open = self.open();
        let rank = |a: &Activity| match a.now() {
            Phase::Waiting { since, .. } => Some((0, since)),
            Phase::Head { since } => Some((1, since)),
            Phase::Busy => None,
        };
        let idlest = open
            .values()
            .filter(|a| !a.closing.load(Ordering::SeqCst))
            .filter_map(|a| rank(a).map(|r| (r, a)))
            .min_by_key(|(r, _)| *r);
        match idlest {
            Some((_, a)) => {
                a.ask_to_close();
                true
            }
            None => false,
        }
    }

    /// Asks every connection to close (the end of the shutdown grace).
    pub fn close_all(&self) {
        for a in self.open().values() {
            a.ask_to_close();
        }
    }

    pub fn len(&self) -> usize {
        self.open().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn phases_and_deadlines() {
        let limits = ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            ..ServeLimits::default()
        };
        let t0 = Instant::now();
        let a = Activity::new(t0);
        assert_eq!(a.deadline(&limits), Some(t0 + Duration::from_secs(10)));
        a.bytes_read();
        assert_eq!(
            a.now(),
            Phase::Head { since: t0 },
            "the first request counts from the accept"
        );
        a.request_started();
        assert_eq!(a.deadline(&limits), None);
        a.response_done();
        assert!(matches!(a.now(), Phase::Waiting { kept_alive: true, .. }));
        assert!(a.deadline(&limits).is_some_and(|d| d >= t0 + Duration::from_secs(45)));
    }

    #[test]
    fn the_idlest_connection_makes_room_and_busy_ones_never_do() {
        let r = Arc::new(Registry::default());
        let t0 = Instant::now();
        let busy = Arc::new(Activity::new(t0));
        busy.request_started();
        let head = Arc::new(Activity::new(t0));
        head.bytes_read();
        let waiting = Arc::new(Activity::new(t0 + Duration::from_millis(5)));
        let _e = [r.enter(busy.clone()), r.enter(head.clone()), r.enter(waiting.clone())];
        assert!(r.close_idlest());
        assert!(
            waiting.closing.load(Ordering::SeqCst),
            "waiting goes before a head in progress"
        );
        assert!(r.close_idlest());
        assert!(head.closing.load(Ordering::SeqCst));
        assert!(!r.close_idlest(), "a busy connection is never closed to make room");
        assert!(!busy.closing.load(Ordering::SeqCst));
    }
}
