//! The server's event log: every event on the console in real time and, with `--save`,
//! appended to a JSON Lines file.
//!
//! Writing happens on one dedicated thread fed by a bounded channel, so a console piped
//! into a stalled pager or a slow disk never blocks a connection task. Should the channel
//! fill up, events are counted and dropped, and the thread reports how many once it
//! catches up; console and file always receive the same events, file first, so a
//! `kill -9` never leaves an event on the console that the file lacks.

pub mod tail;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use owo_colors::OwoColorize;
use serde::Serialize;
use serde_json::Value;

/// Events that may wait for the writer thread before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// How long the writer lets events gather after writing a batch. While the thread is
/// awake, a server thread that logs costs a queue push and nothing more; once the
/// thread sleeps in `recv`, each event has to wake it with a system call, and a busy
/// server then pays one wake-up and one console `write` per handful of events. A quiet
/// server is not delayed: the writer waits in `recv` and writes each event at once.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

/// How many characters of a message the `preview` field keeps.
pub const PREVIEW_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// One line of the session log, in the seed's schema.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// When it happened; written in whole seconds (see [`crate::timestamp`]).
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub ts: jiff::Timestamp,
    pub level: Level,
    pub msg: &'static str,
    pub meta: Value,
}

enum Message {
    Record(Record),
    /// Write everything before this, then stop.
    Stop,
}

/// Handle used by the server to log; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// Owns the writer thread; [`LogWriter::finish`] flushes and joins it.
pub struct LogWriter {
    tx: SyncSender<Message>,
    thread: JoinHandle<()>,
}

/// Where the console output goes and whether to color it.
pub struct Console {
    pub out: Box<dyn Write + Send>,
    pub color: bool,
}

impl EventLog {
    /// Opens the `--save` file for appending (creating it if needed) and starts the
    /// writer thread. Fails only when the file cannot be opened.
    pub fn start(console: Console, save: Option<&Path>) -> io::Result<(EventLog, LogWriter)> {
        let file = match save {
            Some(path) => Some(SaveFile::open(path)?),
            None => None,
        };
        let mended = file.as_ref().is_some_and(|f| f.mended_cut_line);
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let thread = {
            let dropped = dropped.clone();
            std::thread::Builder::new()
                .name("tchat-log".into())
                .spawn(move || write_loop(rx, console, file, dropped))?
        };
        let log = EventLog { tx: tx.clone(), dropped };
        if mended {
            let meta = serde_json::json!({ "file": save.map(|p| p.display().to_string()) });
            log.warn("Log file ended in a cut line (server killed mid-write); ended it", meta);
        }
        Ok((log, LogWriter { tx, thread }))
    }

    pub fn info(&self, msg: &'static str, meta: Value) {
        self.log(Level::Info, msg, meta);
    }

    pub fn warn(&self, msg: &'static str, meta: Value) {
        self.log(Level::Warn, msg, meta);
    }

    pub fn error(&self, msg: &'static str, meta: Value) {
        self.log(Level::Error, msg, meta);
    }

    pub fn log(&self, level: Level, msg: &'static str, meta: Value) {
        let record = Record { ts: jiff::Timestamp::now(), level, msg, meta };
        match self.tx.try_send(Message::Record(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer is gone (the server is exiting): nothing left to log to.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl LogWriter {
    /// Writes every event logged so far, then stops the thread.
    pub fn finish(self) {
        let _ = self.tx.send(Message::Stop);
        let _ = self.thread.join();
    }
}

/// Keeps the first `PREVIEW_CHARS` characters of `text`, marking a cut with `…`.
pub fn preview(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// How often the writer checks that `--save` still names the file it writes to.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The `--save` file, with the state needed to report a failing disk once, not per event.
struct SaveFile {
    path: PathBuf,
    file: File,
    /// When the path was last compared with the open file (see [`SaveFile::follow`]).
    followed: std::time::Instant,
    /// The path no longer names the open file and could not be reopened (reported once).
    lost_path: bool,
    failing: bool,
    /// The file ended in a cut line (the server was killed mid-write) and a newline was
    /// added, so new records start on a line of their own and only that line is lost.
    mended_cut_line: bool,
}

/// True when a regular file's last byte is not a newline. Anything else (a device, a
/// pipe, an empty file, an unreadable one) is left as it is.
fn ends_mid_line(file: &mut File) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let is_nonempty_file = file.metadata().is_ok_and(|m| m.is_file() && m.len() > 0);
    let mut last = [0u8; 1];
    is_nonempty_file
        && file.seek(SeekFrom::End(-1)).is_ok()
        && file.read_exact(&mut last).is_ok()
        && last[0] != b'\n'
}

impl SaveFile {
    fn open(path: &Path) -> io::Result<SaveFile> {
        let context = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot open log file {}: {e}", path.display()))
        };
        // A file the server creates is its owner's alone: it holds private messages'
        // text. An existing file keeps the mode it has (the admin's choice, e.g. a
        // logrotate `create` line).
        let mut file = crate::private_file::options()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(context)?;
        let mended_cut_line = ends_mid_line(&mut file) && file.write_all(b"\n").is_ok();
        Ok(SaveFile {
            path: path.to_owned(),
            file,
            followed: std::time::Instant::now(),
            lost_path: false,
            failing: false,
            mended_cut_line,
        })
    }

    /// Reopens the path when it no longer names the open file: logrotate (or an admin)
    /// moved or deleted it. Without this the server would go on appending to the
    /// rotated file, or to a deleted one nobody can read. Checked at most once per
    /// [`FOLLOW_EVERY`], so events logged in between still land in the old file, whole.
    #[cfg(unix)]
    fn follow(&mut self, console: &mut Console) {
        use std::os::unix::fs::MetadataExt;
        if self.followed.elapsed() < FOLLOW_EVERY {
            return;
        }
        self.followed = std::time::Instant::now();
        let id = |m: std::fs::Metadata| (m.dev(), m.ino());
        let open = self.file.metadata().map(id).ok();
        if std::fs::metadata(&self.path).map(id).ok() == open {
            return;
        }
        match SaveFile::open(&self.path) {
            Ok(reopened) => {
                *self = reopened;
                let rec =
                    record(Level::Info, "Log file reopened (it was moved or deleted)", self.meta());
                self.append(json_line(&rec).as_bytes(), console);
                write_console(console, &rec);
            }
            Err(e) if !self.lost_path => {
                self.lost_path = true;
                self.report(
                    console,
                    "Log file moved or deleted and cannot be reopened; still writing to the old file",
                    &e,
                );
            }
            Err(_) => {}
        }
    }

    #[cfg(not(unix))]
    fn follow(&mut self, _console: &mut Console) {}

    /// Appends whole lines with one `write_all`: the file is opened in append mode and not
    /// buffered, so each batch reaches the kernel at once. Only a `kill -9` during a
    /// write of more than a page can cut a line (Linux stops copying between pages once
    /// SIGKILL is pending); [`SaveFile::open`] ends such a line on the next start.
    fn append(&mut self, lines: &[u8], console: &mut Console) {
        match self.file.write_all(lines) {
            Ok(()) if self.failing => {
                self.failing = false;
                let rec = record(Level::Info, "Log file writable again", self.meta());
                let _ = self.file.write_all(json_line(&rec).as_bytes());
                write_console(console, &rec);
            }
            Ok(()) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                self.report(
                    console,
                    "Log file write failed; events go to the console only until it recovers",
                    &e,
                );
            }
            Err(_) => {}
        }
    }

    /// Tells the console about a problem with the file (it cannot go in the file).
    fn report(&self, console: &mut Console, msg: &'static str, error: &io::Error) {
        let mut meta = self.meta();
        meta["error"] = Value::String(error.to_string());
        write_console(console, &record(Level::Error, msg, meta));
    }

    fn meta(&self) -> Value {
        serde_json::json!({ "file": self.path.display().to_string() })
    }
}

fn record(level: Level, msg: &'static str, meta: Value) -> Record {
    Record { ts: jiff::Timestamp::now(), level, msg, meta }
}

fn json_line(rec: &Record) -> String {
    let mut line = serde_json::to_string(rec).expect("records always serialise");
    line.push('\n');
    line
}

fn write_loop(
    rx: Receiver<Message>,
    mut console: Console,
    mut file: Option<SaveFile>,
    dropped: Arc<AtomicU64>,
) {
    let mut batch = Vec::new();
    let mut file_buf = String::new();
    let mut console_buf = String::new();
    let mut clock = Clock::default();
    loop {
        let Ok(first) = rx.recv() else { return };
        batch.push(first);
        // Drain what else is waiting so a busy server costs one write per batch.
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let meta = serde_json::json!({ "count": lost });
            batch.push(Message::Record(record(
                Level::Warn,
                "Log events dropped (log output too slow)",
                meta,
            )));
        }
        let mut stop = false;
        file_buf.clear();
        for m in &batch {
            match m {
                Message::Record(rec) if file.is_some() => file_buf.push_str(&json_line(rec)),
                Message::Record(_) => {}
                Message::Stop => stop = true,
            }
        }
        if let Some(f) = file.as_mut()
            && !file_buf.is_empty()
        {
            f.follow(&mut console);
            f.append(file_buf.as_bytes(), &mut console);
        }
        // One write for the whole batch: stdout is line-buffered, so writing record by
        // record would cost a system call per event.
        console_buf.clear();
        for m in batch.drain(..) {
            if let Message::Record(rec) = m {
                push_console_line(&mut console_buf, console.color, &mut clock, &rec);
            }
        }
        // A console that is gone (closed pipe) must not take the server down with it.
        let _ = console.out.write_all(console_buf.as_bytes());
        let _ = console.out.flush();
        if stop {
            return;
        }
        std::thread::sleep(GATHER);
    }
}

/// Writes one record to the console at once (for the writer's own reports).
fn write_console(console: &mut Console, rec: &Record) {
    let mut line = String::with_capacity(128);
    push_console_line(&mut line, console.color, &mut Clock::default(), rec);
    // A console that is gone (closed pipe) must not take the server down with it.
    let _ = console.out.write_all(line.as_bytes());
}

/// The local `HH:MM:SS` of the last second formatted: a busy server logs thousands of
/// events per second, and converting each to local time costs more than the rest of
/// the line.
#[derive(Default)]
struct Clock {
    second: Option<i64>,
    text: String,
}

impl Clock {
    fn hms(&mut self, ts: jiff::Timestamp) -> &str {
        let second = ts.as_second();
        if self.second != Some(second) {
            self.second = Some(second);
            self.text =
                ts.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%H:%M:%S").to_string();
        }
        &self.text
    }
}

/// Appends `HH:MM:SS LEVEL msg key=value …` in local time to `line`. The full `text` of
/// messages stays in the file; the console shows the preview.
fn push_console_line(line: &mut String, color: bool, clock: &mut Clock, rec: &Record) {
    use std::fmt::Write as _;
    let time = clock.hms(rec.ts);
    let level = match rec.level {
        Level::Info => "INFO ",
        Level::Warn => "WARN ",
        Level::Error => "ERROR",
    };
    if color {
        let _ = write!(line, "{} ", time.dimmed());
        let _ = match rec.level {
            Level::Info => write!(line, "{}", level.green()),
            Level::Warn => write!(line, "{}", level.yellow()),
            Level::Error => write!(line, "{}", level.red().bold()),
        };
        let _ = write!(line, " {}", rec.msg.bold());
    } else {
        let _ = write!(line, "{time} {level} {}", rec.msg);
    }
    if let Value::Object(map) = &rec.meta {
        for (key, value) in map.iter().filter(|(k, _)| k.as_str() != "text") {
            line.push(' ');
            if color {
                let _ = write!(line, "{}", format_args!("{key}=").dimmed());
            } else {
                let _ = write!(line, "{key}=");
            }
            match value {
                Value::String(s) if !s.is_empty() && !s.contains([' ', '"', '=']) => {
                    line.push_str(s)
                }
                other => {
                    let _ = write!(line, "{other}");
                }
            }
        }
    }
    line.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A console that records what it was given.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tchat-log-{}-{name}", std::process::id()))
    }

    #[test]
    fn file_gets_seed_schema_lines_and_console_gets_text() {
        let path = temp_path("schema.jsonl");
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, "{\"old\":1}\n").unwrap();
        let cap = Captured::default();
        let console = Console { out: Box::new(cap.clone()), color: false };
        let (log, writer) = EventLog::start(console, Some(&path)).unwrap();
        log.info("Public message", serde_json::json!({"from": "MrLaction", "len": 14, "preview": preview("Hello everyone"), "text": "Hello everyone"}));
        log.warn("Flood", serde_json::json!({"nick": "x"}));
        writer.finish();

        let content = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = content.lines().collect();
        assert_eq!(lines.len(), 3, "appended, not truncated: {content}");
        let v: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["msg"], "Public message");
        assert_eq!(v["meta"]["from"], "MrLaction");
        assert_eq!(v["meta"]["text"], "Hello everyone");
        let ts = v["ts"].as_str().unwrap();
        assert!(ts.ends_with('Z'), "{ts}");
        ts.parse::<jiff::Timestamp>().unwrap();
        let console = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
        assert!(
            console
                .contains("INFO  Public message from=MrLaction len=14 preview=\"Hello everyone\""),
            "{console}"
        );
        assert!(!console.contains("text="), "{console}");
        assert!(console.contains("WARN  Flood nick=x"), "{console}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_cut_last_line_is_ended_so_new_records_stay_whole() {
        let path = temp_path("cut.jsonl");
        std::fs::write(&path, "{\"whole\":1}\n{\"cut\":").unwrap();
        let cap = Captured::default();
        let console = Console { out: Box::new(cap.clone()), color: false };
        let (log, writer) = EventLog::start(console, Some(&path)).unwrap();
        log.info("After restart", Value::Null);
        writer.finish();
        let content = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = content.lines().collect();
        assert_eq!(lines[..2], ["{\"whole\":1}", "{\"cut\":"], "{content}");
        for line in &lines[2..] {
            serde_json::from_str::<Value>(line).unwrap();
        }
        assert!(content.contains("After restart") && content.ends_with('\n'), "{content}");
        let console = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
        assert!(console.contains("WARN  Log file ended in a cut line"), "{console}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn preview_cuts_long_text_on_a_char_boundary() {
        assert_eq!(preview("short"), "short");
        let long = "é".repeat(100);
        let p = preview(&long);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
    }

    #[test]
    fn unopenable_file_is_a_clear_error() {
        let console = Console { out: Box::new(io::sink()), color: false };
        let err =
            EventLog::start(console, Some(Path::new("/nonexistent-dir/x.jsonl"))).err().unwrap();
        assert!(err.to_string().contains("cannot open log file /nonexistent-dir/x.jsonl"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_reported_on_the_console_and_logging_goes_on() {
        let cap = Captured::default();
        let console = Console { out: Box::new(cap.clone()), color: false };
        let (log, writer) = EventLog::start(console, Some(Path::new("/dev/full"))).unwrap();
        log.info("First", Value::Null);
        log.info("Second", Value::Null);
        writer.finish();
        let console = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
        assert_eq!(console.matches("Log file write failed").count(), 1, "{console}");
        assert!(console.contains("First") && console.contains("Second"), "{console}");
    }
}
