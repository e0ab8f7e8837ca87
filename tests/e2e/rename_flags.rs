//! rename(2) and renameat2(2) through a real mount: `RENAME_NOREPLACE` (what `mv -n` and
//! `link`-free lock files rely on) never overwrites, `RENAME_EXCHANGE` is refused with EINVAL (S3
//! cannot swap two keys atomically), and a rename across buckets is EXDEV so that `mv` copies. The
//! kernel passes the flags on; before, they were ignored and NOREPLACE overwrote the target.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::support::{mount_as, s3_get, s3_put, unique_dir};
use ssofs::mount::MountOptions;

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> Result<(), i32> {
    let (from, to) =
        (CString::new(from.as_os_str().as_bytes()).unwrap(), CString::new(to.as_os_str().as_bytes()).unwrap());
    // SAFETY: both paths are NUL-terminated and live across the call.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), flags) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)) }
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_flags_reach_the_filesystem_and_cross_bucket_renames_are_exdev() {
    let dir = unique_dir("rename-flags");
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    s3_put(&stack, "analytics-raw", "a.txt", b"A".to_vec()).await;
    s3_put(&stack, "analytics-raw", "b.txt", b"B".to_vec()).await;
    let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let (a, b, c) = (m.path("analytics-raw/a.txt"), m.path("analytics-raw/b.txt"), m.path("analytics-raw/c.txt"));
    let other = m.path("analytics-curated/a.txt");
    let results = tokio::task::block_in_place(|| {
        [
            renameat2(&a, &b, libc::RENAME_NOREPLACE),
            renameat2(&a, &b, libc::RENAME_EXCHANGE),
            renameat2(&a, &other, 0),
            renameat2(&a, &c, libc::RENAME_NOREPLACE),
        ]
    });
    assert_eq!(results, [Err(libc::EEXIST), Err(libc::EINVAL), Err(libc::EXDEV), Ok(())]);
    assert_eq!(s3_get(&stack, "analytics-raw", "b.txt").await, b"B", "NOREPLACE kept the target");
    assert_eq!(s3_get(&stack, "analytics-raw", "c.txt").await, b"A", "a free target is renamed");
    m.unmount();
    stack.shutdown().await;
}
