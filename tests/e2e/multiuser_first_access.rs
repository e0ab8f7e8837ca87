//! A user's first access to a multi-user mount (their token store read, their clients built) never
//! holds the FUSE workers every other user's requests need: while more users than the mount has
//! FUSE workers make a slow first access at once (a hung home directory, say), a signed-in user's
//! read is served at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssofs::config::Profile;
use ssofs::identity::TokenStore;
use ssofs::object::ObjectClient;
use ssofs::stack::{ClientBuilder, S3Stack, StackError};

use crate::support::system::{UnixUser, tag};
use crate::support::{self, text};

/// How long opening the identity of a user with a slow home takes.
const SLOW_OPEN: Duration = Duration::from_secs(4);
/// More than the mount's FUSE worker threads (4).
const SLOW_USERS: usize = 5;

/// The real stack, slow to open for users whose home directory is named `slow…`.
struct SlowHomes;

#[async_trait::async_trait]
impl ClientBuilder for SlowHomes {
    fn build(&self, profile: &Profile, endpoint: &str, store: TokenStore) -> Result<Arc<dyn ObjectClient>, StackError> {
        if store.dir().to_string_lossy().contains("/smf-slow") {
            std::thread::sleep(SLOW_OPEN);
        }
        S3Stack.build(profile, endpoint, store)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn other_users_slow_first_access_does_not_hold_up_a_signed_in_users_reads() {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(format!("/tmp/ssofs-mufirst-{}-{n}", std::process::id()));
    let homes = PathBuf::from("/tmp/ssofs-mufirst-homes");
    let tag = tag();
    let alice = UnixUser::create(&format!("smf-a{tag}"), &homes);
    let slow: Vec<UnixUser> = (0..SLOW_USERS).map(|i| UnixUser::create(&format!("smf-slow{i}{tag}"), &homes)).collect();
    let stack = crate::support::system::devstack(&dir).await;
    let profile = alice.sign_in(&stack, "alice").await;
    for u in &slow {
        u.sign_in(&stack, "alice").await;
    }
    let (mnt, server) = support::serve_multiuser_with(profile, &dir, dir.join("root-state"), Arc::new(SlowHomes));
    let m = mnt.display().to_string();
    let readme = format!("cat {m}/analytics-raw/README.txt");
    let first = tokio::task::block_in_place(|| alice.run(&readme));
    assert!(first.status.success(), "{}", text(&first));

    let ls = format!("ls {m}");
    let (took, read, slow_outs) = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let rush: Vec<_> = slow.iter().map(|u| s.spawn(|| u.run(&ls))).collect();
            std::thread::sleep(Duration::from_millis(500));
            let started = Instant::now();
            let read = alice.run(&readme);
            let took = started.elapsed();
            (took, read, rush.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>())
        })
    });
    eprintln!("alice's read during {SLOW_USERS} slow first accesses took {took:?}");
    assert!(read.status.success() && text(&read) == text(&first), "{}", text(&read));
    // Served by a free FUSE worker: not after a slow user's identity was opened (4 s).
    assert!(took < SLOW_OPEN / 2, "alice's read waited {took:?} for other users' first access");
    for out in &slow_outs {
        assert!(out.status.success() && text(out).contains("analytics-raw"), "a slow user's ls: {}", text(out));
    }

    ssofs::mount::unmount(&mnt).unwrap();
    assert!(server.join().unwrap().is_ok());
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
