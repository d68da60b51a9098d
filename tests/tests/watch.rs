//! `cargo xtask deploy --watch` against this binary's private emulator, as a person uses it:
//! deploy, save the handler's source, see the new code deployed (a new code hash, by a plan
//! of one update) and its log lines in the same terminal; save the stack file, see it
//! applied (`--yes`); Ctrl-C, and the watch ends cleanly with the lock released.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stripstack_tests::{lambda, s3, unique, xtask, TestStack};

/// Lines a child printed so far, on stdout and stderr together, read as they come.
#[derive(Clone, Default)]
struct Transcript(Arc<Mutex<Vec<String>>>);

impl Transcript {
    fn follow(&self, stream: impl std::io::Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// Waits until the transcript holds `needle` after `from` lines; returns the line count
    /// at that point.
    fn wait_for(&self, needle: &str, from: usize, deadline: Duration) -> usize {
        let started = Instant::now();
        loop {
            {
                let lines = self.0.lock().unwrap();
                if lines[from.min(lines.len())..]
                    .iter()
                    .any(|l| l.contains(needle))
                {
                    return lines.len();
                }
            }
            assert!(
                started.elapsed() < deadline,
                "no `{needle}` after {deadline:?}; the watch printed:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// The handler's source, edited for the test and put back as it was on drop (also when the
/// test fails).
struct EditedSource {
    path: PathBuf,
    original: String,
}

impl EditedSource {
    fn replace(from: &str, to: &str) -> EditedSource {
        let path = xtask::workspace::root().join("lambda/src/bin/bootstrap.rs");
        let original = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            original.matches(from).count(),
            1,
            "`{from}` once in {path:?}"
        );
        std::fs::write(&path, original.replace(from, to)).unwrap();
        EditedSource { path, original }
    }
}

impl Drop for EditedSource {
    fn drop(&mut self) {
        std::fs::write(&self.path, &self.original).expect("put the handler's source back");
    }
}

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn interrupt(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn code_sha256(function: &str) -> String {
    lambda()
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .expect("the function exists")
        .code_sha256()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_source_is_deployed_and_its_log_lines_shown_until_ctrl_c() {
    let stack = TestStack::new("watch");
    let function = format!("{}-local-strip", stack.name);
    let path = stack.path.to_string_lossy().into_owned();
    let mut child = xtask(&[
        "deploy", "--watch", "--env", "local", "--yes", "--stack", &path,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let transcript = Transcript::default();
    transcript.follow(child.stdout.take().unwrap());
    transcript.follow(child.stderr.take().unwrap());
    let watch = Watch(child);
    let minutes = |n: u64| Duration::from_secs(60 * n);

    let seen = transcript.wait_for("watching", 0, minutes(5));
    let first = code_sha256(&function).await;

    // A save of the handler: rebuilt, one update of the code and nothing else, no question.
    let nonce = unique("ready");
    let edit = EditedSource::replace("\"event\": \"ready\",", &format!("\"event\": \"{nonce}\","));
    let seen = transcript.wait_for("changed: lambda/src/bin/bootstrap.rs", seen, minutes(1));
    let seen = transcript.wait_for("Deployed", seen, minutes(5));
    let text = transcript.text();
    assert!(
        text.contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete"),
        "a code change is one update:\n{text}"
    );
    assert!(text.contains("code_sha256"), "{text}");
    let second = code_sha256(&function).await;
    assert_ne!(first, second, "the new code is deployed");

    // Its log lines, in the watch's output: an upload starts the new code, which says so.
    s3().put_object()
        .bucket(stack.source())
        .key("uploads/watch.jpg")
        .body(
            std::fs::read(xtask::workspace::root().join("tests/fixtures/corpus/DSCN0010.jpg"))
                .unwrap()
                .into(),
        )
        .send()
        .await
        .unwrap();
    let seen = transcript.wait_for(&nonce, seen, minutes(2));

    // A save of the stack file: planned, shown and (`--yes`) applied.
    stack.write(512, "v1", "s3:GetObject", true, true);
    let seen = transcript.wait_for("Deployed", seen, minutes(3));
    let memory = lambda()
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap()
        .memory_size();
    assert_eq!(memory, Some(512), "{}", transcript.text());
    assert!(
        transcript
            .text()
            .lines()
            .any(|l| l.contains("~ memory") && l.contains("512")),
        "the plan shows the change:\n{}",
        transcript.text()
    );

    // Ctrl-C: the watch stops, exits 0, and the lock is free (destroy takes it).
    interrupt(&watch.0);
    let mut watch = watch;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = watch.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < minutes(1),
            "still running after Ctrl-C:\n{}",
            transcript.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    transcript.wait_for("watch stopped", seen, minutes(1));
    // Put back only now: the watch would deploy the old code again.
    drop(edit);
    assert!(status.success(), "{status}:\n{}", transcript.text());
    assert!(transcript.len() > seen);
    stack.destroy();
    // What a person would have seen (`-- --nocapture` shows it).
    eprintln!("{}", transcript.text());
}
