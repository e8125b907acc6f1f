//! Replays the committed `token` fuzz corpus through the fuzz harness itself, so the harness
//! compiles and every seed runs under `cargo test` (libFuzzer runs it in the CI fuzz step).

#[path = "../../fuzz/src/token_harness.rs"]
mod token_harness;

#[test]
fn token_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/token");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        token_harness::token(&data);
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} seeds in {}", dir.display());
}
