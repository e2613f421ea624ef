//! One connection: hyper's HTTP/1 connection over the [`Watched`] socket, the router with the
//! peer's address (`ConnectInfo<SocketAddr>`, for the guess limiter and the audit trail), and
//! the watchdog that closes the connection when its [`Activity`] deadline passes, when the
//! registry needs its place, or (gracefully) at shutdown.

use super::activity::{Activity, ResponseDone, Watched};
use super::body::{Deadline, Tracked};
use super::limits::ServeLimits;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower_service::Service;

/// Serves `stream` until the client or the watchdog ends it.
pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    activity: Arc<Activity>,
    limits: Arc<ServeLimits>,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = {
        let activity = activity.clone();
        let body_limit = limits.body_read_timeout;
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            activity.request_started();
            let mut router = router.clone();
            let done = ResponseDone(activity.clone());
            let mut req = req.map(|b| Body::new(Deadline::new(b, body_limit)));
            req.extensions_mut().insert(ConnectInfo(peer));
            async move {
                let response = match router.call(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|b| Tracked::new(b, done)))
            }
        })
    };
    // Our own watchdog counts the header time (hyper's timer would also count the wait for the
    // next request on a kept-alive connection as header time).
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(Watched::new(stream, activity.clone())), service);
    tokio::pin!(conn);
    let mut stop_seen = *stopping.borrow();
    if stop_seen {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        // Never sleeping longer than the watch interval catches a deadline that a phase change
        // moved earlier (a connection's first head may have 10 s; once it was answered, the
        // idle timeout may be shorter).
        let next_look = Instant::now() + limits.watch_interval();
        let wake = activity.deadline(&limits).map_or(next_look, |d| d.min(next_look));
        tokio::select! {
            _ = conn.as_mut() => return, // the client closed, or the connection failed
            _ = tokio::time::sleep_until(wake) => {
                if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    return; // dropping the connection closes the socket
                }
            }
            _ = activity.close_requested() => return,
            changed = stopping.changed(), if !stop_seen => {
                // A closed channel means the server is gone: stop as well.
                if changed.is_err() || *stopping.borrow() {
                    stop_seen = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
