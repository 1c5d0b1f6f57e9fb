//! Shell completion, tested in the shells themselves: each script is installed with the line
//! that `completions --help` gives, into a new home directory, and the shell is asked what a
//! Tab offers. bash through bash-completion's loader, zsh in a pseudo-terminal (`zpty`) with
//! `compinit` from the `.zshrc` line the help gives, fish with `complete -C`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;

/// A new home directory with two profiles in this tool's profile file, and the binary's
/// directory first on `PATH` (the scripts call `genesys-auth` back by name).
struct Home {
    dir: tempfile::TempDir,
    path_var: String,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let profiles = dir.path().join(".config/genesys-auth");
        std::fs::create_dir_all(&profiles).unwrap();
        std::fs::write(
            profiles.join("config.toml"),
            "[profiles.prod]\nclient_id = \"p\"\n\n[profiles.staging]\nclient_id = \"s\"\n",
        )
        .unwrap();
        let bin = assert_cmd::cargo::cargo_bin("genesys-auth");
        let bin_dir = bin.parent().expect("the binary's directory");
        Home {
            dir,
            path_var: format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display()),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", self.path())
            .env("PATH", &self.path_var)
            .env("TERM", "xterm")
            .current_dir(self.path())
            .timeout(Duration::from_secs(60));
        c
    }

    /// Runs the install line that `completions --help` gives for this shell.
    fn install(&self, shell: &str) {
        let line = install_line(shell);
        let out = self.cmd("sh").args(["-c", &line]).output().unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn help() -> String {
    let out = Command::cargo_bin("genesys-auth")
        .unwrap()
        .args(["completions", "--help"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines under `  SHELL:` in `completions --help`.
fn install_line(shell: &str) -> String {
    let help = help();
    let header = format!("  {shell}:");
    let block: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    assert!(!block.is_empty(), "no install lines for {shell} in: {help}");
    block.join("\n")
}

fn lines(out: &std::process::Output) -> BTreeSet<String> {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// What each shell must offer for each command line, and must not.
const CASES: &[(&str, &[&str], &[&str])] = &[
    ("genesys-auth token --he", &["--header", "--help"], &[]),
    ("genesys-auth api --pa", &["--paginate"], &[]),
    ("genesys-auth ver", &["verify"], &["token"]),
    (
        "genesys-auth --region eu-w",
        &["eu-west-1", "eu-west-2"],
        &["us-east-1"],
    ),
    (
        "genesys-auth token --region ap-northeast-",
        &["ap-northeast-1", "ap-northeast-2", "ap-northeast-3"],
        &[],
    ),
    ("genesys-auth token --profile ", &["prod", "staging"], &[]),
];

fn check(shell: &str, complete: impl Fn(&str) -> BTreeSet<String>) {
    for (line, want, not) in CASES {
        let got = complete(line);
        for w in *want {
            assert!(
                got.contains(*w),
                "{shell}: `{line}` + Tab: no {w} in {got:?}"
            );
        }
        for n in *not {
            assert!(!got.contains(*n), "{shell}: `{line}` + Tab: {n} in {got:?}");
        }
    }
}

/// bash, as an interactive bash with bash-completion would: its default loader finds the
/// script where the install line put it, and the registered function fills COMPREPLY.
const BASH_DRIVER: &str = r#"
source /usr/share/bash-completion/bash_completion
read -ra COMP_WORDS <<< "$1"
[[ "$1" == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9; COMP_KEY=9
cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
spec=$(complete -p genesys-auth 2>/dev/null) && { echo "registered before loading" >&2; exit 1; }
loader=$(complete -p -D | sed -E 's/.*-F ([^ ]+).*/\1/')
"$loader" genesys-auth "$cur" "$prev"
fn=$(complete -p genesys-auth | sed -E 's/.*-F ([^ ]+).*/\1/')
"$fn" genesys-auth "$cur" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;

#[test]
#[cfg_attr(not(bash_completion), ignore = "bash-completion is not installed")]
fn bash_completes_options_regions_and_profiles_after_the_install_line() {
    let home = Home::new();
    home.install("bash");
    check("bash", |line| {
        lines(
            &home
                .cmd("bash")
                .args(["--norc", "--noprofile", "-c", BASH_DRIVER, "driver", line])
                .output()
                .unwrap(),
        )
    });
}

/// zsh, interactive in a pseudo-terminal: `compinit` as the `.zshrc` line of the help sets it
/// up, Tab is bound to completion followed by a marker (so that nothing is typed ahead of
/// the completion, which zsh may cut short), and `compadd` is wrapped to print what it adds.
/// The markers are split in the typed text so that its echo cannot match them.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty
zpty z 'zsh -d -i'
zpty -w z 'compadd () { local -a __hits; builtin compadd -O __hits "$@"; print -r -- "<hit>"${^__hits}"</hit>"; builtin compadd "$@"; }'
zpty -w z '_complete_then_mark () { _main_complete; print -r -- "<do""ne>"; }'
zpty -w z 'zle -C complete-then-mark complete-word _complete_then_mark; bindkey "^I" complete-then-mark'
zpty -w z "print -r -- '<rea''dy>'"
zpty -r z _ '*<ready>*'
zpty -n -w z "$1"$'\t'
zpty -r z out '*<done>*'
print -rl -- ${(u)${${(M)${(s:</hit>:)out}:#*<hit>*}##*<hit>}}
zpty -d z
"#;

#[test]
#[cfg_attr(not(shell_zsh), ignore = "zsh is not installed")]
fn zsh_completes_options_regions_and_profiles_after_the_install_line() {
    let home = Home::new();
    home.install("zsh");
    let help = help();
    let zshrc = help
        .lines()
        .find_map(|l| l.trim().strip_prefix("# and in ~/.zshrc:"))
        .expect("the .zshrc line")
        .trim();
    std::fs::write(home.path().join(".zshrc"), format!("{zshrc}\n")).unwrap();
    check("zsh", |line| {
        lines(
            &home
                .cmd("zsh")
                .args(["-f", "-c", ZSH_DRIVER, "driver", line])
                .output()
                .unwrap(),
        )
    });
}

#[test]
#[cfg_attr(not(shell_fish), ignore = "fish is not installed")]
fn fish_completes_options_regions_and_profiles_after_the_install_line() {
    let home = Home::new();
    home.install("fish");
    check("fish", |line| {
        lines(
            &home
                .cmd("fish")
                .args(["-c", &format!("complete -C '{line}'")])
                .output()
                .unwrap(),
        )
    });
}

/// Sourced into a running shell (`source <(genesys-auth completions zsh)`), the zsh script only
/// registers; it must not try to complete outside a Tab.
#[test]
#[cfg_attr(not(shell_zsh), ignore = "zsh is not installed")]
fn zsh_script_sourced_only_registers() {
    let home = Home::new();
    let out = home
        .cmd("zsh")
        .args([
            "-f",
            "-c",
            "autoload -U compinit && compinit -u && source <(genesys-auth completions zsh) && print ok",
        ])
        .output()
        .unwrap();
    assert_eq!(lines(&out), BTreeSet::from(["ok".to_owned()]));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
