//! Provider behaviour against an in-process fake STS and a switchable fake token source.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::credentials::fake_sts::{self, FakeSts, FakeTokens, Mode};

fn options(background: bool) -> ProviderOptions {
    ProviderOptions {
        background_refresh: background,
        retry_min: Duration::from_millis(100),
        retry_max: Duration::from_millis(400),
        attempt_timeout: Duration::from_secs(10),
    }
}

fn provider(sts: &FakeSts, tokens: Arc<FakeTokens>, background: bool) -> CredentialProvider {
    let settings = StsSettings {
        endpoint: sts.endpoint.clone(),
        client_id: "client".into(),
        role_arn: None,
        role_session_name: "ssofs-test".into(),
        duration_seconds: None,
        policy: None,
        ca_file: None,
        insecure_tls: false,
    };
    CredentialProvider::new(StsClient::new(settings).unwrap(), tokens, "test", options(background))
}

/// Polls `check` every 50 ms for at most `limit`.
async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

#[tokio::test]
async fn caches_until_renewal_is_due() {
    let sts = FakeSts::issuing(Duration::from_secs(3600), Duration::ZERO).await;
    let p = provider(&sts, FakeTokens::new(), false);
    let a = p.credentials().await.unwrap();
    let b = p.credentials().await.unwrap();
    assert_eq!(a.access_key_id(), "AK1");
    assert_eq!(b.access_key_id(), "AK1");
    assert_eq!(sts.calls(), 1);
    assert_eq!(p.stats().sts_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_callers_on_expired_credentials_make_one_sts_call() {
    let sts = FakeSts::issuing(Duration::from_secs(3), Duration::from_millis(300)).await;
    let p = provider(&sts, FakeTokens::new(), false);
    p.credentials().await.unwrap();
    assert!(eventually(Duration::from_secs(10), || p.state().usable(std::time::SystemTime::now()).is_none()).await);
    let before = sts.calls();
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (p, barrier) = (p.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                p.credentials().await.map(|c| c.access_key_id().to_string())
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "AK2");
    }
    assert_eq!(sts.calls() - before, 1);
}

#[tokio::test]
async fn renews_in_the_background_before_expiry() {
    let sts = FakeSts::issuing(Duration::from_secs(6), Duration::ZERO).await;
    let p = provider(&sts, FakeTokens::new(), true);
    let first = p.credentials().await.unwrap();
    let first_expiry = first.expiry().unwrap();
    // Renewal is due at half the lifetime (3 s); nobody asks for credentials meanwhile.
    assert!(eventually(Duration::from_secs(10), || sts.calls() >= 2).await, "no background renewal");
    let now = std::time::SystemTime::now();
    assert!(now < first_expiry, "renewed only after expiry");
    // The renewed credentials are installed once STS's answer is read: on a loaded machine that can
    // be a moment after the call was counted.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while p.credentials().await.unwrap().access_key_id() != "AK2" {
        assert!(std::time::Instant::now() < deadline, "the background renewal was never installed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sts.calls(), 2, "served by the background renewal, not another call");
}

#[tokio::test]
async fn outage_keeps_current_credentials_then_denies_promptly_then_recovers() {
    let sts = FakeSts::issuing(Duration::from_secs(4), Duration::ZERO).await;
    let tokens = FakeTokens::new();
    let p = provider(&sts, tokens.clone(), true);
    p.credentials().await.unwrap();
    tokens.set(Mode::Unavailable);
    // Until expiry the current credentials keep working, though renewal (due at 2 s) fails.
    assert!(eventually(Duration::from_secs(10), || p.stats().failed_renewals >= 1).await);
    if p.state().usable(std::time::SystemTime::now()).is_some() {
        assert_eq!(p.credentials().await.unwrap().access_key_id(), "AK1");
    }
    // After expiry: the typed permission error, at once (bounded so a hang fails the test).
    assert!(eventually(Duration::from_secs(10), || p.state().usable(std::time::SystemTime::now()).is_none()).await);
    for _ in 0..20 {
        let err = tokio::time::timeout(Duration::from_secs(2), p.credentials()).await.expect("no hang").unwrap_err();
        assert!(err.is_permission_denied() && err.is_transient(), "{err}");
        assert!(err.to_string().contains("ssofs login --profile test"), "{err}");
    }
    // The source works again: access returns without anyone restarting anything.
    tokens.set(Mode::Works);
    let mut recovered = None;
    for _ in 0..100 {
        if let Ok(c) = p.credentials().await {
            recovered = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recovered.expect("recovered").access_key_id(), "AK2");
}

#[tokio::test]
async fn login_required_is_permanent_and_says_what_to_run() {
    let sts = FakeSts::issuing(Duration::from_secs(3600), Duration::ZERO).await;
    let tokens = FakeTokens::new();
    tokens.set(Mode::LoginRequired);
    let p = provider(&sts, tokens, false);
    let err = p.credentials().await.unwrap_err();
    assert!(err.is_permission_denied() && err.needs_login() && !err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("Run `ssofs login --profile test`"), "{err}");
    assert_eq!(sts.calls(), 0);
}

#[tokio::test]
async fn expired_token_refusal_is_retried_once_with_a_refreshed_token() {
    let sts = FakeSts::issuing(Duration::from_secs(3600), Duration::ZERO).await;
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    sts.set_script(move |_| {
        if first.swap(false, Ordering::SeqCst) {
            (400, fake_sts::error_reply("InvalidParameterValue", "token is expired"))
        } else {
            (200, fake_sts::ok_reply("AKR", Duration::from_secs(3600)))
        }
    });
    let tokens = FakeTokens::new();
    let p = provider(&sts, tokens.clone(), false);
    assert_eq!(p.credentials().await.unwrap().access_key_id(), "AKR");
    assert_eq!((sts.calls(), tokens.refresh_calls.load(Ordering::SeqCst)), (2, 1));
}

#[tokio::test]
async fn server_errors_are_transient_and_garbage_is_named() {
    let sts = FakeSts::start(Duration::ZERO, |_| (503, "Service Unavailable".into())).await;
    let p = provider(&sts, FakeTokens::new(), false);
    let err = p.credentials().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");

    let sts = FakeSts::start(Duration::ZERO, |_| (200, "<html>login portal</html>".into())).await;
    let p = provider(&sts, FakeTokens::new(), false);
    let err = p.credentials().await.unwrap_err();
    assert!(!err.is_transient() && err.to_string().contains("got <html>"), "{err}");
}

#[tokio::test]
async fn force_refresh_replaces_valid_credentials_once_for_concurrent_callers() {
    let sts = FakeSts::issuing(Duration::from_secs(3600), Duration::from_millis(200)).await;
    let p = provider(&sts, FakeTokens::new(), false);
    p.credentials().await.unwrap();
    let stale = p.current_access_key();
    let (a, b) = tokio::join!(p.replace(stale.as_deref()), p.replace(stale.as_deref()));
    a.unwrap();
    b.unwrap();
    assert_eq!(sts.calls(), 2);
    assert_eq!(p.current_access_key().as_deref(), Some("AK2"));
}

#[tokio::test]
async fn form_carries_duration_role_and_session_name() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let sts = FakeSts::start(Duration::ZERO, move |form| {
        *s.lock().unwrap() = form.to_vec();
        (200, fake_sts::ok_reply("AK", Duration::from_secs(900)))
    })
    .await;
    let settings = StsSettings {
        endpoint: sts.endpoint.clone(),
        client_id: "c".into(),
        role_arn: Some("arn:minio:iam:::role/x".into()),
        role_session_name: "ssofs-test".into(),
        duration_seconds: Some(900),
        policy: Some("{\"Version\":\"2012-10-17\"}".into()),
        ca_file: None,
        insecure_tls: false,
    };
    let client = StsClient::new(settings).unwrap();
    let token = crate::identity::WebIdentityToken::new("a+b/c=".into(), std::time::SystemTime::now());
    let creds = client.assume_role(&token).await.unwrap();
    assert!(creds.lifetime() > Duration::from_secs(890) && creds.lifetime() <= Duration::from_secs(901));
    let form = seen.lock().unwrap().clone();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("Action").as_deref(), Some("AssumeRoleWithWebIdentity"));
    assert_eq!(get("Version").as_deref(), Some("2011-06-15"));
    assert_eq!(get("WebIdentityToken").as_deref(), Some("a+b/c="));
    assert_eq!(get("DurationSeconds").as_deref(), Some("900"));
    assert_eq!(get("RoleArn").as_deref(), Some("arn:minio:iam:::role/x"));
    assert_eq!(get("RoleSessionName").as_deref(), Some("ssofs-test"));
    assert_eq!(get("Policy").as_deref(), Some("{\"Version\":\"2012-10-17\"}"));
}

#[test]
fn renewal_time_follows_the_margins() {
    let at = |lifetime: u64| {
        let now = std::time::SystemTime::now();
        let c = StsCredentials::for_tests(now, Duration::from_secs(lifetime));
        c.expires_at.duration_since(renew_time(&c)).unwrap().as_secs()
    };
    assert_eq!(at(3600), 720); // 20% (12 min) comes before 5 min
    assert_eq!(at(900), 300); // 5 min comes before 20% (3 min)
    assert_eq!(at(30), 15); // short: not before half the lifetime
}

/// Captures everything logged on this thread (current-thread runtime: the background task too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn outage_is_logged_once_and_secrets_never() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sts = FakeSts::issuing(Duration::from_secs(3), Duration::ZERO).await;
    let tokens = FakeTokens::new();
    let p = provider(&sts, tokens.clone(), true);
    p.credentials().await.unwrap();
    tokens.set(Mode::LoginRequired);
    assert!(eventually(Duration::from_secs(10), || p.stats().failed_renewals >= 3).await);
    for _ in 0..10 {
        let _ = p.credentials().await;
    }
    tokens.set(Mode::Works);
    assert!(eventually(Duration::from_secs(10), || p.stats().failed_renewals > 0 && p.state().failure.is_none()).await);
    let _ = format!("{p:?}");

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("cannot renew S3 credentials for profile test").count(), 1, "{text}");
    assert!(text.contains("ssofs login --profile test"), "{text}");
    assert_eq!(text.matches("access restored").count(), 1, "{text}");
    for secret in [fake_sts::SECRET_KEY, fake_sts::SESSION_TOKEN, fake_sts::WEB_TOKEN, "fake-web-identity-signature"] {
        assert!(!text.contains(secret), "secret {secret} logged:\n{text}");
    }
    let debug = format!("{p:?}");
    assert!(!debug.contains(fake_sts::SECRET_KEY) && !debug.contains(fake_sts::SESSION_TOKEN), "{debug}");
}

/// MinIO's claim mode takes no RoleArn, but AWS-style STS answers MissingParameter to any call
/// without a RoleSessionName: it is sent every time.
#[tokio::test]
async fn claim_mode_sends_a_role_session_name_too() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let sts = FakeSts::start(Duration::ZERO, move |form| {
        *s.lock().unwrap() = form.to_vec();
        (200, fake_sts::ok_reply("AK", Duration::from_secs(900)))
    })
    .await;
    let settings = StsSettings {
        endpoint: sts.endpoint.clone(),
        client_id: "c".into(),
        role_arn: None,
        role_session_name: "ssofs-test".into(),
        duration_seconds: None,
        policy: None,
        ca_file: None,
        insecure_tls: false,
    };
    let client = StsClient::new(settings).unwrap();
    let token = crate::identity::WebIdentityToken::new("t".into(), std::time::SystemTime::now());
    client.assume_role(&token).await.unwrap();
    let form = seen.lock().unwrap().clone();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("RoleSessionName").as_deref(), Some("ssofs-test"));
    assert_eq!(get("RoleArn"), None);
}

/// Ceph answers a DurationSeconds out of its bounds with 400 InvalidArgument and no message; the
/// error must still say it is about duration_seconds, what was sent and what servers accept.
#[tokio::test]
async fn a_refused_duration_names_duration_seconds_and_the_bounds() {
    let sts = FakeSts::start(Duration::ZERO, |_| (400, fake_sts::error_reply("InvalidArgument", ""))).await;
    let settings = StsSettings {
        endpoint: sts.endpoint.clone(),
        client_id: "client".into(),
        role_arn: None,
        role_session_name: "ssofs-test".into(),
        duration_seconds: Some(100),
        policy: None,
        ca_file: None,
        insecure_tls: false,
    };
    let p = CredentialProvider::new(StsClient::new(settings).unwrap(), FakeTokens::new(), "test", options(false));
    let err = p.credentials().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("duration_seconds") && text.contains("-o duration_seconds="), "{text}");
    assert!(text.contains("100"), "{text}");
    assert!(text.contains("900") && text.contains("43200") && text.contains("31536000"), "{text}");
    assert!(!err.is_transient(), "{err:?}");
}
