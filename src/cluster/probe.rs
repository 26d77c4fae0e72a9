//! Fast failure detection: is a member's process gone?
//!
//! In combined mode every broker is a quorum voter with a controller listener. A TCP
//! connect to that port that is *refused* (ECONNREFUSED) means nothing listens there:
//! the process is gone (a restarted one registers a new incarnation anyway). A connect
//! that times out proves nothing — a network partition or a paused (SIGSTOP) process
//! looks like that, and even a paused process's kernel still completes the handshake —
//! so only refusals count, and only several in a row over a minimum span, so one
//! refused connect (a port briefly re-bound, a full backlog on some kernels) is not
//! enough. The controller fences a member this tracker calls gone at once instead of
//! waiting for `broker.session.timeout.ms`; everything else still waits for it.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// How long one probe's connect may take before it counts as "no answer".
pub const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// Consecutive refused connects before a member counts as gone.
pub const REFUSALS_TO_GONE: u32 = 2;
/// ... and the least time between the first and the last of them.
pub const REFUSED_SPAN_MIN: Duration = Duration::from_millis(100);

/// What one connect attempt to a member's controller listener showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The connection was accepted: something listens (perhaps a paused process).
    Accepted,
    /// Actively refused: nothing listens on the port.
    Refused,
    /// Timed out or failed otherwise (unreachable, partitioned): no evidence either way.
    NoAnswer,
}

/// Connects to `addr` once and drops the connection.
pub async fn probe(addr: &str) -> Outcome {
    match tokio::time::timeout(PROBE_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Outcome::Accepted,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::Refused,
        Ok(Err(_)) | Err(_) => Outcome::NoAnswer,
    }
}

/// One member's streak of refused connects.
#[derive(Debug, Default, Clone)]
pub struct RefusalTracker {
    /// When the current streak began, and its length.
    streak: Option<(Instant, u32)>,
}

impl RefusalTracker {
    /// Records one probe's outcome at `now`; true when the member counts as gone:
    /// at least `REFUSALS_TO_GONE` refusals in a row spanning `REFUSED_SPAN_MIN`. Any
    /// other outcome ends the streak.
    pub fn observe(&mut self, outcome: Outcome, now: Instant) -> bool {
        if outcome != Outcome::Refused {
            self.streak = None;
            return false;
        }
        let (first, count) = self.streak.get_or_insert((now, 0));
        *count += 1;
        *count >= REFUSALS_TO_GONE && now.duration_since(*first) >= REFUSED_SPAN_MIN
    }

    /// When the current streak of refusals began, if there is one.
    pub fn refused_since(&self) -> Option<Instant> {
        self.streak.map(|(first, _)| first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn gone_after_two_refusals_at_least_the_span_apart() {
        let t0 = Instant::now();
        let mut t = RefusalTracker::default();
        assert!(!t.observe(Outcome::Refused, t0));
        assert!(!t.observe(Outcome::Refused, t0 + ms(50)), "too soon");
        assert!(t.observe(Outcome::Refused, t0 + ms(100)));
        assert!(t.observe(Outcome::Refused, t0 + ms(150)), "and stays gone");
    }

    #[test]
    fn one_refusal_is_never_enough_however_long_ago() {
        let t0 = Instant::now();
        let mut t = RefusalTracker::default();
        assert!(!t.observe(Outcome::Accepted, t0));
        assert!(!t.observe(Outcome::Refused, t0 + ms(5000)));
    }

    #[test]
    fn a_timeout_or_an_accepted_connect_ends_the_streak() {
        let t0 = Instant::now();
        let mut t = RefusalTracker::default();
        t.observe(Outcome::Refused, t0);
        assert!(!t.observe(Outcome::NoAnswer, t0 + ms(100)));
        assert!(
            !t.observe(Outcome::Refused, t0 + ms(300)),
            "a new streak starts"
        );
        assert!(!t.observe(Outcome::Refused, t0 + ms(350)));
        assert!(t.observe(Outcome::Refused, t0 + ms(400)));
        assert!(!t.observe(Outcome::Accepted, t0 + ms(600)));
        assert!(!t.observe(Outcome::Refused, t0 + ms(900)));
    }

    #[test]
    fn timeouts_alone_never_make_a_member_gone() {
        let t0 = Instant::now();
        let mut t = RefusalTracker::default();
        for i in 0..100 {
            assert!(!t.observe(Outcome::NoAnswer, t0 + ms(i * 100)));
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_listening_one_accepted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().to_string();
        assert_eq!(probe(&open).await, Outcome::Accepted);
        drop(listener);
        assert_eq!(probe(&open).await, Outcome::Refused);
    }
}
