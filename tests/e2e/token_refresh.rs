//! A signed-in user's token is refreshed without asking again: before expiry, once across processes,
//! across key rotation; a revoked sign-in becomes "login required".

use std::sync::Arc;
use std::time::Duration;

use ssofs::config::{self, Sources};
use ssofs::identity::{StoreTokenSource, TokenError, TokenSource, TokenStore, login};

struct Signed {
    stack: ssofs_devstack::Running,
    profile: config::Profile,
    store_dir: std::path::PathBuf,
}

async fn signed_in(tag: &str, user: &str, tweak: impl FnOnce(&mut ssofs_devstack::Config)) -> Signed {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("ssofs-refresh-{tag}-{}-{n}", std::process::id()));
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.auto_approve = Some(user.into());
    cfg.device_code_interval = Duration::from_secs(1);
    tweak(&mut cfg);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let profile =
        config::load_profile(&Sources { extra: Some(stack.profile_file.clone()), ..Default::default() }, None).unwrap();
    let tokens = login::device_code(&profile, &mut Vec::new()).await.unwrap();
    let store_dir = dir.join("state");
    TokenStore::open(&store_dir).unwrap().save(&profile.name, &tokens).unwrap();
    Signed { stack, profile, store_dir }
}

impl Signed {
    fn source(&self, margin: Duration) -> StoreTokenSource {
        StoreTokenSource::new(self.profile.clone(), TokenStore::open(&self.store_dir).unwrap(), margin)
    }

    fn stored_refresh_token(&self) -> String {
        TokenStore::open(&self.store_dir).unwrap().load(&self.profile.name).unwrap().unwrap().refresh_token.unwrap()
    }

    async fn control(&self, path: &str, form: &[(&str, &str)]) {
        let resp =
            reqwest::Client::new().post(format!("{}/{path}", self.stack.control_url)).form(form).send().await.unwrap();
        assert!(resp.status().is_success());
    }
}

fn kid(jwt: &str) -> String {
    use base64::Engine;
    let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&h).unwrap()["kid"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshes_only_when_close_to_expiry() {
    let s = signed_in("expiry", "alice", |c| c.id_token_lifetime = Duration::from_secs(120)).await;
    let original = s.source(Duration::from_secs(10)).token().await.unwrap();
    // Two minutes left and a 10 s margin: no refresh.
    assert_eq!(original.secret(), s.source(Duration::from_secs(10)).token().await.unwrap().secret());
    // A 5-minute margin (the default) makes the same token too old: refreshed, new token stored.
    let rt_before = s.stored_refresh_token();
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new iat, so a different token
    let refreshed = s.source(Duration::from_secs(300)).token().await.unwrap();
    assert_ne!(refreshed.secret(), original.secret());
    assert!(refreshed.expires_at > original.expires_at);
    assert_ne!(s.stored_refresh_token(), rt_before, "the new refresh token is kept");
    s.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_refreshing_at_once_share_one_refresh() {
    let s = Arc::new(signed_in("race", "oscar", |_| {}).await);
    let original = s.source(Duration::from_secs(10)).token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Separate threads with separate runtimes and store handles, as two processes would have.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(async { s.source(Duration::from_secs(10)).refresh().await })
            })
        })
        .collect();
    let tokens: Vec<_> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
    assert_ne!(tokens[0].secret(), original.secret());
    assert_eq!(tokens[0].secret(), tokens[1].secret(), "the second waited for the first and used its token");
    // The refresh token left in the store works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = s.source(Duration::from_secs(10)).refresh().await.unwrap();
    assert_ne!(again.secret(), tokens[0].secret());
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_in_the_middle_of_a_session() {
    let s = signed_in("rotation", "alice", |_| {}).await;
    let source = s.source(Duration::from_secs(10));
    let before = source.token().await.unwrap();
    s.control("rotate-keys", &[]).await;
    let after = source.refresh().await.unwrap();
    assert_ne!(kid(after.secret()), kid(before.secret()), "signed with the new key and verified");
    s.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_sign_in_means_login_required() {
    let s = signed_in("revoked", "alice", |_| {}).await;
    let source = s.source(Duration::from_secs(10));
    s.control("revoke", &[("user", "alice")]).await;
    match source.refresh().await {
        Err(TokenError::LoginRequired { profile, reason }) => {
            assert_eq!(profile, "devstack");
            assert!(reason.contains("AADSTS50173"), "{reason}");
        }
        other => panic!("expected LoginRequired, got {other:?}"),
    }
    let message = source.refresh().await.unwrap_err().to_string();
    assert!(message.contains("ssofs login --profile devstack"), "{message}");
    s.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn not_signed_in_and_idp_down_are_told_apart() {
    let s = signed_in("down", "alice", |_| {}).await;
    let other = StoreTokenSource::new(
        config::Profile { name: "nobody".into(), ..s.profile.clone() },
        TokenStore::open(&s.store_dir).unwrap(),
        Duration::from_secs(10),
    );
    assert!(matches!(other.token().await, Err(TokenError::LoginRequired { .. })));
    let source = s.source(Duration::from_secs(10));
    let Signed { stack, .. } = s;
    stack.shutdown().await;
    match source.refresh().await {
        Err(TokenError::Unavailable(why)) => assert!(!why.is_empty()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
