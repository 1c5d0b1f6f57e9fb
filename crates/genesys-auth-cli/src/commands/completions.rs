//! Shell completion: `genesys-auth completions SHELL` prints a short script that asks the tool
//! itself for candidates at each Tab (clap_complete's dynamic engine). The tool parses its own
//! command line, so the candidates always match the options it takes, and `--region` and
//! `--profile` complete with the regions and the profiles that the profile files hold.
//!
//! Why not clap_complete's generated scripts: their bash script names its functions after a
//! mangled binary name that does not match its own case labels when the name has a dash, so
//! no subcommand option ever completed; and they cannot list profiles, which live in files.

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::Shells;

use crate::exit::{CliError, Exit};

/// The variable that makes the tool answer a completion request instead of running. Not
/// clap_complete's default `COMPLETE`: a variable of that name set for something else would
/// turn every run into a completion request.
pub const VAR: &str = "_GENESYS_AUTH_COMPLETE";

/// The name the scripts complete and call back: the one on `PATH`, so that the script keeps
/// working when the binary is upgraded or moved.
const BIN: &str = "genesys-auth";

/// Answers a completion request and exits, when the shell's script asked for one.
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(crate::cli::command)
        .var(VAR)
        .bin(BIN)
        .completer(BIN)
        .complete();
}

/// `genesys-auth completions SHELL`: the script that registers the completion.
pub fn run(shell: clap_complete::Shell) -> Result<(), CliError> {
    let name = shell.to_string();
    let shells = Shells::builtins();
    let completer = shells.completer(&name).ok_or_else(|| {
        CliError::new(
            Exit::Usage,
            format!("no completion for {name}; use bash, zsh, fish, elvish or powershell"),
        )
    })?;
    let mut script = Vec::new();
    completer
        .write_registration(VAR, BIN, BIN, BIN, &mut script)
        .map_err(|e| CliError::new(Exit::Usage, format!("cannot write the script: {e}")))?;
    if shell == clap_complete::Shell::Zsh {
        script.extend_from_slice(ZSH_FIRST_TAB.as_bytes());
    }
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
        .map_err(|e| CliError::new(Exit::Usage, format!("cannot print the script: {e}")))
}

/// Installed as `_genesys-auth` in `fpath`, the zsh script is the body of an autoloaded
/// function: its first run only defines the completer and binds it with `compdef`, so the first
/// Tab of every shell would offer nothing. Run as that function, it also completes at once.
/// (Sourced, `funcstack[1]` is not `_genesys-auth` and this does nothing.)
const ZSH_FIRST_TAB: &str = r#"
if [[ "${funcstack[1]}" == _genesys-auth ]]; then
    _clap_dynamic_completer_genesys_auth "$@"
fi
"#;

/// `--region`: every region's name, with where it is.
pub fn regions() -> Vec<CompletionCandidate> {
    genesys_auth::REGIONS
        .iter()
        .map(|r| CompletionCandidate::new(r.name).help(Some(r.location.into())))
        .collect()
}

/// `--profile`: the profiles that this tool's and gc's profile files hold.
pub fn profiles() -> Vec<CompletionCandidate> {
    genesys_auth::Settings::loader()
        .profile_names()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}
