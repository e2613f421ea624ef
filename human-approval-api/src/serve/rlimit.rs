//! The process's file-descriptor limit (`RLIMIT_NOFILE`): reading it for the connection cap,
//! and raising the soft limit to the hard one at start (`steppy serve`, `steppy run`), so that
//! the default soft limit of 1,024 does not decide how many approval pages and engine
//! resources fit.

use std::io;

/// The soft and hard `RLIMIT_NOFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// The current limit.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux and macOS, i64 on some BSDs
pub fn nofile_limit() -> io::Result<NofileLimit> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(NofileLimit {
        soft: rl.rlim_cur as u64,
        hard: rl.rlim_max as u64,
    })
}

#[cfg(not(unix))]
pub fn nofile_limit() -> io::Result<NofileLimit> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no RLIMIT_NOFILE on this platform",
    ))
}

/// The most a soft limit is raised to when the hard limit is unlimited (Linux's default
/// `fs.nr_open`; macOS refuses `RLIM_INFINITY` as a soft limit).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raises the soft limit to the hard limit; returns the limit before and after. A soft limit
/// already at the hard one is left alone.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux and macOS, i64 on some BSDs
pub fn raise_nofile_limit() -> io::Result<(NofileLimit, NofileLimit)> {
    let before = nofile_limit()?;
    let target = if before.hard == libc::RLIM_INFINITY as u64 {
        UNLIMITED_TARGET.max(before.soft)
    } else {
        before.hard
    };
    if before.soft >= target {
        return Ok((before, before));
    }
    let rl = libc::rlimit {
        rlim_cur: target as libc::rlim_t,
        rlim_max: before.hard as libc::rlim_t,
    };
    // SAFETY: `rl` is a valid rlimit; setrlimit only reads it.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((before, nofile_limit()?))
}

#[cfg(not(unix))]
pub fn raise_nofile_limit() -> io::Result<(NofileLimit, NofileLimit)> {
    nofile_limit().map(|l| (l, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers_and_reaches_the_hard_limit() {
        let (before, after) = raise_nofile_limit().expect("raise");
        assert!(after.soft >= before.soft);
        assert_eq!(after.hard, before.hard);
        assert_eq!(nofile_limit().expect("read"), after);
    }
}
