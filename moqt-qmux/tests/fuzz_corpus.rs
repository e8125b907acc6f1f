//! Replays the `qmux_records` fuzz corpus (`fuzz/corpus/qmux_records/*`) and any crash
//! artifacts (`fuzz/artifacts/qmux_records/*`) through the harness the fuzz target uses, so
//! that `cargo test` covers every input the fuzzer kept or tripped over.

#[path = "../../fuzz/src/qmux_harness.rs"]
mod qmux_harness;

use std::fs;
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

#[test]
fn qmux_corpus_and_artifacts_replay() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let seeds = files(&fuzz.join("corpus/qmux_records"));
    assert!(seeds.len() >= 10, "the committed seeds are missing");
    for path in seeds.iter().chain(&files(&fuzz.join("artifacts/qmux_records"))) {
        let data = fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| qmux_harness::qmux_records(&data));
        let Ok(outcome) = result else { panic!("{} fails", path.display()) };
        // The named seeds do what their names say (so they reach deep states).
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("honest_")
            || name.starts_with("byte_stream_")
            || (name.starts_with("tight_many") && !name.ends_with("_legacy"))
        {
            assert!(outcome.stream_bytes_received.iter().sum::<u64>() >= 2_560, "{name}: {outcome:?}");
            assert_eq!(outcome.closed, [false, false], "{name}");
        }
        if name.starts_with("datagrams_") {
            assert!(outcome.datagrams_received.iter().sum::<u64>() >= 3, "{name}: {outcome:?}");
        }
        if name.starts_with("close_") || name.starts_with("raw_garbage") || name.starts_with("handshake_timeout") {
            assert!(outcome.closed.contains(&true), "{name}: {outcome:?}");
        }
        if name.starts_with("raw_vectors_q0") {
            assert!(outcome.closed[0], "{name}: the CONNECTION_CLOSE vector ends A");
        }
    }
}
