//! Test doubles: a tiny HTTP STS whose answers a test scripts, and a `TokenSource` that can be
//! switched to failing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::identity::{TokenError, TokenSource, WebIdentityToken};

type Script = Arc<dyn Fn(&[(String, String)]) -> (u16, String) + Send + Sync>;

pub struct FakeSts {
    pub endpoint: String,
    pub calls: Arc<AtomicU64>,
    script: Arc<Mutex<Script>>,
}

impl FakeSts {
    /// Answers every request after `delay` with what `script` returns for its form parameters.
    pub async fn start(
        delay: Duration,
        script: impl Fn(&[(String, String)]) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(AtomicU64::new(0));
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Arc::new(script)));
        let (c, s) = (calls.clone(), script.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (c, s) = (c.clone(), s.clone());
                tokio::spawn(async move {
                    let Some(form) = read_form(&mut stream).await else { return };
                    c.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    let script = s.lock().unwrap().clone();
                    let (status, body) = script(&form);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nDate: {}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        httpdate::fmt_http_date(SystemTime::now()),
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        FakeSts { endpoint, calls, script }
    }

    /// Issues credentials valid for `lifetime`, with access keys AK1, AK2, ...
    pub async fn issuing(lifetime: Duration, delay: Duration) -> Self {
        let n = Arc::new(AtomicU64::new(0));
        Self::start(delay, move |_| (200, ok_reply(&format!("AK{}", n.fetch_add(1, Ordering::SeqCst) + 1), lifetime)))
            .await
    }

    pub fn set_script(&self, script: impl Fn(&[(String, String)]) -> (u16, String) + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(script);
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

pub const SECRET_KEY: &str = "fake-secret-key-0123456789";
pub const SESSION_TOKEN: &str = "fake-session-token-abcdefghij";

pub fn ok_reply(access_key: &str, lifetime: Duration) -> String {
    let exp = time::OffsetDateTime::from(SystemTime::now() + lifetime)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{access_key}</AccessKeyId><SecretAccessKey>{SECRET_KEY}</SecretAccessKey><SessionToken>{SESSION_TOKEN}</SessionToken><Expiration>{exp}</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
    )
}

pub fn error_reply(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type></Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    )
}

async fn read_form(stream: &mut tokio::net::TcpStream) -> Option<Vec<(String, String)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let body = &buf[end + 4..end + 4 + length];
                return form_pairs(body);
            }
        }
    }
}

fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let pairs = text.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode(k), percent_decode(v))
    });
    Some(pairs.collect())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the fake token source does next.
#[derive(Clone, Debug)]
pub enum Mode {
    Works,
    Unavailable,
    LoginRequired,
}

pub struct FakeTokens {
    pub mode: Mutex<Mode>,
    pub token_calls: AtomicU64,
    pub refresh_calls: AtomicU64,
}

pub const WEB_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmYWtlIn0.fake-web-identity-signature";

impl FakeTokens {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeTokens {
            mode: Mutex::new(Mode::Works),
            token_calls: AtomicU64::new(0),
            refresh_calls: AtomicU64::new(0),
        })
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn answer(&self) -> Result<WebIdentityToken, TokenError> {
        match self.mode.lock().unwrap().clone() {
            Mode::Works => Ok(WebIdentityToken::new(WEB_TOKEN.into(), SystemTime::now() + Duration::from_secs(3600))),
            Mode::Unavailable => Err(TokenError::Unavailable("connection refused".into())),
            Mode::LoginRequired => {
                Err(TokenError::LoginRequired { profile: "test".into(), reason: "refresh token revoked".into() })
            }
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for FakeTokens {
    async fn token(&self) -> Result<WebIdentityToken, TokenError> {
        self.token_calls.fetch_add(1, Ordering::SeqCst);
        self.answer()
    }

    async fn refresh(&self) -> Result<WebIdentityToken, TokenError> {
        self.refresh_calls.fetch_add(1, Ordering::SeqCst);
        self.answer()
    }
}
