//! `rawtcp-drill run PATH... [--profile P] [--json] [--trace] [--pcap FILE]`: runs packetdrill
//! scripts (files, or folders of `*.pkt`) against the engine and prints PASS/FAIL/SKIP per
//! script, then `N passed, N failed, N skipped`. The exit status is 1 when a script failed.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use rawtcp_core::Instant;

use rawtcp_drill::{Crossing, Options, Outcome, Profile, Verdict, run_script, trace_header};

const USAGE: &str = "usage: rawtcp-drill run PATH... [--profile rfc|linux] [--tolerance_usecs N] \
[--strict_segments] [--json] [--trace] [--pcap FILE]";

struct Args {
    paths: Vec<PathBuf>,
    options: Options,
    json: bool,
    trace: bool,
    pcap: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    match args.next().as_deref() {
        Some("run") => {}
        Some("-h" | "--help") | None => return Err(USAGE.to_string()),
        Some(other) => return Err(format!("unknown command `{other}`\n{USAGE}")),
    }
    let mut parsed = Args {
        paths: Vec::new(),
        options: Options::default(),
        json: false,
        trace: false,
        pcap: None,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{what} needs a value\n{USAGE}"))
        };
        match name.as_str() {
            "--profile" => {
                let name = value("--profile")?;
                parsed.options.profile = Profile::from_name(&name)
                    .ok_or_else(|| format!("unknown profile `{name}` (rfc or linux)"))?;
            }
            "--tolerance_usecs" => {
                let text = value("--tolerance_usecs")?;
                parsed.options.tolerance_usecs = Some(
                    text.parse()
                        .map_err(|_| format!("bad --tolerance_usecs `{text}`"))?,
                );
            }
            "--strict_segments" => parsed.options.strict_segments = true,
            "--json" => parsed.json = true,
            "--trace" => parsed.trace = true,
            "--pcap" => parsed.pcap = Some(PathBuf::from(value("--pcap")?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option `{flag}`\n{USAGE}"));
            }
            _ => parsed.paths.push(PathBuf::from(arg)),
        }
    }
    if parsed.paths.is_empty() {
        return Err(format!("no script given\n{USAGE}"));
    }
    Ok(parsed)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() || entry.extension().is_some_and(|e| e == "pkt") {
                collect(&entry, out)?;
            }
        }
        Ok(())
    } else if path.exists() {
        out.push(path.to_path_buf());
        Ok(())
    } else {
        Err(format!("{}: no such file or folder", path.display()))
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_line(path: &Path, outcome: &Outcome) -> String {
    let verdict = verdict_text(outcome.verdict);
    let mut fields = vec![
        format!("\"script\":{}", json_string(&path.display().to_string())),
        format!("\"verdict\":\"{verdict}\""),
    ];
    if let Some(report) = &outcome.report {
        if let Some(line) = report.line {
            fields.push(format!("\"line\":{line}"));
        }
        fields.push(format!("\"time_us\":{}", report.time.as_micros()));
        fields.push(format!("\"reason\":{}", json_string(&report.message)));
        if let Some(expected) = &report.expected {
            fields.push(format!("\"expected\":{}", json_string(expected)));
        }
        if let Some(actual) = &report.actual {
            fields.push(format!("\"actual\":{}", json_string(actual)));
        }
    }
    format!("{{{}}}", fields.join(","))
}

fn verdict_text(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Skip => "SKIP",
    }
}

/// A classic pcap file (Ethernet link type), microsecond timestamps.
fn write_pcap(path: &Path, frames: &[Crossing]) -> std::io::Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for crossing in frames {
        let us = crossing.at.as_micros();
        let len = crossing.frame.len() as u32;
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crossing.frame);
    }
    fs::write(path, out)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut scripts = Vec::new();
    for path in &args.paths {
        if let Err(message) = collect(path, &mut scripts) {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut capture = Vec::new();
    let mut capture_end = Instant::ZERO;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for notice in args.options.profile.unhonoured() {
        if !args.json {
            let _ = writeln!(out, "note: profile linux cannot set {notice}");
        }
    }
    for path in &scripts {
        let outcome = match fs::read(path) {
            Ok(bytes) => run_script(&String::from_utf8_lossy(&bytes), &args.options),
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                failed += 1;
                continue;
            }
        };
        match outcome.verdict {
            Verdict::Pass => passed += 1,
            Verdict::Fail => failed += 1,
            Verdict::Skip => skipped += 1,
        }
        if args.json {
            let _ = writeln!(out, "{}", json_line(path, &outcome));
        } else {
            let reason = outcome.reason();
            let _ = if reason.is_empty() {
                writeln!(out, "{} {}", verdict_text(outcome.verdict), path.display())
            } else {
                writeln!(
                    out,
                    "{} {}: {reason}",
                    verdict_text(outcome.verdict),
                    path.display()
                )
            };
        }
        if args.trace {
            let _ = writeln!(out, "{}", trace_header());
            for line in &outcome.trace {
                let _ = writeln!(out, "{line}");
            }
        }
        // Each script starts at time 0; in the capture each follows the previous one.
        let offset = Duration::from_micros(capture_end.as_micros());
        for mut crossing in outcome.wire {
            crossing.at += offset;
            capture_end = capture_end.max(crossing.at + Duration::from_secs(1));
            capture.push(crossing);
        }
    }
    if args.json {
        let _ = writeln!(
            out,
            "{{\"passed\":{passed},\"failed\":{failed},\"skipped\":{skipped}}}"
        );
    } else {
        let _ = writeln!(out, "{passed} passed, {failed} failed, {skipped} skipped");
    }
    if let Some(pcap) = &args.pcap
        && let Err(error) = write_pcap(pcap, &capture)
    {
        eprintln!("{}: {error}", pcap.display());
        return ExitCode::from(2);
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
