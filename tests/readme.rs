//! README.md's "Over a real interface" walkthrough, run as written: the commands are read from
//! the README itself, so the two cannot drift apart. As root, in namespaces of this test's own
//! (the script's `rt-dut` and `rt-peer` get this process's id in their names, and are deleted
//! when the test ends, also on failure). Without root it prints one line and passes.
//!
//! The script runs as a user's terminal would: bash with job control (`set -m`), so that
//! `&` jobs are `%1`, `%2`, ... and Ctrl-C (`kill -INT`) reaches them (a shell without job
//! control starts background jobs with SIGINT ignored). Three liberties, each because the test
//! already is what the line arranges: `sudo` runs its command directly (the test is root, and
//! sudo need not be installed), `cargo build --examples` is a no-op (`cargo test` built them),
//! and `target/debug/examples/` means the examples next to this test binary.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rawtcp::netio::testbed::have_root;

/// The first code block after the heading `## Over a real interface`.
fn walkthrough(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## Over a real interface\n")
        .nth(1)
        .expect("README.md has an \"Over a real interface\" section");
    let block = section
        .split("\n```\n")
        .nth(1)
        .expect("the section has a code block");
    block.lines().map(str::to_string).collect()
}

/// The bash script that runs `commands` in namespaces `dut` and `peer`.
fn script(commands: &[String], dut: &str, peer: &str, examples: &str) -> String {
    let mut script = String::from(
        "set -e -m\n\
         sudo() { \"$@\"; }\n\
         cargo() { [ \"$*\" = \"build --examples\" ]; }\n",
    );
    script.push_str(&format!("export DUT={dut} PEER={peer}\npids=()\n"));
    for command in commands {
        let started = starts_a_job(command);
        let command = command
            .replace("rt-dut", dut)
            .replace("rt-peer", peer)
            .replace("target/debug/examples/", examples);
        script.push_str(&command);
        script.push('\n');
        if started {
            // The job's process, for its exit status below.
            script.push_str("pids+=($!)\n");
        }
    }
    // Each background job's exit status, by its process id: bash keeps the status of every
    // `$!` it started until asked, whereas its `[N] Done` reports come only at a later
    // command, and not always for a job that ended during `wait` (seen in CI under load).
    script.push_str(concat!(
        "for pid in \"${pids[@]}\"; do\n",
        "  status=0; wait \"$pid\" || status=$?\n",
        "  echo \"background job $pid exit $status\" >&2\n",
        "done\n",
    ));
    script
}

/// Whether a walkthrough line starts a background job.
fn starts_a_job(command: &str) -> bool {
    command.trim_end().ends_with('&')
}

/// The exit statuses the script printed for its background jobs, in the order started.
fn job_statuses(stderr: &str) -> Vec<i32> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("background job "))
        .filter_map(|rest| rest.split(" exit ").nth(1)?.trim().parse().ok())
        .collect()
}

/// The script's process group and namespaces, gone when the test ends.
struct Cleanup {
    child: Child,
    namespaces: [String; 2],
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        for ns in &self.namespaces {
            // Jobs have process groups of their own: find them by their namespace.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    if !have_root("the_readme_walkthrough_runs_as_written") {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let commands = walkthrough(&readme);
    assert!(
        commands.iter().any(|c| c.contains("curl")),
        "the walkthrough: {commands:?}"
    );
    let examples = std::env::current_exe()
        .expect("test binary path")
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples");
    let pid = std::process::id();
    let (dut, peer) = (
        format!("rt-dut-{pid}-readme"),
        format!("rt-peer-{pid}-readme"),
    );
    let script = script(&commands, &dut, &peer, &format!("{}/", examples.display()));
    let child = Command::new("bash")
        .args(["-c", &script])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash");
    let mut run = Cleanup {
        child,
        namespaces: [dut, peer],
    };
    let mut stdout = run.child.stdout.take().expect("piped");
    let mut stderr = run.child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = run.child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if status.is_none() {
        // Kills the script and whatever it started, so the readers below finish.
        drop(run);
        panic!(
            "the walkthrough did not finish in 120 s:\n{}\n{}",
            out.join().unwrap(),
            err.join().unwrap()
        );
    }
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    println!("--- stdout\n{out}--- stderr\n{err}");
    assert!(
        status.is_some_and(|s| s.success()),
        "every command succeeded: {status:?}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(&"hello, rawtcp"),
        "socat's line came back from echo_server"
    );
    assert!(
        out.contains("Hello from rawtcp"),
        "curl got http_get's page"
    );
    // socat prints the two writes as they come; `hello`'s own trace shares the terminal and
    // may land between them.
    assert!(
        out.contains("helloworld") || out.lines().any(|l| l.starts_with("world")),
        "socat got hello's two writes"
    );
    // Each example exited cleanly (status 0) on its Ctrl-C.
    let started = commands.iter().filter(|c| starts_a_job(c)).count();
    assert_eq!(started, 3, "the walkthrough starts three examples");
    assert_eq!(
        job_statuses(&err),
        vec![0; started],
        "every example exited cleanly: {err}"
    );
    assert!(
        !std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("-{pid}-readme")))
            .unwrap_or(false),
        "netns.sh down removed the namespaces"
    );
}
