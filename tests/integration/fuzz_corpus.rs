//! The fuzzers' saved inputs, replayed as ordinary tests on stable Rust: the corpus
//! each target has grown (fuzz/corpus) and every input that once broke a rule
//! (fuzz/regressions), for the parsers and for the supervisor's simulated world. The
//! rules themselves are in fuzz/checks.rs, shared with the fuzz targets.

use std::path::Path;

#[path = "../../fuzz/checks.rs"]
mod checks;

/// Runs every saved input of every target through its checks, and names the input
/// that breaks one. Returns how many inputs were run per target.
fn replay(kind: &str) -> Vec<(&'static str, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind);
    let mut counts = Vec::new();
    for (target, check) in checks::TARGETS {
        let dir = root.join(target);
        let mut inputs: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.map(|e| e.expect("a readable directory entry").path()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        inputs.sort();
        for input in &inputs {
            let data = std::fs::read(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                panic!("{} breaks a rule of fuzz/checks.rs (the message is above)", input.display());
            }
        }
        counts.push((target, inputs.len()));
    }
    counts
}

#[test]
fn every_saved_corpus_input_keeps_its_targets_rules() {
    let counts = replay("corpus");
    for (target, count) in &counts {
        // The corpus starts from hand-written seeds; an empty one means it was lost.
        assert!(*count > 0, "fuzz/corpus/{target} is empty: run scripts/fuzz to grow it again");
    }
    eprintln!("corpus inputs replayed: {counts:?}");
}

#[test]
fn every_input_that_once_broke_a_rule_is_handled_now() {
    let counts = replay("regressions");
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    assert!(total > 0, "fuzz/regressions holds no inputs: the crashes the fuzzers found were saved there");
    eprintln!("regression inputs replayed: {counts:?}");
}
