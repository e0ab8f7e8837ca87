//! The clock check: an identity provider whose HTTP `Date` is two minutes ahead of this machine makes
//! `ssofs login` warn, on stderr, that MinIO will refuse tokens. The provider here is a minimal HTTP
//! server whose only job is that header; it publishes a discovery document and the devstack's keys.

use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn skewed_idp(skew: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}/tenant/v2.0");
    let jwks: Vec<serde_json::Value> = ssofs_devstack::keys::all().iter().map(|k| k.jwk(&issuer)).collect();
    let disco = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/tenant/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/tenant/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{base}/tenant/oauth2/v2.0/devicecode"),
        "jwks_uri": format!("{base}/tenant/discovery/v2.0/keys"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let keys = serde_json::json!({ "keys": jwks });
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let (disco, keys) = (disco.to_string(), keys.to_string());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let (status, body) = if head.contains("openid-configuration") {
                    ("200 OK", disco)
                } else if head.contains("/keys") {
                    ("200 OK", keys)
                } else {
                    ("400 Bad Request", r#"{"error":"invalid_request"}"#.to_string())
                };
                let date = httpdate::fmt_http_date(SystemTime::now() + skew);
                let resp = format!(
                    "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    issuer
}

async fn login_against(issuer: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ssofs-clock-{}-{}", std::process::id(), issuer.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, format!("[profiles.skewed]\nissuer = \"{issuer}\"\nclient_id = \"app\"\n")).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ssofs"))
            .args(["login", "--device-code"])
            .env("SSOFS_CONFIG", &config)
            .env("SSOFS_STATE_DIR", dir.join("state"))
            .env("XDG_CONFIG_HOME", dir.join("none"))
            .env_remove("SSOFS_LOG")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_warns_when_the_idp_clock_differs_by_more_than_30_seconds() {
    let skewed = skewed_idp(Duration::from_secs(120)).await;
    let err = login_against(&skewed).await;
    assert!(err.contains("warning: this machine's clock is"), "{err}");
    assert!(err.contains("behind the identity provider's") && err.contains("zero leeway"), "{err}");
    // Printed once, plainly (the log line is off by default).
    assert_eq!(err.matches("zero leeway").count(), 1, "{err}");

    let on_time = skewed_idp(Duration::ZERO).await;
    let err = login_against(&on_time).await;
    assert!(!err.contains("clock is"), "no warning when the clocks agree: {err}");
}
