//! The file store on a real file system: permissions, atomic replace, no secret, corrupt and
//! foreign entries, an unwritable directory, and the provider reading through it.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use common::*;
use genesys_auth::store::{StoreKey, StoredToken};
use genesys_auth::{FileStore, TokenProvider, TokenStore};

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
    let entries = store.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].client_id, ID);
    assert_eq!(store.clear().unwrap(), 1);
    assert!(store.entries().is_empty());
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
