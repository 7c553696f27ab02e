//! Diagnostics through `tracing`: `-v` shows the scanner's own debug lines, `-vv` adds the
//! resolver library's (which name server answered, retries, TCP fallback), and `RUST_LOG`
//! (`target=level,...`) replaces both. Events go to stderr in the `--log-format` shape: text
//! lines, or JSON objects with the same `level` and `message` keys as every other line the
//! binary writes (`{"level":"debug","message":..,"target":..,<fields>}`), so a consumer of the
//! JSON lines reads them with the parser it already has.
//!
//! The messages and the end-of-scan summary keep their own writer (`Stderr` in `main.rs`): their
//! shape is a public contract, and the summary is a nested object, not a flat event.

use std::fmt::Debug;
use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber for `verbosity` (the number of `-v`), unless `RUST_LOG` is
/// set, which then decides alone. A `RUST_LOG` this filter cannot read (it may be meant for
/// another program) is ignored, and the returned warning says so.
pub fn init(verbosity: u8, json: bool, rust_log: Option<String>) -> Option<String> {
    let (filter, warning) = match rust_log.filter(|spec| !spec.trim().is_empty()) {
        Some(spec) => match spec.parse::<Targets>() {
            Ok(filter) => (filter, None),
            Err(error) => (
                default_filter(verbosity),
                Some(format!(
                    "ignoring RUST_LOG={spec:?} ({error}): expected target=level,..."
                )),
            ),
        },
        None => (default_filter(verbosity), None),
    };
    // Fails only when a subscriber is already installed, which this binary never does twice.
    let _ = tracing_subscriber::registry()
        .with(StderrLayer { json }.with_filter(filter))
        .try_init();
    warning
}

/// Without `-v` only the scanner's warnings; `-v` its debug lines; `-vv` its trace lines and
/// the DNS library's debug lines.
fn default_filter(verbosity: u8) -> Targets {
    const OURS: &str = "mta_sts_scan";
    match verbosity {
        0 => Targets::new().with_target(OURS, Level::WARN),
        1 => Targets::new().with_target(OURS, Level::DEBUG),
        _ => Targets::new()
            .with_target(OURS, Level::TRACE)
            .with_target("hickory_resolver", Level::DEBUG)
            .with_target("hickory_net", Level::DEBUG)
            .with_target("hickory_proto", Level::DEBUG),
    }
}

/// Writes each event as one line on stderr.
struct StderrLayer {
    json: bool,
}

impl<S: Subscriber> Layer<S> for StderrLayer {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = render(
            self.json,
            metadata.level(),
            metadata.target(),
            &fields.message,
            fields.others,
        );
        // One write per line, so lines from several threads do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

fn render(
    json: bool,
    level: &Level,
    target: &str,
    message: &str,
    others: Vec<(String, Value)>,
) -> String {
    let level = level.as_str().to_ascii_lowercase();
    if json {
        let mut object = Map::new();
        object.insert("level".into(), Value::String(level));
        object.insert("message".into(), Value::String(message.to_owned()));
        object.insert("target".into(), Value::String(target.to_owned()));
        for (key, value) in others {
            object.entry(key).or_insert(value);
        }
        let mut line = Value::Object(object).to_string();
        line.push('\n');
        line
    } else {
        let mut line = format!("{level} {target}: {message}");
        for (key, value) in others {
            match value {
                Value::String(text) => line.push_str(&format!(" {key}={text}")),
                other => line.push_str(&format!(" {key}={other}")),
            }
        }
        line.push('\n');
        line
    }
}

/// An event's `message` and its other fields, typed where tracing gives a type.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
        } else {
            self.others.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_the_level_and_message_keys_of_every_other_line() {
        let line = render(
            true,
            &Level::DEBUG,
            "mta_sts_scan::scan",
            "checked",
            vec![
                ("domain".into(), Value::from("a.test")),
                ("level".into(), Value::from("spoofed")),
                ("ms".into(), Value::from(12u64)),
            ],
        );
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "debug", "a field cannot replace the level");
        assert_eq!(value["message"], "checked");
        assert_eq!(value["target"], "mta_sts_scan::scan");
        assert_eq!(value["domain"], "a.test");
        assert_eq!(value["ms"], 12);
    }

    #[test]
    fn text_lines_name_level_target_and_fields() {
        let line = render(
            false,
            &Level::WARN,
            "hickory_resolver",
            "retrying",
            vec![("server".into(), Value::from("127.0.0.1:53"))],
        );
        assert_eq!(
            line,
            "warn hickory_resolver: retrying server=127.0.0.1:53\n"
        );
    }

    #[test]
    fn verbosity_and_rust_log_choose_the_targets() {
        let enabled =
            |filter: &Targets, target: &str, level: Level| filter.would_enable(target, &level);
        let quiet = default_filter(0);
        assert!(!enabled(&quiet, "mta_sts_scan::scan", Level::DEBUG));
        assert!(!enabled(&quiet, "hickory_resolver", Level::WARN));
        let one = default_filter(1);
        assert!(enabled(&one, "mta_sts_scan::scan::pipeline", Level::DEBUG));
        assert!(!enabled(
            &one,
            "hickory_resolver::name_server",
            Level::DEBUG
        ));
        let two = default_filter(2);
        assert!(enabled(&two, "hickory_resolver::name_server", Level::DEBUG));
        let from_env: Targets = "hickory_proto=trace".parse().unwrap();
        assert!(enabled(&from_env, "hickory_proto::udp", Level::TRACE));
        assert!(!enabled(&from_env, "mta_sts_scan", Level::ERROR));
    }
}
