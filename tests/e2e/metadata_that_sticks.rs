//! Metadata that sticks, in the keys s3fs-fuse and rclone use: `chmod +x` makes a script that runs
//! after a remount, `touch -d`/`cp -p`/`rsync -a` times survive, symlinks are symlinks (stored as
//! s3fs stores them, and s3fs's read back), a directory's time does not move with every stat, and
//! `rsync -a` of a tree with symlinks run twice transfers nothing the second time (directory times
//! are not kept: rsync may only want to set those).

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::support::{Mounted, mount_as, root_s3, unique_dir};
use ssofs::mount::MountOptions;

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::block_in_place(f)
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

async fn remount(stack: &ssofs_devstack::Running, dir: &Path, m: Mounted, tag: &str) -> Mounted {
    m.unmount();
    mount_as(stack, "alice", &dir.join(tag), MountOptions::default()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn modes_times_and_symlinks_survive_a_remount() {
    let dir = unique_dir("meta-sticks");
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let base = m.path("analytics-raw/meta");
    let b = base.clone();
    blocking(move || {
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
        let (ok, out) = sh(&format!("chmod +x {0}/run.sh && touch -d '2001-02-03 04:05:06' {0}/run.sh", b.display()));
        assert!(ok, "{out}");
        std::os::unix::fs::symlink("run.sh", b.join("link")).unwrap();
    });
    let m = remount(&stack, &dir, m, "again").await;
    let base = m.path("analytics-raw/meta");
    let b = base.clone();
    let (mode, mtime, ran, target, link_is_symlink) = blocking(move || {
        let meta = std::fs::metadata(b.join("run.sh")).unwrap();
        let ran = sh(&b.join("run.sh").display().to_string());
        let link = std::fs::symlink_metadata(b.join("link")).unwrap();
        let target = std::fs::read_link(b.join("link")).map(|t| t.display().to_string());
        (meta.permissions().mode() & 0o777, meta.mtime(), ran, target, link.file_type().is_symlink())
    });
    assert_eq!(mode, 0o755, "chmod +x sticks");
    assert_eq!(mtime, 981_173_106, "touch -d sticks (2001-02-03 04:05:06 UTC)");
    assert!(ran.0 && ran.1.contains("ran"), "the script runs after a remount: {}", ran.1);
    assert!(link_is_symlink, "a symlink is a symlink");
    assert_eq!(target.unwrap(), "run.sh");

    // Stored as s3fs stores them: decimal st_mode with the type bits, seconds since the epoch.
    let s3 = root_s3(&stack);
    let head = s3.head_object().bucket("analytics-raw").key("meta/run.sh").send().await.unwrap();
    let meta: HashMap<String, String> = head.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("mode").map(String::as_str), Some("33261"), "{meta:?}");
    assert_eq!(meta.get("mtime").map(String::as_str), Some("981173106"), "{meta:?}");
    let link = s3.head_object().bucket("analytics-raw").key("meta/link").send().await.unwrap();
    assert_eq!(link.metadata().and_then(|m| m.get("mode")).map(String::as_str), Some("41471"));
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn files_and_symlinks_written_by_s3fs_show_their_metadata() {
    let dir = unique_dir("meta-s3fs");
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    let s3 = root_s3(&stack);
    let put = |key: &'static str, body: &'static str, meta: &[(&str, &str)]| {
        let mut req = s3.put_object().bucket("analytics-raw").key(key).body(body.as_bytes().to_vec().into());
        for (k, v) in meta {
            req = req.metadata(*k, *v);
        }
        req.send()
    };
    put("s3fs/tool", "#!/bin/sh\necho tool\n", &[("mode", "33261"), ("mtime", "1600000000"), ("uid", "0")])
        .await
        .unwrap();
    put("s3fs/to-tool", "tool", &[("mode", "41471"), ("mtime", "1600000000")]).await.unwrap();
    // rclone writes a fractional mtime and no mode.
    put("s3fs/rclone.txt", "x", &[("mtime", "1600000000.5")]).await.unwrap();
    let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let base = m.path("analytics-raw/s3fs");
    let (tool, link, rclone) = blocking(move || {
        let tool = std::fs::metadata(base.join("tool")).unwrap();
        let link = std::fs::symlink_metadata(base.join("to-tool")).unwrap();
        let rclone = std::fs::metadata(base.join("rclone.txt")).unwrap();
        (
            (tool.permissions().mode() & 0o777, tool.mtime(), tool.uid()),
            (link.file_type().is_symlink(), std::fs::read_link(base.join("to-tool")).unwrap()),
            (rclone.mtime(), rclone.mtime_nsec()),
        )
    });
    assert_eq!(tool, (0o755, 1_600_000_000, 0));
    assert_eq!(link, (true, std::path::PathBuf::from("tool")));
    assert_eq!(rclone, (1_600_000_000, 500_000_000));
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rsync_a_of_a_tree_with_symlinks_twice_transfers_nothing_the_second_time() {
    let dir = unique_dir("meta-rsync");
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let src = dir.join("tree");
    for i in 0..20 {
        let d = src.join(format!("d{}", i % 4));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    std::os::unix::fs::symlink("d0/f0.txt", src.join("link-to-f0")).unwrap();
    std::os::unix::fs::symlink("d1", src.join("link-to-d1")).unwrap();
    std::fs::set_permissions(src.join("d2/f2.txt"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dest = m.path("analytics-raw/rsync");
    let (s, d) = (src.display().to_string(), dest.display().to_string());
    let (first, second, diff) = blocking(move || {
        let first = sh(&format!("rsync -a {s}/ {d}/"));
        let second = sh(&format!("rsync -a --dry-run --itemize-changes {s}/ {d}/"));
        let diff = sh(&format!("diff -r --no-dereference {s} {d}"));
        (first, second, diff)
    });
    assert!(first.0, "rsync -a exits 0 with symlinks: {}", first.1);
    // Nothing to transfer: no file, symlink or mode change. Directory times are not kept (a
    // directory has no object of its own to keep them, README), so rsync may only want to set
    // those (`.d..t......`), which transfers nothing.
    let wanted: Vec<&str> =
        second.1.lines().filter(|l| !l.trim().is_empty() && !l.starts_with(".d..t......")).collect();
    assert!(second.0 && wanted.is_empty(), "a second rsync -a wants to transfer: {}", second.1);
    assert!(diff.0, "diff -r: {}", diff.1);
    m.unmount();
    stack.shutdown().await;
}
