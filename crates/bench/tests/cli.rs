//! The harness as a user runs it: the binary, its exit status, its JSON. Runs are short;
//! no figure is compared with a threshold, only checked for being a measurement at all
//! (present, finite, positive where a run must have moved something).

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> (bool, String, String) {
    let (_, ok, stdout, stderr) = bench_pid(args);
    (ok, stdout, stderr)
}

/// [`bench`], with the harness's process id (which names its namespaces).
fn bench_pid(args: &[&str]) -> (u32, bool, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_rawtcp-bench"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rawtcp-bench");
    let pid = child.id();
    let output = child.wait_with_output().expect("rawtcp-bench's output");
    (
        pid,
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const SHORT: &[&str] = &[
    "--duration",
    "300ms",
    "--warmup",
    "100ms",
    "--repeat",
    "2",
    "--json",
];

/// Runs `args` plus [`SHORT`] and returns the parsed JSON.
fn json(args: &[&str]) -> Value {
    json_pid(args).0
}

/// [`json`], with the harness's process id.
fn json_pid(args: &[&str]) -> (Value, u32) {
    let mut all = args.to_vec();
    all.extend_from_slice(SHORT);
    let (pid, ok, stdout, stderr) = bench_pid(&all);
    assert!(ok, "rawtcp-bench {all:?} failed: {stderr}");
    let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    (doc, pid)
}

/// The summary median of `metric` in `case` for `pair`.
fn median(doc: &Value, case: &str, metric: &str, pair: &str) -> f64 {
    let entry = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["case"] == case && r["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} for {case} in {doc}"));
    let pair = &entry["pairs"][pair];
    assert_eq!(
        pair["samples"].as_array().unwrap().len(),
        2,
        "two repetitions"
    );
    pair["summary"]["median"].as_f64().unwrap()
}

const MEM: &str = "rawtcp↔rawtcp (mem)";

/// `--rawtcp-io`'s two ways for the streaming applications: rawtcp's zero-copy calls (the
/// default) and `AsyncRead`/`AsyncWrite`.
const RAWTCP_IO: [&str; 2] = ["bytes", "copy"];

#[test]
fn bulk_over_a_memlink_moves_data_both_ways() {
    for io in RAWTCP_IO {
        let doc = json(&["bulk", "--rawtcp-io", io]);
        for case in ["bulk send", "bulk recv"] {
            assert!(median(&doc, case, "goodput", MEM) > 0.0, "{case}, {io}");
            assert!(median(&doc, case, "CPU per GB", MEM).is_finite());
        }
        assert_eq!(doc["settings"]["mtu"], 1500);
    }
}

#[test]
fn echo_over_a_memlink_reads_and_writes_at_once() {
    for io in RAWTCP_IO {
        let doc = json(&["echo", "--connections", "1,4", "--rawtcp-io", io]);
        for case in ["echo c=1", "echo c=4"] {
            assert!(median(&doc, case, "goodput", MEM) > 0.0, "{case}, {io}");
        }
    }
}

#[test]
fn proxy_over_a_memlink_relays_both_ways() {
    for io in RAWTCP_IO {
        let doc = json(&["proxy", "--connections", "1,4", "--rawtcp-io", io]);
        for case in ["proxy c=1", "proxy c=4"] {
            assert!(median(&doc, case, "goodput", MEM) > 0.0, "{case}, {io}");
        }
    }
}

#[test]
fn bulk_with_streams_and_jumbo_frames() {
    let doc = json(&[
        "bulk",
        "--direction",
        "send",
        "--streams",
        "3",
        "--mtu",
        "65535",
    ]);
    assert!(median(&doc, "bulk send ×3", "goodput", MEM) > 0.0);
    assert_eq!(doc["settings"]["mtu"], 65535);
}

#[test]
fn rr_reports_ordered_percentiles() {
    let doc = json(&["rr", "--size", "100"]);
    let case = "rr 100 B";
    assert!(median(&doc, case, "transactions", MEM) > 0.0);
    let p: Vec<f64> = ["p50", "p90", "p99", "p99.9"]
        .iter()
        .map(|q| median(&doc, case, q, MEM))
        .collect();
    assert!(p[0] > 0.0);
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "percentiles in order: {p:?}"
    );
}

#[test]
fn crr_completes_connections_past_the_port_range() {
    // More connections than a client has ephemeral ports would have stalled on the
    // server's TIME-WAIT before RFC 6191 reuse; here it only has to finish and count.
    let doc = json(&["crr", "--concurrency", "1,4"]);
    for case in ["crr c=1", "crr c=4"] {
        assert!(median(&doc, case, "connections", MEM) > 0.0);
        assert!(median(&doc, case, "p99", MEM) >= median(&doc, case, "p50", MEM));
    }
}

#[test]
fn conns_holds_every_connection_and_counts_its_memory() {
    let doc = json(&["conns", "--count", "2000"]);
    let case = "conns 2000";
    assert_eq!(median(&doc, case, "held", MEM), 2000.0);
    let bytes = median(&doc, case, "memory per conn", MEM);
    assert!(bytes > 0.0, "a connection costs something: {bytes}");
    assert!(median(&doc, case, "goodput beside them", MEM) > 0.0);
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let (ok, _, stderr) = bench(&["bulk", "--link", "mem", "--client", "kernel"]);
    assert!(!ok);
    assert!(
        stderr.contains("kernel runs only over --link veth"),
        "{stderr}"
    );
    // The proxy's client and server are the kernel's, on the server side.
    let (ok, _, stderr) = bench(&["proxy", "--link", "veth", "--server", "rawtcp"]);
    assert!(!ok);
    assert!(stderr.contains("--server must be kernel"), "{stderr}");
    let (ok, _, stderr) = bench(&["bulk", "--duration", "soon"]);
    assert!(!ok);
    assert!(stderr.contains("duration"), "{stderr}");
}

#[test]
fn veth_without_root_says_so() {
    if rawtcp::netio::testbed::is_root() {
        // As root, check the message by running as nobody, if setpriv is there.
        let output = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_rawtcp-bench"))
            .args(["--compare", "kernel", "rr"])
            .output();
        let Ok(output) = output else {
            println!("skipping: no setpriv to drop root with");
            return;
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains("needs root"), "{stderr}");
    } else {
        let (ok, _, stderr) = bench(&["--compare", "kernel", "rr"]);
        assert!(!ok);
        assert!(stderr.contains("needs root"), "{stderr}");
    }
}

/// The comparison against the kernel, as README shows it, in miniature: both pairs run
/// every scenario in namespaces the harness creates and removes, and ratios come out.
#[test]
fn compare_kernel_runs_every_scenario_against_linux() {
    if !rawtcp::netio::testbed::have_root("compare_kernel_runs_every_scenario_against_linux") {
        return;
    }
    let (doc, pid) = json_pid(&["--compare", "kernel", "all"]);
    let pairs = ["kernel↔kernel", "rawtcp↔kernel"];
    assert_eq!(doc["pairs"], serde_json::json!(pairs));
    for (case, metric) in [
        ("bulk send", "goodput"),
        ("bulk recv", "goodput"),
        ("rr 1 B", "transactions"),
        ("crr c=1", "connections"),
        ("crr c=16", "connections"),
        ("conns 8000", "held"),
        ("echo c=1", "goodput"),
        ("echo c=16", "goodput"),
        ("proxy c=1", "goodput"),
        ("proxy c=16", "goodput"),
    ] {
        for pair in pairs {
            assert!(median(&doc, case, metric, pair) > 0.0, "{case} {pair}");
        }
        let entry = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["case"] == case && r["metric"] == metric)
            .unwrap();
        assert!(entry["ratio"]["summary"]["median"].as_f64().unwrap() > 0.0);
    }
    assert!(median(&doc, "conns 8000", "memory per conn", "rawtcp↔kernel") > 0.0);
    // What the kernel peer retransmitted, and rawtcp's socket drops, are in every run.
    for pair in pairs {
        assert!(median(&doc, "bulk recv", "kernel retransmits", pair) >= 0.0);
    }
    assert!(median(&doc, "bulk recv", "rawtcp rx drops", "rawtcp↔kernel") >= 0.0);
    for case in ["proxy c=1", "proxy c=16"] {
        assert!(median(&doc, case, "rawtcp rx drops", "rawtcp↔kernel") >= 0.0);
        for pair in pairs {
            assert!(median(&doc, case, "kernel retransmits", pair) >= 0.0);
        }
    }
    // Only rawtcp's memory is counted.
    let conns = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["case"] == "conns 8000" && r["metric"] == "memory per conn")
        .unwrap();
    assert!(
        conns["pairs"]["kernel↔kernel"]["samples"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Its namespaces (named after its process id) are gone. Others' may exist: tests and
    // harnesses run in parallel on the same machine.
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for side in ["c", "s"] {
        let ours = format!("rt-bench-{side}-{pid}-");
        assert!(!list.contains(&ours), "the harness removed {ours}*: {list}");
    }
}

/// Issue 17: with a receive buffer so small that the kernel drops frames at rawtcp's packet
/// socket, `bulk recv` still completes (no lost wakeup wedges it) and reports the drops.
#[test]
fn bulk_recv_with_a_small_packet_buffer_completes_and_reports_drops() {
    if !rawtcp::netio::testbed::have_root(
        "bulk_recv_with_a_small_packet_buffer_completes_and_reports_drops",
    ) {
        return;
    }
    let doc = json(&[
        "bulk",
        "--direction",
        "recv",
        "--client",
        "rawtcp",
        "--link",
        "veth",
        "--packet-buffer",
        "32768",
    ]);
    let pair = "rawtcp↔kernel";
    assert!(median(&doc, "bulk recv", "goodput", pair) > 0.0);
    let drops = median(&doc, "bulk recv", "rawtcp rx drops", pair);
    // A few dozen frames of buffer against a kernel sender's window: drops are certain, and
    // a counter that never moved would be the bug of issue 14 (losses nobody sees).
    assert!(drops > 0.0, "the socket's drops are reported: {drops}");
    assert_eq!(median(&doc, "bulk recv", "lost wakeups", pair), 0.0);
}

#[test]
fn soak_over_a_faulty_memlink_verifies_every_byte_both_ways() {
    let (ok, stdout, stderr) = bench(&[
        "soak",
        "--bytes",
        "4M",
        "--loss",
        "0.002",
        "--duplicate",
        "0.01",
        "--reorder",
        "0.01",
        "--seed",
        "7",
        "--json",
    ]);
    assert!(ok, "soak failed: {stderr}");
    let doc: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    for direction in ["client_to_server", "server_to_client"] {
        assert_eq!(doc[direction]["bytes"], 4 << 20, "{doc}");
        assert_eq!(doc[direction]["first_mismatch"], Value::Null, "{doc}");
        assert_eq!(doc[direction]["exact"], true, "{doc}");
    }
}

#[test]
fn soak_names_the_first_wrong_byte_and_fails() {
    let (ok, stdout, stderr) = bench(&[
        "soak",
        "--bytes",
        "2M",
        "--flip-at",
        "1234567",
        "--seed",
        "7",
    ]);
    assert!(!ok, "a corrupted stream must fail the soak: {stdout}");
    assert!(
        stderr.contains("client → server: first mismatch at byte 1234567"),
        "{stderr}"
    );
    assert!(
        stdout.contains("server → client: 2097152 bytes"),
        "{stdout}"
    );
}

/// Issue 12: `--loss` puts the forwarder between the namespaces; kernel↔kernel and the pair
/// under test both cross it, it drops what the model asks, and nothing of its own. At 5 %
/// loss even the slowest run's few hundred frames meet a loss (0.95^300 ≈ 2·10⁻⁷).
#[test]
fn a_lossy_path_carries_both_pairs_through_the_forwarder() {
    if !rawtcp::netio::testbed::have_root("a_lossy_path_carries_both_pairs_through_the_forwarder") {
        return;
    }
    let doc = json(&[
        "bulk",
        "--compare",
        "kernel",
        "--loss",
        "5%",
        "--delay",
        "2ms",
        "--seed",
        "3",
    ]);
    assert!(
        doc["settings"]["path"]
            .as_str()
            .unwrap()
            .contains("loss 5%"),
        "{doc}"
    );
    for pair in ["kernel↔kernel (fwd)", "rawtcp↔kernel (fwd)"] {
        for case in ["bulk send", "bulk recv"] {
            assert!(median(&doc, case, "goodput", pair) > 0.0, "{pair} {case}");
            assert!(
                median(&doc, case, "fwd model drops", pair) > 0.0,
                "{pair} {case}"
            );
            assert_eq!(
                median(&doc, case, "fwd own drops", pair),
                0.0,
                "{pair} {case}"
            );
            assert!(
                median(&doc, case, "retransmitted", pair) > 0.0,
                "{pair} {case}"
            );
        }
    }
}

#[test]
fn offloads_on_are_refused_with_the_forwarder() {
    let (ok, _, stderr) = bench(&["bulk", "--link", "fwd", "--offloads", "on"]);
    assert!(!ok);
    assert!(
        stderr.contains("does not combine with the forwarder"),
        "{stderr}"
    );
}
