//! Shared by the identity tests: a devstack in-process, the `ssofs` binary run against it with a clean
//! environment, and the control API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use ssofs_devstack::{Config, Running};

pub struct Stack {
    pub running: Running,
    pub dir: PathBuf,
    pub state: PathBuf,
}

impl Stack {
    pub async fn start(tag: &str, tweak: impl FnOnce(&mut Config)) -> Stack {
        let dir = super::temp_dir(tag);
        let mut cfg = Config::new(dir.join("devstack"));
        cfg.device_code_interval = Duration::from_secs(1);
        tweak(&mut cfg);
        let running = ssofs_devstack::start(cfg).await.expect("devstack starts");
        Stack { running, state: dir.join("state"), dir }
    }

    /// The `ssofs` command against this devstack's profile, with nothing from the caller's environment
    /// that changes its behaviour (browser, display, logging, user config).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ssofs"));
        c.args(args)
            .env("SSOFS_CONFIG", &self.running.profile_file)
            .env("SSOFS_STATE_DIR", &self.state)
            .env("XDG_CONFIG_HOME", self.dir.join("no-user-config"))
            .env_remove("BROWSER")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("SSOFS_LOG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    /// Runs `ssofs` to completion off the async runtime (the devstack runs on it).
    pub async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap()
    }

    /// Starts `ssofs` with stdout piped, for tests that act on what it prints while it waits.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    pub async fn control(&self, path: &str, form: &[(&str, &str)]) -> serde_json::Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/{path}", self.running.control_url))
            .form(form)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "control {path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    pub fn token_file(&self, profile: &str) -> PathBuf {
        self.state.join(format!("{profile}.tokens.json"))
    }
}

/// Reads the child's stdout until a line contains `needle`; returns the lines read so far and the
/// reader to go on with.
pub fn read_until(child: &mut Child, needle: &str) -> (Vec<String>, BufReader<std::process::ChildStdout>) {
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("ssofs ended before printing {needle:?}: {lines:?}");
        }
        let found = line.contains(needle);
        lines.push(line);
        if found {
            return (lines, reader);
        }
    }
}

/// The user code in "... enter the code ABCD ..." as ssofs prints it.
pub fn user_code(line: &str) -> String {
    line.split("enter the code ").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Shell for a fake `$BROWSER`: `auth_url "$1"` prints the authorize URL whichever way ssofs hands
/// it over: the URL itself (on the browser's command line, as older ssofs did), or a local HTML page
/// (a path or a `file://` URL) that redirects to it with a meta refresh or a script. From a page it
/// takes the first `http(s)://` URL, preferring one with a `client_id=`, with `&amp;` (and the other
/// spellings of `&`) unescaped.
pub const AUTH_URL_SH: &str = r#"auth_url() {
  case "$1" in
    http://*|https://*) printf '%s\n' "$1"; return ;;
  esac
  f=${1#file://}
  urls=$(grep -o 'https\{0,1\}://[^"'"'"' <>]*' "$f" | sed 's/&amp;/\&/g; s/&#38;/\&/g; s/&#x26;/\&/g; s/\\u0026/\&/g')
  u=$(printf '%s\n' "$urls" | grep -m1 'client_id=')
  [ -n "$u" ] || u=$(printf '%s\n' "$urls" | head -n1)
  printf '%s\n' "$u"
}
"#;

/// A `$BROWSER` script: `#!/bin/sh`, [`AUTH_URL_SH`], then `body` (which may use `auth_url "$1"`).
pub fn browser_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    script(dir, name, &format!("#!/bin/sh\n{AUTH_URL_SH}{body}"))
}

/// A `$BROWSER` that signs in headlessly: fetch the authorize URL without following the redirect,
/// then call the loopback Location it points at, as a browser would.
pub fn curl_browser(dir: &Path) -> PathBuf {
    browser_script(
        dir,
        "browser.sh",
        "url=$(auth_url \"$1\")\n[ -n \"$url\" ] || exit 1\n\
         loc=$(curl -s --max-time 20 -o /dev/null -w '%{redirect_url}' \"$url\")\n[ -n \"$loc\" ] || exit 1\n\
         curl -s --max-time 20 \"$loc\" > \"$(dirname \"$0\")/loopback-page.html\"\n",
    )
}

pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}
