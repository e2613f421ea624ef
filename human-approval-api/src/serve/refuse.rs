//! Turning away a connection beyond the cap, at once and without a task or a timer: whatever
//! the client already sent is read (so closing does not reset the connection before it reads
//! the answer), a fixed 503 is written, and the socket is closed.

use tokio::net::TcpStream;

/// The whole answer to a connection the service has no room for.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 48\r\n\
retry-after: 1\r\n\
cache-control: no-store\r\n\
connection: close\r\n\
\r\n\
the approval service is busy; try again shortly\n";

/// Answers 503 on `stream` if its buffer takes it right away, then closes it.
pub fn refuse(stream: TcpStream) {
    let mut scratch = [0u8; 4096];
    for _ in 0..4 {
        match stream.try_read(&mut scratch) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    let _ = stream.try_write(BUSY);
    if let Ok(std) = stream.into_std() {
        let _ = std.shutdown(std::net::Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_has_the_length_it_announces() {
        let text = std::str::from_utf8(super::BUSY).expect("ascii");
        let (_, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert_eq!(body.len(), 48);
    }
}
