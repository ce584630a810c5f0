//! Terminal geometry: how many rows a prompt and the line typed after it take on a
//! terminal so many columns wide, measured in display columns (a CJK character or most
//! emoji take two, a combining mark none), not in characters.
//!
//! The editor erases the line it just accepted (the server's echo replaces it), so it
//! must erase exactly the rows rustyline drew it on: fewer leave a stale copy, more
//! erase messages above it.

use rustyline::GraphemeClusterMode;
use unicode_segmentation::UnicodeSegmentation;

/// The terminal as rustyline lays text out on it.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Terminal width in columns.
    pub cols: u16,
    /// Columns between tab stops (rustyline's `Config::tab_stop`, 8 by default).
    pub tab_stop: u16,
    /// How wide rustyline takes a grapheme cluster to be (its `Config::grapheme_cluster_mode`,
    /// guessed from `TERM_PROGRAM`/`TERM`); widths come from the `unicode-width` crate.
    pub mode: GraphemeClusterMode,
}

/// rustyline's default tab stop, which the client does not change.
const TAB_STOP: u16 = 8;

/// The width rustyline assumes when the terminal reports none (`get_win_size`).
const DEFAULT_COLS: u16 = 80;

/// The width of the terminal on standard output now, as rustyline reads it (80 when it
/// reports none).
pub fn terminal_cols() -> u16 {
    match terminal_size::terminal_size_of(std::io::stdout()) {
        Some((w, _)) if w.0 > 0 => w.0,
        _ => DEFAULT_COLS,
    }
}

impl Geometry {
    /// The terminal on standard output now, as the client's line editor lays text out.
    pub fn now() -> Geometry {
        Geometry::at(terminal_cols())
    }

    /// A terminal `cols` wide, as the client's line editor lays text out (rustyline's
    /// default tab stop, the grapheme widths it picks from the environment).
    pub fn at(cols: u16) -> Geometry {
        Geometry { cols, tab_stop: TAB_STOP, mode: GraphemeClusterMode::from_env() }
    }

    /// Rows that `text` (prompt and line) takes when written from column 0: at least 1.
    ///
    /// This is rustyline 19's own rule (`calculate_position` in `src/tty/unix.rs`), which
    /// decides where it draws: per grapheme cluster; a cluster that would cross the right
    /// edge starts the next row (a wide character is never split); `\n` starts a new row;
    /// a tab runs to the next tab stop; escape sequences take no room; a text that ends
    /// exactly at the right edge is followed by an empty row (rustyline moves the cursor
    /// there).
    pub fn rows(&self, text: &str) -> u16 {
        let (row, col) = self.walk(text, 0, |_| {});
        let row = if col == self.cols.max(1) { row.saturating_add(1) } else { row };
        row.saturating_add(1)
    }

    /// `text` written from column `col` with a hard row break (`\r\n`) wherever
    /// rustyline lets the terminal wrap it (see [`Geometry::rows`] for the rule), and the
    /// column it ends at (the width itself when it ends at the right edge).
    ///
    /// Drawn so, a wrapped input line is rows of their own to a terminal that re-wraps
    /// its rows on a resize (tmux, VTE, kitty, Alacritty): they are not joined when the
    /// window widens, so they stay as many as rustyline counts when it clears them.
    pub fn hard_wrap(&self, text: &str, col: u16) -> (String, u16) {
        let mut out = String::with_capacity(text.len() + 8);
        let mut copied = 0;
        let (_, end) = self.walk(text, col, |at| {
            out.push_str(&text[copied..at]);
            out.push_str("\r\n");
            copied = at;
        });
        out.push_str(&text[copied..]);
        (out, end)
    }

    /// Lays `text` out from column `col` of row 0 as rustyline does, calling `wrap` with
    /// the byte index of each grapheme cluster that goes to the next row because it would
    /// cross the right edge. Returns the row and column where `text` ends.
    fn walk(&self, text: &str, col: u16, mut wrap: impl FnMut(usize)) -> (u16, u16) {
        let cols = self.cols.max(1);
        let tab_stop = self.tab_stop.max(1);
        let (mut row, mut col) = (0u16, col);
        let mut escape = Escape::None;
        for (at, cluster) in text.grapheme_indices(true) {
            if cluster == "\n" {
                (row, col) = (row.saturating_add(1), 0);
                continue;
            }
            let width = if cluster == "\t" {
                tab_stop - col % tab_stop
            } else {
                escape.width(cluster, self.mode)
            };
            col = col.saturating_add(width);
            if col > cols {
                wrap(at);
                (row, col) = (row.saturating_add(1), width);
            }
        }
        (row, col)
    }
}

/// `prompt` (`[nick #room] `) in exactly `cols` columns as `mode` measures them:
/// padded with spaces, or cut inside the brackets with `…`. For a prompt that changed
/// while a line is edited: rustyline measured the old one once for the whole line.
pub fn fit(prompt: &str, cols: u16, mode: GraphemeClusterMode) -> String {
    let width = mode.width(prompt);
    if width <= cols {
        return format!("{prompt}{}", " ".repeat((cols - width).into()));
    }
    let tail = if prompt.ends_with("] ") { "…] " } else { "…" };
    let room = cols.saturating_sub(mode.width(tail));
    let mut out = String::new();
    for cluster in prompt.graphemes(true) {
        if mode.width(&out) + mode.width(cluster) > room {
            break;
        }
        out.push_str(cluster);
    }
    if cols >= mode.width(tail) {
        out.push_str(tail);
    }
    // A wide character that did not fit leaves a column: pad it.
    let short = cols.saturating_sub(mode.width(&out));
    out + &" ".repeat(short.into())
}

/// Where rustyline is within an escape sequence (`ESC x` or `CSI digits;…`), whose
/// characters take no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Started,
    /// After `ESC [`, in the parameters.
    Csi,
}

impl Escape {
    fn width(&mut self, cluster: &str, mode: GraphemeClusterMode) -> u16 {
        match *self {
            Escape::Started => {
                *self = if cluster == "[" { Escape::Csi } else { Escape::None };
                0
            }
            Escape::Csi => {
                if !(cluster == ";" || cluster.starts_with(|c: char| c.is_ascii_digit())) {
                    *self = Escape::None;
                }
                0
            }
            Escape::None if cluster == "\x1b" => {
                *self = Escape::Started;
                0
            }
            Escape::None => mode.width(cluster),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cols: u16) -> Geometry {
        Geometry { cols, tab_stop: 8, mode: GraphemeClusterMode::WcWidth }
    }

    #[test]
    fn rows_follow_display_columns_not_characters() {
        assert_eq!(at(80).rows(""), 1);
        assert_eq!(at(80).rows("[alice] hello"), 1);
        // 79 columns fit; 80 end at the edge, so the cursor is on the next row.
        assert_eq!(at(80).rows(&"x".repeat(79)), 1);
        assert_eq!(at(80).rows(&"x".repeat(80)), 2);
        assert_eq!(at(80).rows(&"x".repeat(81)), 2);
        assert_eq!(at(80).rows(&"x".repeat(158)), 2);
        assert_eq!(at(80).rows(&"x".repeat(238)), 3);
        // 32 wide characters in brackets take 67 columns though they are 35 characters.
        let prompt = format!("[{}] ", "名".repeat(32));
        assert_eq!(at(80).rows(&format!("{prompt}{}", "y".repeat(12))), 1);
        assert_eq!(at(80).rows(&format!("{prompt}{}", "y".repeat(20))), 2);
        // A combining mark takes no column.
        assert_eq!(at(10).rows(&"e\u{301}".repeat(9)), 1);
    }

    #[test]
    fn a_prompt_that_changed_keeps_the_columns_of_the_old_one() {
        let mode = GraphemeClusterMode::WcWidth;
        assert_eq!(fit("[al #lobby] ", 15, mode), "[al #lobby]    ");
        assert_eq!(fit("[guest2 #lobby] ", 15, mode), "[guest2 #lob…] ");
        assert_eq!(fit("[名前 #lobby] ", 10, mode), "[名前 #…] ");
        assert_eq!(fit("[名前] ", 5, mode), "[…]  ");
        for cols in 0..20 {
            assert_eq!(mode.width(&fit("[someone #room] ", cols, mode)), cols, "{cols}");
        }
    }

    #[test]
    fn a_wide_character_is_never_split_across_rows() {
        // 9 columns, then a wide character that does not fit in the 10th: it starts row 2.
        assert_eq!(at(10).rows(&format!("{}名", "x".repeat(9))), 2);
        assert_eq!(at(10).rows(&"名".repeat(5)), 2);
        assert_eq!(at(10).rows(&format!("{}名", "x".repeat(7))), 1);
    }

    #[test]
    fn hard_breaks_go_where_rustyline_starts_a_row() {
        // A prompt of 13 columns, then a line: rows of 20 columns.
        let (prompt, end) = at(20).hard_wrap("[ana #lobby] ", 0);
        assert_eq!((prompt.as_str(), end), ("[ana #lobby] ", 13));
        let (line, end) = at(20).hard_wrap("words typed at length", end);
        assert_eq!((line.as_str(), end), ("words t\r\nyped at length", 14));
        // Ending at the edge: no break (rustyline moves down itself); the next text
        // starts with one.
        assert_eq!(at(10).hard_wrap("0123456789", 0), ("0123456789".to_owned(), 10));
        assert_eq!(at(10).hard_wrap("ab", 10), ("\r\nab".to_owned(), 2));
        // A wide character that does not fit starts the next row; a combining mark
        // stays with its letter; a prompt wider than the terminal is broken too.
        assert_eq!(at(10).hard_wrap("xxxxxxxxx名", 0).0, "xxxxxxxxx\r\n名");
        assert_eq!(at(4).hard_wrap("abcde\u{301}f", 0).0, "abcd\r\ne\u{301}f");
        assert_eq!(at(5).hard_wrap("[alice #lobby] ", 0).0, "[alic\r\ne #lo\r\nbby] ");
        // Escape sequences take no room; a typed newline is a row of its own already.
        assert_eq!(at(3).hard_wrap("\x1b[1mabc\x1b[0md", 0).0, "\x1b[1mabc\x1b[0m\r\nd");
        assert_eq!(at(3).hard_wrap("ab\ncdef", 0).0, "ab\ncde\r\nf");
        // As many rows as `rows` counts, whatever the width.
        let text = "[ana #lobby] words typed at length, more than one row can hold";
        for cols in 1..70 {
            let (shown, _) = at(cols).hard_wrap(text, 0);
            let breaks = u16::try_from(shown.matches("\r\n").count()).unwrap();
            let edge = u16::from(text.len().is_multiple_of(usize::from(cols)));
            assert_eq!(breaks + 1 + edge, at(cols).rows(text), "{cols} columns");
        }
    }

    #[test]
    fn newlines_tabs_and_escapes_are_laid_out_as_rustyline_does() {
        assert_eq!(at(80).rows("a\nb\nc"), 3);
        assert_eq!(at(10).rows("\t\tx"), 2); // two tabs end at the edge, x wraps
        assert_eq!(at(10).rows("\x1b[1;31mabc\x1b[0m"), 1);
        assert_eq!(at(1).rows("名"), 2);
        assert_eq!(at(0).rows("x"), 2);
    }
}
