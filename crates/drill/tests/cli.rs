//! The `rawtcp-drill` binary: verdicts per script, the summary line, JSON and pcap output.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rawtcp-drill-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("a temporary folder");
    let good = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n\
                +0 listen(3, 1) = 0\n+0 < S 0:0(0) win 65535 <mss 1460>\n\
                +0 > S. 0:0(0) ack 1 <mss 1460>\n";
    fs::write(dir.join("a-pass.pkt"), good).expect("write");
    fs::write(dir.join("b-fail.pkt"), good.replace("ack 1", "ack 9")).expect("write");
    fs::write(
        dir.join("c-skip.pkt"),
        format!("`ip link set dev tun0 mtu 1400`\n{good}"),
    )
    .expect("write");
    fs::write(dir.join("notes.txt"), "not a script").expect("write");
    dir
}

fn drill(args: &[&str]) -> (String, Option<i32>) {
    let output = Command::new(env!("CARGO_BIN_EXE_rawtcp-drill"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        output.status.code(),
    )
}

#[test]
fn prints_a_verdict_per_script_and_the_summary() {
    let dir = folder("text");
    let pcap = dir.join("wire.pcap");
    let (out, code) = drill(&[
        "run",
        dir.to_str().expect("utf-8"),
        "--pcap",
        pcap.to_str().expect("utf-8"),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("PASS ") && lines[0].ends_with("a-pass.pkt"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("FAIL ") && lines[1].contains("line 5"),
        "{out}"
    );
    assert!(
        lines[1].contains("wrong ack number: expected 9, got 1"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("SKIP ") && l.contains("ip link set dev tun0 mtu 1400")),
        "{out}"
    );
    assert_eq!(
        lines.last(),
        Some(&"1 passed, 1 failed, 1 skipped"),
        "{out}"
    );
    assert_eq!(code, Some(1));
    let capture = fs::read(&pcap).expect("the capture");
    assert_eq!(&capture[..4], &0xa1b2_c3d4u32.to_le_bytes());
    // Global header, then 6 frames: SYN and SYN-ACK of the three scripts (none for the skip).
    assert!(capture.len() > 24 + 4 * (16 + 54), "{}", capture.len());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn json_and_trace() {
    let dir = folder("json");
    let script = dir.join("a-pass.pkt");
    let (out, code) = drill(&["run", script.to_str().expect("utf-8"), "--json"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("{\"script\":") && out.contains("\"verdict\":\"PASS\""),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("{\"passed\":1,\"failed\":0,\"skipped\":0}"),
        "{out}"
    );
    let (out, _) = drill(&["run", script.to_str().expect("utf-8"), "--trace"]);
    assert!(out.contains("[S.]") && out.contains("mss 1460"), "{out}");
    let (_, code) = drill(&["run", "--profile", "bsd", script.to_str().expect("utf-8")]);
    assert_eq!(code, Some(2));
    let _ = fs::remove_dir_all(&dir);
}
