//! Replays the saved fuzz inputs in `fuzz/regressions/<target>/` (crash
//! inputs whose bugs were fixed, and each target's minimised corpus)
//! through the matching `hsscan_wire::fuzzing` entry point, so that fixed
//! crashes stay fixed on stable without cargo-fuzz.

use std::path::{Path, PathBuf};

fn regressions(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target)
}

/// Runs `f` on every file of the target's directory; returns how many.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = regressions(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // The directory is committed; a missing one means a broken checkout.
        panic!("{} is missing", dir.display());
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    paths.sort();
    for path in &paths {
        let data = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(panic) = std::panic::catch_unwind(|| f(&data)) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {name} panicked: {msg}");
        }
    }
    paths.len()
}

#[test]
fn deframer_regressions() {
    assert!(replay("deframer", hsscan_wire::fuzzing::deframer) > 0);
}

#[test]
fn client_hello_regressions() {
    assert!(replay("client_hello", hsscan_wire::fuzzing::client_hello) > 0);
}

#[test]
fn server_flight_regressions() {
    assert!(replay("server_flight", hsscan_wire::fuzzing::server_flight) > 0);
}

#[test]
fn certificate_regressions() {
    assert!(replay("certificate", hsscan_wire::fuzzing::certificate) > 0);
}
