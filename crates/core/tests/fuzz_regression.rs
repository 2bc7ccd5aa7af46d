//! The fuzz targets of `fuzz/` as seeded tests: a few hundred random schedules through the
//! same harness (`rawtcp_core::fuzz`), so the normal test run covers what the fuzzer checks
//! — no panic, the engine's invariants after every step, reads that are a prefix of the
//! peer's writes, and a transfer that completes byte-exact once mutation stops (or ends with
//! an error the schedule allows). A failing seed prints the input to replay.

use std::path::Path;

use rawtcp_core::fuzz::{Report, one_engine_frames, two_engines};

/// splitmix64: random inputs from a seed.
fn input(seed: u64, len_bound: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let len = 16 + (next() as usize) % len_bound;
    (0..len).map(|_| next() as u8).collect()
}

fn run_two_engines(seed: u64, bytes: &[u8]) -> Report {
    match two_engines(bytes) {
        Ok(report) => report,
        Err(failure) => panic!("seed {seed}: {failure}\ninput: {bytes:?}"),
    }
}

#[test]
fn two_engines_over_a_mutating_link_survive_three_hundred_random_schedules() {
    let mut complete = 0;
    let mut forged = 0;
    let mut bytes_moved = 0;
    for seed in 0..300 {
        let report = run_two_engines(seed, &input(seed, 600));
        complete += usize::from(report.complete);
        forged += usize::from(report.forged);
        if report.complete {
            bytes_moved += report.read[0] + report.read[1];
        }
    }
    // Not a vacuous pass: many schedules move data to the end (the others close early or are
    // killed by a forged segment or a timeout, as allowed), and some forge headers.
    eprintln!("{complete} of 300 complete, {forged} forged, {bytes_moved} bytes moved");
    assert!(complete >= 60, "only {complete} of 300 schedules completed");
    assert!(bytes_moved > 0, "the completed schedules moved no data");
    assert!(
        forged >= 30,
        "only {forged} of 300 schedules forged a header"
    );
}

/// One write and then no input, so no fate: every frame passes, and the transfer must
/// complete with everything A wrote read by B.
#[test]
fn a_write_over_a_clean_link_completes_byte_exact() {
    // Op 0: A writes 0x0fff + 1 bytes.
    let report = run_two_engines(0, &[0, 0xff, 0x0f]);
    assert!(report.complete, "{report:?}");
    assert_eq!(report.written, [4096, 0]);
    assert_eq!(report.read, [0, 4096]);
    assert_eq!(report.errors, [None, None]);
}

#[test]
fn one_engine_takes_two_hundred_random_frame_sequences() {
    for seed in 0..200 {
        let bytes = input(seed ^ 0xf00d, 1500);
        if let Err(failure) = one_engine_frames(&bytes) {
            panic!("seed {seed}: {failure}\ninput: {bytes:?}");
        }
    }
}

/// Every input in `dir` (files the fuzzer found, copied from `fuzz/artifacts/`), in name order.
fn inputs_in(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_inputs")
        .join(dir);
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name()?.to_string_lossy().into_owned();
            // `.keep` holds an empty directory in git.
            (!name.starts_with('.')).then(|| (name, std::fs::read(&path).expect("readable")))
        })
        .collect();
    inputs.sort();
    inputs
}

/// The inputs the fuzzer once failed on, replayed. `forged-fin-early-eof-then-close`: a FIN
/// forged in sequence ended A's stream early and B closed; both ends finished without an
/// error, which the harness first called a stall (the rule is now: after a forged frame an
/// EOF anywhere ends the direction). `half-open-expired-then-reset`: the handshake's last
/// ACK and all SYN-ACK retransmissions lost, B dropped its half-open connection and A's data
/// met a RST, which the harness first called an unexplained error.
#[test]
fn inputs_the_fuzzer_found_replay_cleanly() {
    let found = inputs_in("two_engines");
    assert!(!found.is_empty());
    for (name, bytes) in found {
        if let Err(failure) = two_engines(&bytes) {
            panic!("two_engines input {name}: {failure}");
        }
    }
    for (name, bytes) in inputs_in("one_engine_frames") {
        if let Err(failure) = one_engine_frames(&bytes) {
            panic!("one_engine_frames input {name}: {failure}");
        }
    }
}
