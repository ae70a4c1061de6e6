//! Limits of this machine that a large run meets: open files. Each
//! connection in flight holds a descriptor, so `-j 2000` under a soft
//! limit of 1024 would fail connects on this side (EMFILE) — reported as
//! `local-error` after backing off, never blamed on the server, but still
//! a result hsscan could have had. At start the soft limit is raised to
//! the hard one when the run needs more.

/// Descriptors a run holds besides its connections: stdio, the runtime's
/// event loop, the resolver's sockets, input and certificate files.
const BASE_DESCRIPTORS: u64 = 64;

/// Makes room for `connections` in flight (and `lookups` DNS queries):
/// raises the soft open-file limit up to the hard one when it is short.
/// Returns a warning for stderr when even the hard limit is short, or the
/// limit could not be raised.
#[cfg(unix)]
pub fn make_room_for(connections: usize, lookups: usize) -> Option<String> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let need = u64::try_from(connections.saturating_add(lookups))
        .unwrap_or(u64::MAX)
        .saturating_add(BASE_DESCRIPTORS);
    let now = getrlimit(Resource::Nofile);
    // None: unlimited.
    if now.current.is_none_or(|soft| soft >= need) {
        return None;
    }
    // Up to the hard limit (an unlimited one: what the run needs).
    let target = now.maximum.unwrap_or(need);
    if let Err(e) = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: now.maximum,
        },
    ) {
        return Some(format!(
            "raising the open-file limit from {} to {target}: {e}; connections over it back off",
            now.current.unwrap_or(0)
        ));
    }
    match now.maximum {
        Some(hard) if hard < need => Some(format!(
            "-j needs about {need} open files but the hard limit is {hard}: connections over it back off (raise `ulimit -Hn` or lower -j)"
        )),
        _ => None,
    }
}

#[cfg(not(unix))]
pub fn make_room_for(_connections: usize, _lookups: usize) -> Option<String> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_fits_leaves_the_limit_alone() {
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(make_room_for(0, 0), None);
        let after = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!((before.current, before.maximum), (after.current, after.maximum));
    }
}
