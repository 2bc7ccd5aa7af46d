//! Known engine deviations from the RFCs, each written as the RFC-correct script. Each must
//! fail, for the reason on its first line (`// expect-fail: ...`). When one starts to pass,
//! the engine was fixed: move the script to `tests/scripts/` and drop it from the report.

use std::fs;
use std::path::PathBuf;

use rawtcp_drill::{Options, Verdict, run_script};

#[test]
fn each_known_deviation_fails_for_its_recorded_reason() {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/deviations");
    let mut paths: Vec<PathBuf> = fs::read_dir(&folder)
        .expect("the deviations folder")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "pkt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    let mut problems = Vec::new();
    for path in &paths {
        let text = fs::read_to_string(path).expect("a readable script");
        let reason = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("// expect-fail: "))
            .expect("a first line `// expect-fail: REASON`");
        let outcome = run_script(&text, &Options::default());
        match outcome.verdict {
            Verdict::Fail if outcome.reason().contains(reason) => {}
            Verdict::Pass => problems.push(format!(
                "{} passes now: the engine follows the RFC here; move it to tests/scripts",
                path.display()
            )),
            _ => problems.push(format!(
                "{}: {:?}, {}; expected a failure containing {reason:?}",
                path.display(),
                outcome.verdict,
                outcome.reason()
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
