//! A signed-in user's S3 credentials never expire under them: renewed in the background across many
//! 30-second STS lifetimes, renewed and retried when MinIO drops a session early, a permission error
//! (not a hang) during an identity-provider outage that heals after `ssofs login`, STS refusals in
//! words, and one STS call for many callers. Everything runs against the devstack over HTTP, with the
//! identity layer's real `StoreTokenSource` (device-code login, refresh tokens) where a user is
//! signed in, and raw device-code tokens where a test needs a particular token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use serde_json::Value;
use ssofs::config::{self, Profile, Sources};
use ssofs::credentials::{self, CredentialError, CredentialProvider, ProviderOptions, StsClient, StsSettings};
use ssofs::identity::{StoreTokenSource, TokenError, TokenSource, TokenStore, WebIdentityToken, login};
use ssofs_devstack::scenario;

const BUCKET: &str = "analytics-raw";
const STS_SECONDS: u64 = 30;

struct Stack {
    running: ssofs_devstack::Running,
    profile: Profile,
    dir: std::path::PathBuf,
    http: reqwest::Client,
}

async fn stack(tag: &str, tweak: impl FnOnce(&mut ssofs_devstack::Config)) -> Stack {
    let n = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("ssofs-credentials-{tag}-{}-{n}", std::process::id()));
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    cfg.sts_min_duration = Duration::from_secs(STS_SECONDS);
    tweak(&mut cfg);
    let running = ssofs_devstack::start(cfg).await.unwrap();
    let mut profile =
        config::load_profile(&Sources { extra: Some(running.profile_file.clone()), ..Default::default() }, None)
            .unwrap();
    profile.duration_seconds = Some(STS_SECONDS);
    Stack { running, profile, dir, http: reqwest::Client::new() }
}

impl Stack {
    async fn control(&self, path: &str, form: &[(&str, &str)]) {
        let url = format!("{}/{path}", self.running.control_url);
        let resp = self.http.post(url).form(form).send().await.unwrap();
        assert!(resp.status().is_success(), "control {path}: {}", resp.status());
    }

    async fn requests(&self) -> Vec<Value> {
        let url = format!("{}/requests", self.running.control_url);
        self.http.get(url).send().await.unwrap().json::<Value>().await.unwrap().as_array().cloned().unwrap()
    }

    async fn sts_calls(&self) -> usize {
        self.requests().await.iter().filter(|r| r["op"] == "AssumeRoleWithWebIdentity").count()
    }

    /// `ssofs login` as the identity layer runs it (device code, approved through the control API),
    /// saved in this stack's token store.
    async fn login(&self, user: &str) {
        self.control("auto-approve", &[("user", user)]).await;
        let tokens = login::device_code(&self.profile, &mut Vec::new()).await.unwrap();
        TokenStore::open(&self.dir.join("state")).unwrap().save(&self.profile.name, &tokens).unwrap();
    }

    /// The identity layer's token source over this stack's store.
    fn token_source(&self, margin: Duration) -> Arc<StoreTokenSource> {
        let store = TokenStore::open(&self.dir.join("state")).unwrap();
        Arc::new(StoreTokenSource::new(self.profile.clone(), store, margin))
    }

    fn provider(&self, tokens: Arc<dyn TokenSource>, options: ProviderOptions) -> CredentialProvider {
        let sts = StsClient::new(StsSettings::from_profile(&self.profile).unwrap()).unwrap();
        CredentialProvider::new(sts, tokens, &self.profile.name, options)
    }

    fn s3(&self, provider: &CredentialProvider) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(credentials::s3_config(provider, &self.running.s3_endpoint).build())
    }

    /// An ID token for `user` straight from the token endpoint, unverified: for tests that need the
    /// token itself (tampering, clock offsets the identity layer would refuse).
    async fn raw_id_token(&self, user: &str) -> String {
        let base = format!("{}/{}/oauth2/v2.0", self.running.idp_url, scenario::TENANT_ID);
        let dc: Value = self
            .http
            .post(format!("{base}/devicecode"))
            .form(&[("client_id", scenario::CLIENT_ID), ("scope", "openid profile email offline_access")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.control("approve", &[("user_code", dc["user_code"].as_str().unwrap()), ("user", user)]).await;
        let grant = "urn:ietf:params:oauth:grant-type:device_code";
        let form = [
            ("grant_type", grant),
            ("client_id", scenario::CLIENT_ID),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ];
        let tokens: Value =
            self.http.post(format!("{base}/token")).form(&form).send().await.unwrap().json().await.unwrap();
        tokens["id_token"].as_str().unwrap_or_else(|| panic!("no id_token: {tokens}")).to_string()
    }

    async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// Hands out one fixed token: for STS refusal tests.
struct FixedToken(String);

#[async_trait::async_trait]
impl TokenSource for FixedToken {
    async fn token(&self) -> Result<WebIdentityToken, TokenError> {
        Ok(WebIdentityToken::new(self.0.clone(), SystemTime::now() + Duration::from_secs(3600)))
    }
    async fn refresh(&self) -> Result<WebIdentityToken, TokenError> {
        self.token().await
    }
}

fn error_text<E: std::error::Error + 'static>(e: &E) -> String {
    format!("{}", DisplayErrorContext(e))
}

async fn get(client: &aws_sdk_s3::Client, provider: &CredentialProvider, key: &str) -> Result<Vec<u8>, String> {
    let out = provider
        .with_fresh_credentials(|| client.get_object().bucket(BUCKET).key(key).send())
        .await
        .map_err(|e| error_text(&e))?;
    out.body.collect().await.map(|b| b.into_bytes().to_vec()).map_err(|e| error_text(&e))
}

async fn put(client: &aws_sdk_s3::Client, provider: &CredentialProvider, key: &str, body: &[u8]) -> Result<(), String> {
    provider
        .with_fresh_credentials(|| {
            client.put_object().bucket(BUCKET).key(key).body(ByteStream::from(body.to_vec())).send()
        })
        .await
        .map(|_| ())
        .map_err(|e| error_text(&e))
}

#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record<T>(&self, what: &str, r: Result<T, String>) -> Option<T> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        r.map_err(|e| self.failures.lock().unwrap().push(format!("{what}: {e}"))).ok()
    }
}

/// One worker: write an object, read it back and compare, stat it, list, sometimes delete.
async fn worker(
    client: aws_sdk_s3::Client,
    provider: CredentialProvider,
    id: usize,
    until: Instant,
    tally: Arc<Tally>,
) {
    let mut n = 0usize;
    while Instant::now() < until {
        let key = format!("workload/w{id}/object-{}", n % 5);
        let body: Vec<u8> = (0..(1024 + (n * 997 + id * 131) % 32768)).map(|i| (i * 31 + n + id) as u8).collect();
        tally.record("PutObject", put(&client, &provider, &key, &body).await);
        if let Some(got) = tally.record("GetObject", get(&client, &provider, &key).await)
            && got != body
        {
            tally.failures.lock().unwrap().push(format!("GetObject {key}: content differs"));
        }
        let head = provider.with_fresh_credentials(|| client.head_object().bucket(BUCKET).key(&key).send()).await;
        tally.record("HeadObject", head.map_err(|e| error_text(&e)));
        let list = provider
            .with_fresh_credentials(|| {
                client.list_objects_v2().bucket(BUCKET).prefix(format!("workload/w{id}/")).send()
            })
            .await;
        tally.record("ListObjectsV2", list.map_err(|e| error_text(&e)));
        if n % 4 == 3 {
            let del = provider.with_fresh_credentials(|| client.delete_object().bucket(BUCKET).key(&key).send()).await;
            tally.record("DeleteObject", del.map_err(|e| error_text(&e)));
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_workload_across_six_credential_lifetimes_has_no_failures() {
    let s = stack("workload", |c| c.id_token_lifetime = Duration::from_secs(60)).await;
    s.login("alice").await;
    let provider = s.provider(s.token_source(Duration::from_secs(20)), ProviderOptions::default());
    let client = s.s3(&provider);
    let started = Instant::now();
    let until = started + Duration::from_secs(6 * STS_SECONDS + 10);
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> =
        (0..4).map(|id| tokio::spawn(worker(client.clone(), provider.clone(), id, until, tally.clone()))).collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs();
    let log = s.requests().await;
    let sts_calls = log.iter().filter(|r| r["op"] == "AssumeRoleWithWebIdentity").count();
    let keys: std::collections::BTreeSet<&str> =
        log.iter().filter_map(|r| r["access_key"].as_str()).filter(|k| !k.is_empty()).collect();
    let refused = log.iter().filter(|r| r["status"].as_u64().is_some_and(|s| s >= 400)).count();
    let failures = tally.failures.lock().unwrap().clone();
    let stats = provider.stats();
    println!(
        "workload: {} operations in {elapsed} s ({} STS lifetimes of {STS_SECONDS} s), {} failures, {sts_calls} STS calls \
         (devstack log), {} access keys used, {} reactive retries, {refused} requests refused by the server",
        tally.ops.load(Ordering::Relaxed),
        elapsed / STS_SECONDS,
        failures.len(),
        keys.len(),
        stats.reactive_retries,
    );
    assert!(failures.is_empty(), "failed operations: {failures:#?}");
    assert!(elapsed >= 6 * STS_SECONDS);
    assert!(keys.len() >= 6, "expected at least 6 credential generations, saw {}", keys.len());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expired_early_is_renewed_and_the_call_retried_once() {
    let mut s = stack("expire", |_| {}).await;
    // Long enough that no background renewal happens during the test: every renewal is reactive.
    s.profile.duration_seconds = Some(900);
    s.login("alice").await;
    let provider = s.provider(s.token_source(Duration::from_secs(60)), ProviderOptions::default());
    let client = s.s3(&provider);
    put(&client, &provider, "expire/object", b"still here").await.unwrap();
    let first_key = provider.current_access_key().unwrap();

    s.control("expire-sessions", &[]).await;
    // Without the reactive path the call fails...
    // (MinIO looks an expired temporary key up as unknown: 403 InvalidAccessKeyId.)
    let direct = client.get_object().bucket(BUCKET).key("expire/object").send().await.unwrap_err();
    let code = direct.as_service_error().and_then(aws_sdk_s3::error::ProvideErrorMetadata::code);
    assert_eq!((code, direct.raw_response().map(|r| r.status().as_u16())), (Some("InvalidAccessKeyId"), Some(403)));
    // ...with it, the caller only sees the result.
    assert_eq!(get(&client, &provider, "expire/object").await.unwrap(), b"still here");
    let second_key = provider.current_access_key().unwrap();
    assert_ne!(first_key, second_key);

    // A HEAD has no body: the code comes in MinIO's x-minio-error-code header.
    s.control("expire-sessions", &[]).await;
    let head =
        provider.with_fresh_credentials(|| client.head_object().bucket(BUCKET).key("expire/object").send()).await;
    assert_eq!(head.unwrap().content_length(), Some(10));

    let log = s.requests().await;
    let by = |key: &str, op: &str| -> Vec<u64> {
        log.iter().filter(|r| r["access_key"] == key && r["op"] == op).filter_map(|r| r["status"].as_u64()).collect()
    };
    let refused_first =
        log.iter().filter(|r| r["access_key"] == first_key.as_str() && r["status"].as_u64() >= Some(400));
    assert_eq!(refused_first.count(), 2, "the direct call and the first attempt were refused");
    assert_eq!(by(&second_key, "GetObject"), vec![200]);
    assert_eq!(provider.stats().reactive_retries, 2);
    assert_eq!(s.sts_calls().await, 3, "one STS call per renewal");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_provider_outage_denies_access_promptly_and_heals_after_login() {
    let s = stack("outage", |c| c.id_token_lifetime = Duration::from_secs(40)).await;
    s.login("alice").await;
    let options = ProviderOptions { retry_max: Duration::from_secs(3), ..ProviderOptions::default() };
    let provider = s.provider(s.token_source(Duration::from_secs(15)), options);
    let client = s.s3(&provider);
    put(&client, &provider, "outage/object", b"data").await.unwrap();

    // The sign-in is revoked: refreshing the ID token fails from now on.
    s.control("revoke", &[("user", "alice")]).await;
    let revoked = Instant::now();
    let denied = loop {
        assert!(revoked.elapsed() < Duration::from_secs(150), "access was never denied");
        match get(&client, &provider, "outage/object").await {
            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(e) => break e,
        }
    };
    let outage_started = Instant::now();
    println!("access denied {} s after the revocation: {denied}", revoked.elapsed().as_secs());
    assert!(denied.contains("permission denied") && denied.contains("ssofs login --profile devstack"), "{denied}");

    // Typed, and prompt: each call answers at once (bounded wait guards against a hang).
    for _ in 0..5 {
        let call = client.get_object().bucket(BUCKET).key("outage/object").send();
        let err = tokio::time::timeout(Duration::from_secs(5), call).await.expect("no hang").unwrap_err();
        let typed = CredentialError::find_in(&err).expect("a CredentialError in the source chain");
        assert!(typed.is_permission_denied() && typed.needs_login(), "{typed:?}");
    }
    // The outage outlasts a whole credential lifetime.
    tokio::time::sleep(Duration::from_secs(STS_SECONDS + 2).saturating_sub(outage_started.elapsed())).await;
    assert!(get(&client, &provider, "outage/object").await.is_err());

    // The user signs in again; the same provider (no remount) recovers by itself.
    s.login("alice").await;
    let relogin = Instant::now();
    let recovered = loop {
        assert!(relogin.elapsed() < Duration::from_secs(30), "no recovery after the new login");
        match get(&client, &provider, "outage/object").await {
            Ok(body) => break body,
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    assert_eq!(recovered, b"data");
    println!(
        "outage: denied for {} s, recovered {} ms after the new login",
        outage_started.elapsed().as_secs(),
        relogin.elapsed().as_millis()
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_on_an_expired_provider_make_one_sts_call() {
    let s = stack("concurrency", |_| {}).await;
    s.login("alice").await;
    let options = ProviderOptions { background_refresh: false, ..ProviderOptions::default() };
    let provider = s.provider(s.token_source(Duration::from_secs(60)), options);
    let client = s.s3(&provider);
    put(&client, &provider, "concurrency/object", b"x").await.unwrap();
    let expires = provider.expires_at().unwrap();
    tokio::time::sleep(expires.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_secs(1)).await;

    let before = s.sts_calls().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (client, provider, barrier) = (client.clone(), provider.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                get(&client, &provider, "concurrency/object").await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), b"x");
    }
    assert_eq!(s.sts_calls().await - before, 1);
    assert_eq!(provider.stats().reactive_retries, 0);
    s.shutdown().await;
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims(jwt: &str) -> serde_json::Map<String, Value> {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// `token` re-signed with the devstack key it names, after `edit` changed its claims.
fn re_signed(token: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let key = ssofs_devstack::keys::all().into_iter().find(|k| Some(&k.kid) == header.kid.as_ref()).unwrap();
    let mut c = claims(token);
    edit(&mut c);
    jsonwebtoken::encode(&header, &c, &key.encoding).unwrap()
}

async fn refusal(s: &Stack, token: String) -> CredentialError {
    let sts = StsClient::new(StsSettings::from_profile(&s.profile).unwrap()).unwrap();
    sts.assume_role(&WebIdentityToken::new(token, SystemTime::now())).await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_refusals_are_explained() {
    let s = stack("refusals", |_| {}).await;

    let e = refusal(&s, s.raw_id_token("eve").await).await;
    assert!(matches!(e, CredentialError::ClaimMissing { ref claim, .. } if claim == "groups"), "{e:?}");
    assert!(e.to_string().contains("enable the groups claim in the app registration, or use app roles"), "{e}");

    let e = refusal(&s, s.raw_id_token("bob").await).await;
    assert!(matches!(e, CredentialError::GroupsOverage { .. }), "{e:?}");
    assert!(e.to_string().contains("user is in more than 200 groups"), "{e}");

    let alice = s.raw_id_token("alice").await;
    let forged = re_signed(&alice, |c| {
        c.insert("aud".into(), "api://some-other-app".into());
        c.remove("azp");
    });
    let e = refusal(&s, forged).await;
    assert!(matches!(e, CredentialError::AudienceMismatch { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("api://some-other-app") && text.contains(scenario::CLIENT_ID), "{text}");
    assert!(text.contains("client_id"), "{text}");

    let mut parts: Vec<String> = alice.split('.').map(String::from).collect();
    let mut tampered = claims(&alice);
    tampered.insert("name".into(), "Mallory".into());
    parts[1] = b64(serde_json::to_string(&tampered).unwrap().as_bytes());
    let e = refusal(&s, parts.join(".")).await;
    assert!(matches!(e, CredentialError::InvalidSignature { .. }), "{e:?}");
    assert!(e.to_string().contains("rotated") && e.to_string().contains("tenant"), "{e}");

    // Signed by a key MinIO does not find among the IdP's, even after fetching them again.
    let mut header = jsonwebtoken::decode_header(&alice).unwrap();
    let key = ssofs_devstack::keys::all().into_iter().find(|k| Some(&k.kid) == header.kid.as_ref()).unwrap();
    header.kid = Some("no-such-kid".into());
    let e = refusal(&s, jsonwebtoken::encode(&header, &claims(&alice), &key.encoding).unwrap()).await;
    assert!(matches!(e, CredentialError::UnknownSigningKey { ref kid, .. } if kid == "no-such-kid"), "{e:?}");
    assert!(
        e.to_string().contains("config_url") && e.to_string().contains(claims(&alice)["iss"].as_str().unwrap()),
        "{e}"
    );

    // Through the provider: the same cause inside the typed permission error, no credentials.
    let provider = s.provider(Arc::new(FixedToken(s.raw_id_token("eve").await)), ProviderOptions::default());
    let e = provider.credentials().await.unwrap_err();
    assert!(e.is_permission_denied() && !e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("groups claim"), "{e}");

    // MinIO role-policy mode: with the RoleArn, eve gets the role's policy despite having no groups.
    let mut settings = StsSettings::from_profile(&s.profile).unwrap();
    settings.role_arn = Some(scenario::ROLE_ARN.into());
    let sts = StsClient::new(settings).unwrap();
    let creds = sts.assume_role(&WebIdentityToken::new(s.raw_id_token("eve").await, SystemTime::now())).await.unwrap();
    assert!(creds.lifetime() <= Duration::from_secs(STS_SECONDS) && creds.lifetime() >= Duration::from_secs(25));

    // The identity provider's clock runs 10 minutes ahead of MinIO's.
    s.control("clock-offset", &[("seconds", "600")]).await;
    let e = refusal(&s, s.raw_id_token("alice").await).await;
    let CredentialError::ClockSkew { issuer_ahead_of_minio, local_ahead_of_minio, .. } = &e else { panic!("{e:?}") };
    assert!(issuer_ahead_of_minio.is_some_and(|o| (598..=602).contains(&o)), "{e:?}");
    assert!(local_ahead_of_minio.is_some_and(|o| o.abs() <= 2), "{e:?}");
    let words = format!("{} s (", issuer_ahead_of_minio.unwrap());
    assert!(e.to_string().contains(&words) && e.to_string().contains("after MinIO's clock"), "{e}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_naming_no_policy_names_the_policies() {
    let s = stack("oid", |c| c.sts_claim_name = "oid".into()).await;
    let token = s.raw_id_token("alice").await;
    let oid = claims(&token)["oid"].as_str().unwrap().to_string();
    let e = refusal(&s, token).await;
    assert!(
        matches!(&e, CredentialError::NoPoliciesDefined { policies, .. } if policies.as_slice() == [oid.as_str()]),
        "{e:?}"
    );
    assert!(e.to_string().contains(&oid) && e.to_string().contains("none of the policies"), "{e}");
    s.shutdown().await;
}

/// MinIO verifies a token signed with a key it has not seen by fetching the IdP's keys (JWKS) again;
/// when the IdP is down then, it refuses with 400 InvalidParameterValue and Go's error text. That is
/// an outage of MinIO's link to the IdP, not a verdict on the token: retried, and said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_unable_to_fetch_the_idps_keys_is_retried_like_an_outage() {
    let s = stack("jwks", |_| {}).await;
    let sts = StsClient::new(StsSettings::from_profile(&s.profile).unwrap()).unwrap();
    sts.assume_role(&WebIdentityToken::new(s.raw_id_token("alice").await, SystemTime::now())).await.unwrap();
    s.control("rotate-keys", &[]).await;
    let token = s.raw_id_token("alice").await;
    s.control("faults", &[("idp_down", "1")]).await;

    let e = sts.assume_role(&WebIdentityToken::new(token.clone(), SystemTime::now())).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("cannot fetch the identity provider's signing keys (JWKS"), "{text}");
    assert!(text.contains("503 Service Unavailable"), "{text}");

    // Through the provider: denied for now, transient, and access comes back by itself.
    let options = ProviderOptions {
        retry_min: Duration::from_millis(200),
        retry_max: Duration::from_secs(1),
        ..ProviderOptions::default()
    };
    let provider = s.provider(Arc::new(FixedToken(token)), options);
    let e = provider.credentials().await.unwrap_err();
    assert!(e.is_permission_denied() && e.is_transient() && !e.needs_login(), "{e:?}");
    assert!(e.to_string().contains("signing keys (JWKS") && e.to_string().contains("keeps retrying"), "{e}");
    s.control("faults", &[("idp_down", "0")]).await;
    let healed = Instant::now();
    while provider.credentials().await.is_err() {
        assert!(healed.elapsed() < Duration::from_secs(15), "no recovery once the IdP was back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.shutdown().await;
}
