//! `/clear`: the screen is cleared and the prompt drawn at the top, as Ctrl-L does, but
//! what the screen showed is first scrolled into the terminal's scrollback, so no
//! received line is lost: the terminal's scrollback is this client's only history of the
//! conversation (irssi's `/clear` likewise scrolls the window clean and keeps its
//! scrollback; an erase in place, which Ctrl-L does, drops the lines in xterm and VTE).
//!
//! Done by the editor thread between two lines, when it owns the terminal; keys typed
//! meanwhile wait in the terminal and show in the next prompt.

/// The command, as typed (in any case).
pub const CLEAR: &str = "/clear";

/// Whether the entry `line` is `/clear` alone.
pub fn is_clear(line: &str) -> bool {
    line.trim().eq_ignore_ascii_case(CLEAR)
}

/// What to write, with the cursor at the start of an empty row and the terminal in its
/// cooked mode (a line feed starts a new row), to clear a terminal of `rows` rows
/// keeping what it showed: `rows - 1` line feeds scroll every row above the cursor off
/// the screen into the scrollback, then the cursor goes home and the rest is erased.
pub fn keeping_scrollback(rows: u16) -> String {
    let mut out = "\n".repeat(usize::from(rows.saturating_sub(1)));
    out.push_str("\x1b[H\x1b[J");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_is_the_command_alone_in_any_case() {
        assert!(is_clear("/clear"));
        assert!(is_clear(" /CLEAR "));
        assert!(!is_clear("/clear now"));
        assert!(!is_clear("//clear"));
        assert!(!is_clear("/clear\nhello"));
    }

    /// In a terminal model with a scrollback: the rows shown before go to the
    /// scrollback, the screen is blank with the cursor home.
    #[test]
    fn the_rows_shown_go_to_the_scrollback() {
        let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let mut term = vt100::Parser::new(size(5), size(20), 100);
        term.process(b"one\r\ntwo\r\nthree\r\n");
        term.process(keeping_scrollback(5).replace('\n', "\r\n").as_bytes());
        assert_eq!(term.screen().contents().trim(), "");
        assert_eq!(term.screen().cursor_position(), (0, 0));
        term.screen_mut().set_scrollback(5);
        let back = term.screen().contents();
        assert!(back.contains("one") && back.contains("three"), "{back:?}");
    }
}
