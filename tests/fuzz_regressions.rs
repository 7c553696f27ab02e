//! Fuzzing findings as regression tests: every file under `fuzz/regressions/<target>/` and
//! `fuzz/seeds/<target>/` goes through the same checks as the fuzz target `<target>` (no panic,
//! every invariant holds). The checks live in `fuzz/src/lib.rs`, shared with the fuzz targets.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::panic;
use std::path::{Path, PathBuf};

/// Every file below `dir`, recursively, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_below(&path));
        } else if path.is_file() && path.file_name().is_some_and(|n| n != ".gitkeep") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Runs every input of `fuzz/<root>/<target>/**`; returns how many ran and the failures.
fn replay(root: &str) -> (usize, Vec<String>) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(root);
    let mut ran = 0;
    let mut failures = Vec::new();
    let Ok(entries) = std::fs::read_dir(&base) else {
        return (ran, failures);
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let target = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        assert!(
            checks::TARGETS.contains(&target.as_str()),
            "fuzz/{root}/{target}: no fuzz target of that name (expected one of {:?})",
            checks::TARGETS
        );
        for file in files_below(&dir) {
            let data = std::fs::read(&file).unwrap();
            ran += 1;
            let outcome = panic::catch_unwind(|| checks::check(&target, &data));
            if outcome.is_err() {
                failures.push(format!("{} ({target})", file.display()));
            }
        }
    }
    (ran, failures)
}

#[test]
fn seeds_pass_every_check() {
    let (ran, failures) = replay("seeds");
    assert!(ran > 0, "no seed inputs found under fuzz/seeds");
    assert!(
        failures.is_empty(),
        "failing seed inputs:\n{}",
        failures.join("\n")
    );
}

#[test]
fn regressions_pass_every_check() {
    let (ran, failures) = replay("regressions");
    // The regression corpus is checked in: an empty or missing directory is a broken checkout,
    // not a pass.
    assert!(
        ran >= checks::TARGETS.len(),
        "only {ran} regression inputs found under fuzz/regressions"
    );
    assert!(
        failures.is_empty(),
        "failing fuzz regressions:\n{}",
        failures.join("\n")
    );
}
