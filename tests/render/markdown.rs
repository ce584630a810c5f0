//! The command-line reference in Markdown (`docs/reference/cli.md`), converted from the
//! roff of tchat(1), the page that gathers every command's options and the hand-written
//! sections: one source for the man pages and the docs, as uv renders its
//! `docs/reference/cli.md` from its clap definition.
//!
//! The converter knows the requests the renders use and nothing more: `.SH`, `.PP`,
//! `.TP`, `.IP`, `.RS`/`.RE`, `.sp`, `.nf`/`.fi`, the preamble's (`.ie`, `.el`, `.TH`,
//! `.nh`, `.ad`), the font escapes and the few named characters. Anything else fails the
//! render, so a new construct cannot slip into the docs as roff.

/// The reference page for `roff`, the tchat(1) page.
pub fn reference(roff: &str) -> String {
    let mut doc = Document::default();
    doc.out.push_str(
        "<!-- Generated from src/cli.rs and tests/render by \
         `TCHAT_BLESS=1 cargo test --test generated`: edit those, not this file. -->\n\n\
         # tchat command-line reference\n\n\
         Every command and option of `tchat`, as `man tchat` gives them (the same text: \
         both are rendered from the clap definition). The [user's guide](../user-guide.md) \
         and the [operator's manual](../operator-manual.md) explain them at length.\n",
    );
    let mut lines = roff.lines().peekable();
    while let Some(line) = lines.next() {
        match request(line) {
            Some(("ie" | "el" | "TH" | "nh" | "ad", _)) => {}
            Some(("SH", title)) => doc.section(title.trim_matches('"')),
            Some(("PP" | "sp", _)) => doc.paragraph_break(),
            Some(("TP", _)) => {
                let term = lines.next().expect(".TP is followed by its tag");
                doc.term(&inline(term));
            }
            Some(("IP", _)) => doc.bullet(),
            Some(("RS" | "RE", _)) => doc.paragraph_break(),
            Some(("nf", _)) => {
                let block: Vec<String> =
                    lines.by_ref().take_while(|l| *l != ".fi").map(plain).collect();
                doc.code(&block);
            }
            Some((other, _)) => panic!("the reference cannot render the roff request .{other}"),
            None => doc.text(&inline(line)),
        }
    }
    doc.finish()
}

/// `.NAME ARGS` as `(NAME, ARGS)`; `None` for a text line.
fn request(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('.')?;
    Some(rest.split_once(' ').unwrap_or((rest, "")))
}

/// Where the next text goes.
#[derive(Default, PartialEq)]
enum Place {
    /// A paragraph at the top level.
    #[default]
    Top,
    /// The description of a `.TP` term: indented under its list item.
    Term,
    /// A bullet (`.IP`) inside a term's description.
    Bullet,
}

/// The Markdown being written and the paragraph being gathered: roff's wrapped text
/// lines make one Markdown line, so no wrapped line can start a list by accident.
#[derive(Default)]
struct Document {
    out: String,
    paragraph: Vec<String>,
    place: Place,
    /// Whether the current bullet has been started (its `- ` written).
    bullet_open: bool,
}

impl Document {
    fn section(&mut self, title: &str) {
        self.flush();
        self.place = Place::Top;
        self.out.push_str(&format!("\n## {}\n", heading(title)));
    }

    fn term(&mut self, term: &str) {
        self.flush();
        self.place = Place::Term;
        self.out.push_str(&format!("\n- {term}\n"));
    }

    fn bullet(&mut self) {
        self.flush();
        self.place = Place::Bullet;
        self.bullet_open = false;
    }

    fn paragraph_break(&mut self) {
        self.flush();
        if self.place == Place::Bullet {
            self.place = Place::Term;
        }
    }

    fn text(&mut self, text: &str) {
        self.paragraph.push(text.to_owned());
    }

    fn code(&mut self, lines: &[String]) {
        self.flush();
        let indent = self.indent();
        self.out.push_str(&format!("\n{indent}```\n"));
        for line in lines {
            self.out.push_str(&format!("{indent}{line}\n"));
        }
        self.out.push_str(&format!("{indent}```\n"));
    }

    fn indent(&self) -> &'static str {
        match self.place {
            Place::Top => "",
            Place::Term | Place::Bullet => "  ",
        }
    }

    /// Writes the gathered paragraph, if any, as one line.
    fn flush(&mut self) {
        if self.paragraph.is_empty() {
            return;
        }
        let text = self.paragraph.join(" ");
        self.paragraph.clear();
        let text = match text.chars().next() {
            // A paragraph that starts like a list item or a heading must not be one.
            Some('-' | '+' | '#') => format!("\\{text}"),
            _ => text,
        };
        match self.place {
            Place::Bullet if !self.bullet_open => {
                self.bullet_open = true;
                self.out.push_str(&format!("\n  - {text}\n"));
            }
            Place::Bullet => self.out.push_str(&format!("    {text}\n")),
            _ => self.out.push_str(&format!("\n{}{text}\n", self.indent())),
        }
    }

    fn finish(mut self) -> String {
        self.flush();
        self.out
    }
}

/// A section title in sentence case: `TCHAT SERVE OPTIONS` as `tchat serve options`,
/// `EXIT STATUS` as `Exit status`.
fn heading(title: &str) -> String {
    let lower = title.to_lowercase();
    if lower.starts_with("tchat") {
        return lower;
    }
    let mut chars = lower.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A roff text line as Markdown: fonts as emphasis, Markdown's own characters escaped.
fn inline(line: &str) -> String {
    let mut out = String::new();
    let mut font = "";
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            escape_into(&mut out, c);
            continue;
        }
        match chars.next() {
            Some('f') => {
                let next = match chars.next() {
                    Some('B') => "**",
                    Some('I') => "*",
                    _ => "",
                };
                out.push_str(font);
                out.push_str(next);
                font = next;
            }
            Some(c) => named(c, &mut chars).chars().for_each(|c| escape_into(&mut out, c)),
            None => {}
        }
    }
    out.push_str(font);
    out
}

/// A roff line inside `.nf`, as it reads: escapes resolved, nothing else touched.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.next_if(|_| c == '\\')) {
            ('\\', Some('f')) => {
                chars.next();
            }
            ('\\', Some(c)) => out.push_str(named(c, &mut chars)),
            (c, _) => out.push(c),
        }
    }
    out
}

/// The character a roff escape after `\` stands for; `c` is the escape's first char.
fn named(c: char, rest: &mut std::iter::Peekable<std::str::Chars>) -> &'static str {
    let mut take = |n: usize| rest.by_ref().take(n).collect::<String>();
    match c {
        '-' => "-",
        'e' | '\\' => "\\",
        '&' => "",
        ' ' => " ",
        '(' => match take(2).as_str() {
            "aq" => "'",
            "bu" => "•",
            other => panic!("unknown roff character \\({other}"),
        },
        '*' => match take(3).as_str() {
            "(Aq" => "'",
            other => panic!("unknown roff string \\*{other}"),
        },
        other => panic!("unknown roff escape \\{other}"),
    }
}

/// Pushes `c`, backslash-escaped when Markdown would read it as markup.
fn escape_into(out: &mut String, c: char) {
    if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|') {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_list_items_with_their_values_and_possible_values() {
        let roff = ".SH \"TCHAT SERVE OPTIONS\"\n.TP\n\\fB\\-\\-color\\fR \\fI<COLOR>\\fR \
                    [default: auto]\nColor the\nconsole output\n.sp\n\\fIPossible values:\\fR\n\
                    .RS 14\n.IP \\(bu 2\nauto: Color when\nasked\n.IP \\(bu 2\nnever: Never\n.RE\n";
        let md = reference(roff);
        let body = md.split_once("## tchat serve options\n").unwrap().1;
        assert_eq!(
            body,
            "\n- **--color** *\\<COLOR\\>* \\[default: auto\\]\n\n  Color the console output\n\n  \
             *Possible values:*\n\n  - auto: Color when asked\n\n  - never: Never\n"
        );
    }

    #[test]
    fn code_is_kept_verbatim_and_text_never_starts_a_list() {
        let roff = ".SH EXAMPLES\n.PP\n.nf\n{\"ts\":\"2025\\-09\\-26\"}\n.fi\n.PP\n\\-\\-plain \
                    connects\nwithout TLS\n";
        let md = reference(roff);
        let body = md.split_once("## Examples\n").unwrap().1;
        assert_eq!(body, "\n```\n{\"ts\":\"2025-09-26\"}\n```\n\n\\--plain connects without TLS\n");
    }

    #[test]
    #[should_panic(expected = ".B")]
    fn an_unknown_request_fails_the_render() {
        reference(".B bold\n");
    }
}
