//! The server's event log: every event on the console in real time and, with `--save`,
//! appended to a JSON Lines file.
//!
//! Two threads, so that the file never waits for the console:
//!
//! - The *file* thread takes every event from a bounded queue, appends each batch to the
//!   file with one write, and only then hands the batch, formatted, to the console
//!   thread; so a `kill -9` never leaves an event on the console that the file lacks.
//! - The *console* thread writes those batches to the console. When the console stalls
//!   (a pager nobody scrolls, a frozen SSH session) and [`CONSOLE_BATCHES`] batches are
//!   waiting for it, the file thread skips the console for the next batches, counts
//!   their events and reports the count on the console, and in the file, once it moves
//!   again. The file never loses an event to the console.
//!
//! A disk slower than the chat: once [`QUEUE`] events wait for the file thread, logging
//! waits for room (the chat slows to the disk's pace) rather than drop events from the
//! file. A disk that refuses writes (full, gone) is another matter: the failure is
//! reported once on the console, events go to the console only, and recovery is logged.
//!
//! Stopping ([`LogWriter::finish`]) writes every event logged so far to the file and
//! gives the console at most [`CONSOLE_GRACE`] to take the rest: a stalled console
//! cannot keep the server from exiting.

pub mod tail;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use owo_colors::OwoColorize;
use serde::Serialize;
use serde_json::Value;

/// Events that may wait for the file thread before logging waits for room: a burst of
/// this many is absorbed without slowing anyone, a disk slower than that for longer
/// slows the chat to its pace (see the module's doc).
pub const QUEUE: usize = 16 * 1024;

/// Formatted batches (of up to 1,024 events) that may wait for the console before
/// the console skips events.
pub const CONSOLE_BATCHES: usize = 64;

/// Most events written in one batch.
const BATCH: usize = 1024;

/// How long [`LogWriter::finish`] lets the console take its last lines.
pub const CONSOLE_GRACE: Duration = Duration::from_secs(1);

/// How long the writer lets events gather after writing a batch. While the thread is
/// awake, a server thread that logs costs a queue push and nothing more; once the
/// thread sleeps in `recv`, each event has to wake it with a system call, and a busy
/// server then pays one wake-up and one console `write` per handful of events. A quiet
/// server is not delayed: the writer waits in `recv` and writes each event at once.
const GATHER: Duration = Duration::from_millis(1);

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
}

/// Owns the writer threads; [`LogWriter::finish`] flushes the file and stops them.
pub struct LogWriter {
    tx: SyncSender<Message>,
    file_thread: JoinHandle<()>,
    /// Told when the console thread has written its last batch.
    console_done: Receiver<()>,
}

/// Where the console output goes and whether to color it.
pub struct Console {
    pub out: Box<dyn Write + Send>,
    pub color: bool,
}

impl EventLog {
    /// Opens the `--save` file for appending (creating it if needed) and starts the
    /// writer threads. Fails only when the file cannot be opened.
    pub fn start(console: Console, save: Option<&Path>) -> io::Result<(EventLog, LogWriter)> {
        let file = match save {
            Some(path) => Some(SaveFile::open(path)?),
            None => None,
        };
        let mended = file.as_ref().is_some_and(|f| f.mended_cut_line);
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (to_console, console_rx) = mpsc::sync_channel(CONSOLE_BATCHES);
        let (done_tx, console_done) = mpsc::channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let color = console.color;
        {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name("tchat-console".into())
                .spawn(move || console_loop(console_rx, console.out, waiting, done_tx))?;
        }
        let console = ConsoleFeed { tx: to_console, waiting, color, skipped: 0 };
        let file_thread = std::thread::Builder::new()
            .name("tchat-log".into())
            .spawn(move || write_loop(rx, console, file))?;
        let log = EventLog { tx: tx.clone() };
        if mended {
            let meta = serde_json::json!({ "file": save.map(|p| p.display().to_string()) });
            log.warn("Log file ended in a cut line (server killed mid-write); ended it", meta);
        }
        Ok((log, LogWriter { tx, file_thread, console_done }))
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

    /// Queues one event. Waits only while [`QUEUE`] events wait for the file thread (a
    /// disk slower than the chat), never for the console.
    pub fn log(&self, level: Level, msg: &'static str, meta: Value) {
        let record = Record { ts: jiff::Timestamp::now(), level, msg, meta };
        // An error means the writer is gone (the server is exiting): nothing to log to.
        let _ = self.tx.send(Message::Record(record));
    }
}

impl LogWriter {
    /// Writes every event logged so far to the file, then stops. The console gets at
    /// most [`CONSOLE_GRACE`] to take what it has not shown yet: a stalled one does not
    /// hold the exit (its thread dies with the process).
    pub fn finish(self) {
        let _ = self.tx.send(Message::Stop);
        let _ = self.file_thread.join();
        let _ = self.console_done.recv_timeout(CONSOLE_GRACE);
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
    fn follow(&mut self, console: &mut ConsoleFeed) {
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
                console.one(&rec);
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
    fn follow(&mut self, _console: &mut ConsoleFeed) {}

    /// Appends whole lines with one `write_all`: the file is opened in append mode and not
    /// buffered, so each batch reaches the kernel at once. Only a `kill -9` during a
    /// write of more than a page can cut a line (Linux stops copying between pages once
    /// SIGKILL is pending); [`SaveFile::open`] ends such a line on the next start.
    fn append(&mut self, lines: &[u8], console: &mut ConsoleFeed) {
        match self.file.write_all(lines) {
            Ok(()) if self.failing => {
                self.failing = false;
                let rec = record(Level::Info, "Log file writable again", self.meta());
                let _ = self.file.write_all(json_line(&rec).as_bytes());
                console.one(&rec);
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
    fn report(&self, console: &mut ConsoleFeed, msg: &'static str, error: &io::Error) {
        let mut meta = self.meta();
        meta["error"] = Value::String(error.to_string());
        console.one(&record(Level::Error, msg, meta));
    }

    fn meta(&self) -> Value {
        serde_json::json!({ "file": self.path.display().to_string() })
    }
}

fn record(level: Level, msg: &'static str, meta: Value) -> Record {
    Record { ts: jiff::Timestamp::now(), level, msg, meta }
}

fn json_line(rec: &Record) -> String {
    let mut line = String::new();
    push_json_line(&mut line, rec);
    line
}

/// Appends `rec` as one JSON line. U+2028 and U+2029 are escaped (`\u2028`): JSON
/// allows them raw, but a reader that splits on Unicode line separators (JavaScript's,
/// many editors') would see the line end there, and text after it as a forged record.
fn push_json_line(out: &mut String, rec: &Record) {
    let start = out.len();
    out.push_str(&serde_json::to_string(rec).expect("records always serialise"));
    escape_line_separators(out, start);
    out.push('\n');
}

/// Replaces U+2028 and U+2029 in `out[start..]` by the escapes `\u2028` and `\u2029`,
/// in place: in a JSON line they appear only inside strings, where the escapes mean the
/// same; on the console they show as the escapes. Most lines hold neither and are only
/// scanned.
pub fn escape_line_separators(out: &mut String, start: usize) {
    if !out[start..].contains(['\u{2028}', '\u{2029}']) {
        return;
    }
    let escaped = out[start..].replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029");
    out.truncate(start);
    out.push_str(&escaped);
}

/// The file thread's way to the console thread: formatted batches, skipped (and
/// counted) while the console is [`CONSOLE_BATCHES`] behind.
struct ConsoleFeed {
    tx: SyncSender<ConsoleBatch>,
    /// Batches sent and not yet written by the console thread.
    waiting: Arc<AtomicUsize>,
    color: bool,
    /// Events not shown since the console fell behind.
    skipped: u64,
}

enum ConsoleBatch {
    Text(String),
    /// Nothing more will come.
    Stop,
}

impl ConsoleFeed {
    /// Passes one record to the console at once (the writer's own reports).
    fn one(&mut self, rec: &Record) {
        let mut line = String::with_capacity(128);
        push_console_line(&mut line, self.color, &mut Clock::default(), rec);
        self.send(line, 1);
    }

    fn has_room(&self) -> bool {
        self.waiting.load(Ordering::Acquire) < CONSOLE_BATCHES
    }

    /// Sends `text` if the console has room (never waits); `records` is how many
    /// events it holds, counted as skipped otherwise.
    fn send(&mut self, text: String, records: usize) {
        if self.has_room() {
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let _ = self.tx.try_send(ConsoleBatch::Text(text));
        } else {
            self.skipped += records as u64;
        }
    }

    /// The record that reports the events the console skipped, once it has room
    /// again (or at the end, for the file).
    fn skip_report(&mut self, at_end: bool) -> Option<Record> {
        if self.skipped == 0 || !(at_end || self.has_room()) {
            return None;
        }
        let meta = serde_json::json!({ "count": std::mem::take(&mut self.skipped) });
        Some(record(
            Level::Warn,
            "Console skipped events (console too slow; the file has them)",
            meta,
        ))
    }
}

/// The file thread: takes batches of events, appends them to the file, then passes
/// them on to the console thread.
fn write_loop(rx: Receiver<Message>, mut console: ConsoleFeed, mut file: Option<SaveFile>) {
    let mut batch = Vec::new();
    let mut file_buf = String::new();
    let mut clock = Clock::default();
    loop {
        let Ok(first) = rx.recv() else { return };
        batch.push(first);
        // Drain what else is waiting so a busy server costs one write per batch.
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let stop = batch.iter().any(|m| matches!(m, Message::Stop));
        // The last batch cannot wait for the console to make room: when it has none,
        // its events are counted now, so that the file's last report covers them.
        let console_takes_it = !stop || console.has_room();
        if !console_takes_it {
            console.skipped +=
                batch.iter().filter(|m| matches!(m, Message::Record(_))).count() as u64;
        }
        if let Some(report) = console.skip_report(stop) {
            batch.push(Message::Record(report));
        }
        file_buf.clear();
        if let Some(f) = file.as_mut() {
            for m in &batch {
                if let Message::Record(rec) = m {
                    push_json_line(&mut file_buf, rec);
                }
            }
            if !file_buf.is_empty() {
                f.follow(&mut console);
                f.append(file_buf.as_bytes(), &mut console);
            }
        }
        // One write for the whole batch: stdout is line-buffered, so writing record by
        // record would cost a system call per event.
        let mut text = String::with_capacity(file_buf.len().max(256));
        let mut records = 0;
        for m in batch.drain(..) {
            if let Message::Record(rec) = m {
                push_console_line(&mut text, console.color, &mut clock, &rec);
                records += 1;
            }
        }
        if console_takes_it {
            console.send(text, records);
        }
        if stop {
            let _ = console.tx.try_send(ConsoleBatch::Stop);
            return;
        }
        std::thread::sleep(GATHER);
    }
}

/// The console thread: writes what the file thread passes on. A console that is gone
/// (closed pipe) must not take the server down with it: errors are ignored.
fn console_loop(
    rx: Receiver<ConsoleBatch>,
    mut out: Box<dyn Write + Send>,
    waiting: Arc<AtomicUsize>,
    done: mpsc::Sender<()>,
) {
    while let Ok(ConsoleBatch::Text(text)) = rx.recv() {
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        waiting.fetch_sub(1, Ordering::AcqRel);
    }
    let _ = done.send(());
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
/// messages stays in the file; the console shows the preview. The journal's `kind` tag
/// (see `server::journal`) stays in the file too: the `msg` says it to a reader.
fn push_console_line(line: &mut String, color: bool, clock: &mut Clock, rec: &Record) {
    use std::fmt::Write as _;
    let start = line.len();
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
        let shown = |(k, _): &(&String, &Value)| !matches!(k.as_str(), "text" | "kind");
        for (key, value) in map.iter().filter(shown) {
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
    // Shown as escapes: a raw one would end the line for some terminals and readers.
    escape_line_separators(line, start);
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

    /// A console whose writes block until `open` is set, as a pipe nobody reads.
    struct Stalled {
        open: Arc<std::sync::atomic::AtomicBool>,
        got: Captured,
    }
    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            while !self.open.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.got.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_console_costs_the_file_nothing_and_the_skips_are_counted() {
        let path = temp_path("stalled.jsonl");
        let _ = std::fs::remove_file(&path);
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let got = Captured::default();
        let out = Stalled { open: open.clone(), got: got.clone() };
        let (log, writer) =
            EventLog::start(Console { out: Box::new(out), color: false }, Some(&path)).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        log.info("Public message", serde_json::json!({"w": w, "i": i}));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        // The file gets every event while the console stays stalled.
        let started = std::time::Instant::now();
        let in_file = || std::fs::read_to_string(&path).unwrap().lines().count();
        while in_file() < 80_000 {
            assert!(started.elapsed() < Duration::from_secs(20), "{} in the file", in_file());
            std::thread::sleep(Duration::from_millis(10));
        }
        open.store(true, Ordering::Release);
        log.info("After the stall", Value::Null);
        let started = std::time::Instant::now();
        writer.finish();
        assert!(started.elapsed() < Duration::from_secs(5));
        let content = std::fs::read_to_string(&path).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut skipped = 0;
        for line in content.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["msg"] == "Public message" {
                assert!(seen.insert((v["meta"]["w"].as_u64(), v["meta"]["i"].as_u64())));
            }
            if v["msg"].as_str().unwrap().starts_with("Console skipped events") {
                skipped += v["meta"]["count"].as_u64().unwrap();
            }
        }
        assert_eq!(seen.len(), 80_000, "every event is in the file");
        assert!(skipped > 0, "the console was skipped and it is said");
        // Every event is shown or counted as skipped, "After the stall" included: the
        // console may still be behind when it comes, and is then counted too. The
        // console thread may still be writing what it took before `finish`: wait for it.
        let started = std::time::Instant::now();
        let accounted = || {
            let console = String::from_utf8(got.0.lock().unwrap().clone()).unwrap();
            let shown = console.matches("Public message").count() as u64
                + console.matches("After the stall").count() as u64;
            shown + skipped
        };
        while accounted() != 80_001 && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(accounted(), 80_001, "what the console did not show is counted");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn finishing_does_not_wait_for_a_console_that_never_moves() {
        let path = temp_path("frozen.jsonl");
        let _ = std::fs::remove_file(&path);
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let out = Stalled { open: open.clone(), got: Captured::default() };
        let (log, writer) =
            EventLog::start(Console { out: Box::new(out), color: false }, Some(&path)).unwrap();
        for i in 0..5000 {
            log.info("Public message", serde_json::json!({"i": i}));
        }
        let started = std::time::Instant::now();
        writer.finish();
        assert!(started.elapsed() < CONSOLE_GRACE + Duration::from_secs(2));
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content.matches("\"Public message\"").count(), 5000);
        open.store(true, Ordering::Release);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn line_separators_are_escaped_in_the_file_and_on_the_console() {
        let path = temp_path("separators.jsonl");
        let _ = std::fs::remove_file(&path);
        let cap = Captured::default();
        let console = Console { out: Box::new(cap.clone()), color: false };
        let (log, writer) = EventLog::start(console, Some(&path)).unwrap();
        let forged = "hi\u{2028}{\"ts\":\"x\",\"msg\":\"Forged\"}\u{2029}end";
        log.info("Topic set", serde_json::json!({"topic": forged, "text": forged}));
        writer.finish();
        let content = std::fs::read_to_string(&path).unwrap();
        assert!(!content.contains(['\u{2028}', '\u{2029}']), "{content:?}");
        let line = content.lines().next().unwrap();
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["meta"]["topic"], forged, "the escape reads back as the text");
        let console = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
        assert!(!console.contains(['\u{2028}', '\u{2029}']), "{console:?}");
        assert!(console.contains("hi\\u2028{"), "{console}");
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
