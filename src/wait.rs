//! Waiting visibly: a 30-second banner wait (an implicit-TLS port spoken
//! to with STARTTLS) or a server that never answers the hello must not
//! look like a hung program. Code about to wait registers the wait with
//! [`begin`], naming what it awaits; while [`Spinner`] runs, any wait
//! older than [`SHOW_AFTER`] is shown on stderr as an indicatif spinner
//! with its name and how long it has lasted, and it is cleared the moment
//! the last long wait ends — before any result reaches stdout.
//!
//! Off by default: [`begin`] then costs one atomic load and returns
//! `None`. The command line turns it on for a single-target scan whose
//! stderr is a terminal, without `-q`; stdout never changes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A wait shorter than this is not worth a line on the screen.
pub const SHOW_AFTER: Duration = Duration::from_secs(2);
/// How often the spinner turns and its text is refreshed.
const TICK: Duration = Duration::from_millis(100);

static ENABLED: AtomicBool = AtomicBool::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static STATE: Mutex<State> = Mutex::new(State {
    waits: Vec::new(),
    bar: None,
    progress: None,
});

struct Wait {
    id: u64,
    since: Instant,
    limit: Duration,
    what: String,
}

struct State {
    waits: Vec<Wait>,
    bar: Option<indicatif::ProgressBar>,
    /// Work under way that takes a while (an enumeration's passes), since when.
    progress: Option<(Instant, String)>,
}

impl State {
    /// Shows the oldest long wait, else the work under way once it has
    /// lasted [`SHOW_AFTER`], or clears the spinner when there is neither.
    fn refresh(&mut self, now: Instant) {
        let longest = self
            .waits
            .iter()
            .filter(|w| now.duration_since(w.since) >= SHOW_AFTER)
            .min_by_key(|w| w.since);
        let message = match (longest, &self.progress) {
            (Some(w), _) => Some(format!(
                "waiting for {} ({} s of at most {} s)",
                w.what,
                now.duration_since(w.since).as_secs(),
                w.limit.as_secs()
            )),
            (None, Some((since, text))) if now.duration_since(*since) >= SHOW_AFTER => {
                Some(format!("{text} ({} s)", now.duration_since(*since).as_secs()))
            }
            _ => None,
        };
        match message {
            Some(message) => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = indicatif::ProgressBar::new_spinner();
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    bar
                });
                bar.set_message(message);
                bar.tick();
            }
            None => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A wait in progress; dropping it ends the wait.
#[derive(Debug)]
#[must_use = "the wait ends when this is dropped"]
pub struct Waiting {
    id: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut s = state();
        s.waits.retain(|w| w.id != self.id);
        // Cleared here, not at the next tick, so that a result written
        // right after the wait never shares a line with the spinner.
        s.refresh(Instant::now());
    }
}

/// Says what work is under way (built only when the spinner is on), e.g.
/// an enumeration's passes and connections; shown once it has lasted
/// [`SHOW_AFTER`], until [`progress_done`].
pub fn progress(text: impl FnOnce() -> String) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let text = text();
    let mut s = state();
    let since = s.progress.as_ref().map_or_else(Instant::now, |(t, _)| *t);
    s.progress = Some((since, text));
}

/// The work [`progress`] described is over: cleared at once, before any
/// result reaches stdout.
pub fn progress_done() {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let mut s = state();
    s.progress = None;
    s.refresh(Instant::now());
}

/// Registers a wait of at most `limit` for `what` (built only when the
/// spinner is on), e.g. `the SMTP banner from 192.0.2.7:25`.
pub fn begin(what: impl FnOnce() -> String, limit: Duration) -> Option<Waiting> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    state().waits.push(Wait {
        id,
        since: Instant::now(),
        limit,
        what: what(),
    });
    Some(Waiting { id })
}

/// The spinner's ticker; waits are shown while it lives.
#[derive(Debug)]
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    /// Turns waiting visibly on until the returned value is dropped.
    pub fn start() -> Self {
        ENABLED.store(true, Ordering::SeqCst);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("hsscan-spinner".to_owned())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    std::thread::sleep(TICK);
                    state().refresh(Instant::now());
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        ENABLED.store(false, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut s = state();
        s.waits.clear();
        s.progress = None;
        s.refresh(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_free_and_unrecorded_while_the_spinner_is_off() {
        assert!(begin(|| unreachable!("not built while off"), Duration::from_secs(1)).is_none());
        progress(|| unreachable!("not built while off"));
        progress_done();
        assert!(state().progress.is_none());
    }
}
