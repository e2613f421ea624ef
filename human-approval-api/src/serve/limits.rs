//! [`ServeLimits`]: how long the approval service waits for each part of a request, how many
//! connections it holds at once, and how many file descriptors it leaves to the engine.

use std::time::Duration;

/// The limits of the accept loop ([`crate::serve_with`]). The defaults suit `steppy serve`;
/// tests use small ones.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// A request's head (request line and headers) must have arrived this long after its first
    /// byte; on a new connection the time counts from the accept. Cuts slowloris connections
    /// that send a header line now and then.
    pub header_read_timeout: Duration,
    /// A kept-alive connection that sends no new request for this long is closed.
    pub idle_timeout: Duration,
    /// A request's body must have arrived this long after its head.
    pub body_read_timeout: Duration,
    /// Most connections served at once. At the cap the idlest connection (waiting for a request
    /// or still sending its head) is closed to make room; when every one is busy, the new
    /// connection is answered 503 and closed at once.
    pub max_connections: usize,
    /// Descriptors always left to the engine (database, AWS connections, outbox): the cap on
    /// connections never exceeds the soft `RLIMIT_NOFILE` minus this.
    pub fd_reserve: usize,
    /// After shutdown is asked for, requests in progress get this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> ServeLimits {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            fd_reserve: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServeLimits {
    /// The number of connections actually allowed when the soft descriptor limit is
    /// `nofile_soft` (`None`: unknown, then only [`ServeLimits::max_connections`] counts).
    /// At least one, so that the service still answers, one connection at a time.
    pub fn connection_cap(&self, nofile_soft: Option<u64>) -> usize {
        let by_descriptors = nofile_soft
            .map(|soft| {
                usize::try_from(soft)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(self.fd_reserve)
            })
            .unwrap_or(usize::MAX);
        self.max_connections.min(by_descriptors).max(1)
    }

    /// The longest a connection's watchdog sleeps before it looks again: every deadline is set
    /// at least this far ahead, so a look this often never misses one.
    pub(crate) fn watch_interval(&self) -> Duration {
        self.header_read_timeout.min(self.idle_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::ServeLimits;

    #[test]
    fn the_cap_leaves_the_reserve_to_the_engine() {
        let l = ServeLimits {
            max_connections: 1024,
            fd_reserve: 256,
            ..ServeLimits::default()
        };
        assert_eq!(l.connection_cap(Some(1024)), 768);
        assert_eq!(l.connection_cap(Some(1 << 20)), 1024);
        assert_eq!(l.connection_cap(None), 1024);
        assert_eq!(l.connection_cap(Some(100)), 1, "never zero");
    }
}
