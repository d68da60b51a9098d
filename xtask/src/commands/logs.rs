//! `cargo xtask logs`: a function's log lines, like `sls logs`: the function's structured
//! lines formatted for a person (time, outcome, key, bytes in and out, what was removed,
//! duration), Lambda's own lines as they are; `--follow` keeps polling for new ones.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::resources::log_group::{self, LogEvent};
use crate::session::{self, TargetOptions};

#[derive(Debug, Clone, Default)]
pub(crate) struct LogsOptions {
    pub target: TargetOptions,
    /// The function's logical name; `None`: the stack's only function.
    pub function: Option<String>,
    /// How far back to start (`15m`, `2h`, `1d`).
    pub since: Duration,
    pub follow: bool,
}

/// Between polls with `--follow`: CloudWatch Logs allows 5 FilterLogEvents per second per
/// account and region, and takes a few seconds to ingest a line (`aws logs tail` polls
/// every 5 s).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// `15m`, `90s`, `2h`, `1d` → a duration.
pub(crate) fn parse_since(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number and a unit, like 15m"))?;
    let seconds = match unit {
        "s" => n,
        "m" | "" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}`: the unit is one of s, m, h, d")),
    };
    Ok(Duration::from_secs(seconds))
}

/// One line for a person (pure).
pub(crate) fn format(event: &LogEvent) -> String {
    let time = crate::utc::millis(event.timestamp_ms);
    let Ok(Value::Object(line)) = serde_json::from_str::<Value>(&event.message) else {
        return format!("{time}  {}", event.message);
    };
    let text = |key: &str| match line.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let mut out = format!("{time}  {:<5} {:<9}", text("level"), text("event"));
    let key = text("key");
    if !key.is_empty() {
        out.push_str(&format!(" {key}"));
    }
    if line.contains_key("bytes_in") {
        out.push_str(&format!(
            "  {} -> {} bytes",
            text("bytes_in"),
            text("bytes_out")
        ));
    }
    if let Some(Value::Object(removed)) = line.get("segments_removed") {
        if !removed.is_empty() {
            let parts: Vec<String> = removed.iter().map(|(k, v)| format!("{k} x{v}")).collect();
            out.push_str(&format!("  removed {}", parts.join(", ")));
        }
    }
    if let Some(Value::Object(renditions)) = line.get("renditions") {
        let names = |key: &str| -> Vec<String> {
            renditions
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (written, deleted) = (names("written"), names("deleted"));
        if !written.is_empty() {
            out.push_str(&format!("  renditions {}", written.join(", ")));
        }
        if !deleted.is_empty() {
            out.push_str(&format!("  renditions deleted {}", deleted.join(", ")));
        }
    }
    for key in ["reason", "why", "error"] {
        let value = text(key);
        if !value.is_empty() {
            out.push_str(&format!("  {key}: {value}"));
        }
    }
    if line.contains_key("duration_ms") {
        out.push_str(&format!("  {} ms", text("duration_ms")));
    }
    out
}

/// What tells a line seen by two overlapping polls: CloudWatch's event id, or (where the
/// service gives none) the line itself.
fn identity(event: &LogEvent) -> String {
    event.id.clone().unwrap_or_else(|| {
        format!(
            "{}|{}|{}",
            event.timestamp_ms,
            event.stream.as_deref().unwrap_or_default(),
            event.message
        )
    })
}

pub(crate) async fn run(options: LogsOptions) -> anyhow::Result<ExitCode> {
    let (stack, clients) = session::connect(&options.target).await?;
    let function = super::chosen_function(&stack, options.function.as_deref())?;
    let since_ms = u64::try_from(options.since.as_millis()).unwrap_or(u64::MAX);
    let start = crate::utc::now_ms().saturating_sub(since_ms);
    let printed = print_lines(&clients, &function.log_group, start, options.follow).await?;
    if printed == 0 {
        eprintln!(
            "no log lines in {} since {} UTC",
            function.log_group,
            crate::utc::millis(start)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the lines of `log_group` from `start_ms` on, formatted; with `follow`, keeps
/// polling for new ones and never returns but on an error. Returns how many lines it printed.
async fn print_lines(
    clients: &crate::aws::Clients,
    log_group: &str,
    start_ms: u64,
    follow: bool,
) -> anyhow::Result<usize> {
    let mut tail = Tail::new(log_group, start_ms);
    loop {
        tail.poll(clients).await?;
        if !follow {
            return Ok(tail.printed);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Where the printing of one log group stands: the next poll's start and the lines already
/// printed at or after it. `deploy --watch` keeps one across failed polls, so a poll retried
/// after an error neither repeats a line nor skips one.
pub(crate) struct Tail {
    log_group: String,
    start_ms: u64,
    /// Identities of the lines printed with a timestamp at or after `start_ms`: the only
    /// ones the next (inclusive) poll can return again, so the set stays small.
    seen: HashMap<String, u64>,
    printed: usize,
}

impl Tail {
    pub(crate) fn new(log_group: &str, start_ms: u64) -> Self {
        Tail {
            log_group: log_group.to_owned(),
            start_ms,
            seen: HashMap::new(),
            printed: 0,
        }
    }

    pub(crate) fn log_group(&self) -> &str {
        &self.log_group
    }

    /// One poll: prints the lines not printed before.
    pub(crate) async fn poll(&mut self, clients: &crate::aws::Clients) -> anyhow::Result<()> {
        let events = log_group::events(clients, &self.log_group, self.start_ms).await?;
        for line in self.take_new(&events) {
            println!("{line}");
        }
        Ok(())
    }

    /// The lines of `events` not printed before, formatted (pure). The next poll starts at
    /// the newest line seen (inclusive: lines of the same millisecond may still arrive), the
    /// overlap dropped by `seen`.
    fn take_new(&mut self, events: &[LogEvent]) -> Vec<String> {
        let mut lines = Vec::new();
        for event in events {
            if self
                .seen
                .insert(identity(event), event.timestamp_ms)
                .is_none()
            {
                lines.push(format(event));
            }
        }
        self.printed += lines.len();
        if let Some(newest) = events.iter().map(|e| e.timestamp_ms).max() {
            self.start_ms = self.start_ms.max(newest);
        }
        let start_ms = self.start_ms;
        self.seen.retain(|_, timestamp| *timestamp >= start_ms);
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str) -> LogEvent {
        LogEvent {
            timestamp_ms: 1_763_897_465_042,
            message: message.to_owned(),
            id: None,
            stream: None,
        }
    }

    #[test]
    fn structured_lines_are_formatted_for_a_person() {
        let stripped = r#"{"level":"INFO","event":"stripped","key":"uploads/a.jpg","bytes_in":2048,"bytes_out":1024,"segments_removed":{"APP1/Exif":1,"COM":2},"renditions":{"written":["thumb"],"current":[],"refused":[]},"duration_ms":12,"_aws":{}}"#;
        let refused = r#"{"level":"ERROR","event":"rejected","key":"uploads/b.jpg","reason":"not_a_jpeg","error":"not a JPEG: the input is PNG","duration_ms":3}"#;
        insta::assert_snapshot!(
            [format(&event(stripped)), format(&event(refused)), format(&event("START RequestId: 1 Version: $LATEST"))].join("\n"),
            @r"
        2025-11-23 11:31:05.042  INFO  stripped  uploads/a.jpg  2048 -> 1024 bytes  removed APP1/Exif x1, COM x2  renditions thumb  12 ms
        2025-11-23 11:31:05.042  ERROR rejected  uploads/b.jpg  reason: not_a_jpeg  error: not a JPEG: the input is PNG  3 ms
        2025-11-23 11:31:05.042  START RequestId: 1 Version: $LATEST
        "
        );
    }

    #[test]
    fn overlapping_polls_print_each_line_once_and_forget_what_cannot_return() {
        let at = |ms: u64, message: &str| LogEvent {
            timestamp_ms: ms,
            message: message.to_owned(),
            id: None,
            stream: Some("s".to_owned()),
        };
        let mut tail = Tail::new("/aws/lambda/f", 100);
        assert_eq!(tail.take_new(&[at(100, "a"), at(105, "b")]).len(), 2);
        // The next poll starts at 105 inclusive and returns `b` again: printed once.
        assert_eq!(tail.start_ms, 105);
        let again = tail.take_new(&[at(105, "b"), at(105, "c"), at(110, "d")]);
        assert_eq!(again.len(), 2, "{again:?}");
        assert_eq!(tail.printed, 4);
        // Only the lines at the new start can come back; the rest are forgotten.
        assert_eq!(tail.seen.len(), 1);
        // A failed poll changes nothing: the one after it starts where this one ended.
        assert!(tail.take_new(&[]).is_empty());
        assert_eq!(tail.start_ms, 110);
    }

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_since("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_since("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_since("m").is_err());
        assert!(parse_since("3w").is_err());
    }
}
