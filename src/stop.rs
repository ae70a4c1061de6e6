//! The run's stop signal (SPEC §2, §7): Ctrl-C or a closed stdout. Once it
//! is given, no connection starts — the per-IP gate checks it before every
//! connect, retries included — the scans in progress are dropped (their
//! connections close), and the run ends with every record that was
//! finished before it written. Cloning shares one signal.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Why the run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupted,
    /// Nobody reads stdout any more (`| head -1`): exit quietly.
    StdoutClosed,
}

/// One run's stop signal.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// 0 while running, else `Why` + 1; the first reason given wins.
    why: AtomicU8,
    notify: Notify,
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run (the first reason given is kept).
    pub fn set(&self, why: Why) {
        let code = match why {
            Why::Interrupted => 1,
            Why::StdoutClosed => 2,
        };
        let _ = self.0.why.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Why the run stopped, if it did.
    pub fn why(&self) -> Option<Why> {
        match self.0.why.load(Ordering::SeqCst) {
            1 => Some(Why::Interrupted),
            2 => Some(Why::StdoutClosed),
            _ => None,
        }
    }

    pub fn is_set(&self) -> bool {
        self.why().is_some()
    }

    /// Resolves once the run is stopped (at once if it already is).
    pub async fn wait(&self) {
        let notified = self.0.notify.notified();
        tokio::pin!(notified);
        // Registered before the check, so a `set` in between is not missed.
        notified.as_mut().enable();
        if self.is_set() {
            return;
        }
        notified.await;
    }

    /// Stops the run on the first Ctrl-C; a second one exits at once
    /// (130). Call from inside the run's runtime, before the run starts:
    /// the handler is in place when this returns, so an early Ctrl-C is
    /// not lost, and the descriptors it takes are taken before any scan's.
    pub fn on_ctrl_c(&self, quiet: bool) {
        let stop = self.clone();
        let first = move || {
            stop.set(Why::Interrupted);
            if !quiet {
                eprintln!("hsscan: interrupted: no new connection starts; the finished records are written");
            }
        };
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut interrupts) = signal(SignalKind::interrupt()) else {
                return;
            };
            tokio::spawn(async move {
                if interrupts.recv().await.is_some() {
                    first();
                    if interrupts.recv().await.is_some() {
                        std::process::exit(130);
                    }
                }
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                first();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins_and_waiters_wake() {
        let stop = Stop::new();
        assert_eq!(stop.why(), None);
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.wait().await })
        };
        tokio::task::yield_now().await;
        stop.set(Why::StdoutClosed);
        stop.set(Why::Interrupted);
        waiter.await.expect("the waiter wakes");
        assert_eq!(stop.why(), Some(Why::StdoutClosed));
        // Already stopped: at once.
        stop.wait().await;
    }
}
