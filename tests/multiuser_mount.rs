//! One mount made by root serves several Unix users, each with their own identity: alice writes,
//! oscar reads and is refused writes, eve sees nothing, a user without a login is refused until
//! they sign in. Caches are per identity: oscar's read of a file alice read is his own request.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

mod mount_support;

use mount_support::is_mounted;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ssofs::config::{self, Sources};
use ssofs::identity::{TokenStore, login};
use ssofs::mount::{self, MountOptions, MountRequest};

struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// Creates (or reuses) a local Unix user for the test.
fn unix_user(name: &str, homes: &Path) -> User {
    if Command::new("id").arg(name).output().map(|o| !o.status.success()).unwrap_or(true) {
        let home = homes.join(name);
        let status = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", "-d"])
            .arg(&home)
            .arg(name)
            .status()
            .expect("useradd runs (the test needs root)");
        assert!(status.success(), "useradd {name}");
    }
    let id = |flag: &str| -> u32 {
        String::from_utf8(Command::new("id").arg(flag).arg(name).output().unwrap().stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let home = String::from_utf8(
        Command::new("sh").args(["-c", &format!("getent passwd {name} | cut -d: -f6")]).output().unwrap().stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    User { name: name.into(), uid: id("-u"), gid: id("-g"), home: PathBuf::from(home) }
}

/// Runs a shell command as `user`.
fn as_user(user: &User, cmd: &str) -> Output {
    Command::new("runuser").args(["-u", &user.name, "--", "sh", "-c", cmd]).output().unwrap()
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// What `ssofs login` leaves behind, written as the user would have it: their own private store.
async fn sign_in(stack: &ssofs_devstack::Running, profile: &config::Profile, user: &User, as_devstack_user: &str) {
    reqwest::Client::new()
        .post(format!("{}/auto-approve", stack.control_url))
        .form(&[("user", as_devstack_user)])
        .send()
        .await
        .unwrap();
    let tokens = login::device_code(profile, &mut Vec::new()).await.unwrap();
    let dir = user.home.join(".local/state/ssofs");
    std::fs::create_dir_all(&dir).unwrap();
    for d in [user.home.join(".local"), user.home.join(".local/state"), dir.clone()] {
        std::os::unix::fs::chown(&d, Some(user.uid), Some(user.gid)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    TokenStore::open_for_user(&dir, user.uid, user.gid).unwrap().save(&profile.name, &tokens).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_mount_serves_each_user_with_their_own_identity() {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(format!("/tmp/ssofs-mu-{}-{n}", std::process::id()));
    let homes = PathBuf::from("/tmp/ssofs-mu-homes");
    std::fs::create_dir_all(&homes).unwrap();
    std::fs::set_permissions(&homes, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tag = format!("{:x}", n % 0xfffff);
    let alice = unix_user(&format!("smu-a{tag}"), &homes);
    let oscar = unix_user(&format!("smu-o{tag}"), &homes);
    let eve = unix_user(&format!("smu-e{tag}"), &homes);
    let late = unix_user(&format!("smu-l{tag}"), &homes);

    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let profile =
        config::load_profile(&Sources { extra: Some(stack.profile_file.clone()), ..Default::default() }, None).unwrap();
    sign_in(&stack, &profile, &alice, "alice").await;
    sign_in(&stack, &profile, &oscar, "oscar").await;
    sign_in(&stack, &profile, &eve, "eve").await;

    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = dir.join("cache");
    let opts = MountOptions { multiuser: true, cache_dir: Some(cache.clone()), ..Default::default() };
    let req = MountRequest {
        profile: profile.clone(),
        mountpoint: mnt.clone(),
        options: opts,
        foreground: true,
        token_dir: dir.join("root-state"),
    };
    let server = std::thread::spawn(move || mount::run(req));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(&mnt) {
        assert!(!server.is_finished(), "mount ended: {:?}", server.join());
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = mnt.display().to_string();
    let line = mount_support::mount_line(&mnt).unwrap();
    assert!(line.contains("allow_other") && line.contains("default_permissions"), "{line}");

    let ls = tokio::task::block_in_place(|| as_user(&alice, &format!("ls {m}")));
    assert_eq!(out(&ls).split_whitespace().collect::<Vec<_>>(), ["analytics-curated", "analytics-raw"], "{}", out(&ls));
    let write = tokio::task::block_in_place(|| {
        as_user(
            &alice,
            &format!(
                "echo from-alice > {m}/analytics-raw/alice-mu.txt && cat {m}/analytics-raw/alice-mu.txt && stat -c %U {m}/analytics-raw/alice-mu.txt && cat {m}/analytics-raw/README.txt"
            ),
        )
    });
    assert!(write.status.success(), "{}", out(&write));
    assert!(
        out(&write).contains("from-alice") && out(&write).contains(&alice.name),
        "files show the caller as owner: {}",
        out(&write)
    );

    let oscar_view = tokio::task::block_in_place(|| {
        as_user(
            &oscar,
            &format!(
                "ls {m}; cat {m}/analytics-raw/alice-mu.txt; stat -c %U {m}/analytics-raw/alice-mu.txt; cat {m}/analytics-raw/README.txt >/dev/null; cp /etc/hostname {m}/analytics-raw/oscar.txt"
            ),
        )
    });
    let text = out(&oscar_view);
    assert!(text.contains("analytics-raw") && text.contains("from-alice"), "{text}");
    assert!(text.contains(&oscar.name), "oscar sees himself as owner: {text}");
    assert!(text.contains("Permission denied"), "oscar may not write: {text}");

    let eve_ls = tokio::task::block_in_place(|| as_user(&eve, &format!("ls -A {m}")));
    assert!(eve_ls.status.success() && out(&eve_ls).trim().is_empty(), "eve sees an empty root: {}", out(&eve_ls));

    let late_before = tokio::task::block_in_place(|| as_user(&late, &format!("ls -A {m}; ls {m}/analytics-raw")));
    assert!(out(&late_before).contains("Permission denied"), "no login: EACCES below the root: {}", out(&late_before));

    // Oscar's read of README.txt (which alice read first) was his own request, with his own key.
    let log: Vec<serde_json::Value> =
        reqwest::get(format!("{}/requests", stack.control_url)).await.unwrap().json().await.unwrap();
    let readers: std::collections::BTreeSet<&str> = log
        .iter()
        .filter(|r| {
            r["op"] == "GetObject"
                && r["path"] == "/analytics-raw/README.txt"
                && r["status"].as_u64().unwrap_or(0) < 300
        })
        .filter_map(|r| r["access_key"].as_str())
        .collect();
    assert!(readers.len() >= 2, "alice's and oscar's own GETs, no shared cache: {readers:?}");

    // Nobody reads another user's staged writes or token store.
    let peek = tokio::task::block_in_place(|| {
        as_user(
            &eve,
            &format!(
                "ls {}/staging; cat {}/.local/state/ssofs/devstack.tokens.json",
                cache.display(),
                alice.home.display()
            ),
        )
    });
    assert_eq!(out(&peek).matches("Permission denied").count(), 2, "{}", out(&peek));
    let store_meta = std::fs::metadata(alice.home.join(".local/state/ssofs/devstack.tokens.json")).unwrap();
    assert_eq!(store_meta.uid(), alice.uid, "tokens the mount refreshes stay the user's");

    // The late user signs in; the same mount now serves them.
    sign_in(&stack, &profile, &late, "oscar").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late_after = tokio::task::block_in_place(|| as_user(&late, &format!("ls {m}")));
    assert!(out(&late_after).contains("analytics-raw"), "{}", out(&late_after));

    mount::unmount(&mnt).unwrap();
    assert!(server.join().unwrap().is_ok());
    for u in [&alice, &oscar, &eve, &late] {
        let _ = Command::new("userdel").arg("-r").arg(&u.name).output();
    }
    stack.shutdown().await;
}
