//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

use crate::commands::completions;

use crate::exit::EXIT_CODES;

/// Get, cache, verify and use Genesys Cloud CX client-credentials tokens.
#[derive(Debug, Parser)]
#[command(name = "genesys-auth", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands that request no token, and the options (clap ids) that only configure one:
/// hidden from those commands' help and completions, and refused when given there (`main`).
pub const TOKENLESS: &[&str] = &["regions", "completions", "emulator", "cache"];
const TOKEN_OPTIONS: &[&str] = &[
    "profile",
    "region",
    "client_id",
    "client_secret_file",
    "client_secret_stdin",
    "client_secret_command",
    "scopes",
    "no_cache",
    "store",
    "proxy",
    "ca_file",
    "client_cert",
    "client_key",
    "timeout",
    "pool",
];

/// The command line, with the token options hidden where they do not apply: `emulator --help`
/// shows the emulator's options and `-v`/`--color`, not `--client-id`.
pub fn command() -> clap::Command {
    fn hide_token_options(cmd: clap::Command) -> clap::Command {
        // In place (`mut_arg` would reorder the arguments of a built command and break the
        // parser's index of them).
        let cmd = cmd.mut_args(|a| {
            if TOKEN_OPTIONS.contains(&a.get_id().as_str()) {
                a.hide(true)
            } else {
                a
            }
        });
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        names.iter().fold(cmd, |c, name| {
            c.mut_subcommand(name.as_str(), hide_token_options)
        })
    }
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // Global options reach subcommands when the command is built; hide them after that.
    cmd.build();
    TOKENLESS
        .iter()
        .fold(cmd, |c, name| c.mut_subcommand(*name, hide_token_options))
}

/// Options every command takes; help lists them after the command's own.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Profile to read from the config files [env: GENESYS_PROFILE] [default: default]
    #[arg(long, global = true, value_name = "NAME", add = ArgValueCandidates::new(completions::profiles))]
    pub profile: Option<String>,
    /// Region name (eu-west-1), domain, host, short code (eu) or base URL [env: GENESYS_REGION]
    #[arg(long, global = true, value_name = "REGION", add = ArgValueCandidates::new(completions::regions))]
    pub region: Option<String>,
    /// OAuth client id [env: GENESYS_CLIENT_ID]
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// Read the client secret from this file (never from an argument: it would show in `ps`)
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        conflicts_with = "client_secret_stdin"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// Read the client secret from the first line of standard input
    #[arg(long, global = true, conflicts_with = "client_secret_command")]
    pub client_secret_stdin: bool,
    /// Take the client secret from the first line a command prints, run without a shell within
    /// 10 s (e.g. 'vault kv get -field=secret secret/genesys')
    #[arg(
        long,
        global = true,
        value_name = "COMMAND",
        conflicts_with = "client_secret_file"
    )]
    pub client_secret_command: Option<String>,
    /// Scope to request (repeatable); default: the client's own scopes [env: GENESYS_SCOPES]
    #[arg(long = "scope", global = true, value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Neither read nor write the token cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Where tokens are cached: file (default), memory, or Redis to share one token across
    /// processes and machines: redis://host:port/db, redis+cluster://host:port[,host:port…] (a
    /// Redis Cluster), redis+sentinel://host:port[,host:port…]/service_name[/db] (the primary
    /// that these sentinels name); rediss… for TLS, AUTH as :password@ (never shown)
    #[arg(
        long,
        global = true,
        value_name = "STORE",
        env = "GENESYS_TOKEN_STORE",
        hide_env_values = true
    )]
    pub store: Option<String>,
    /// Proxy for https requests, reached as a CONNECT tunnel (http://[user@]host:port; its
    /// password in GENESYS_PROXY_PASSWORD, never here) [env: HTTPS_PROXY, ALL_PROXY; NO_PROXY
    /// lists hosts that bypass it]
    #[arg(long, global = true, value_name = "URL")]
    pub proxy: Option<String>,
    /// Trust the certificates in this PEM file too (a private CA, a TLS-inspecting proxy)
    /// [env: GENESYS_CA_FILE, SSL_CERT_FILE]
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Present this client certificate (PEM) to servers that require one (mTLS), with
    /// --client-key [env: GENESYS_CLIENT_CERT]
    #[arg(long, global = true, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The key of --client-cert (PEM) [env: GENESYS_CLIENT_KEY]
    #[arg(long, global = true, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Spread API requests over up to N tokens of the client (1 to 50), to go past the API's
    /// per-token rate limit: `api` and `serve` send each request with the token that has the
    /// most headroom, a new token only when all held are spent; processes sharing the token
    /// cache share the pool [env: GENESYS_TOKEN_POOL] [default: 1]
    #[arg(long, global = true, value_name = "N", value_parser = parse_pool)]
    pub pool: Option<usize>,
    /// How long the whole command may take, retries, waits, --jq and a secret command included:
    /// seconds or 500ms, 30s, 2m [default: 15 s a request, 90 s with retries]
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        allow_negative_numbers = true,
        value_parser = crate::deadline::parse_timeout
    )]
    pub timeout: Option<std::time::Duration>,
    /// Log what happens on stderr (-vv for more); never a secret
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour on stderr
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an access token (cached until shortly before it expires), for $(genesys-auth token)
    #[command(after_help = TOKEN_HELP)]
    Token(TokenArgs),
    /// Check the token against the API: organization, OAuth client, scopes, expiry
    #[command(after_help = VERIFY_HELP)]
    Verify(JsonArg),
    /// Call the API with the token, in the manner of `gh api`
    #[command(after_help = API_HELP)]
    Api(ApiArgs),
    /// List the Genesys Cloud regions and the spellings accepted for them
    #[command(after_help = REGIONS_HELP)]
    Regions(JsonArg),
    /// Show the resolved settings and where each came from; makes no request
    #[command(after_help = CONFIG_HELP)]
    Config(JsonArg),
    /// Revoke the cached token (DELETE /api/v2/tokens/me), every token of a pool too, and
    /// remove it from the cache
    #[command(after_help = REVOKE_HELP)]
    Revoke,
    /// List or clear the token cache
    #[command(subcommand, after_help = CACHE_HELP)]
    Cache(CacheCommand),
    /// Run the offline Genesys Cloud emulator on 127.0.0.1 until Ctrl-C
    #[command(after_help = EMULATOR_EXAMPLES)]
    Emulator(EmulatorArgs),
    /// Find out why a token cannot be had: settings, region, DNS, TCP, TLS, clock, the token
    /// request and the API, one line each with what to do
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// Walk through the whole flow: offline on the embedded emulator unless --real
    #[command(after_help = DEMO_HELP)]
    Demo(DemoArgs),
    /// Serve one shared, refreshed token to the programs of this machine: GET /token, and
    /// /api/v2/... proxied with the token attached
    #[command(after_help = SERVE_HELP)]
    Serve(crate::commands::serve::ServeArgs),
    /// Print a shell completion script
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

const TOKEN_HELP: &str = "\
Examples:
  curl -H \"$(genesys-auth token --header)\" https://api.mypurecloud.ie/api/v2/organizations/me
  export TOKEN=$(genesys-auth token)
  genesys-auth token --json | jq .expires_at
  genesys-auth -v token                     # says whether the cache served it, and its age

With --pool N, token prints one token: the pool's first, which serve's GET /token hands out
too (the others are for the requests of api and serve).

Exit codes: 0 success; 3 configuration; 4 client rejected; 5 forbidden; 6 rate limited;
7 network, server or unreadable response.";

const VERIFY_HELP: &str = "\
Examples:
  genesys-auth verify
  genesys-auth --region eu-west-1 verify --json

Exit codes: 0 valid; 3 configuration; 4 client or token rejected; 5 forbidden; 6 rate limited;
7 network, server or unreadable response (a field verify reports is missing); 8 other API error.";

const API_HELP: &str = "\
Examples:
  genesys-auth api organizations/me
  genesys-auth --pool 3 api users -q pageSize=100 --paginate --parallel 8 --jq '.[].name'
  genesys-auth api -X POST /api/v2/groups -f name=Support -F rulesVisible=true
  genesys-auth api tokens/me --silent; echo $?      # 0 while the token is accepted

--paginate fetches a list paged by page number --parallel pages at a time (default 4) and
prints one array in page order; a page that fails ends it with an error naming the page, the
pages before it printed. On a terminal, stderr shows progress: pages 12/40 · 1,180 entities.

--pool N (or GENESYS_TOKEN_POOL) sends each request with the token of up to N that has the most
headroom under the API's per-token rate limit, waiting for a reset rather than meeting a 429.
One token (the default) waits for the reset the API states too; a wait past --timeout exits 6.

Exit codes: 0 success; 2 usage (a bad header, field or --paginate on a single object);
3 configuration; 4 token rejected; 5 forbidden; 6 rate limited; 7 network or server error;
8 the API answered another error status (its body is printed).";

const REGIONS_HELP: &str = "\
Examples:
  genesys-auth regions
  genesys-auth regions --json | jq -r '.[].name'

Exit codes: 0 success; 2 usage.";

const CONFIG_HELP: &str = "\
Examples:
  genesys-auth config
  genesys-auth --profile prod config --json

Exit codes: 0 success; 3 configuration (a source that is needed cannot be read).";

const REVOKE_HELP: &str = "\
Examples:
  genesys-auth revoke
  genesys-auth --store redis://cache:6379/0 revoke

Exit codes: 0 revoked (or nothing to revoke); 3 configuration; 7 network or server error.";

const CACHE_HELP: &str = "\
Examples:
  genesys-auth cache list
  genesys-auth cache clear

Exit codes: 0 success; 3 the cache directory cannot be used.";

const CACHE_LIST_HELP: &str = "\
Examples:
  genesys-auth cache list
  genesys-auth cache list --json | jq -r '.[].expires_at'

Exit codes: 0 success (no entries included); 3 the cache directory cannot be used (a symbolic
link, another user's, writable by others).";

const CACHE_CLEAR_HELP: &str = "\
Examples:
  genesys-auth cache clear
  genesys-auth cache clear && genesys-auth token   # start from a fresh token

Exit codes: 0 success; 3 the cache directory cannot be used.";

const DEMO_HELP: &str = "\
Examples:
  genesys-auth demo                 # offline, on the embedded emulator
  genesys-auth demo --real          # with your credentials, against Genesys Cloud

Exit codes: as the step that failed: 3 configuration; 4 rejected; 5 forbidden; 6 rate limited;
7 network.";

const SERVE_HELP: &str = "\
Examples:
  genesys-auth serve > serve.env &            # prints GENESYS_SERVE_URL and GENESYS_SERVE_TOKEN
  . ./serve.env
  curl -H \"Authorization: Bearer $GENESYS_SERVE_TOKEN\" $GENESYS_SERVE_URL/api/v2/organizations/me
  curl -H \"Authorization: Bearer $GENESYS_SERVE_TOKEN\" $GENESYS_SERVE_URL/token
  genesys-auth serve --unix $XDG_RUNTIME_DIR/genesys-auth/serve.sock   # no bearer: file modes
  kill -HUP %1                                # reload settings (a rotated secret)
  genesys-auth --pool 3 serve > serve.env &   # proxy with up to 3 tokens, by headroom

With --pool N, each proxied request goes out with the token that has the most headroom under
the API's rate limit, and a 429 moves it to another token (--on-429 pass hands it back
instead); GET /token hands out the pool's first token; /readyz needs that one valid. One token
(the default) is held back too, once the API states that its limit is reached.

--timeout bounds each step of a request (its token fetch, each send to the API with the
answer's body), not serve: an API that does not answer in time is a 504 (15 s by default).

Exit codes: 0 stopped by SIGTERM or Ctrl-C (requests in flight finished); 2 usage (a
non-loopback --listen without --allow-non-loopback); 3 configuration (settings, the port or
the socket folder).";

const COMPLETIONS_HELP: &str = "\
Install (these lines work in a new home directory too; open a new shell afterwards):
  bash:
    mkdir -p ~/.local/share/bash-completion/completions
    genesys-auth completions bash > ~/.local/share/bash-completion/completions/genesys-auth
  zsh:
    mkdir -p ~/.zfunc
    genesys-auth completions zsh > ~/.zfunc/_genesys-auth
    # and in ~/.zshrc: fpath=(~/.zfunc $fpath); autoload -U compinit && compinit
  fish:
    mkdir -p ~/.config/fish/completions
    genesys-auth completions fish > ~/.config/fish/completions/genesys-auth.fish
At each Tab the script asks genesys-auth (found on PATH) for the candidates: commands, options,
the regions for --region and the profiles in the profile files for --profile.

Examples:
  genesys-auth completions bash
  source <(genesys-auth completions bash)      # this shell only

Exit codes: 0 success; 2 an unknown shell.";

const EMULATOR_EXAMPLES: &str = "\
Examples:
  genesys-auth emulator --port 8080 &        # a demo client; prints its export lines
  genesys-auth emulator --client ci:pw:ttl=600:scopes=users:readonly,organization:readonly
  genesys-auth emulator --client ok:pw --client off:pw:grant=none --client far:pw:ips=10.0.0.0/8
  genesys-auth emulator --config emulator.toml --enforce-scopes --api-rate-limit 300

Client options (after ID:SECRET, each :KEY=VALUE):
  ttl=SECS          token lifetime, 1 to 172800 (Genesys: 300 to 172800, default 86400)
  scopes=a,b        the client's scopes; it is granted what it asks for among them
  grant=none        no client-credentials grant: token requests get unauthorized_client
  state=inactive    an inactive client: token requests are refused
  ips=RANGE,RANGE   token requests only from these addresses (CIDR), else refused
  name=NAME         the name tokens/me and oauth/clients show

Exit codes: 0 stopped by Ctrl-C; 2 usage error (a malformed --client); 3 the port or the
--config file cannot be used.";

#[derive(Debug, Args, Clone, Copy)]
pub struct JsonArg {
    /// Print JSON for machines
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Print `Authorization: Bearer <token>`
    #[arg(long, conflicts_with = "json")]
    pub header: bool,
    /// Print the token with its type, expiry, scope and region as JSON
    #[arg(long)]
    pub json: bool,
    /// Take the token from a running `genesys-auth serve` instead: its URL (the bearer from
    /// GENESYS_SERVE_TOKEN or GENESYS_SERVE_TOKEN_FILE) or its unix socket's path
    #[arg(long, value_name = "URL|SOCKET")]
    pub from: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The path: /api/v2/users, api/v2/users, or users (taken as /api/v2/users)
    pub path: String,
    /// HTTP method [default: GET, or POST when a body is given]
    #[arg(short = 'X', long, value_name = "METHOD")]
    pub method: Option<String>,
    /// JSON body: the text itself, @FILE, or @- for standard input
    #[arg(short = 'd', long, value_name = "JSON|@FILE|@-")]
    pub data: Option<String>,
    /// Query parameter (repeatable)
    #[arg(short = 'q', long = "query", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub query: Vec<(String, String)>,
    /// Extra header (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Follow every page and print one JSON array of all the entities, in page order
    #[arg(long)]
    pub paginate: bool,
    /// With --paginate: pages fetched at once when the list is paged by page number and its
    /// first page gives the page count (1: one at a time); cursor-paged lists are always
    /// followed one page at a time
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=32),
        requires = "paginate"
    )]
    pub parallel: u16,
    /// Print the status line and headers on stderr
    #[arg(short = 'i', long)]
    pub include: bool,
    /// Send no token (to pass your own Authorization header with -H)
    #[arg(long)]
    pub no_auth: bool,
    /// A string field of a JSON body (repeatable); with fields and no -X the method is POST,
    /// with -X GET they are query parameters
    #[arg(short = 'f', long = "raw-field", value_name = "KEY=VALUE", value_parser = parse_pair, conflicts_with = "data")]
    pub raw_fields: Vec<(String, String)>,
    /// A typed field (repeatable): true, false, null and numbers as JSON, @FILE for a file's
    /// content, anything else a string
    #[arg(short = 'F', long = "field", value_name = "KEY=VALUE", value_parser = parse_pair, conflicts_with = "data")]
    pub fields: Vec<(String, String)>,
    /// Filter the JSON answer with a jq expression (strings printed raw)
    #[arg(long, value_name = "EXPR")]
    pub jq: Option<String>,
    /// Print nothing on success (the exit code still says how it went)
    #[arg(long, conflicts_with = "jq")]
    pub silent: bool,
}

/// A token pool's size, from `--pool` or `GENESYS_TOKEN_POOL`: 1 to [`genesys_auth::MAX_POOL`].
/// The message says the range and what to type; it never repeats the value.
pub fn parse_pool(s: &str) -> Result<usize, String> {
    let max = genesys_auth::MAX_POOL;
    let t = s.trim();
    match t.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        Ok(0) => Err(format!(
            "a token pool holds 1 to {max} tokens, not 0; give a number from 1 to {max} (1, the default, is a single token)"
        )),
        _ if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "a token pool holds at most {max} tokens (as Genesys' own tools allow); give a number from 1 to {max}"
        )),
        _ => Err(format!(
            "expected a whole number of tokens from 1 to {max}, e.g. --pool 4 (or GENESYS_TOKEN_POOL=4)"
        )),
    }
}

pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        Some(_) => Err("expected KEY=VALUE, e.g. -q pageSize=100".into()),
        // `-q .entities` is jq's habit: say where filtering is.
        None => Err(
            "expected KEY=VALUE, a query parameter (e.g. -q pageSize=100); to filter the output, use --jq EXPR"
                .into(),
        ),
    }
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List cached tokens (never the tokens themselves)
    #[command(after_help = CACHE_LIST_HELP)]
    List(JsonArg),
    /// Remove every cached token
    #[command(after_help = CACHE_CLEAR_HELP)]
    Clear,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct DoctorArgs {
    /// Print one JSON object per check, in an array
    #[arg(long)]
    pub json: bool,
    /// Also try the token request in every Genesys Cloud region, to find where the client
    /// exists (opt-in: it sends the client id and secret to each region's login host)
    #[arg(long)]
    pub probe_regions: bool,
}

const DOCTOR_HELP: &str = "\
Examples:
  genesys-auth doctor
  HTTPS_PROXY=http://proxy.corp:3128 genesys-auth doctor --ca-file corp-ca.pem
  genesys-auth doctor --json | jq '.[] | select(.status != \"ok\")'

Exit codes: 0 every check passed (warnings allowed); otherwise the code of the first failing
check: 3 settings; 4 the client was refused; 5 forbidden (an IP allowlist); 6 rate limited;
7 DNS, TCP, TLS, proxy or server; 8 another API error.";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use the configured credentials against the real region instead of the emulator
    #[arg(long)]
    pub real: bool,
    /// With --real, also revoke the token at the end
    #[arg(long, requires = "real")]
    pub revoke: bool,
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Port to listen on (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Register a client (repeatable): ID:SECRET, then any of :ttl=SECS :scopes=a,b
    /// :grant=none :state=inactive :ips=10.0.0.0/8,192.168.1.5 :name=NAME. Without one, a demo
    /// client is registered. The first client's export lines are printed.
    /// Example: --client ci-bot:s3cret:ttl=600:scopes=users:readonly
    // Parsed by the command, not by clap: clap's error would repeat the value, secret included.
    #[arg(long, value_name = "ID:SECRET[:OPT=VALUE]...")]
    pub client: Vec<String>,
    /// Read clients and limits from a TOML file ([[clients]] tables with id, secret, ttl,
    /// scopes, grant, state, ips, name; token_rate_limit, api_rate_limit, enforce_scopes)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Lifetime of issued tokens, in seconds, for clients that give no ttl
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    pub token_ttl: u64,
    /// Token requests a client may make per minute (0: no limit)
    #[arg(long, value_name = "PER_MINUTE", default_value_t = 300)]
    pub token_rate_limit: u32,
    /// API requests each token may make per minute, then 429 with Retry-After (0: no limit;
    /// Genesys allows about 300)
    #[arg(long, value_name = "PER_MINUTE", default_value_t = 0)]
    pub api_rate_limit: u32,
    /// Refuse token requests for scopes a client does not have, as an org with "Enforce
    /// Scopes" on does (default: grant the scopes the client has)
    #[arg(long)]
    pub enforce_scopes: bool,
    /// Users served by GET /api/v2/users
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub users: usize,
    /// Wait this many milliseconds before every API answer, as a distant region's round trip
    /// would
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub api_latency_ms: u64,
    /// Serve HTTPS with a CA and a certificate for localhost/127.0.0.1 made at start; the CA is
    /// written to a file whose path is printed with the export lines (GENESYS_CA_FILE)
    #[arg(long)]
    pub tls: bool,
    /// Serve HTTPS with this certificate chain (PEM) instead, with --tls-key
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate issued by this CA (PEM): mutual TLS
    #[arg(long, value_name = "CA_PEM")]
    pub require_client_cert: Option<PathBuf>,
    /// Serve the token endpoint under this path, as a gateway does (e.g. /genesys-login)
    #[arg(long, value_name = "PATH", default_value = "")]
    pub path_prefix_login: String,
    /// Serve the API under this path, as a gateway does (e.g. /genesys-api)
    #[arg(long, value_name = "PATH", default_value = "")]
    pub path_prefix_api: String,
}
