//! The committed man pages, shell completions and command-line reference
//! (`docs/reference/cli.md`) match a fresh render of the clap definition, the
//! completions load in the real shells, and the man pages pass the linters.
//!
//! `TCHAT_BLESS=1 cargo test --test generated` ([`render::REGENERATE`]) rewrites
//! every generated file that differs, and deletes files in `man/` or `completions/` that
//! are no longer generated, before comparing.
//!
//! The shell and lint tests use a fresh render written under the target directory, not
//! the committed files, so they never race with a bless run; the first test ties the
//! two together. A tool that is missing makes its test print a notice and pass on a
//! developer machine, and fail under CI (`CI` set), where `.ci/packages` installs it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use render::{GeneratedFile, Page};

mod common;
mod render;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var_os("TCHAT_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn committed_files_match_a_fresh_render() {
    let files = render::generated_files();
    if blessing() {
        for file in &files {
            let path = repo_root().join(&file.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let current = std::fs::read(&path).ok();
            if current.as_deref() != Some(&file.contents[..]) {
                std::fs::write(&path, &file.contents).unwrap();
                notice(&format!("wrote {}", file.path));
            }
        }
    }

    let mut problems = Vec::new();
    for file in &files {
        match std::fs::read(repo_root().join(&file.path)) {
            Ok(committed) if committed == file.contents => {}
            Ok(committed) => problems.push(format!(
                "{} is stale:\n{}",
                file.path,
                first_difference(&committed, &file.contents)
            )),
            Err(e) => problems.push(format!("{} cannot be read: {e}", file.path)),
        }
    }
    // A file left over from an older render (a page or shell that is gone) would be
    // shipped by a packager all the same.
    let expected: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for dir in [render::MAN_DIR, render::COMPLETIONS_DIR] {
        let Ok(entries) = std::fs::read_dir(repo_root().join(dir)) else { continue };
        for entry in entries {
            let path = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            if expected.contains(path.as_str()) {
                continue;
            }
            if blessing() {
                std::fs::remove_file(repo_root().join(&path)).unwrap();
                notice(&format!("removed {path}"));
            } else {
                problems.push(format!("{path} is not generated any more; delete it"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "\n{}\n\nThe man pages, completions and docs/reference/cli.md are generated from src/cli.rs \
         and tests/render. \
         Regenerate them with:\n\n    {}\n\nand commit the result.\n",
        problems.join("\n\n"),
        render::REGENERATE
    );
}

/// The first differing line with a little context, as a small unified-style excerpt.
fn first_difference(committed: &[u8], fresh: &[u8]) -> String {
    let old = String::from_utf8_lossy(committed);
    let new = String::from_utf8_lossy(fresh);
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let first = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    // Lines in common at the end, not overlapping the common start.
    let common_end = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| a == b)
        .count()
        .min(old.len().min(new.len()) - first);
    let from = first.saturating_sub(2);
    let mut out = format!("@@ line {} @@\n", first + 1);
    for line in &old[from..first] {
        out.push_str(&format!("  {line}\n"));
    }
    const MAX: usize = 12;
    let removed = &old[first..old.len() - common_end];
    let added = &new[first..new.len() - common_end];
    for line in removed.iter().take(MAX) {
        out.push_str(&format!("- {line}\n"));
    }
    for line in added.iter().take(MAX) {
        out.push_str(&format!("+ {line}\n"));
    }
    if removed.len() > MAX || added.len() > MAX {
        out.push_str(&format!(
            "  ... ({} lines removed, {} added in all)\n",
            removed.len(),
            added.len()
        ));
    }
    if removed.is_empty() && added.is_empty() {
        out.push_str("  (the files differ in line endings or the final newline)\n");
    }
    out
}

/// Prints a line that must be seen: straight to stderr, since the test harness captures
/// `eprintln!` of passing tests.
fn notice(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A fresh render of `file`, written under the target directory for a tool to read.
fn rendered(file_name: &str) -> PathBuf {
    let file = render::generated_files()
        .into_iter()
        .find(|f: &GeneratedFile| f.path.ends_with(&format!("/{file_name}")))
        .unwrap_or_else(|| panic!("{file_name} is not generated"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file_name);
    // Tests run in parallel and render the same files: write aside, then rename, so no
    // test ever reads a half-written file.
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{file_name}.{}.{n}", std::process::id()));
    std::fs::write(&temp, &file.contents).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    path
}

/// Whether `tool` can run: [`common::have_tool`], the one rule for tools from
/// `.ci/packages`.
fn have(tool: &str, package: &str) -> bool {
    common::have_tool(tool, package)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(out: &Output) -> BTreeSet<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

fn assert_offers(shell: &str, what: &str, offered: &BTreeSet<String>, expected: &[&str]) {
    let missing: Vec<_> = expected.iter().filter(|e| !offered.contains(**e)).collect();
    assert!(
        missing.is_empty(),
        "{shell}: `{what}<Tab>` does not offer {missing:?}; it offers {offered:?}"
    );
}

const SERVE_OPTIONS: &[&str] = &[
    "--host",
    "--port",
    "--save",
    "--color",
    "--max-line",
    "--max-clients",
    "--max-per-ip",
    "--max-per-ip-exempt",
    "--rate",
    "--burst",
    "--send-queue",
    "--announce-limit",
    "--name",
    "--help",
];

/// Asks bash's completion function what it offers for the words typed so far (the last
/// one being completed), the way bash itself calls it on Tab.
fn bash_complete(script: &Path, words: &[&str]) -> BTreeSet<String> {
    let program = r#"
        set -e
        source "$1"; shift
        COMP_WORDS=("$@")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE="${COMP_WORDS[*]}"
        COMP_POINT=${#COMP_LINE}
        complete -p tchat >/dev/null
        _tchat tchat "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = run(Command::new("bash")
        .args(["--norc", "--noprofile", "-c", program, "bash"])
        .arg(script)
        .args(words));
    lines(&out)
}

#[test]
fn bash_completes_subcommands_and_options() {
    if !have("bash", "bash") {
        return;
    }
    let script = rendered("tchat.bash");
    assert_offers("bash", "tchat ", &bash_complete(&script, &["tchat", ""]), &["serve", "join"]);
    assert_offers(
        "bash",
        "tchat serve --",
        &bash_complete(&script, &["tchat", "serve", "--"]),
        SERVE_OPTIONS,
    );
    assert_offers(
        "bash",
        "tchat join --",
        &bash_complete(&script, &["tchat", "join", "--"]),
        &["--port", "--nick", "--color", "--no-history"],
    );
    assert_offers(
        "bash",
        "tchat serve --color ",
        &bash_complete(&script, &["tchat", "serve", "--color", ""]),
        &["auto", "always", "never"],
    );
}

fn fish_complete(script: &Path, line: &str) -> BTreeSet<String> {
    let out = run(Command::new("fish")
        .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
        .arg(script)
        .arg(line));
    lines(&out)
}

#[test]
fn fish_completes_subcommands_and_options() {
    if !have("fish", "fish") {
        return;
    }
    let script = rendered("tchat.fish");
    assert_offers("fish", "tchat ", &fish_complete(&script, "tchat "), &["serve", "join"]);
    assert_offers(
        "fish",
        "tchat serve --",
        &fish_complete(&script, "tchat serve --"),
        SERVE_OPTIONS,
    );
    assert_offers(
        "fish",
        "tchat serve --color ",
        &fish_complete(&script, "tchat serve --color "),
        &["auto", "always", "never"],
    );
}

/// Loads the rendered elvish script in a real elvish and calls the completer it
/// installs, the way the line editor does on Tab. `elvish -c` has no line editor, so
/// its `edit:` namespace is stood in for by the two names the script uses: the
/// `completion:arg-completer` map it fills and `complex-candidate`, which here prints
/// the candidate's text.
const ELVISH_COMPLETE: &str = r#"
var completion = (ns [&arg-completer=[&]])
var edit = (ns [&completion:=$completion &complex-candidate~={|text &display=''| echo $text }])
eval &ns=(ns [&edit:=$edit]) (slurp < $args[0])
$completion[arg-completer][tchat] (all $args[1..])
"#;

fn elvish_complete(script: &Path, words: &[&str]) -> BTreeSet<String> {
    let out =
        run(Command::new("elvish").args(["-norc", "-c", ELVISH_COMPLETE]).arg(script).args(words));
    lines(&out)
}

#[test]
fn elvish_completes_subcommands_and_options() {
    if !have("elvish", "elvish") {
        return;
    }
    let script = rendered("tchat.elv");
    assert_offers(
        "elvish",
        "tchat ",
        &elvish_complete(&script, &["tchat", ""]),
        &["serve", "join"],
    );
    assert_offers(
        "elvish",
        "tchat serve --",
        &elvish_complete(&script, &["tchat", "serve", "--"]),
        SERVE_OPTIONS,
    );
    assert_offers(
        "elvish",
        "tchat join --",
        &elvish_complete(&script, &["tchat", "join", "--"]),
        &["--port", "--nick", "--color", "--no-history"],
    );
}

/// Drives a real interactive zsh in a pseudo-terminal (zsh's own zpty module): loads
/// the completion system with the rendered `_tchat` on its fpath, types LINE and Tab,
/// and records every match the completion functions add, via a wrapper around
/// `compadd`. A hook after completion writes a marker, which the loop waits for.
const ZSH_CAPTURE: &str = r#"
dir=$1 out=$2 line=$3
zmodload zsh/zpty || exit 3
: > $out
zpty z zsh -f -i
zpty -w z "PROMPT=; fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits; builtin compadd -A __hits "$@"
  print -rl -- $__hits >> '${(q)out}'; builtin compadd "$@"; }'
zpty -w z "__done() { print -r -- __DONE__ >> ${(q)out} }; comppostfuncs=(__done)"
zpty -w z "bindkey '^I' complete-word"
zpty -w -n z "$line"$'\t'
for i in {1..300}; do
  grep -q __DONE__ $out && break
  zpty -r -t z junk; sleep 0.1
done
zpty -d z
grep -q __DONE__ $out || { print -u2 "zsh completion did not finish"; exit 4 }
grep -v __DONE__ $out
"#;

fn zsh_complete(script: &Path, line: &str) -> BTreeSet<String> {
    let out_file = script.with_file_name(format!("zsh-{}.out", line.replace([' ', '-'], "_")));
    let out = run(Command::new("zsh")
        .args(["-f", "-c", ZSH_CAPTURE, "zsh"])
        .arg(script.parent().unwrap())
        .arg(&out_file)
        .arg(line)
        .env("TERM", "xterm-256color"));
    lines(&out)
}

#[test]
fn zsh_completes_subcommands_and_options() {
    if !have("zsh", "zsh") {
        return;
    }
    let script = rendered("_tchat");
    assert_offers("zsh", "tchat ", &zsh_complete(&script, "tchat "), &["serve", "join"]);
    assert_offers("zsh", "tchat serve --", &zsh_complete(&script, "tchat serve --"), SERVE_OPTIONS);
    assert_offers(
        "zsh",
        "tchat serve --color ",
        &zsh_complete(&script, "tchat serve --color "),
        &["auto", "always", "never"],
    );
}

fn man_pages() -> Vec<PathBuf> {
    Page::ALL.iter().map(|p| rendered(&format!("{}.1", p.name()))).collect()
}

#[test]
fn man_pages_pass_mandoc_lint() {
    if !have("mandoc", "mandoc") {
        return;
    }
    for page in man_pages() {
        let out = Command::new("mandoc").args(["-T", "lint"]).arg(&page).output().unwrap();
        // The date is left empty on purpose: a render must not depend on the day it
        // was made, or the staleness check would fail every morning.
        let complaints: Vec<_> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .filter(|l| !l.contains("missing date"))
            .map(str::to_owned)
            .collect();
        assert!(
            complaints.is_empty(),
            "mandoc -T lint {}:\n{}",
            page.display(),
            complaints.join("\n")
        );
    }
}

#[test]
fn man_pages_render_without_groff_warnings() {
    if !have("groff", "groff-base") {
        return;
    }
    for page in man_pages() {
        let out = run(Command::new("groff").args(["-ww", "-z", "-man"]).arg(&page));
        assert!(
            out.stderr.is_empty(),
            "groff -ww -z -man {}:\n{}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn man_pages_render_as_text_with_every_section() {
    if !have("groff", "groff-base") {
        return;
    }
    let sections = [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "FILES",
        "ENVIRONMENT",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ];
    for page in man_pages() {
        let out = run(Command::new("groff")
            .args(["-man", "-T", "utf8", "-P", "-cbou", "-rLL=80n"])
            .arg(&page));
        let text = String::from_utf8_lossy(&out.stdout);
        for section in sections {
            assert!(
                text.lines().any(|l| l == section),
                "{} has no {section} section:\n{text}",
                page.display()
            );
        }
        assert!(text.contains("[default: "), "{} shows no defaults", page.display());
    }
}

/// Each subcommand page's SYNOPSIS shows what every option takes (`[-p|--port PORT]`,
/// not `[--port]`), the option and its value on one line, taken from the same clap
/// definition as `--help`.
#[test]
fn man_synopses_show_each_option_with_its_value() {
    use clap::CommandFactory;
    if !have("groff", "groff-base") {
        return;
    }
    let mut root = tchat::cli::Cli::command();
    root.build();
    for page in Page::ALL {
        let Some(name) = page.subcommand() else { continue };
        let file = rendered(&format!("{}.1", page.name()));
        let out = run(Command::new("groff")
            .args(["-man", "-T", "utf8", "-P", "-cbou", "-rLL=80n"])
            .arg(&file));
        let text = String::from_utf8_lossy(&out.stdout);
        let synopsis: Vec<&str> = (text.lines().skip_while(|l| *l != "SYNOPSIS").skip(1))
            .take_while(|l| !l.is_empty())
            .collect();
        let sub = root.find_subcommand(name).unwrap();
        let mut checked = 0;
        // Hidden options (kept only so that old command lines still start) are not shown.
        let shown = sub.get_arguments().filter(|a| !a.is_hide_set());
        for arg in shown.filter(|a| a.get_num_args().unwrap().takes_values()) {
            let Some(long) = arg.get_long() else { continue };
            let value = arg.get_value_names().unwrap().join(" ");
            let shown = format!("--{long} {value}]");
            assert!(
                synopsis.iter().any(|l| l.contains(&shown)),
                "{} SYNOPSIS lacks {shown:?}:\n{}",
                file.display(),
                synopsis.join("\n")
            );
            checked += 1;
        }
        assert!(checked > 0, "{name} has no option with a value");
    }
}
