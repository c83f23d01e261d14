//! Progress lines on stderr while `pgtls probe` works, for a person waiting: each
//! connection as it opens (with what is left of `connect_timeout`), each established
//! connection, each attempt of libpq's plan as it ends, and once a second while waiting,
//! the `connect_timeout` countdown. Every line carries the time since the probe started.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pgtls_cli::probe::{AttemptReport, Progress};

/// How often the countdown line repeats while a connection is pending.
const TICK: Duration = Duration::from_secs(1);

/// The connection being waited for.
#[derive(Debug, Clone)]
struct Pending {
    server: String,
    /// When `connect_timeout` runs out, if set.
    deadline: Option<Instant>,
    since: Instant,
}

/// A [`Progress`] that writes to stderr, with a countdown thread.
pub struct StderrProgress {
    name: &'static str,
    started: Instant,
    attempts: usize,
    pending: Arc<Mutex<Option<Pending>>>,
    stop: mpsc::Sender<()>,
    ticker: Option<JoinHandle<()>>,
}

impl StderrProgress {
    /// Starts the clock and the countdown thread; lines begin with `name`.
    pub fn start(name: &'static str) -> StderrProgress {
        let started = Instant::now();
        let pending: Arc<Mutex<Option<Pending>>> = Arc::default();
        let (stop, stopped) = mpsc::channel::<()>();
        let watched = Arc::clone(&pending);
        let ticker = thread::spawn(move || loop {
            match stopped.recv_timeout(TICK) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            let pending = watched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(pending) = pending {
                eprintln!(
                    "{name}: {} waiting for {}: {}",
                    stamp(now - started),
                    pending.server,
                    countdown(&pending, now)
                );
            }
        });
        StderrProgress {
            name,
            started,
            attempts: 0,
            pending,
            stop,
            ticker: Some(ticker),
        }
    }

    /// Stops the countdown thread.
    pub fn finish(mut self) {
        self.stop_ticker();
    }

    fn stop_ticker(&mut self) {
        let _ = self.stop.send(());
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }

    fn set_pending(&self, pending: Option<Pending>) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = pending;
    }

    fn line(&self, text: &str) {
        eprintln!("{}: {} {text}", self.name, stamp(self.started.elapsed()));
    }
}

impl Drop for StderrProgress {
    fn drop(&mut self) {
        self.stop_ticker();
    }
}

impl Progress for StderrProgress {
    fn handle_connecting(&mut self, server: &str, time_left: Option<Duration>) {
        let now = Instant::now();
        let timeout = match time_left {
            Some(left) => format!(" (connect_timeout: {:.1} s left)", left.as_secs_f64()),
            None => String::new(),
        };
        self.line(&format!("connecting: {server}{timeout}"));
        self.set_pending(Some(Pending {
            server: server.to_owned(),
            deadline: time_left.map(|left| now + left),
            since: now,
        }));
    }

    fn handle_established(&mut self, server: &str, tls: bool) {
        let how = if tls { "TLS" } else { "plaintext" };
        self.line(&format!(
            "connected ({how}): {server}; authenticating up to ReadyForQuery"
        ));
    }

    fn handle_attempt_finished(&mut self, attempt: &AttemptReport) {
        self.attempts += 1;
        self.line(&format!(
            "attempt {}: {} via {}{} -> {}",
            self.attempts,
            attempt.server,
            attempt.method,
            if attempt.same_connection {
                " (same connection)"
            } else {
                ""
            },
            attempt.error.as_deref().unwrap_or("ready for query")
        ));
        self.set_pending(None);
    }
}

/// `[+1234 ms]`: the time since the probe started.
fn stamp(elapsed: Duration) -> String {
    format!("[+{} ms]", elapsed.as_millis())
}

/// What is left of `connect_timeout`, or how long the wait has lasted without one.
fn countdown(pending: &Pending, now: Instant) -> String {
    match pending.deadline {
        Some(deadline) => format!(
            "{} s of connect_timeout left",
            deadline.saturating_duration_since(now).as_secs()
        ),
        None => format!(
            "{} s so far (no connect_timeout)",
            (now - pending.since).as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(deadline_in: Option<u64>, now: Instant) -> Pending {
        Pending {
            server: "connection to server at \"127.0.0.1\", port 5432".into(),
            deadline: deadline_in.map(|s| now + Duration::from_secs(s)),
            since: now,
        }
    }

    #[test]
    fn the_countdown_says_what_is_left_of_connect_timeout() {
        let start = Instant::now();
        let p = pending(Some(10), start);
        assert_eq!(
            countdown(&p, start + Duration::from_millis(3_200)),
            "6 s of connect_timeout left"
        );
        // Past the deadline it says zero, never a negative or a panic.
        assert_eq!(
            countdown(&p, start + Duration::from_secs(11)),
            "0 s of connect_timeout left"
        );
    }

    #[test]
    fn without_connect_timeout_it_counts_up() {
        let start = Instant::now();
        assert_eq!(
            countdown(&pending(None, start), start + Duration::from_secs(4)),
            "4 s so far (no connect_timeout)"
        );
    }

    #[test]
    fn stamps_are_milliseconds_since_the_start() {
        assert_eq!(stamp(Duration::from_micros(1_234_567)), "[+1234 ms]");
    }
}
