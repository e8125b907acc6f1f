//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`) and any crash artifacts
//! (`fuzz/artifacts/<target>/*`) through the same harness the fuzz targets use, so that
//! `cargo test` covers every input the fuzzer ever kept or tripped over.

#[path = "../../fuzz/src/harness.rs"]
mod harness;
#[path = "../../fuzz/src/session_harness.rs"]
mod session_harness;

use std::fs;
use std::path::{Path, PathBuf};

const TARGETS: [&str; 3] = ["decode_opener", "decode_responder", "roundtrip"];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every regular file directly under `dir`, sorted; empty if `dir` does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

/// Whether a corpus file is a hand-written seed (from `fuzz/gen_corpus.py`) rather than an input
/// libFuzzer saved under its SHA-1 name.
fn is_seed(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !(name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn corpus_and_artifacts_replay_without_panics() {
    let mut replayed = 0;
    let mut failed_seeds = Vec::new();
    for target in TARGETS {
        for sub in ["corpus", "artifacts"] {
            for file in files(&fuzz_dir().join(sub).join(target)) {
                let input = fs::read(&file).unwrap();
                let clean = std::panic::catch_unwind(|| harness::run(target, &input)).unwrap_or_else(|_| {
                    panic!("{target}: {} panicked (input {:02x?})", file.display(), input);
                });
                assert!(clean.is_some(), "unknown target {target}");
                // The seeds are the spec's hex vectors: each must decode cleanly.
                if sub == "corpus" && is_seed(&file) && clean == Some(false) {
                    failed_seeds.push(format!("{target}/{}", file.file_name().unwrap().to_string_lossy()));
                }
                replayed += 1;
            }
        }
    }
    assert!(failed_seeds.is_empty(), "seed vectors that do not decode: {failed_seeds:#?}");
    assert!(replayed >= 30, "only {replayed} corpus files found under {}", fuzz_dir().display());
}

#[test]
fn chunk_patterns_cover_the_input() {
    for len in [0, 1, 7, 100, 1500] {
        for mode in 0..6 {
            for param in [0, 1, 5, 255] {
                let chunks = harness::chunk_lengths(len, mode, param);
                assert_eq!(chunks.iter().sum::<usize>(), len, "mode {mode} param {param}");
            }
        }
    }
}

/// The `session` target has its own harness (a Session on the rig, its peer scripted by the input, and
/// application calls); every corpus seed and artifact must run without a panic.
#[test]
fn session_corpus_and_artifacts_replay_without_panics() {
    let mut replayed = 0;
    let mut open_at_end = 0;
    for sub in ["corpus", "artifacts"] {
        for file in files(&fuzz_dir().join(sub).join("session")) {
            let input = fs::read(&file).unwrap();
            let open = std::panic::catch_unwind(|| session_harness::session(&input))
                .unwrap_or_else(|_| panic!("session: {} panicked (input {:02x?})", file.display(), input));
            open_at_end += usize::from(open && is_seed(&file));
            replayed += 1;
        }
    }
    assert!(replayed >= 12, "only {replayed} session corpus files");
    // The hand-written seeds are well-behaved scenarios: none of them closes the session early.
    assert!(open_at_end >= 12, "only {open_at_end} seeds kept the session open");
}
