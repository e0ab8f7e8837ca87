//! One mount made by root serves several Unix users, each with their own identity: alice writes,
//! oscar reads and is refused writes, eve sees nothing, a user without a login is refused until
//! they sign in. Caches are per identity: oscar's read of a file alice read is his own request.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::support::system::{UnixUser, tag};
use crate::support::{self, is_mounted, text};
use std::time::Duration;

use ssofs::mount;

#[tokio::test(flavor = "multi_thread")]
async fn one_mount_serves_each_user_with_their_own_identity() {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(format!("/tmp/ssofs-mu-{}-{n}", std::process::id()));
    let homes = PathBuf::from("/tmp/ssofs-mu-homes");
    let tag = tag();
    let alice = UnixUser::create(&format!("smu-a{tag}"), &homes);
    let oscar = UnixUser::create(&format!("smu-o{tag}"), &homes);
    let eve = UnixUser::create(&format!("smu-e{tag}"), &homes);
    let late = UnixUser::create(&format!("smu-l{tag}"), &homes);

    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let profile = alice.sign_in(&stack, "alice").await;
    oscar.sign_in(&stack, "oscar").await;
    eve.sign_in(&stack, "eve").await;

    let cache = dir.join("cache");
    let (mnt, server) = support::serve_multiuser_here(profile.clone(), &dir, dir.join("root-state"));
    let m = mnt.display().to_string();
    let line = support::mount_line(&mnt).unwrap();
    assert!(line.contains("allow_other") && line.contains("default_permissions"), "{line}");
    // The mount (this process) holds every user's refresh token: no core file, not dumpable.
    // SAFETY: prctl and getrlimit only read process state into values we own.
    let (dumpable, core) = unsafe {
        let mut core: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_CORE, &mut core);
        (libc::prctl(libc::PR_GET_DUMPABLE), core.rlim_cur)
    };
    assert_eq!((dumpable, core), (0, 0), "multi-user mounts disable core dumps");

    let ls = tokio::task::block_in_place(|| alice.run(&format!("ls {m}")));
    assert_eq!(
        text(&ls).split_whitespace().collect::<Vec<_>>(),
        ["analytics-curated", "analytics-raw"],
        "{}",
        text(&ls)
    );
    let write = tokio::task::block_in_place(|| {
        alice.run(
            &format!(
                "echo from-alice > {m}/analytics-raw/alice-mu.txt && cat {m}/analytics-raw/alice-mu.txt && stat -c %U {m}/analytics-raw/alice-mu.txt && cat {m}/analytics-raw/README.txt"
            ),
        )
    });
    assert!(write.status.success(), "{}", text(&write));
    assert!(
        text(&write).contains("from-alice") && text(&write).contains(&alice.name),
        "files show the caller as owner: {}",
        text(&write)
    );

    let oscar_view = tokio::task::block_in_place(|| {
        oscar.run(
            &format!(
                "ls {m}; cat {m}/analytics-raw/alice-mu.txt; stat -c %U {m}/analytics-raw/alice-mu.txt; cat {m}/analytics-raw/README.txt >/dev/null; cp /etc/hostname {m}/analytics-raw/oscar.txt"
            ),
        )
    });
    let view = text(&oscar_view);
    assert!(view.contains("analytics-raw") && view.contains("from-alice"), "{view}");
    assert!(view.contains(&oscar.name), "oscar sees himself as owner: {view}");
    assert!(view.contains("Permission denied"), "oscar may not write: {view}");

    let eve_ls = tokio::task::block_in_place(|| eve.run(&format!("ls -A {m}")));
    assert!(eve_ls.status.success() && text(&eve_ls).trim().is_empty(), "eve sees an empty root: {}", text(&eve_ls));

    let late_before = tokio::task::block_in_place(|| late.run(&format!("ls -A {m}; ls {m}/analytics-raw")));
    assert!(
        text(&late_before).contains("Permission denied"),
        "no login: EACCES below the root: {}",
        text(&late_before)
    );

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
        eve.run(&format!(
            "ls {}/staging; cat {}/.local/state/ssofs/devstack.tokens.json",
            cache.display(),
            alice.home.display()
        ))
    });
    assert_eq!(text(&peek).matches("Permission denied").count(), 2, "{}", text(&peek));
    let store_meta = std::fs::metadata(alice.home.join(".local/state/ssofs/devstack.tokens.json")).unwrap();
    assert_eq!(store_meta.uid(), alice.uid, "tokens the mount refreshes stay the user's");

    // The late user signs in; the same mount now serves them.
    late.sign_in(&stack, "oscar").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late_after = tokio::task::block_in_place(|| late.run(&format!("ls {m}")));
    assert!(text(&late_after).contains("analytics-raw"), "{}", text(&late_after));

    // The mount's control socket is root's: another user's `ssofs unmount` cannot stop it.
    let bin = env!("CARGO_BIN_EXE_ssofs");
    let stop = tokio::task::block_in_place(|| eve.run(&format!("{bin} unmount {m}")));
    assert!(!stop.status.success() && text(&stop).contains("unmounting"), "eve stopped root's mount: {}", text(&stop));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(is_mounted(&mnt) && !server.is_finished(), "root's mount still serves");

    mount::unmount(&mnt).unwrap();
    assert!(server.join().unwrap().is_ok());
    stack.shutdown().await;
}
