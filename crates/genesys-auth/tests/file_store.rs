//! The file store on a real file system: permissions, atomic replace, no secret, corrupt and
//! foreign entries, an unwritable directory, and the provider reading through it.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use common::*;
use genesys_auth::{FileStore, TokenProvider, TokenStore};
use genesys_auth::{StoreKey, StoredToken};

fn provider_in(dir: &Path, settings: genesys_auth::Settings) -> TokenProvider {
    TokenProvider::builder(settings)
        .store(Arc::new(FileStore::new(dir)) as Arc<dyn TokenStore>)
        .build()
        .unwrap()
}

/// A token from a new provider over the file store in `dir`, as a new process would get it.
async fn token_in(dir: &Path, settings: genesys_auth::Settings) -> Arc<genesys_auth::AccessToken> {
    provider_in(dir, settings).token().await.unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn entry_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_token_outlives_the_provider_in_a_private_file_without_the_secret() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache/genesys-auth");
    let t = token_in(&dir, settings(&emu)).await;
    let again = token_in(&dir, settings(&emu)).await;
    assert!(again.same_token(&t));
    assert_eq!(emu.counters().token_requests, 1);
    assert_eq!(mode(&dir), 0o700);
    let files = entry_files(&dir);
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&files[0]), 0o600);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains(SECRET), "the cache never holds the secret");
    assert!(text.contains(t.secret()), "it holds the token");
    // The file name is an opaque hash.
    assert!(!files[0].to_string_lossy().contains(ID));
}

#[tokio::test]
async fn a_changed_secret_or_other_scopes_miss_the_cache() {
    let emu = genesys_emulator::Emulator::builder()
        .client(genesys_emulator::ClientSpec::new(ID, SECRET).scopes(["a", "b"]))
        .client(genesys_emulator::ClientSpec::new("other", "other-secret"))
        .start()
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    token_in(tmp.path(), settings(&emu)).await;
    provider_in(tmp.path(), loader(&emu).scopes(["a"]).load().unwrap())
        .token()
        .await
        .unwrap();
    assert_eq!(emu.counters().tokens_issued, 2);
    let wrong = loader(&emu).client_secret("rotated").load().unwrap();
    assert!(
        provider_in(tmp.path(), wrong).token().await.is_err(),
        "a changed secret is not served from the cache"
    );
    assert_eq!(entry_files(tmp.path()).len(), 2);
}

#[tokio::test]
async fn corrupt_or_truncated_entries_are_ignored_and_replaced() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    token_in(tmp.path(), settings(&emu)).await;
    let file = entry_files(tmp.path()).remove(0);
    for junk in [
        &b"{\"version\":1,\"login_url\""[..],
        b"",
        b"\xff\xfe garbage",
        b"{\"version\":9}",
    ] {
        std::fs::write(&file, junk).unwrap();
        let t = token_in(tmp.path(), settings(&emu)).await;
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(t.secret()), "replaced with the new token");
    }
    assert_eq!(emu.counters().tokens_issued, 5);
    // Well-formed, for these very settings, but with times no clock can hold.
    let mut entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    entry["expires_at"] = serde_json::json!(u64::MAX);
    std::fs::write(&file, entry.to_string()).unwrap();
    token_in(tmp.path(), settings(&emu)).await;
    assert_eq!(emu.counters().tokens_issued, 6);
}

#[tokio::test]
async fn an_entry_readable_by_others_is_not_trusted() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let first = token_in(tmp.path(), settings(&emu)).await;
    let file = entry_files(tmp.path()).remove(0);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let second = token_in(tmp.path(), settings(&emu)).await;
    assert!(!second.same_token(&first));
    assert_eq!(mode(&file), 0o600, "replaced with a private file");
}

#[tokio::test]
async fn an_unwritable_directory_degrades_to_no_persistence() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    // A file where the directory should be: nothing can be created under it, even as root.
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let dir = blocker.join("genesys-auth");
    let p = provider_in(&dir, settings(&emu));
    let t = p.token().await.unwrap();
    assert!(
        p.token().await.unwrap().same_token(&t),
        "still cached in memory"
    );
    assert!(provider_in(&dir, settings(&emu)).token().await.is_ok());
    assert_eq!(emu.counters().tokens_issued, 2);
}

#[tokio::test]
async fn a_stored_token_near_expiry_is_refreshed_and_kept_if_that_fails() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(&emu);
    let store = FileStore::new(tmp.path());
    let key = StoreKey::new(&s, &s.credentials().unwrap());
    let now = std::time::SystemTime::now();
    let near = StoredToken {
        access_token: secrecy::SecretString::from("old-but-valid".to_owned()),
        scopes: vec![],
        obtained_at: now - std::time::Duration::from_secs(86_000),
        expires_at: now + std::time::Duration::from_secs(400),
    };
    store.save(&key, &near).await.unwrap();
    // Refresh-due on load: a new token is fetched.
    let t = token_in(tmp.path(), settings(&emu)).await;
    assert_ne!(t.secret(), "old-but-valid");
    // And if the fetch fails, the stored token, still valid, is used.
    store.save(&key, &near).await.unwrap();
    let s = loader(&emu)
        .retry(genesys_auth::RetryPolicy::none())
        .load()
        .unwrap();
    emu.inject(
        genesys_emulator::Target::Token,
        genesys_emulator::Fault::status(503),
        1,
    );
    let t = token_in(tmp.path(), s).await;
    assert_eq!(t.secret(), "old-but-valid");
}

#[tokio::test]
async fn an_expired_stored_token_is_never_served() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(&emu);
    let store = FileStore::new(tmp.path());
    let key = StoreKey::new(&s, &s.credentials().unwrap());
    let now = std::time::SystemTime::now();
    store
        .save(
            &key,
            &StoredToken {
                access_token: secrecy::SecretString::from("expired".to_owned()),
                scopes: vec![],
                obtained_at: now - std::time::Duration::from_secs(3600),
                expires_at: now - std::time::Duration::from_secs(1),
            },
        )
        .await
        .unwrap();
    let t = token_in(tmp.path(), s).await;
    assert_ne!(t.secret(), "expired");
}

#[tokio::test]
async fn entries_list_and_clear() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    token_in(tmp.path(), settings(&emu)).await;
    let store = FileStore::new(tmp.path());
    let entries = store.entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].client_id, ID);
    assert_eq!(store.clear().unwrap(), 1);
    assert!(store.entries().unwrap().is_empty());
}

#[tokio::test]
async fn forget_removes_the_entry_and_the_token_is_not_reloaded() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let p = provider_in(tmp.path(), settings(&emu));
    let t = p.token().await.unwrap();
    p.forget().await.unwrap();
    assert!(entry_files(tmp.path()).is_empty());
    assert!(!p.token().await.unwrap().same_token(&t));
}

#[tokio::test]
async fn an_entry_owned_by_another_user_is_not_trusted() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let first = token_in(tmp.path(), settings(&emu)).await;
    let file = entry_files(tmp.path()).remove(0);
    // Handing the file to another user needs root; CI runs as root.
    if let Err(e) = std::os::unix::fs::chown(&file, Some(65_534), Some(65_534)) {
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
        eprintln!("not root: the foreign-owner case cannot be set up here");
        return;
    }
    let second = token_in(tmp.path(), settings(&emu)).await;
    assert!(
        !second.same_token(&first),
        "a foreign-owned entry is ignored"
    );
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        std::fs::metadata(&file).unwrap().uid(),
        unsafe_free_euid(),
        "and replaced by ours"
    );
}

/// This process's effective uid, read from a file it creates.
fn unsafe_free_euid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid()
}

#[tokio::test]
async fn entries_with_unusable_tokens_or_times_are_refused_and_overwritten() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    token_in(tmp.path(), settings(&emu)).await;
    let file = entry_files(tmp.path()).remove(0);
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let now = good["obtained_at"].as_u64().unwrap();
    let variants: Vec<(&str, serde_json::Value)> = vec![
        ("access_token", serde_json::json!("tok\r\nX-Injected: 1")),
        ("access_token", serde_json::json!("tok en")),
        ("access_token", serde_json::json!("tök")),
        ("access_token", serde_json::json!("")),
        // Expiry before issue, and a lifetime beyond Genesys' 48 h.
        ("expires_at", serde_json::json!(now - 1)),
        ("expires_at", serde_json::json!(now + 100 * 3600)),
        ("version", serde_json::json!("1")),
        ("scopes", serde_json::json!("not a list")),
    ];
    let mut issued = emu.counters().tokens_issued;
    for (field, value) in variants {
        let mut entry = good.clone();
        entry[field] = value;
        std::fs::write(&file, entry.to_string()).unwrap();
        let t = token_in(tmp.path(), settings(&emu)).await;
        issued += 1;
        assert_eq!(
            emu.counters().tokens_issued,
            issued,
            "{field}: fetched anew"
        );
        assert!(t.secret().bytes().all(|b| b.is_ascii_graphic()));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(t.secret()), "{field}: overwritten");
    }
}

#[tokio::test]
async fn a_symlinked_cache_directory_is_refused_and_its_target_untouched() {
    use std::os::unix::fs::symlink;
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("genesys-auth");
    symlink(&target, &dir).unwrap();
    let p = provider_in(&dir, settings(&emu));
    p.token().await.unwrap();
    assert_eq!(mode(&target), 0o755, "the link's target is not chmodded");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing written through the link"
    );
    assert!(
        std::fs::symlink_metadata(&dir)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Listing and clearing refuse the link as writing does: clearing through it would delete
    // whatever the link points at.
    std::fs::write(target.join("victim.json"), "{}").unwrap();
    std::fs::write(target.join("victim.lock"), "").unwrap();
    let store = FileStore::new(&dir);
    let err = store.clear().unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    let err = store.entries().unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    assert!(target.join("victim.json").exists() && target.join("victim.lock").exists());
}

#[tokio::test]
async fn symlinked_lock_entry_and_failure_files_are_never_followed() {
    use std::os::unix::fs::symlink;
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    token_in(&dir, settings(&emu)).await;
    let entry = entry_files(&dir).remove(0);
    let id = entry.file_stem().unwrap().to_string_lossy().into_owned();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Every file the store opens by name is a link to the victim.
    for name in [
        format!("{id}.json"),
        format!("{id}.lock"),
        format!("{id}.failure.json"),
    ] {
        let p = dir.join(&name);
        let _ = std::fs::remove_file(&p);
        symlink(&victim, &p).unwrap();
    }
    let t = token_in(&dir, settings(&emu)).await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        emu.counters().tokens_issued,
        2,
        "the linked entry was not trusted"
    );
    // The entry itself was replaced by a real file (rename replaces the link, not its target).
    let text = std::fs::read_to_string(dir.join(format!("{id}.json"))).unwrap();
    assert!(text.contains(t.secret()));
    assert!(
        !std::fs::symlink_metadata(dir.join(format!("{id}.json")))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test]
async fn a_cache_directory_others_can_write_is_refused_with_the_fix() {
    let emu = emulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let store = FileStore::new(&dir);
    let s = settings(&emu);
    let key = StoreKey::new(&s, &s.credentials().unwrap());
    let token = provider_in(tmp.path().join("other").as_path(), settings(&emu))
        .token()
        .await
        .unwrap();
    let e = store
        .save(&key, &StoredToken::from_token(&token))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("chmod 700") && e.contains("shared"), "{e}");
    assert_eq!(mode(&dir), 0o777, "left as it is, not silently changed");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // The provider still gives tokens, without the cache.
    assert!(provider_in(&dir, settings(&emu)).token().await.is_ok());
}

/// Twenty providers (as twenty processes would be) on one cache directory, against a token
/// endpoint that answers 503 to everything: the first to take the lock tries as often as one
/// process would, records its failure, and the others back off with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_facing_a_storm_makes_no_more_requests_than_one_process() {
    for fault in [
        genesys_emulator::Fault::status(503),
        genesys_emulator::Fault::status(400),
    ] {
        let emu = emulator().await;
        emu.inject(genesys_emulator::Target::Token, fault.clone(), 1000);
        let tmp = tempfile::tempdir().unwrap();
        let (_, clock) = clock();
        let providers: Vec<_> = (0..20)
            .map(|_| {
                TokenProvider::builder(settings(&emu))
                    .store(Arc::new(FileStore::new(tmp.path())) as Arc<dyn TokenStore>)
                    .clock(clock.clone())
                    .build()
                    .unwrap()
            })
            .collect();
        let results = futures_util::future::join_all(providers.iter().map(|p| p.token())).await;
        let errors: Vec<String> = results
            .into_iter()
            .map(|r| r.unwrap_err().to_string())
            .collect();
        let one_process = genesys_auth::RetryPolicy::default().max_attempts as u64;
        assert_eq!(
            emu.counters().token_requests,
            one_process,
            "{fault:?}: {errors:?}"
        );
        // The others report the shared failure: a server error saying the token store
        // recorded it (claiming no attempt of their own), or the rate limit with the wait
        // that is left.
        let shared = errors
            .iter()
            .filter(|e| e.contains("sharing this token store") || e.contains("asks to wait"))
            .count();
        assert_eq!(
            errors.iter().filter(|e| e.contains("attempts")).count(),
            1,
            "only the one that tried says how often: {errors:?}"
        );
        assert!(shared >= 19, "{errors:?}");
        for e in &errors {
            assert!(!e.contains(SECRET));
        }
    }
}
