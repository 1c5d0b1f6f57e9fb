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

#[test]
fn precedence_explicit_then_env_then_dotenv_then_profile() {
    let sb = Sandbox::new();
    sb.write(
        "work/.env",
        "GENESYS_CLIENT_ID=dotenv-id\nGENESYS_CLIENT_SECRET=dotenv-secret\nGENESYS_REGION=jp\nGENESYS_SCOPES=\"a:b c:d\"\n",
    );
    sb.write(
        OWN,
        "[profiles.default]\nclient_id = \"profile-id\"\nclient_secret = \"profile-secret\"\nregion = \"eu-west-2\"\n",
    );
    // Profile only fills what nobody else set.
    let s = sb.loader(&[]).load().unwrap();
    assert_eq!(s.client_id.as_ref().unwrap().value, "dotenv-id");
    assert!(
        matches!(&s.client_id.as_ref().unwrap().source, Source::DotEnv { var, .. } if var == "GENESYS_CLIENT_ID")
    );
    assert_eq!(s.region.value.name(), "ap-northeast-1");
    assert_eq!(s.scopes.as_ref().unwrap().value, vec!["a:b", "c:d"]);

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
    ] {
        let s = sb.loader(&[("GENESYS_REGION", host)]).load().unwrap();
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("looks like a Genesys Cloud host")
                    && w.contains("login.mypurecloud.")),
            "{host}: {:?}",
            s.warnings
        );
    }
    for fine in [
        "https://gw.example.com",
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
