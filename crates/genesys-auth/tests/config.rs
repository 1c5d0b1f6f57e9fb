//! Every configuration source and the precedence between them, with temporary directories and
//! explicit environment maps (never the process environment).

use std::collections::HashMap;
use std::path::Path;

use genesys_auth::SettingsLoader as Loader;
use genesys_auth::{ConfigError, Settings, Source};
use secrecy::ExposeSecret as _;

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, text: &str) -> std::path::PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        set_mode(&p, 0o600);
        p
    }
    /// A loader that reads only this sandbox: its .env, its config home, its home.
    fn loader(&self, env: &[(&str, &str)]) -> Loader {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Settings::loader()
            .env(env)
            .dotenv(Some(self.path("work/.env")))
            .config_home(Some(self.path("config")))
            .home(Some(self.path("home")))
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

const OWN: &str = "config/genesys-auth/config.toml";
const GC: &str = "home/.gc/config.toml";

#[test]
fn defaults_when_nothing_is_set() {
    let sb = Sandbox::new();
    let s = sb.loader(&[]).load().unwrap();
    assert_eq!(s.region.value.name(), "us-east-1");
    assert_eq!(s.region.source, Source::Default);
    assert!(s.client_id.is_none() && s.client_secret.is_none());
    assert_eq!(s.timeout.as_secs(), 15);
    assert_eq!(s.connect_timeout.as_secs(), 5);
    assert_eq!(s.profile.value, "default");
}

/// Precedence is the trust ranking: flags, the environment, profiles, then `.env`.
#[test]
fn precedence_explicit_then_env_then_profile_then_dotenv() {
    let sb = Sandbox::new();
    sb.write(
        "work/.env",
        "GENESYS_CLIENT_ID=dotenv-id\nGENESYS_CLIENT_SECRET=dotenv-secret\nGENESYS_REGION=jp\nGENESYS_SCOPES=\"a:b c:d\"\n",
    );
    // With no profile, `.env` gives what the tutorial puts there.
    let s = sb.loader(&[]).load().unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "dotenv-id");
    assert!(
        matches!(&s.client_id.as_ref().unwrap().source, Source::DotEnv { var, .. } if var == "GENESYS_CLIENT_ID")
    );
    assert_eq!(s.region.value.name(), "ap-northeast-1");
    assert_eq!(s.scopes.as_ref().unwrap().value, vec!["a:b", "c:d"]);

    // A profile is trusted more than `.env`: it wins, and `.env` fills only what it lacks.
    sb.write(
        OWN,
        "[profiles.default]\nclient_id = \"profile-id\"\nclient_secret = \"profile-secret\"\nregion = \"eu-west-2\"\n",
    );
    let s = sb.loader(&[]).load().unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "profile-id");
    assert_eq!(s.region.value.name(), "eu-west-2");
    assert_eq!(s.scopes.as_ref().unwrap().value, vec!["a:b", "c:d"]);
    assert!(
        s.overridden
            .iter()
            .any(|o| o.setting == "client id" && matches!(o.source, Source::DotEnv { .. })),
        "{:?}",
        s.overridden
    );
    std::fs::remove_file(sb.path(OWN)).unwrap();

    let s = sb
        .loader(&[
            ("GENESYS_CLIENT_ID", "env-id"),
            ("GENESYSCLOUD_REGION", "mypurecloud.de"),
        ])
        .load()
        .unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "env-id");
    assert_eq!(
        s.client_id.as_ref().unwrap().source,
        Source::Env("GENESYS_CLIENT_ID".into())
    );
    assert_eq!(s.region.value.name(), "eu-central-1");
    assert_eq!(s.region.source, Source::Env("GENESYSCLOUD_REGION".into()));
    assert_eq!(
        s.client_secret.as_ref().unwrap().value.expose_secret(),
        "dotenv-secret"
    );

    let s = sb
        .loader(&[("GENESYS_CLIENT_ID", "env-id")])
        .client_id_from("flag-id", "--client-id")
        .load()
        .unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "flag-id");
    assert_eq!(
        s.client_id.as_ref().unwrap().source,
        Source::Explicit("--client-id".into())
    );
}

#[test]
fn seed_names_win_over_genesys_names_which_win_over_sdk_tutorial_names() {
    let sb = Sandbox::new();
    let s = sb
        .loader(&[
            ("GENESYSCLOUD_OAUTHCLIENT_ID", "gc-id"),
            ("GENESYS_CLOUD_CLIENT_ID", "sdk-id"),
            ("GENESYS_CLOUD_CLIENT_SECRET", "sdk-secret"),
            ("GENESYS_CLOUD_ENVIRONMENT", "mypurecloud.com.au"),
        ])
        .load()
        .unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "gc-id");
    assert_eq!(
        s.client_secret.as_ref().unwrap().source,
        Source::Env("GENESYS_CLOUD_CLIENT_SECRET".into())
    );
    assert_eq!(s.region.value.name(), "ap-southeast-2");
}

#[test]
fn dotenv_fills_only_what_the_environment_lacks_and_leaves_the_process_alone() {
    let sb = Sandbox::new();
    sb.write(
        "work/.env",
        "GENESYS_CLIENT_ID=from-file\nGENESYS_CLIENT_SECRET=file-secret\nGENESYS_TEST_MARKER_7=1\n",
    );
    let s = sb
        .loader(&[("GENESYS_CLIENT_ID", "from-env")])
        .load()
        .unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "from-env");
    assert_eq!(
        s.client_secret.as_ref().unwrap().value.expose_secret(),
        "file-secret"
    );
    assert!(
        std::env::var_os("GENESYS_TEST_MARKER_7").is_none(),
        "the process environment is untouched"
    );
}

#[test]
fn empty_and_whitespace_values_count_as_unset() {
    let sb = Sandbox::new();
    sb.write("work/.env", "GENESYS_CLIENT_ID=dotenv-id\n");
    let s = sb
        .loader(&[("GENESYS_CLIENT_ID", "   "), ("GENESYS_REGION", "")])
        .client_secret("  ")
        .load()
        .unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "dotenv-id");
    assert!(s.client_secret.is_none());
    assert_eq!(s.region.source, Source::Default);
}

#[test]
fn own_profiles_by_name_and_gc_profiles_with_their_key_names() {
    let sb = Sandbox::new();
    sb.write(
        OWN,
        "[profiles.prod]\nclient_id = \"own-id\"\nregion = \"eu\"\nscopes = [\"users:read\", \"x:y\"]\n",
    );
    sb.write(
        GC,
        "[DEFAULT]\nenvironment = \"mypurecloud.jp\"\nclient_credentials = \"gc-id\"\nclient_secret = \"gc-secret\"\n\n[prod]\nclient_secret = \"gc-prod-secret\"\n",
    );
    let s = sb.loader(&[]).load().unwrap();
    assert_eq!(
        s.client_id.as_ref().unwrap().value,
        "gc-id",
        "gc's DEFAULT is our default"
    );
    assert_eq!(s.region.value.name(), "ap-northeast-1");
    let s = sb.loader(&[("GENESYS_PROFILE", "prod")]).load().unwrap();
    assert_eq!(s.profile.source, Source::Env("GENESYS_PROFILE".into()));
    assert_eq!(s.client_id.as_ref().unwrap().value, "own-id");
    assert_eq!(s.scopes.as_ref().unwrap().value, vec!["users:read", "x:y"]);
    // Our file first, then gc's fills the secret.
    assert_eq!(
        s.client_secret.as_ref().unwrap().value.expose_secret(),
        "gc-prod-secret"
    );
    assert!(
        matches!(&s.client_secret.as_ref().unwrap().source, Source::Profile { profile, path } if profile == "prod" && path.ends_with(".gc/config.toml"))
    );
    let s = sb
        .loader(&[("GENESYS_PROFILE", "prod")])
        .profile_from("default", "--profile")
        .load()
        .unwrap();
    assert_eq!(
        s.client_id.as_ref().unwrap().value,
        "gc-id",
        "--profile wins over GENESYS_PROFILE"
    );
}

#[test]
fn a_named_profile_that_exists_nowhere_is_an_error_naming_the_files() {
    let sb = Sandbox::new();
    let e = sb
        .loader(&[])
        .profile_from("staging", "--profile")
        .load()
        .unwrap_err();
    assert!(matches!(e, ConfigError::NoSuchProfile { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("staging") && msg.contains("--profile") && msg.contains(".gc/config.toml"),
        "{msg}"
    );
}

#[test]
fn a_profile_file_with_a_secret_readable_by_others_gets_a_warning() {
    let sb = Sandbox::new();
    let p = sb.write(
        OWN,
        "[profiles.default]\nclient_id = \"id\"\nclient_secret = \"s\"\n",
    );
    assert!(sb.loader(&[]).load().unwrap().warnings.is_empty());
    set_mode(&p, 0o644);
    let w = sb.loader(&[]).load().unwrap().warnings;
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("chmod 600"), "{w:?}");
    // No secret, no warning.
    sb.write(OWN, "[profiles.default]\nregion = \"eu\"\n");
    set_mode(&p, 0o644);
    assert!(sb.loader(&[]).load().unwrap().warnings.is_empty());
}

/// `fn main() -> Result<(), E>` prints `Debug`: for every error type it is the message.
#[test]
fn every_error_debugs_as_its_message() {
    let sb = Sandbox::new();
    sb.write(OWN, "[profiles.default\nclient_id = ");
    let config = sb.loader(&[]).load().unwrap_err();
    assert_eq!(format!("{config:?}"), config.to_string());
    let region = genesys_auth::Region::parse("mars-1").unwrap_err();
    assert_eq!(format!("{region:?}"), region.to_string());
    let store = genesys_auth::StoreError::new("redis://cache:6379 answers nothing");
    assert_eq!(format!("{store:?}"), store.to_string());
    let error = genesys_auth::Error::from(store);
    assert_eq!(format!("{error:?}"), error.to_string());
}

#[test]
fn broken_files_are_errors_that_name_the_file() {
    let sb = Sandbox::new();
    sb.write(OWN, "[profiles.default\nclient_id = ");
    let e = sb.loader(&[]).load().unwrap_err().to_string();
    assert!(e.contains("config.toml") && e.contains("TOML"), "{e}");
}

#[test]
fn ids_and_secrets_with_inner_whitespace_or_control_characters_are_errors_without_the_secret() {
    let sb = Sandbox::new();
    let e = sb
        .loader(&[("GENESYS_CLIENT_SECRET", "abc def-SECRETPART")])
        .load()
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("client secret") && msg.contains("GENESYS_CLIENT_SECRET"),
        "{msg}"
    );
    assert!(!msg.contains("SECRETPART"), "{msg}");
    let e = sb
        .loader(&[("GENESYS_CLIENT_ID", "id\u{7}x")])
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("control character"), "{e}");
    // Surrounding whitespace (a trailing newline from a file) is trimmed, not an error.
    let s = sb
        .loader(&[("GENESYS_CLIENT_SECRET", "  ok-secret\n")])
        .load()
        .unwrap();
    assert_eq!(s.client_secret.unwrap().value.expose_secret(), "ok-secret");
}

#[test]
fn a_bad_region_says_where_it_came_from() {
    let sb = Sandbox::new();
    let e = sb
        .loader(&[("GENESYS_REGION", "za")])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("South Africa") && e.contains("GENESYS_REGION"),
        "{e}"
    );
}

#[test]
fn missing_credentials_name_every_variable_and_file_looked_at() {
    let sb = Sandbox::new();
    let s = sb.loader(&[]).load().unwrap();
    let msg = s.credentials().unwrap_err().to_string();
    for needle in [
        "GENESYS_CLIENT_ID",
        "GENESYSCLOUD_OAUTHCLIENT_ID",
        "GENESYS_CLIENT_SECRET",
        "GENESYSCLOUD_OAUTHCLIENT_SECRET",
        ".env",
        "genesys-auth/config.toml",
        ".gc/config.toml",
    ] {
        assert!(msg.contains(needle), "{needle} missing from: {msg}");
    }
    let s = sb.loader(&[("GENESYS_CLIENT_ID", "x")]).load().unwrap();
    let msg = s.credentials().unwrap_err().to_string();
    assert!(msg.starts_with("no client secret"), "{msg}");
    assert!(!msg.contains("$GENESYS_CLIENT_ID"), "{msg}");
}

#[test]
fn a_ready_made_access_token_is_read() {
    let sb = Sandbox::new();
    let s = sb
        .loader(&[("GENESYSCLOUD_ACCESS_TOKEN", "tok-123")])
        .load()
        .unwrap();
    let t = s.access_token.as_ref().unwrap();
    assert_eq!(t.value.expose_secret(), "tok-123");
    assert_eq!(t.source, Source::Env("GENESYSCLOUD_ACCESS_TOKEN".into()));
}

#[test]
fn debug_of_settings_never_shows_the_secret_or_the_token() {
    let sb = Sandbox::new();
    let s = sb
        .loader(&[("GENESYSCLOUD_ACCESS_TOKEN", "TOKEN-VALUE-42")])
        .client_id("id")
        .client_secret("SECRET-VALUE-42")
        .load()
        .unwrap();
    let dbg = format!("{s:?} {:?}", s.credentials().unwrap());
    assert!(
        !dbg.contains("SECRET-VALUE-42") && !dbg.contains("TOKEN-VALUE-42"),
        "{dbg}"
    );
}

/// Every way a setting's error or warning could print: Display, Debug and the warnings.
fn all_text(r: &Result<Settings, ConfigError>) -> String {
    match r {
        Ok(s) => format!("{s:?} {}", s.warnings.join("\n")),
        Err(e) => format!("{e} {e:?}"),
    }
}

#[test]
fn a_malformed_dotenv_names_file_line_and_column_and_never_a_value() {
    let sb = Sandbox::new();
    for (text, line) in [
        // An unclosed quote: dotenvy's own message would quote the rest of the file.
        (
            "GENESYS_CLIENT_ID=abc\nGENESYS_REGION=\"eu\nGENESYS_CLIENT_SECRET=DOTENV-SECRET-1\n",
            2,
        ),
        (
            "GENESYS_CLIENT_ID=abc\nBAD NAME=x\nGENESYS_CLIENT_SECRET=DOTENV-SECRET-1\n",
            2,
        ),
        (
            "GENESYS_CLIENT_SECRET=DOTENV-SECRET-1\nX='a\nY=DOTENV-SECRET-1\n",
            2,
        ),
    ] {
        sb.write("work/.env", text);
        let r = sb.loader(&[]).load();
        let shown = all_text(&r);
        assert!(!shown.contains("DOTENV-SECRET-1"), "{shown}");
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains(".env") && e.contains(&format!("line {line}, column")),
            "{e}"
        );
    }
}

#[test]
fn a_dotenv_with_a_byte_order_mark_is_read() {
    let sb = Sandbox::new();
    sb.write(
        "work/.env",
        "\u{feff}GENESYS_CLIENT_ID=bom-id\nGENESYS_CLIENT_SECRET=bom-secret\n",
    );
    let s = sb.loader(&[]).load().unwrap();
    assert_eq!(s.client_id.unwrap().value, "bom-id");
    assert_eq!(s.client_secret.unwrap().value.expose_secret(), "bom-secret");
}

const COMPLETE_ENV: [(&str, &str); 3] = [
    ("GENESYS_CLIENT_ID", "env-id"),
    ("GENESYS_CLIENT_SECRET", "env-secret"),
    ("GENESYS_REGION", "eu-west-1"),
];

#[test]
fn broken_sources_that_are_not_needed_are_skipped_with_a_warning() {
    let sb = Sandbox::new();
    sb.write(
        "work/.env",
        "X=\"open\nGENESYS_CLIENT_SECRET=UNUSED-SECRET\n",
    );
    sb.write(OWN, "[profiles.default\nclient_secret = 'UNUSED-SECRET'");
    sb.write(GC, "[DEFAULT]\nclient_secret = \"UNUSED-SECRET");
    let r = sb.loader(&COMPLETE_ENV).load();
    assert!(!all_text(&r).contains("UNUSED-SECRET"), "{}", all_text(&r));
    let s = r.unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "env-id");
    let skipped: Vec<_> = s
        .warnings
        .iter()
        .filter(|w| w.starts_with("skipped"))
        .collect();
    assert_eq!(skipped.len(), 3, "{:?}", s.warnings);
    assert!(skipped.iter().any(|w| w.contains(".env")));
    assert!(skipped.iter().any(|w| w.contains(".gc/config.toml")));
}

#[test]
fn a_broken_source_that_is_needed_is_an_error_naming_the_file_and_line() {
    let sb = Sandbox::new();
    // The region is not given elsewhere: the .env may have held it.
    sb.write("work/.env", "A=1\nGENESYS_REGION='eu\n");
    let e = sb
        .loader(&COMPLETE_ENV[..2])
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains(".env") && e.contains("line 2, column 16"), "{e}");
    // A profile file below the environment is needed when the secret is not set above it.
    let sb = Sandbox::new();
    sb.write(OWN, "[profiles.default]\nclient_id = 'x'\nregion = \n");
    let e = sb
        .loader(&COMPLETE_ENV[..1])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("config.toml") && e.contains("line 3, column"),
        "{e}"
    );
}

#[test]
fn explicit_values_beat_a_ready_made_token_from_the_environment() {
    let sb = Sandbox::new();
    let s = sb
        .loader(&[("GENESYSCLOUD_ACCESS_TOKEN", "env-token")])
        .client_id_from("flag-id", "--client-id")
        .region_from("eu-west-1", "--region")
        .load()
        .unwrap();
    assert!(s.access_token.is_none());
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("GENESYSCLOUD_ACCESS_TOKEN") && w.contains("not used")),
        "{:?}",
        s.warnings
    );
    // A profile chosen with --profile is as explicit as a flag for what it gives.
    sb.write(
        OWN,
        "[profiles.prod]\nclient_id = \"prod-id\"\nclient_secret = \"prod-secret\"\n",
    );
    let s = sb
        .loader(&[("GENESYSCLOUD_ACCESS_TOKEN", "env-token")])
        .profile_from("prod", "--profile")
        .load()
        .unwrap();
    assert!(s.access_token.is_none(), "{:?}", s.warnings);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("--profile") && w.contains("not used")),
        "{:?}",
        s.warnings
    );
    std::fs::remove_file(sb.path(OWN)).unwrap();
    // With nothing explicit the token is used, and unused credentials are named.
    let s = sb
        .loader(&[
            ("GENESYSCLOUD_ACCESS_TOKEN", "env-token"),
            ("GENESYS_CLIENT_ID", "env-id"),
        ])
        .load()
        .unwrap();
    assert!(s.access_token.is_some());
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("credentials are not used")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn region_urls_with_credentials_are_refused_without_the_password() {
    let sb = Sandbox::new();
    for env in [
        [("GENESYS_REGION", "https://user:URL-PASSWORD@gw.example.com")],
        [("GENESYS_REGION", "https://URL-PASSWORD@gw.example.com/x")],
    ] {
        let r = sb.loader(&env).load();
        let shown = all_text(&r);
        assert!(r.is_err(), "{shown}");
        assert!(!shown.contains("URL-PASSWORD"), "{shown}");
        assert!(shown.contains("credentials"), "{shown}");
    }
    sb.write(
        OWN,
        "[profiles.default]\nregion = 'https://u:URL-PASSWORD@gw.example.com'\n",
    );
    let r = sb.loader(&[]).load();
    assert!(r.is_err() && !all_text(&r).contains("URL-PASSWORD"));
}

#[test]
fn lookalike_genesys_hosts_get_a_warning_naming_the_real_hosts() {
    let sb = Sandbox::new();
    for host in [
        "https://login.mypurecloud.com.evil.com",
        "https://api.mypurecloud.ie.example.net/",
        "https://login.mypurecloud.co",
        "https://login.mypurec1oud.com",
        // Homographs: a Cyrillic `е`, a Greek `ο`, as a user types them and as punycode.
        "https://login.mypur\u{435}cloud.com",
        "https://api.mypurecl\u{3bf}ud.ie",
        "https://login.xn--mypurcloud-2pg.com",
        // Genesys' pure.cloud brand elsewhere.
        "https://login.usw2.pure-cloud.com",
        "https://login.pure.cloud.evil.com",
        "https://purecloud-login.example.net",
    ] {
        let s = sb.loader(&[("GENESYS_REGION", host)]).load().unwrap();
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("looks like a Genesys Cloud host")
                    && (w.contains("login.mypurecloud.") || w.contains("pure.cloud and api."))),
            "{host}: {:?}",
            s.warnings
        );
    }
    for fine in [
        "https://gw.example.com",
        "https://login.usw3.pure.cloud",
        "https://xn--bcher-kva.example",
        "http://127.0.0.1:8080",
        "eu-west-1",
    ] {
        let s = sb.loader(&[("GENESYS_REGION", fine)]).load().unwrap();
        assert!(s.warnings.is_empty(), "{fine}: {:?}", s.warnings);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Profile files (ours and gc's) of any shape never panic the loader, and whatever it says
    /// about them never holds the secret written in them.
    #[test]
    fn profile_files_never_panic_nor_echo_the_secret(
        head in "[ -~\n]{0,80}",
        quote in "[\"' ]{0,2}",
        tail in "[ -~\n]{0,40}",
    ) {
        let sb = Sandbox::new();
        let text = format!("{head}\nclient_secret = {quote}PROFILE-SECRET-77{quote}\n{tail}");
        sb.write(OWN, &format!("[profiles.default]\n{text}"));
        sb.write(GC, &format!("[DEFAULT]\n{text}"));
        let r = sb.loader(&[]).load();
        let shown = all_text(&r);
        proptest::prop_assert!(!shown.contains("PROFILE-SECRET-77"), "{}", shown);
    }
}

#[test]
fn nothing_is_ignored_in_silence() {
    let sb = Sandbox::new();
    // A key with a typo in a profile: a warning with the close match.
    sb.write(
        OWN,
        "[profiles.default]\nclient-id = \"x\"\nclient_secret = \"s\"\nregoin = \"eu\"\n",
    );
    let s = sb
        .loader(&[
            ("GENESYS_CLIENTID", "typo"),
            ("GENESYSCLOUD_REGOIN", "eu"),
            ("GENESYS_UNRELATED_THING", "1"),
        ])
        .load()
        .unwrap();
    let all = s.warnings.join("\n");
    assert!(
        all.contains("unknown key `client-id`") && all.contains("did you mean `client_id`?"),
        "{all}"
    );
    assert!(
        all.contains("unknown key `regoin`") && all.contains("`region`"),
        "{all}"
    );
    assert!(
        all.contains("GENESYS_CLIENTID is set") && all.contains("did you mean GENESYS_CLIENT_ID?"),
        "{all}"
    );
    assert!(all.contains("did you mean GENESYSCLOUD_REGION?"), "{all}");
    assert!(!all.contains("GENESYS_UNRELATED_THING"), "{all}");
    // A missing profile lists the ones that exist.
    sb.write(
        GC,
        "[DEFAULT]\nclient_credentials = \"a\"\n[staging]\nclient_credentials = \"b\"\n",
    );
    let e = sb
        .loader(&[])
        .profile("prod")
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("default") && e.contains("staging") && e.contains("DEFAULT"),
        "{e}"
    );
}

/// Every network setting from a profile, each with its source; the machine's environment beats
/// the profile, `.env` never gives them, and a half-given pair is an error naming its source.
#[test]
fn network_settings_come_from_profiles_flags_and_the_environment() {
    let sb = Sandbox::new();
    let secret_file = sb.write("secrets/genesys", "file-secret-Vb2\n");
    sb.write(
        OWN,
        &format!(
            "[profiles.default]\nclient_id = \"prof-id\"\nclient_secret_file = \"{}\"\nproxy = \"http://proxy.corp:3128\"\nca_file = \"/etc/corp-ca.pem\"\nclient_cert = \"/etc/me.pem\"\nclient_key = \"/etc/me.key\"\nlogin_url = \"https://gw.example.com/genesys-login\"\napi_url = \"https://gw.example.com/genesys-api\"\n",
            secret_file.display()
        ),
    );
    let s = sb.loader(&[]).load().unwrap();
    let from_profile = |src: &Source| matches!(src, Source::Profile { .. });
    let proxy = s.proxy.as_ref().unwrap();
    assert_eq!(proxy.value, "http://proxy.corp:3128");
    assert!(from_profile(&proxy.source));
    let ca = s.ca_file.as_ref().unwrap();
    assert_eq!(ca.value, Path::new("/etc/corp-ca.pem"));
    assert!(from_profile(&ca.source));
    let (cert, key) = s.client_cert.as_ref().unwrap();
    assert_eq!(
        (cert.value.as_path(), key.value.as_path()),
        (Path::new("/etc/me.pem"), Path::new("/etc/me.key"))
    );
    assert_eq!(
        s.region.value.api_base_url(),
        "https://gw.example.com/genesys-api"
    );
    assert!(from_profile(&s.region.source));
    assert_eq!(
        s.client_secret.as_ref().unwrap().value.expose_secret(),
        "file-secret-Vb2"
    );

    // The environment (either case) beats the profile; `.env` gives none of these.
    sb.write(
        "work/.env",
        "HTTPS_PROXY=http://from-dotenv:1\nGENESYS_CA_FILE=/dotenv.pem\n",
    );
    let s = sb
        .loader(&[
            ("https_proxy", "http://lower.corp:8080"),
            ("SSL_CERT_FILE", "/ssl.pem"),
            ("no_proxy", ".corp"),
        ])
        .load()
        .unwrap();
    assert_eq!(s.proxy.as_ref().unwrap().value, "http://lower.corp:8080");
    assert_eq!(
        s.proxy.as_ref().unwrap().source,
        Source::Env("https_proxy".into())
    );
    assert_eq!(s.ca_file.as_ref().unwrap().value, Path::new("/ssl.pem"));
    assert_eq!(s.no_proxy.as_deref(), Some(".corp"));
    // A flag beats both.
    let s = sb
        .loader(&[("HTTPS_PROXY", "http://env.corp:1")])
        .proxy_from("http://flag.corp:2", "--proxy")
        .load()
        .unwrap();
    assert_eq!(
        s.proxy.as_ref().unwrap().source,
        Source::Explicit("--proxy".into())
    );

    // Half a pair names where the half came from.
    sb.write(OWN, "[profiles.default]\nclient_id = \"x\"\nclient_secret = \"y\"\nlogin_url = \"https://gw.example.com/l\"\n");
    let e = sb.loader(&[]).load().unwrap_err().to_string();
    assert!(e.contains("gateway") && e.contains("config.toml"), "{e}");
    sb.write(
        OWN,
        "[profiles.default]\nclient_id = \"x\"\nclient_secret = \"y\"\n",
    );
    let e = sb
        .loader(&[("GENESYS_CLIENT_CERT", "/etc/me.pem")])
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("client certificate"), "{e}");
}

/// A misspelt table in our own file (`[profile.default]`) is said, not taken as "no profile".
#[test]
fn a_misspelt_top_level_table_is_warned_about() {
    let sb = Sandbox::new();
    sb.write(OWN, "[profile.default]\nclient_id = \"x\"\n");
    let s = sb.loader(&[]).load().unwrap();
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("unknown key `profile`") && w.contains("[profiles.NAME]")),
        "{:?}",
        s.warnings
    );
}

/// `HTTPS_PROXY=user:pass@host:3128` (no scheme) is an http proxy, as curl reads it; its
/// password shows nowhere, and neither does one typed into a region.
#[test]
fn credentials_in_scheme_less_values_never_show() {
    let sb = Sandbox::new();
    let r = sb
        .loader(&[("HTTPS_PROXY", "user:PROXY-PW-5@proxy.corp:3128")])
        .load();
    assert!(!all_text(&r).contains("PROXY-PW-5"), "{}", all_text(&r));
    let s = r.unwrap();
    assert_eq!(
        s.proxy.as_ref().unwrap().value,
        "http://user:PROXY-PW-5@proxy.corp:3128"
    );
    assert_eq!(s.proxy_shown().unwrap(), "http://***@proxy.corp:3128");
    assert!(genesys_auth::proxy_holds_password(
        "user:PROXY-PW-5@proxy.corp:3128"
    ));
    for region in ["user:REGION-PW-5@host", "REGION-PW-5@eu-west-1"] {
        let r = sb.loader(&[("GENESYS_REGION", region)]).load();
        assert!(r.is_err(), "{region}");
        assert!(!all_text(&r).contains("REGION-PW-5"), "{}", all_text(&r));
    }
}

/// `GENESYS_PROXY_PASSWORD` joins the proxy's user; with no user (or no proxy) it is not sent.
#[test]
fn the_proxy_password_goes_only_with_a_proxy_user() {
    let sb = Sandbox::new();
    let s = sb
        .loader(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("GENESYS_PROXY_PASSWORD", "PW-NO-USER"),
        ])
        .load()
        .unwrap();
    assert!(s.proxy_password.is_none());
    assert!(
        s.warnings.iter().any(|w| w.contains("names no user")),
        "{:?}",
        s.warnings
    );
    let s = sb
        .loader(&[
            ("HTTPS_PROXY", "http://me@proxy.corp:3128"),
            ("GENESYS_PROXY_PASSWORD", "PW-WITH-USER"),
        ])
        .load()
        .unwrap();
    assert!(s.proxy_password.is_some() && s.warnings.is_empty());
    assert!(!format!("{s:?}").contains("PW-WITH-USER"));
}

/// A `.env` may give the client id, secret, a Genesys region and scopes; a gateway, a custom URL,
/// a token, a profile choice, a proxy or CA in it are ignored with a warning naming what is read
/// instead, so a cloned repository cannot choose where the secret goes.
#[test]
fn a_dotenv_cannot_choose_where_the_secret_goes() {
    let sb = Sandbox::new();
    sb.write(
        "work/.env",
        "GENESYS_LOGIN_URL=https://login.evil.example\nGENESYS_API_URL=https://api.evil.example\nGENESYSCLOUD_ACCESS_TOKEN=dotenv-token\nHTTPS_PROXY=http://proxy.evil.example:3128\nGENESYS_CA_FILE=/evil.pem\nGENESYS_PROFILE=evil\n",
    );
    let env = [
        ("GENESYS_CLIENT_ID", "env-id"),
        ("GENESYS_CLIENT_SECRET", "env-secret"),
        ("GENESYS_REGION", "eu-west-1"),
    ];
    for loader in [
        sb.loader(&env),
        sb.loader(&env).region_from("ap-northeast-1", "--region"),
        sb.loader(&env[..2]),
    ] {
        let s = loader.load().unwrap();
        assert!(
            !s.region.value.login_base_url().contains("evil"),
            "{:?}",
            s.region
        );
        assert!(s.access_token.is_none(), "the environment's client is used");
        assert_eq!(s.client_id.as_ref().unwrap().value, "env-id");
        assert!(s.proxy.is_none() && s.ca_file.is_none());
        assert_eq!(s.profile.value, "default");
        let all = s.warnings.join("\n");
        for var in [
            "GENESYS_LOGIN_URL",
            "GENESYS_API_URL",
            "GENESYSCLOUD_ACCESS_TOKEN",
            "HTTPS_PROXY",
            "GENESYS_CA_FILE",
            "GENESYS_PROFILE",
        ] {
            assert!(
                all.contains(&format!("{var} in ")) && all.contains("is ignored"),
                "{var}: {all}"
            );
        }
        assert!(all.contains("the proxy is read from --proxy"), "{all}");
    }
    // A region naming a custom host is ignored too; a Genesys region is read.
    sb.write("work/.env", "GENESYS_REGION=https://login.evil.example\n");
    let s = sb.loader(&[]).load().unwrap();
    assert_eq!(s.region.source, Source::Default);
    assert!(
        s.warnings.iter().any(|w| w.contains("custom URL")),
        "{:?}",
        s.warnings
    );
    sb.write("work/.env", "GENESYS_REGION=eu\n");
    assert_eq!(
        sb.loader(&[]).load().unwrap().region.value.name(),
        "eu-west-1"
    );
}

/// The endpoint (a region, a base URL or a gateway) comes whole from the most trusted source
/// that gives any of it: a profile's gateway never beats the environment's region.
#[test]
fn a_profile_gateway_never_beats_a_stronger_region() {
    let sb = Sandbox::new();
    sb.write(
        OWN,
        "[profiles.default]\nlogin_url = \"https://gw.example.com/l\"\napi_url = \"https://gw.example.com/a\"\n",
    );
    let s = sb
        .loader(&[
            ("GENESYS_REGION", "eu-west-1"),
            ("GENESYS_CLIENT_ID", "id"),
            ("GENESYS_CLIENT_SECRET", "secret"),
        ])
        .load()
        .unwrap();
    assert_eq!(s.region.value.name(), "eu-west-1");
    assert!(
        s.overridden
            .iter()
            .any(|o| o.setting == "region" && matches!(o.source, Source::Profile { .. })),
        "{:?}",
        s.overridden
    );
}

/// The secret goes only where a source at least as trusted as its own chose: a `.env` region
/// for a secret set elsewhere is refused, and the error names both sources. What the user set
/// (flags, environment, profile files) may be combined freely.
#[test]
fn an_endpoint_from_a_less_trusted_source_than_the_secret_is_refused() {
    let sb = Sandbox::new();
    sb.write(
        "work/.env",
        "GENESYS_REGION=jp
",
    );
    for loader in [
        sb.loader(&[("GENESYS_CLIENT_SECRET", "S-77")]),
        sb.loader(&[])
            .client_secret_from("S-77", "--client-secret-file"),
    ] {
        let e = loader
            .client_id_from("id", "--client-id")
            .load()
            .unwrap_err();
        assert!(matches!(e, ConfigError::UntrustedEndpoint { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(".env") && msg.contains("client secret from") && !msg.contains("S-77"),
            "{msg}"
        );
    }
    // The secret from the same `.env`, or a region from a trusted source, is fine.
    sb.write(
        "work/.env",
        "GENESYS_REGION=jp
GENESYS_CLIENT_SECRET=S-77
",
    );
    assert_eq!(
        sb.loader(&[]).load().unwrap().region.value.name(),
        "ap-northeast-1"
    );
    sb.write(
        "work/.env",
        "GENESYS_REGION=jp
",
    );
    let s = sb
        .loader(&[("GENESYS_CLIENT_SECRET", "S-77"), ("GENESYS_REGION", "eu")])
        .load()
        .unwrap();
    assert_eq!(s.region.value.name(), "eu-west-1");
    std::fs::remove_file(sb.path("work/.env")).unwrap();
    sb.write(
        OWN,
        "[profiles.default]\nregion = \"https://gw.example.com\"\n",
    );
    let s = sb
        .loader(&[("GENESYS_CLIENT_SECRET", "S-77")])
        .client_id_from("id", "--client-id")
        .load()
        .unwrap();
    assert_eq!(s.region.value.api_base_url(), "https://gw.example.com");
}

/// `--profile orgb` (or `GENESYS_PROFILE`) takes its settings from that profile alone: loose
/// `GENESYS_*` variables for another organization do not leak into it, and each is named.
#[test]
fn a_chosen_profile_takes_nothing_from_loose_variables() {
    let sb = Sandbox::new();
    sb.write(
        OWN,
        "[profiles.orgb]\nclient_id = \"orgb-id\"\nclient_secret = \"orgb-secret\"\nregion = \"eu-central-1\"\n",
    );
    let org_a = [
        ("GENESYS_CLIENT_ID", "orga-id"),
        ("GENESYS_CLIENT_SECRET", "orga-secret"),
        ("GENESYS_REGION", "us-east-1"),
        ("GENESYS_SCOPES", "users:read"),
    ];
    for (loader, chooser) in [
        (
            sb.loader(&org_a).profile_from("orgb", "--profile"),
            "--profile",
        ),
        (
            sb.loader(&[&org_a[..], &[("GENESYS_PROFILE", "orgb")]].concat()),
            "GENESYS_PROFILE",
        ),
    ] {
        let s = loader.load().unwrap();
        assert_eq!(s.client_id.as_ref().unwrap().value, "orgb-id");
        assert_eq!(
            s.client_secret.as_ref().unwrap().value.expose_secret(),
            "orgb-secret"
        );
        assert_eq!(s.region.value.name(), "eu-central-1");
        assert!(s.scopes.is_none(), "GENESYS_SCOPES does not leak in");
        for var in org_a.iter().map(|(k, _)| k) {
            assert!(
                s.warnings
                    .iter()
                    .any(|w| w.contains(var) && w.contains("not used") && w.contains(chooser)),
                "{var}: {:?}",
                s.warnings
            );
            assert!(
                s.overridden
                    .iter()
                    .any(|o| o.source == Source::Env((*var).into())),
                "{var}: {:?}",
                s.overridden
            );
        }
    }
    // The machine's network settings still apply.
    let s = sb
        .loader(&[("HTTPS_PROXY", "http://proxy.corp:3128")])
        .profile_from("orgb", "--profile")
        .load()
        .unwrap();
    assert!(
        s.proxy.is_some() && s.warnings.is_empty(),
        "{:?}",
        s.warnings
    );
}

/// The id given as the secret, or the two swapped, get a hint naming where each came from.
#[test]
fn an_id_used_as_the_secret_or_swapped_gets_a_hint() {
    let sb = Sandbox::new();
    let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let s = sb
        .loader(&[("GENESYS_CLIENT_SECRET", uuid)])
        .client_id_from(uuid, "--client-id")
        .load()
        .unwrap();
    assert!(
        s.warnings.iter().any(|w| w.contains("is the client id")
            && w.contains("--client-id")
            && w.contains("GENESYS_CLIENT_SECRET")),
        "{:?}",
        s.warnings
    );
    let s = sb
        .loader(&[
            (
                "GENESYS_CLIENT_ID",
                "kT3vYw9-aQ_xZp0LmN4rS8uV2bC6dE1fG5hJ7iK",
            ),
            ("GENESYS_CLIENT_SECRET", uuid),
        ])
        .load()
        .unwrap();
    assert!(
        s.warnings.iter().any(|w| w.contains("swapped")),
        "{:?}",
        s.warnings
    );
    let s = sb
        .loader(&[
            ("GENESYS_CLIENT_ID", uuid),
            (
                "GENESYS_CLIENT_SECRET",
                "kT3vYw9-aQ_xZp0LmN4rS8uV2bC6dE1fG5hJ7iK",
            ),
        ])
        .load()
        .unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

/// `PURECLOUD_*` variables and mistyped keys inside `.env` are named, with what is read instead.
#[test]
fn old_names_and_dotenv_typos_are_named() {
    let sb = Sandbox::new();
    sb.write(
        "work/.env",
        "GENESYS_CLIENTID=x\nPURECLOUD_ENVIRONMENT=mypurecloud.ie\n",
    );
    let s = sb
        .loader(&[
            ("PURECLOUD_CLIENT_ID", "x"),
            ("PURECLOUD_CLIENT_SECRET", "y"),
        ])
        .load()
        .unwrap();
    let all = s.warnings.join("\n");
    for needle in [
        "GENESYS_CLIENTID is in .env, but genesys-auth reads no such variable; did you mean GENESYS_CLIENT_ID?",
        "PURECLOUD_ENVIRONMENT is in .env",
        "it reads GENESYS_REGION instead",
        "PURECLOUD_CLIENT_ID is set",
        "it reads GENESYS_CLIENT_ID instead",
        "it reads GENESYS_CLIENT_SECRET instead",
    ] {
        assert!(all.contains(needle), "{needle}: {all}");
    }
}

/// How far each source is trusted, as the README's security section states it: what the user
/// set (flags, environment, profile files) over what a repository brought (`.env`). The property
/// below checks the loader against this, not against itself.
fn trust_rank(source: &Source) -> u8 {
    match source {
        Source::DotEnv { .. } => 1,
        _ => 0,
    }
}

/// Precedence among the user's sources, as the README states it (most trusted first).
fn precedence(source: &Source, chosen: bool) -> u8 {
    match source {
        Source::Explicit(_) => 0,
        Source::Profile { path, .. } if chosen => {
            if path.ends_with(OWN) {
                1
            } else {
                2
            }
        }
        Source::Env(_) => 3,
        Source::Profile { path, .. } => {
            if path.ends_with(OWN) {
                4
            } else {
                5
            }
        }
        Source::DotEnv { .. } => 6,
        _ => u8::MAX,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// For any placement of the client id, secret, region, gateway and token across flags, the
    /// environment, `.env` and both profile files, with or without a chosen profile: the
    /// credential that would be sent goes only to an endpoint from a source at least as trusted
    /// as its own (or the default region), or the settings are refused for that reason.
    #[test]
    fn the_credential_never_goes_where_a_weaker_source_chose(
        id in 0u8..32, secret in 0u8..32, region in 0u8..32, custom in 0u8..32,
        gateway in 0u8..32, token in 0u8..32, chosen in 0u8..3,
    ) {
        let sb = Sandbox::new();
        // Bits: 1 flag, 2 environment, 4 .env, 8 own profile, 16 gc profile.
        let at = |mask: u8, bit: u8| mask & bit != 0;
        let name = if chosen == 0 { "default" } else { "p" };
        let mut loader_env: Vec<(String, String)> = Vec::new();
        let mut dotenv = String::new();
        let mut own = format!("[profiles.{name}]\n");
        let mut gc = format!("[{}]\n", if chosen == 0 { "DEFAULT" } else { "p" });
        let region_of = |src: &str| if at(custom, 1) || at(custom, 2) || at(custom, 4) || at(custom, 8) || at(custom, 16) {
            // A custom host naming its source, so that the endpoint used can be traced.
            format!("https://{src}.example.com")
        } else {
            "eu-west-1".to_owned()
        };
        for (bit, src) in [(2u8, "env"), (4, "dotenv")] {
            let mut put = |k: &str, v: String| {
                if bit == 2 { loader_env.push((k.into(), v)); } else { dotenv.push_str(&format!("{k}={v}\n")); }
            };
            if at(id, bit) { put("GENESYS_CLIENT_ID", format!("{src}-id")); }
            if at(secret, bit) { put("GENESYS_CLIENT_SECRET", format!("{src}-secret")); }
            if at(region, bit) { put("GENESYS_REGION", region_of(src)); }
            if at(gateway, bit) {
                put("GENESYS_LOGIN_URL", format!("https://{src}-gw.example.com/l"));
                put("GENESYS_API_URL", format!("https://{src}-gw.example.com/a"));
            }
            if at(token, bit) { put("GENESYSCLOUD_ACCESS_TOKEN", format!("{src}-token")); }
        }
        if chosen == 2 { loader_env.push(("GENESYS_PROFILE".into(), name.into())); }
        own.push_str("scopes = \"x\"\n");
        gc.push_str("grant_type = \"1\"\n");
        if at(id, 8) { own.push_str("client_id = \"own-id\"\n"); }
        if at(secret, 8) { own.push_str("client_secret = \"own-secret\"\n"); }
        if at(region, 8) { own.push_str(&format!("region = \"{}\"\n", region_of("own"))); }
        if at(gateway, 8) { own.push_str("login_url = \"https://own-gw.example.com/l\"\napi_url = \"https://own-gw.example.com/a\"\n"); }
        if at(id, 16) { gc.push_str("client_credentials = \"gc-id\"\n"); }
        if at(secret, 16) { gc.push_str("client_secret = \"gc-secret\"\n"); }
        if at(region, 16) { gc.push_str(&format!("environment = \"{}\"\n", region_of("gc"))); }
        sb.write("work/.env", &dotenv);
        sb.write(OWN, &own);
        sb.write(GC, &gc);
        let env: Vec<(&str, &str)> = loader_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut loader = sb.loader(&env);
        if at(id, 1) { loader = loader.client_id_from("flag-id", "--client-id"); }
        if at(secret, 1) { loader = loader.client_secret_from("flag-secret", "--client-secret-file"); }
        if at(region, 1) { loader = loader.region_from(region_of("flag"), "--region"); }
        if at(gateway, 1) { loader = loader.gateway("https://flag-gw.example.com/l", "https://flag-gw.example.com/a"); }
        if at(token, 1) { loader = loader.access_token("flag-token"); }
        if chosen == 1 { loader = loader.profile_from(name, "--profile"); }
        let is_chosen = chosen != 0;
        match loader.load() {
            Ok(s) => {
                let credential = s.access_token.as_ref().map(|t| &t.source)
                    .or(s.client_secret.as_ref().map(|c| &c.source));
                let endpoint = &s.region.source;
                if let Some(c) = credential {
                    proptest::prop_assert!(
                        *endpoint == Source::Default || trust_rank(endpoint) <= trust_rank(c),
                        "credential from {c}, endpoint from {endpoint}"
                    );
                }
                // Each setting comes from the source of highest precedence that gave it.
                if let Some(c) = &s.client_id {
                    for o in s.overridden.iter().filter(|o| o.setting == "client id") {
                        proptest::prop_assert!(precedence(&o.source, is_chosen) > precedence(&c.source, is_chosen), "{o:?} beat {c:?}");
                    }
                }
                // `.env` never chooses a custom endpoint, and never gives a token.
                proptest::prop_assert!(!s.region.value.login_base_url().contains("dotenv"));
                let token_from_dotenv = matches!(s.access_token.as_ref().map(|t| &t.source), Some(Source::DotEnv { .. }));
                proptest::prop_assert!(!token_from_dotenv);
                if is_chosen {
                    for src in [s.client_id.as_ref().map(|c| &c.source), s.client_secret.as_ref().map(|c| &c.source), Some(&s.region.source)].into_iter().flatten() {
                        let loose = matches!(src, Source::Env(_) | Source::DotEnv { .. });
                        proptest::prop_assert!(!loose, "{} leaked into a chosen profile", src);
                    }
                }
            }
            Err(e) => proptest::prop_assert!(
                matches!(e, ConfigError::UntrustedEndpoint { .. }),
                "unexpected error: {e}"
            ),
        }
    }
}

/// A profile file that others can write (or whose folder they can) could run a command or send
/// the secret anywhere: it is refused, and its command never runs.
#[test]
fn a_profile_file_others_can_write_is_refused_and_runs_nothing() {
    let sb = Sandbox::new();
    let marker = sb.path("ran");
    let p = sb.write(
        OWN,
        &format!(
            "[profiles.default]\nclient_id = \"id\"\nclient_secret_command = \"touch {}\"\n",
            marker.display()
        ),
    );
    set_mode(&p, 0o666);
    let e = sb.loader(&[]).load().unwrap_err().to_string();
    assert!(
        e.contains("others can write it") && e.contains("chmod go-w"),
        "{e}"
    );
    assert!(!marker.exists(), "the command ran");
    set_mode(&p, 0o600);
    set_mode(p.parent().unwrap(), 0o777);
    let e = sb.loader(&[]).load().unwrap_err().to_string();
    assert!(e.contains("others can write its folder"), "{e}");
    assert!(!marker.exists(), "the command ran");
    set_mode(p.parent().unwrap(), 0o700);
    // Once fixed, the command runs (and here fails: `touch` prints no secret).
    let _ = sb.loader(&[]).load();
    assert!(marker.exists());
}

/// A profile file that another user owns (or whose folder another user owns) is refused, as git
/// refuses a repository another user owns: they could make it run a command. Root's are read.
#[test]
#[cfg_attr(not(root_user), ignore = "needs root, to give a file to another user")]
fn a_profile_another_user_owns_is_refused_and_runs_nothing() {
    use std::os::unix::fs::chown;
    let sb = Sandbox::new();
    let marker = sb.path("ran");
    let p = sb.write(
        OWN,
        &format!(
            "[profiles.default]\nclient_id = \"id\"\nclient_secret_command = \"touch {}\"\n",
            marker.display()
        ),
    );
    chown(&p, Some(65534), None).unwrap();
    let e = sb.loader(&[]).load().unwrap_err().to_string();
    assert!(
        e.contains("another user (uid 65534) owns it") && e.contains("chown"),
        "{e}"
    );
    assert!(!marker.exists(), "the command ran");
    chown(&p, Some(0), None).unwrap();
    chown(p.parent().unwrap(), Some(65534), None).unwrap();
    let e = sb.loader(&[]).load().unwrap_err().to_string();
    assert!(
        e.contains("another user (uid 65534) owns its folder"),
        "{e}"
    );
    assert!(!marker.exists(), "the command ran");
    chown(p.parent().unwrap(), Some(0), None).unwrap();
    // Root's file in root's folder is read, and its command runs.
    let _ = sb.loader(&[]).load();
    assert!(marker.exists());
}

/// A `.env` or profile file that is a FIFO or a device is refused at once, naming the file: a
/// cloned folder's `.env` must not hang the tool or fill its memory.
#[test]
fn a_dotenv_or_profile_that_is_not_a_regular_file_is_refused_without_waiting() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("work")).unwrap();
    std::fs::create_dir_all(sb.path("config/genesys-auth")).unwrap();
    let dotenv = sb.path("work/.env");
    let profile = sb.path(OWN);
    let mkfifo = |p: &Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {}", p.display());
    };
    // Each load runs on its own thread, so that a hang fails the test instead of stalling it.
    let load = |env: &'static [(&'static str, &'static str)]| {
        let loader = sb.loader(env);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(
                loader
                    .load()
                    .map(|s| s.warnings.join("\n"))
                    .map_err(|e| e.to_string()),
            );
        });
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("loading the settings hung on a FIFO or a device")
    };
    mkfifo(&dotenv);
    let e = load(&[]).unwrap_err();
    assert!(
        e.contains(".env") && e.contains("a FIFO, not a regular file"),
        "{e}"
    );
    // Not needed: skipped with a warning that names it.
    let w = load(&COMPLETE_ENV).unwrap();
    assert!(w.contains(".env") && w.contains("a FIFO"), "{w}");
    std::fs::remove_file(&dotenv).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &dotenv).unwrap();
    let e = load(&[]).unwrap_err();
    assert!(e.contains(".env") && e.contains("a device"), "{e}");
    std::fs::remove_file(&dotenv).unwrap();
    mkfifo(&profile);
    let e = load(&[]).unwrap_err();
    assert!(e.contains("config.toml") && e.contains("a FIFO"), "{e}");
    std::fs::remove_file(&profile).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &profile).unwrap();
    let e = load(&[]).unwrap_err();
    assert!(e.contains("config.toml") && e.contains("a device"), "{e}");
}

/// Relative paths in a profile are the profile file's neighbours, wherever the tool runs.
#[test]
fn relative_paths_in_a_profile_resolve_against_its_folder() {
    let sb = Sandbox::new();
    sb.write("config/genesys-auth/secret.txt", "rel-secret-Q2\n");
    sb.write(
        OWN,
        "[profiles.default]\nclient_id = \"id\"\nclient_secret_file = \"secret.txt\"\nca_file = \"ca.pem\"\nclient_cert = \"certs/me.pem\"\nclient_key = \"/abs/me.key\"\n",
    );
    let s = sb.loader(&[]).load().unwrap();
    let dir = sb.path("config/genesys-auth");
    assert_eq!(
        s.client_secret.as_ref().unwrap().value.expose_secret(),
        "rel-secret-Q2"
    );
    assert_eq!(s.ca_file.as_ref().unwrap().value, dir.join("ca.pem"));
    let (cert, key) = s.client_cert.as_ref().unwrap();
    assert_eq!(cert.value, dir.join("certs/me.pem"));
    assert_eq!(key.value, Path::new("/abs/me.key"));
}

/// A relative `XDG_CONFIG_HOME` is ignored (the XDG specification): the profile file never
/// depends on the working directory.
#[test]
fn a_relative_xdg_config_home_is_ignored() {
    let sb = Sandbox::new();
    let env: HashMap<String, String> = [
        ("XDG_CONFIG_HOME", "relative/config"),
        ("HOME", sb.path("home").to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| ((*k).into(), (*v).into()))
    .collect();
    let s = Settings::loader().env(env).dotenv(None).load().unwrap();
    assert!(
        s.looked_at.iter().any(|l| l.contains(&format!(
            "{}",
            sb.path("home/.config/genesys-auth").display()
        ))),
        "{:?}",
        s.looked_at
    );
    assert!(!s.looked_at.iter().any(|l| l.contains("relative/config")));
}
