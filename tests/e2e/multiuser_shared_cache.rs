//! Ten Unix users read through one multi-user mount at once: the mount holds one `cache_size` of
//! blocks for all of them (not one per identity), each identity makes one STS call, and the mount's
//! peak memory stays within cache_size + 64 MiB + 2 MiB per identity.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::system::{UnixUser, tag};
use crate::support::{self, sts_calls, text, vm_hwm_mib};

const USERS: usize = 10;
const CACHE_MIB: u64 = 32;
const OBJECT_MIB: usize = 48;

#[tokio::test(flavor = "multi_thread")]
async fn ten_users_reading_at_once_share_one_cache_budget() {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(format!("/tmp/ssofs-mucache-{}-{n}", std::process::id()));
    let homes = PathBuf::from("/tmp/ssofs-mucache-homes");
    let tag = tag();
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let users: Vec<UnixUser> = (0..USERS).map(|i| UnixUser::create(&format!("smc{i}{tag}"), &homes)).collect();
    for u in &users {
        u.sign_in(&stack, "alice").await;
    }
    let s3 = support::root_s3(&stack);
    let body: Vec<u8> = (0..OBJECT_MIB << 20).map(|i| (i % 251) as u8).collect();
    s3.put_object().bucket("analytics-raw").key("shared.bin").body(body.clone().into()).send().await.unwrap();

    let (mnt, pid) = support::mount_multiuser(&stack, &dir, CACHE_MIB);
    let m = mnt.to_str().unwrap().to_string();
    let sts_before = sts_calls(&stack).await;
    let idle = vm_hwm_mib(pid);

    let readers: Vec<_> = users
        .iter()
        .map(|u| {
            let cmd = format!("sha256sum {m}/analytics-raw/shared.bin");
            let (name, home) = (u.name.clone(), u.home.clone());
            std::thread::spawn(move || {
                let out = std::process::Command::new("runuser")
                    .args(["-u", &name, "--", "sh", "-c", &cmd])
                    .env("HOME", home)
                    .output()
                    .unwrap();
                text(&out)
            })
        })
        .collect();
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    };
    for r in readers {
        let got = r.join().unwrap();
        assert!(got.starts_with(&want), "each user reads the object: {got}");
    }
    let peak = vm_hwm_mib(pid);
    let bound = CACHE_MIB + 64 + 2 * USERS as u64;
    eprintln!(
        "peak RSS of the multi-user mount: {idle} MiB mounted, {peak} MiB after {USERS} users read {OBJECT_MIB} MiB each (bound {bound})"
    );
    assert!(peak <= bound, "one cache budget for the mount: peak {peak} MiB > {bound} MiB");
    assert_eq!(sts_calls(&stack).await - sts_before, USERS, "one STS call per identity");

    let out = tokio::task::block_in_place(|| support::ssofs_cli(&stack, &dir, &["unmount", &m]));
    assert!(out.status.success(), "{}", text(&out));
    stack.shutdown().await;
}
