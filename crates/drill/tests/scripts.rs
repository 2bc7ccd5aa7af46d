//! Our own scripts, written from the RFCs, each run against the engine: every one must pass.

use std::fs;
use std::path::PathBuf;

use rawtcp_drill::{Options, Verdict, run_script};

#[test]
fn every_script_passes() {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let mut paths: Vec<PathBuf> = fs::read_dir(&folder)
        .expect("the scripts folder")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "pkt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 25, "only {} scripts", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let text = fs::read_to_string(path).expect("a readable script");
        let outcome = run_script(&text, &Options::default());
        if outcome.verdict != Verdict::Pass {
            failures.push(format!(
                "{:?} {}: {}\n{}",
                outcome.verdict,
                path.display(),
                outcome.reason(),
                outcome.trace.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
