//! A new user sets ssofs up with one command: `ssofs init` writes a profile from flags, checks the
//! identity provider and the endpoint first, signs in and runs doctor when asked, and prints how to
//! mount it (systemd user unit, fstab line). It never overwrites a profile without --force, and a
//! wrong value gets an error naming the flag to fix, with nothing written.

use std::path::Path;
use std::process::Output;

use crate::support::identity::Stack;
use crate::support::text;

/// `ssofs init ARGS` writing to `config` (stdin is not a terminal).
async fn init(stack: &Stack, config: &Path, args: &[&str]) -> Output {
    let mut c = stack.command(&[&["init"], args].concat());
    c.env("SSOFS_CONFIG", config);
    tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap()
}

/// The devstack's issuer, client id and endpoint as flags.
fn devstack_flags(stack: &Stack) -> Vec<String> {
    let r = &stack.running;
    ["--issuer", &r.issuer, "--client-id", ssofs_devstack::scenario::CLIENT_ID, "--endpoint", &r.s3_endpoint]
        .map(String::from)
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_a_profile_that_login_and_doctor_accept() {
    let stack = Stack::start("init", |c| c.auto_approve = Some("alice".into())).await;
    let config = stack.dir.join("home-config/ssofs/config.toml");
    let flags = devstack_flags(&stack);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    // No terminal to ask on: the missing flags are named, nothing is written.
    let missing = init(&stack, &config, &["--profile", "work", "--issuer", &stack.running.issuer]).await;
    assert!(!missing.status.success());
    let said = text(&missing);
    assert!(said.contains("--client-id") && said.contains("--endpoint") && !said.contains("--tenant"), "{said}");
    assert!(!config.exists(), "nothing written");

    let args = [&["--profile", "work", "--buckets", "analytics-raw/reports", "--login"], &flags[..]].concat();
    let out = init(&stack, &config, &args).await;
    let said = text(&out);
    assert!(out.status.success(), "init, sign-in and doctor pass: {said}");
    assert!(said.contains("Signed in as alice"), "{said}");
    assert!(said.contains("systemctl --user enable --now ssofs@work"), "{said}");
    let fstab = said.lines().find(|l| l.contains(" fuse.ssofs ")).unwrap_or_else(|| panic!("an fstab line: {said}"));
    let fields: Vec<&str> = fstab.split_whitespace().collect();
    assert_eq!(fields.len(), 6, "{fstab}");
    assert_eq!((fields[0], fields[2]), (stack.running.s3_endpoint.as_str(), "fuse.ssofs"), "{fstab}");
    let options = ssofs::mount::options::parse(&[fields[3].to_string()]).expect("the mount accepts the line's options");
    assert_eq!(options.profile.as_deref(), Some("work"));
    assert_eq!(options.config.as_deref(), Some(config.as_path()), "{fstab}");

    // What init wrote is what the other commands read.
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("[profiles.work]") && written.contains("analytics-raw/reports"), "{written}");
    let env = [("SSOFS_CONFIG", config.to_str().unwrap())];
    let doctor = stack.run(&["doctor", "--profile", "work"], &env).await;
    assert!(doctor.status.success(), "{}", text(&doctor));
    let status = stack.run(&["status", "--profile", "work"], &env).await;
    assert!(text(&status).contains("alice"), "{}", text(&status));

    // A second init of the same name refuses, and leaves the file as it was.
    let again = init(&stack, &config, &[&["--profile", "work"], &flags[..]].concat()).await;
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists") && text(&again).contains("--force"), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
    let forced = init(&stack, &config, &[&["--profile", "work", "--force"], &flags[..]].concat()).await;
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(!std::fs::read_to_string(&config).unwrap().contains("analytics-raw/reports"), "replaced");
    let login = stack.run(&["login", "--device-code", "--no-qr", "--profile", "work"], &env).await;
    assert!(login.status.success(), "{}", text(&login));
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn init_names_the_flag_to_fix_and_writes_nothing() {
    let stack = Stack::start("init-bad", |_| {}).await;
    let config = stack.dir.join("config.toml");
    let r = &stack.running;
    let client = ssofs_devstack::scenario::CLIENT_ID;
    let cases: [(&[&str], &[&str]); 4] = [
        // An identity provider that does not answer.
        (
            &["--issuer", "http://127.0.0.1:1/tenant/v2.0", "--client-id", client, "--endpoint", &r.s3_endpoint],
            &["--tenant (or --issuer)", "127.0.0.1:1"],
        ),
        // Not a URL.
        (
            &["--issuer", &r.issuer, "--client-id", client, "--endpoint", "minio.example.com"],
            &["--endpoint", "is not a URL"],
        ),
        // Nothing listening.
        (
            &["--issuer", &r.issuer, "--client-id", client, "--endpoint", "http://127.0.0.1:1"],
            &["cannot reach the S3 endpoint", "check --endpoint"],
        ),
        // Keys in the URL.
        (
            &["--issuer", &r.issuer, "--client-id", client, "--endpoint", "http://key:secret@127.0.0.1:9000"],
            &["user name or password"],
        ),
    ];
    for (args, needles) in cases {
        let out = init(&stack, &config, args).await;
        let said = text(&out);
        assert!(!out.status.success(), "{args:?}: {said}");
        for needle in needles {
            assert!(said.contains(needle), "{args:?}: wants {needle:?} in {said}");
        }
        assert!(!said.contains("secret"), "{said}");
        assert!(!config.exists(), "{args:?}: nothing written");
    }

    // The man page and the completions know the command.
    let docs = stack.dir.join("docs");
    let generated = stack.run(&["generate-docs", docs.to_str().unwrap()], &[]).await;
    assert!(generated.status.success(), "{}", text(&generated));
    let page = std::fs::read_to_string(docs.join("man1/ssofs-init.1")).unwrap();
    assert!(page.contains("force") && page.contains("ssofs@"), "{page}");
    assert!(std::fs::read_to_string(docs.join("completions/ssofs.bash")).unwrap().contains("init"));
    stack.running.shutdown().await;
}

/// What a program on a terminal printed so far, read by a thread (prompts end without a newline).
struct Screen(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Screen {
    fn of(mut out: impl std::io::Read + Send + 'static) -> Screen {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Screen(seen)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }

    /// Waits for `needle` on the screen (the program asks, then waits for us: no race).
    async fn wait_for(&self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.text().contains(needle) {
            assert!(std::time::Instant::now() < deadline, "never showed {needle:?}: {}", self.text());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn init_on_a_terminal_asks_for_what_is_missing() {
    use std::io::Write;
    let stack = Stack::start("init-tty", |_| {}).await;
    let config = stack.dir.join("config.toml");
    // script(1) gives ssofs a pseudo-terminal; what we write to script goes to it as typed keys.
    let command = format!("{} init --profile asked --issuer {}", env!("CARGO_BIN_EXE_ssofs"), stack.running.issuer);
    let mut c = std::process::Command::new("script");
    c.args(["-q", "-e", "-f", "-c", &command, "/dev/null"])
        .env("SSOFS_CONFIG", &config)
        .env("SSOFS_STATE_DIR", &stack.state)
        .env("XDG_CONFIG_HOME", stack.dir.join("no-user-config"))
        .env("TERM", "dumb")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().expect("script(1) from util-linux");
    let screen = Screen::of(child.stdout.take().unwrap());
    let mut keys = child.stdin.take().unwrap();
    screen.wait_for("Application (client) id").await;
    write!(keys, "{}\r", ssofs_devstack::scenario::CLIENT_ID).unwrap();
    screen.wait_for("S3 endpoint URL").await;
    write!(keys, "{}\r", stack.running.s3_endpoint).unwrap();
    screen.wait_for("Sign in now").await;
    write!(keys, "n").unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let said = screen.text();
    assert!(status.success(), "{said}");
    assert!(!said.contains("--tenant"), "the issuer given was not asked for: {said}");
    assert!(said.contains("ssofs login --profile asked") && said.contains("ssofs@asked"), "{said}");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains(ssofs_devstack::scenario::CLIENT_ID) && written.contains(&stack.running.s3_endpoint));
    stack.running.shutdown().await;
}
