//! Replays the `media_import` fuzz corpus (`fuzz/corpus/media_import/*`) and any crash artifacts
//! (`fuzz/artifacts/media_import/*`) through the harness the fuzz target uses, so `cargo test`
//! covers every input the fuzzer kept or tripped over.

#[path = "../../fuzz/src/media_harness.rs"]
mod media_harness;

use std::fs;
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

#[test]
fn media_import_corpus_replays_without_panics() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    let mut clean_seeds = 0;
    for sub in ["corpus", "artifacts"] {
        for file in files(&fuzz.join(sub).join("media_import")) {
            let input = fs::read(&file).unwrap();
            let clean = std::panic::catch_unwind(|| media_harness::media_import(&input))
                .unwrap_or_else(|_| panic!("media_import: {} panicked", file.display()));
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            if sub == "corpus" && name.starts_with("fixture_") {
                assert!(clean, "seed {name} does not import cleanly");
                clean_seeds += 1;
            }
            replayed += 1;
        }
    }
    assert!(clean_seeds >= 10, "only {clean_seeds} fixture seeds under {}", fuzz.display());
    assert!(replayed >= clean_seeds);
}
