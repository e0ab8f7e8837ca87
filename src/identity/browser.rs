//! Browser sign-in: authorization code + PKCE (S256) with a loopback redirect on a free port, as Azure
//! AD allows for native apps (`http://localhost` registered once matches any port). State and nonce
//! are checked; the browser is opened through `$BROWSER`, else `xdg-open` when a display is present.
//!
//! The authorize URL carries the state and the PKCE challenge: anyone who has it can sign in with
//! their own account and deliver the redirect to our port first (login CSRF). So it never goes on a
//! command line, which every local user can read in `ps`: the browser is given a private (0600)
//! HTML file that redirects to it. A redirect with a missing or wrong state is answered 400 and the
//! listener keeps waiting for the right one; connections are served concurrently, so a stalled
//! one cannot hold up the browser's.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, RedirectUrl, Scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::login::{Provider, refused, verified_tokens};
use super::{IdentityError, StoredTokens, aadsts_code, azure_advice};
use crate::config::Profile;

/// How long ssofs waits for the browser by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// Give up after this long without an answer on the loopback port.
    pub timeout: Duration,
    /// Pre-fill the account (Azure's `login_hint`).
    pub login_hint: Option<String>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions { timeout: DEFAULT_TIMEOUT, login_hint: None }
    }
}

/// Whether a browser can be opened here: `$BROWSER` is set, or a graphical display is.
pub fn available() -> bool {
    env_set("BROWSER") || env_set("DISPLAY") || env_set("WAYLAND_DISPLAY")
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// Opens `url` in the user's browser: `$BROWSER` (its first `:`-separated entry; `%s` is replaced by
/// the URL, else the URL is appended), else `xdg-open` when a display is present. Returns the command
/// used, or `None` when there is no way to open a browser.
pub fn open(url: &str) -> Result<Option<String>, String> {
    let (program, mut args) = match std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        Some(b) => {
            let first = b.split(':').find(|s| !s.trim().is_empty()).unwrap_or("").to_string();
            let mut words = first.split_whitespace().map(str::to_string);
            let program = words.next().unwrap_or_default();
            (program, words.collect::<Vec<_>>())
        }
        None if env_set("DISPLAY") || env_set("WAYLAND_DISPLAY") => ("xdg-open".to_string(), vec![]),
        None => return Ok(None),
    };
    if args.iter().any(|a| a.contains("%s")) {
        args = args.iter().map(|a| a.replace("%s", url)).collect();
    } else {
        args.push(url.to_string());
    }
    let mut child = Command::new(&program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run the browser {program:?}: {e}"))?;
    // Reap it whenever it ends; browsers often outlive the sign-in.
    std::thread::spawn(move || child.wait());
    Ok(Some(program))
}

/// Runs the browser flow and returns verified tokens. The URL is printed to `out` too, so the user
/// can open it by hand when no browser starts.
pub async fn sign_in(
    provider: &Provider,
    profile: &Profile,
    out: &mut dyn Write,
    opts: &BrowserOptions,
) -> Result<StoredTokens, IdentityError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| IdentityError::Config(format!("cannot listen on a loopback port for the sign-in: {e}")))?;
    let port = listener.local_addr().map_err(|e| IdentityError::Config(e.to_string()))?.port();
    // Browsers may resolve localhost to ::1 first; listen there too when we can.
    let listener6 = TcpListener::bind(("::1", port)).await.ok();
    let redirect = format!("http://localhost:{port}/");
    let client = provider
        .client
        .clone()
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).map_err(|e| IdentityError::Config(e.to_string()))?);

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
    // openidconnect adds `openid` itself.
    for s in profile.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(s.clone()));
    }
    request = request.set_pkce_challenge(challenge);
    if let Some(hint) = &opts.login_hint {
        request = request.add_extra_param("login_hint", hint.clone());
    }
    let (url, state, nonce) = request.url();

    let redirect_page = RedirectPage::write(url.as_str())
        .map_err(|e| IdentityError::Config(format!("cannot write the private sign-in page: {e}")))?;
    match open(&redirect_page.file_url()) {
        Ok(Some(browser)) => {
            writeln!(out, "Opening the sign-in page with {browser}. If no browser appears, open this URL:\n{url}").ok()
        }
        Ok(None) => writeln!(out, "Open this URL in a browser on this machine to sign in:\n{url}").ok(),
        Err(e) => writeln!(out, "{e}. Open this URL in a browser on this machine to sign in:\n{url}").ok(),
    };
    writeln!(out, "Waiting up to {} s for the browser to come back to {redirect} ...", opts.timeout.as_secs()).ok();
    out.flush().ok();

    let waited = wait_for_answer(&listener, listener6.as_ref(), state.secret(), opts.timeout).await;
    drop(redirect_page);
    let (mut stream, answer) = waited?;

    let result = match answer {
        Answer::Code(code) => {
            let exchanged = match client.exchange_code(AuthorizationCode::new(code)) {
                Ok(req) => req.set_pkce_verifier(verifier).request_async(&provider.http).await.map_err(refused),
                Err(e) => Err(IdentityError::Config(format!("the identity provider has no token endpoint: {e}"))),
            };
            match exchanged {
                Ok(token) => verified_tokens(provider, profile, &token, Some(&nonce), None).await,
                Err(e) => Err(e),
            }
        }
        Answer::Refused { error, description } => {
            let code = aadsts_code(&description);
            Err(IdentityError::Refused { advice: azure_advice(&error, code), error, code })
        }
    };
    let page = match &result {
        Ok(t) => page(
            "Signed in",
            &format!(
                "ssofs signed you in as {}. You can close this tab and return to the terminal.",
                escape(t.username.as_deref().unwrap_or("you"))
            ),
        ),
        Err(e) => page(
            "Sign-in failed",
            &format!("{}. Details are in the terminal; you can close this tab.", escape(&e.to_string())),
        ),
    };
    respond(&mut stream, if result.is_ok() { "200 OK" } else { "400 Bad Request" }, &page).await;
    result
}

/// Serves the loopback redirect until one request carries the sign-in's answer (requests without
/// the state secret get a 400 and the wait goes on), or `timeout` passes.
async fn wait_for_answer(
    listener: &TcpListener,
    listener6: Option<&TcpListener>,
    secret: &str,
    timeout: std::time::Duration,
) -> Result<(tokio::net::TcpStream, Answer), IdentityError> {
    let (found, mut answers) = tokio::sync::mpsc::channel(1);
    let secret = std::sync::Arc::new(secret.to_string());
    let wait = async {
        loop {
            tokio::select! {
                Some(done) = answers.recv() => return done,
                accepted = accept(listener, listener6) => {
                    let Ok((stream, _)) = accepted else { continue };
                    let (found, secret) = (found.clone(), secret.clone());
                    tokio::spawn(async move {
                        if let Some(done) = handle(stream, &secret).await {
                            let _ = found.send(done).await;
                        }
                    });
                }
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| {
        IdentityError::Config(format!(
            "no answer from the browser within {} s. Finish signing in sooner (`--timeout` allows more time), or \
             use `ssofs login --device-code` on a machine without a usable browser",
            timeout.as_secs()
        ))
    })
}

enum Answer {
    Code(String),
    Refused { error: String, description: String },
}

async fn accept(v4: &TcpListener, v6: Option<&TcpListener>) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match v6 {
        Some(l6) => tokio::select! { a = v4.accept() => a, a = l6.accept() => a },
        None => v4.accept().await,
    }
}

/// The sign-in page handed to the browser: a 0600 file in a 0700 directory of the user's (their
/// runtime directory, else a fresh one in the temporary directory), removed when dropped.
struct RedirectPage {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
    remove_dir: bool,
}

impl RedirectPage {
    fn write(url: &str) -> std::io::Result<RedirectPage> {
        use std::os::unix::fs::DirBuilderExt;
        // An unguessable name, from the same source as the sign-in's state.
        let nonce =
            CsrfToken::new_random().secret().chars().filter(char::is_ascii_alphanumeric).take(16).collect::<String>();
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .filter(|d| crate::untrusted::check_private_dir(d).is_ok());
        let (dir, remove_dir) = match runtime {
            Some(d) => (d, false),
            None => {
                let d = std::env::temp_dir().join(format!("ssofs-login-{}-{nonce}", std::process::id()));
                // A fresh name, made here (create fails if anyone made it first): ours and private.
                std::fs::DirBuilder::new().mode(0o700).create(&d)?;
                (d, true)
            }
        };
        let path = dir.join(format!("ssofs-sign-in-{nonce}.html"));
        let attr = escape(url);
        let js = serde_json::to_string(url).unwrap_or_default().replace('<', "\\u003c");
        let html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\
             <meta http-equiv=\"refresh\" content=\"0;url={attr}\"><title>ssofs: sign in</title>\
             <script>window.location.replace({js});</script></head><body style=\"font-family:sans-serif;margin:3em\">\
             <p>Taking you to the sign-in page. If nothing happens, <a href=\"{attr}\">continue here</a>.</p>\
             </body></html>"
        );
        let mut f = crate::untrusted::create_new(&path, 0o600)?;
        f.write_all(html.as_bytes())?;
        Ok(RedirectPage { dir, path, remove_dir })
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

impl Drop for RedirectPage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if self.remove_dir {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Reads one request. Returns the connection and what it carried when it is the redirect with this
/// sign-in's state; answers and drops anything else (favicon, stray requests, and a redirect with a
/// missing or wrong state: a stale tab, or someone else's attempt to end or hijack this sign-in).
async fn handle(mut stream: TcpStream, state: &str) -> Option<(TcpStream, Answer)> {
    let target = match tokio::time::timeout(Duration::from_secs(10), read_target(&mut stream)).await {
        Ok(Some(t)) => t,
        _ => {
            respond(&mut stream, "400 Bad Request", &page("Bad request", "This port only takes the sign-in redirect."))
                .await;
            return None;
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/" {
        respond(&mut stream, "404 Not Found", &page("Not found", "Nothing here.")).await;
        return None;
    }
    let mut code = None;
    let mut got_state = None;
    let mut error = None;
    let mut description = String::new();
    for (k, v) in openidconnect::url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => got_state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = v.into_owned(),
            _ => {}
        }
    }
    if code.is_none() && error.is_none() {
        respond(
            &mut stream,
            "400 Bad Request",
            &page("Waiting for sign-in", "This page is where the sign-in comes back to."),
        )
        .await;
        return None;
    }
    // Compare in constant time: the state is the CSRF defence.
    let state_ok = got_state.is_some_and(|s| {
        s.len() == state.len() && s.bytes().zip(state.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
    });
    if !state_ok {
        tracing::warn!("a sign-in redirect with a state that is not this sign-in's was refused");
        respond(
            &mut stream,
            "400 Bad Request",
            &page(
                "Not this sign-in",
                "This answer does not belong to the sign-in in progress (a stale tab, or a forged request); it was \
                 ignored. Finish the sign-in in the tab ssofs opened.",
            ),
        )
        .await;
        return None;
    }
    let answer = match (error, code) {
        (Some(error), _) => Answer::Refused { error, description },
        (None, code) => Answer::Code(code.unwrap_or_default()),
    };
    Some((stream, answer))
}

/// The request target of an HTTP/1 request head (at most 16 KiB).
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next()?.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_string()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ssofs: {title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{message}</p></body></html>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
