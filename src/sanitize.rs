//! Removal of terminal control from untrusted text.
//!
//! Everything a peer sends ends up on somebody's terminal (another client, the server
//! console). A stray ESC, CSI or OSC sequence could repaint, retitle or hide text on
//! that terminal, so the server strips them before fan-out and the client strips them
//! again, once, as it receives them (into [`crate::client::clean::Clean`] values): the
//! client must not trust the server either.

/// Returns `text` with every terminal control removed:
/// - ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ESC \`, DCS/PM/APC/SOS
///   strings, and two-byte `ESC x`) are dropped whole, parameters included;
/// - other C0 controls, DEL and C1 controls (U+0080–U+009F) are dropped; a tab and every
///   [line separator](is_line_separator) become a space, so words stay apart and a chat
///   line stays one line for every reader (a log reader or a JSON parser that splits on
///   U+2028 would otherwise see a forged line);
/// - the whole Bidi_Control set (Unicode PropList.txt: U+061C, U+200E, U+200F,
///   U+202A–U+202E, U+2066–U+2069) is dropped, so a message cannot display reversed text
///   that reads differently from what was sent.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 string introducers (DCS, SOS, OSC, PM, APC) carry a payload up to ST.
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            // C1 CSI: skip its parameters too, not just the introducer.
            '\u{9b}' => skip_csi(&mut chars),
            '\t' => out.push(' '),
            c if is_line_separator(c) => out.push(' '),
            c if is_dropped(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// True when `text` would be changed by [`sanitize`]; lets hot paths skip the copy.
/// Printable ASCII (most lines) is decided by one pass over the bytes, without decoding.
pub fn needs_sanitizing(text: &str) -> bool {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    text.chars().any(|c| c == '\t' || c == '\u{1b}' || is_dropped(c) || is_line_separator(c))
}

/// The line breaks besides CR and LF (which end a line before text gets here): VT, FF,
/// NEL (U+0085), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029), the mandatory
/// breaks of Unicode's line breaking algorithm (UAX #14, classes BK and NL).
pub fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The first [line separator](is_line_separator) in `text`, if any.
pub fn line_separator_in(text: &str) -> Option<char> {
    if text.is_ascii() && !text.bytes().any(|b| b == 0x0b || b == 0x0c) {
        return None;
    }
    text.chars().find(|&c| is_line_separator(c))
}

/// Characters removed on their own (no payload to skip).
fn is_dropped(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || is_bidi_control(c)
}

/// The Bidi_Control property (Unicode PropList.txt): marks, embeddings, overrides and
/// isolates. None of them shows; each can reorder what is around it.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// True when `text` has something a reader can see: it is not made only of white
/// space, controls and [invisible](is_invisible) code points. A line without is empty.
pub fn has_visible(text: &str) -> bool {
    // Any printable ASCII character settles it without decoding.
    if text.bytes().any(|b| b.is_ascii_graphic()) {
        return true;
    }
    text.chars().any(|c| !(c.is_whitespace() || c.is_control() || is_invisible(c)))
}

/// True for a code point that shows nothing by itself: Default_Ignorable_Code_Point
/// (which holds the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0, the zero-width
/// characters, U+FEFF, variation selectors and tags), plus U+2800 BRAILLE PATTERN
/// BLANK, a symbol that renders as an empty cell.
pub fn is_invisible(c: char) -> bool {
    c == '\u{2800}' || DEFAULT_IGNORABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Default_Ignorable_Code_Point, from Unicode's DerivedCoreProperties.txt. Written out
/// because the crates that hold it (unicode-security) keep their table private; the set
/// is small and stable (the standard reserves these ranges for it).
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00ad}', '\u{00ad}'),
    ('\u{034f}', '\u{034f}'),
    ('\u{061c}', '\u{061c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fff8}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After an ESC: consume the rest of the sequence it introduces.
fn skip_escape(chars: &mut Chars) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // nF sequences (ESC, intermediates 0x20–0x2F, final byte): e.g. ESC ( B.
        Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
            while let Some(&c) = chars.peek() {
                chars.next();
                if !('\u{20}'..='\u{2f}').contains(&c) {
                    break;
                }
            }
        }
        // Two-byte sequences (ESC 7, ESC c, …) or a lone ESC at the end.
        _ => {}
    }
}

/// CSI: parameter and intermediate bytes (0x20–0x3F), then one final byte (0x40–0x7E).
/// Stops early, without eating it, at anything that cannot be part of a CSI sequence.
fn skip_csi(chars: &mut Chars) {
    while let Some(&c) = chars.peek() {
        if ('\u{20}'..='\u{3f}').contains(&c) {
            chars.next();
        } else {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                chars.next();
            }
            return;
        }
    }
}

/// OSC/DCS/APC/PM/SOS: payload up to BEL, ST (`ESC \`) or C1 ST (U+009C).
fn skip_string(chars: &mut Chars) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client sanitizes what any server sends with this, so it never shows a raw
    /// separator either, whatever the server did with it.
    #[test]
    fn line_separators_become_spaces() {
        let text = "a\u{2028}b\u{2029}c\u{85}d\u{b}e\u{c}f";
        assert!(needs_sanitizing(text));
        assert_eq!(sanitize(text), "a b c d e f");
        assert_eq!(line_separator_in(text), Some('\u{2028}'));
        assert_eq!(line_separator_in("x\u{c}"), Some('\u{c}'));
        assert_eq!(line_separator_in("plain, and ünïcode"), None);
    }

    #[test]
    fn plain_text_is_unchanged() {
        for s in ["hello", "héllo wörld ✓", "日本語", "a [b] {c} | ^", ""] {
            assert_eq!(sanitize(s), s);
            assert!(!needs_sanitizing(s));
        }
    }

    #[test]
    fn csi_sequences_are_removed_with_their_parameters() {
        assert_eq!(sanitize("\x1b[31mred\x1b[0m"), "red");
        assert_eq!(sanitize("a\x1b[2J\x1b[Hb"), "ab");
        assert_eq!(sanitize("x\x1b[?25ly"), "xy");
        assert_eq!(sanitize("\u{9b}31mred"), "red");
    }

    #[test]
    fn osc_title_changes_are_removed() {
        assert_eq!(sanitize("\x1b]0;pwned\x07hi"), "hi");
        assert_eq!(sanitize("\x1b]2;pwned\x1b\\hi"), "hi");
        assert_eq!(sanitize("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"), "link");
        assert_eq!(sanitize("\u{9d}0;t\u{9c}ok"), "ok");
    }

    #[test]
    fn other_controls_are_removed() {
        assert_eq!(sanitize("bell\x07 back\x08space\rcr\0nul\x7f"), "bell backspacecrnul");
        assert_eq!(sanitize("tab\there"), "tab here");
        // NEL is a line break: a space, as U+2028; other C1 controls go.
        assert_eq!(sanitize("c1\u{85}\u{8d}x"), "c1 x");
        assert_eq!(sanitize("\x1b7saved\x1b8"), "saved");
        assert_eq!(sanitize("\x1b(Bascii"), "ascii");
        assert_eq!(sanitize("trailing\x1b"), "trailing");
    }

    #[test]
    fn bidi_overrides_are_removed() {
        assert_eq!(sanitize("abc\u{202e}fed"), "abcfed");
        assert_eq!(sanitize("\u{2066}x\u{2069}"), "x");
    }

    #[test]
    fn the_whole_bidi_control_set_is_removed() {
        let all: String = ['\u{061c}', '\u{200e}', '\u{200f}']
            .into_iter()
            .chain('\u{202a}'..='\u{202e}')
            .chain('\u{2066}'..='\u{2069}')
            .collect();
        assert_eq!(all.chars().count(), 12);
        assert!(needs_sanitizing(&format!("a{all}b")));
        assert_eq!(sanitize(&format!("a{all}b")), "ab");
        // U+061C ARABIC LETTER MARK was kept while U+200E/U+200F were not.
        assert_eq!(sanitize("\u{61c}\u{627}"), "\u{627}");
    }

    #[test]
    fn ascii_controls_are_found_on_the_fast_path() {
        assert!(needs_sanitizing("abc\x7f"));
        assert!(needs_sanitizing("\x00"));
        assert!(needs_sanitizing("tab\there"));
        assert!(!needs_sanitizing("~ plain ascii !"));
    }

    #[test]
    fn lines_of_invisible_characters_have_nothing_visible() {
        for blank in [
            "",
            "   ",
            "\u{200b}",
            "\u{3164}",
            "\u{feff}",
            "\u{2800}",
            "\u{115f}\u{1160}\u{ffa0}",
            " \u{200b} \u{3164}\u{3000}\u{a0}\u{2060}\u{e0041}\u{fe0f}\u{ad}",
        ] {
            assert!(!has_visible(blank), "{blank:?}");
        }
        for seen in ["a", " .", "\u{200b}x", "é", "名", "\u{3164}\u{3131}", "👍\u{fe0f}"] {
            assert!(has_visible(seen), "{seen:?}");
        }
    }

    #[test]
    fn result_never_contains_controls() {
        let nasty: String = (0u32..0x200).filter_map(char::from_u32).collect();
        let clean = sanitize(&nasty);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert!(!needs_sanitizing(&clean));
    }
}
