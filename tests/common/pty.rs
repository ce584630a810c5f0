//! A program on a real pseudo-terminal (portable-pty) with the screen modelled by
//! vt100: the interactive client (`tchat join`) and the server's console.
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

use super::peer::{BIN, TIMEOUT};

pub const ROWS: u16 = 30;
pub const COLS: u16 = 120;

/// Rows the screen model keeps above the screen, as a terminal's scrollback does.
pub const SCROLLBACK: usize = 1000;

/// What the terminal has seen: the screen model and every raw byte.
pub struct Seen {
    pub parser: vt100::Parser,
    pub raw: Vec<u8>,
    pub closed: bool,
}

/// `tchat join` running on a pseudo-terminal.
pub struct Term {
    pub child: Box<dyn Child + Send + Sync>,
    pub master: Box<dyn MasterPty + Send>,
    pub writer: Box<dyn Write + Send>,
    pub seen: Arc<Mutex<Seen>>,
}

impl Term {
    /// `tchat join ADDR ARGS…` on a terminal of [`ROWS`] × [`COLS`].
    pub fn start(addr: SocketAddr, state: &Path, args: &[&str]) -> Term {
        Term::start_sized(addr, state, args, ROWS, COLS)
    }

    /// [`Term::start`] on a terminal of `rows` × `cols` cells.
    pub fn start_sized(
        addr: SocketAddr,
        state: &Path,
        args: &[&str],
        rows: u16,
        cols: u16,
    ) -> Term {
        let mut full = vec!["join".to_owned(), addr.to_string()];
        full.extend(args.iter().map(|a| a.to_string()));
        Term::spawn(&full, state, rows, cols)
    }

    /// `tchat ARGS…` on a terminal of `rows` × `cols` cells, with `state` as its
    /// XDG_STATE_HOME and HOME.
    pub fn spawn(args: &[String], state: &Path, rows: u16, cols: u16) -> Term {
        Term::spawn_program(BIN, args, state, rows, cols)
    }

    /// `program ARGS…` (a shell that starts tchat, say) as [`Term::spawn`] runs tchat:
    /// the session leader of the terminal, in its foreground process group.
    pub fn spawn_program(
        program: &str,
        args: &[String],
        state: &Path,
        rows: u16,
        cols: u16,
    ) -> Term {
        let pty = native_pty_system()
            .openpty(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 })
            .expect("opening a pty");
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env("XDG_STATE_HOME", state);
        // Known hosts live here: never the real ones.
        cmd.env("XDG_DATA_HOME", state);
        cmd.env("HOME", state);
        cmd.env_remove("NO_COLOR");
        // A server under test makes no default control socket shared by the test run.
        cmd.env_remove("XDG_RUNTIME_DIR");
        cmd.env_remove("RUNTIME_DIRECTORY");
        cmd.cwd(std::env::current_dir().unwrap());
        let child =
            pty.slave.spawn_command(cmd).unwrap_or_else(|e| panic!("spawning {program}: {e}"));
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let writer = pty.master.take_writer().unwrap();
        let seen = Arc::new(Mutex::new(Seen {
            parser: vt100::Parser::new(
                rows.try_into().unwrap(),
                cols.try_into().unwrap(),
                SCROLLBACK,
            ),
            raw: Vec::new(),
            closed: false,
        }));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut seen = sink.lock().unwrap();
                        seen.parser.process(&buf[..n]);
                        seen.raw.extend_from_slice(&buf[..n]);
                    }
                }
            }
            sink.lock().unwrap().closed = true;
        });
        Term { child, master: pty.master, writer, seen }
    }

    pub fn keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    pub fn screen(&self) -> String {
        self.seen.lock().unwrap().parser.screen().contents()
    }

    /// The screen as one string, every row padded to the full width: a line that wrapped
    /// over several rows reads as it was written, however the rows were drawn.
    pub fn flat(&self) -> String {
        let seen = self.seen.lock().unwrap();
        let screen = seen.parser.screen();
        let (rows, cols) = screen.size();
        let mut flat = String::new();
        for row in 0..rows.get() {
            for col in 0..cols.get() {
                let Some(cell) = screen.cell(row, col) else { continue };
                if cell.is_wide_continuation() {
                    continue;
                }
                match cell.contents() {
                    "" => flat.push(' '),
                    text => flat.push_str(text),
                }
            }
        }
        flat
    }

    /// The oldest screenful of the rows scrolled off the top (as far back as the model
    /// keeps), then the screen's own rows.
    pub fn scrollback_and_screen(&self) -> String {
        let mut seen = self.seen.lock().unwrap();
        let screen = seen.parser.screen_mut();
        screen.set_scrollback(SCROLLBACK);
        let (rows, cols) = screen.size();
        let mut all: Vec<String> = screen.rows(0, cols.get()).take(rows.get().into()).collect();
        screen.set_scrollback(0);
        all.extend(screen.rows(0, cols.get()).take(rows.get().into()));
        all.join("\n")
    }

    /// How often `text` is on the screen, wrapped over several rows or not.
    pub fn count(&self, text: &str) -> usize {
        self.flat().matches(text).count()
    }

    /// Resizes the terminal as a window manager does: the screen first, then the size the
    /// kernel reports, which sends the client SIGWINCH. The screen model does not reflow
    /// (as xterm): rows keep their cells, cut at the new width.
    pub fn resize(&self, rows: u16, cols: u16) {
        let mut seen = self.seen.lock().unwrap();
        seen.parser.set_size(rows.try_into().unwrap(), cols.try_into().unwrap());
        self.master
            .resize(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 })
            .expect("resizing the pty");
    }

    /// The row the cursor is on, trailing blanks trimmed, and the cursor column.
    pub fn cursor_row(&self) -> (String, u16) {
        let seen = self.seen.lock().unwrap();
        let screen = seen.parser.screen();
        let (row, col) = screen.cursor_position();
        let text = screen.contents_between(row, 0, row, screen.size().1.get());
        (text.trim_end().to_owned(), col)
    }

    /// Waits until `pred` holds for the screen; panics with the screen after TIMEOUT.
    pub fn wait(&self, what: &str, pred: impl Fn(&Term) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if pred(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; screen:\n{}", self.screen());
    }

    pub fn wait_text(&self, text: &str) {
        self.wait(&format!("{text:?} on screen"), |t| t.flat().contains(text));
    }

    /// Waits until the cursor's row reads `line` and the cursor is at its end (in
    /// columns: a wide character takes two).
    pub fn wait_input(&self, line: &str) {
        use unicode_width::UnicodeWidthStr;
        self.wait(&format!("the input line {line:?}"), |t| {
            let (row, col) = t.cursor_row();
            row == line.trim_end() && usize::from(col) == line.width()
        });
    }

    /// Waits until the screen ends with `text` (prompt and input, possibly wrapped over
    /// several rows) and the cursor is on its last row.
    pub fn wait_typed(&self, text: &str) {
        self.wait(&format!("the typed text {text:?} at the end"), |t| {
            let seen = t.seen.lock().unwrap();
            let screen = seen.parser.screen();
            let (row, _) = screen.cursor_position();
            let (rows, cols) = screen.size();
            let texts: Vec<String> = screen.rows(0, cols.get()).take(rows.get().into()).collect();
            let last = texts.iter().rposition(|r| !r.trim().is_empty());
            drop(seen);
            last == Some(usize::from(row)) && t.flat().trim_end().ends_with(text)
        });
    }

    pub fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let status = match super::poll_exit(TIMEOUT, || self.child.try_wait().unwrap()) {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                panic!("tchat did not exit; screen:\n{}", self.screen());
            }
        };
        // The exit can be seen before the reader thread has taken the last output from
        // the pty (a CI run read the screen with the exit line half there): wait for the
        // reader's end of file, which comes once every copy of the terminal is closed.
        // Bounded: a process spawned elsewhere in the test run in the instant before
        // portable-pty marks the terminal close-on-exec could hold it open.
        let drain = Duration::from_secs(5);
        super::poll_exit(drain, || self.seen.lock().unwrap().closed.then_some(()));
        status
    }

    /// The terminal's local flags (ICANON, ECHO, …) as the pty has them now.
    pub fn local_flags(&self) -> libc::tcflag_t {
        let fd = self.master.as_raw_fd().expect("a unix pty");
        // SAFETY: tcgetattr fills a plain-data termios for a descriptor we own.
        let mut termios = unsafe { std::mem::zeroed::<libc::termios>() };
        assert_eq!(unsafe { libc::tcgetattr(fd, &mut termios) }, 0);
        termios.c_lflag
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
