//! Real tools against a real mount, as users run them: an fsx-style random-operation run checked
//! against the same operations on local disk after every step (writes at any offset, truncates up
//! and down, reads, fsync, close and reopen, a second handle), `git clone` + `git fsck` + a commit,
//! and `tar x` of a tree checked with `diff -r`.
//!
//! Debian has no package of xfstests' fsx and its source may not be vendored here, so the first
//! test is fsx's idea in our own code: the same seeded operations on the mount and on ext4 (or
//! whatever the temporary directory is), compared byte for byte.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::process::Command;

use crate::support::{self, mount_as, unique_dir};
use ssofs::mount::MountOptions;

/// A small deterministic generator (xorshift), so a failure names its seed and step.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn open_rw(p: &std::path::Path) -> File {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(p).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn random_operations_match_local_disk_at_every_step() {
    let dir = unique_dir("fsx");
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let (on_mount, on_disk) = (m.path("analytics-raw/fsx.bin"), dir.join("fsx-reference.bin"));
    let report = tokio::task::block_in_place(move || {
        const MAX_LEN: u64 = 4 << 20;
        let seed = 0x5eed_f5c0_u64;
        let mut rng = Rng(seed);
        let (mut a, b) = (open_rw(&on_mount), open_rw(&on_disk));
        let mut second: Option<File> = None;
        let mut counts = [0u32; 6];
        for step in 0..600 {
            let op = rng.below(20);
            let len = b.metadata().unwrap().len();
            let what = match op {
                0..=7 => {
                    // Write anywhere, past the end included (a hole is zeros on both).
                    let off = rng.below(MAX_LEN);
                    let n = 1 + rng.below(64 << 10) as usize;
                    let data: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    let via_second = second.is_some() && rng.below(3) == 0;
                    let target = if via_second { second.as_ref().unwrap() } else { &a };
                    target.write_all_at(&data, off).unwrap();
                    b.write_all_at(&data, off).unwrap();
                    counts[0] += 1;
                    format!("write {n} at {off}{}", if via_second { " (second handle)" } else { "" })
                }
                8..=9 => {
                    let to = rng.below(MAX_LEN);
                    a.set_len(to).unwrap();
                    b.set_len(to).unwrap();
                    counts[1] += 1;
                    format!("truncate to {to}")
                }
                10..=14 => {
                    let off = rng.below(len + 1);
                    let n = 1 + rng.below(128 << 10) as usize;
                    let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
                    let (rx, ry) = (read_full(&a, &mut x, off), read_full(&b, &mut y, off));
                    assert_eq!(
                        rx, ry,
                        "seed {seed:#x} step {step}: read {n} at {off} returned {rx} bytes, local disk {ry}"
                    );
                    assert!(
                        x[..rx] == y[..ry],
                        "seed {seed:#x} step {step}: read {n} at {off} differs from local disk"
                    );
                    counts[2] += 1;
                    format!("read {n} at {off}")
                }
                15..=16 => {
                    a.sync_all().unwrap();
                    counts[3] += 1;
                    "fsync".to_string()
                }
                17..=18 => {
                    drop(a);
                    a = open_rw(&on_mount);
                    counts[4] += 1;
                    "close and reopen".to_string()
                }
                _ => {
                    second = if second.is_some() { None } else { Some(open_rw(&on_mount)) };
                    counts[5] += 1;
                    "second handle opened or closed".to_string()
                }
            };
            let (ma, mb) = (a.metadata().unwrap().len(), b.metadata().unwrap().len());
            assert_eq!(ma, mb, "seed {seed:#x} step {step} ({what}): size {ma} on the mount, {mb} on local disk");
        }
        drop(second);
        drop(a);
        let (x, y) = (std::fs::read(&on_mount).unwrap(), std::fs::read(&on_disk).unwrap());
        assert!(x == y, "after closing: the mount's file differs from local disk ({} vs {} bytes)", x.len(), y.len());
        counts
    });
    eprintln!("fsx-style run: writes, truncates, reads, fsyncs, reopens, second handles = {report:?}");
    // And what S3 holds is the same bytes.
    let stored = support::s3_get(&stack, "analytics-raw", "fsx.bin").await;
    assert_eq!(support::sha(&stored), support::sha(&std::fs::read(dir.join("fsx-reference.bin")).unwrap()));
    m.unmount();
    stack.shutdown().await;
}

/// Reads up to `buf.len()` bytes at `off` (short only at the end of the file).
fn read_full(f: &File, buf: &mut [u8], off: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64).unwrap() {
            0 => break,
            n => done += n,
        }
    }
    done
}

#[tokio::test(flavor = "multi_thread")]
async fn git_clone_fsck_and_commit_and_tar_x_with_diff_work_on_a_mount() {
    let dir = unique_dir("real-tools");
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let (src, base) = (dir.join("src"), m.path("analytics-raw/tools"));
    let (d, b) = (src.display().to_string(), base.display().to_string());
    let results = tokio::task::block_in_place(move || {
        std::fs::create_dir_all(&src).unwrap();
        let git = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main";
        // A repository with some history, cloned onto the mount.
        let setup = sh(&format!(
            "set -e; {git} init -q {d}/repo; cd {d}/repo; for i in $(seq 1 30); do mkdir -p dir$((i % 5)); \
             echo line $i >> dir$((i % 5))/file$i.txt; printf '#!/bin/sh\\necho %s\\n' $i > s$i.sh; chmod +x s$i.sh; \
             {git} add -A; {git} commit -qm c$i; done; {git} gc -q"
        ));
        assert!(setup.0, "{}", setup.1);
        let clone = sh(&format!("mkdir -p {b} && {git} clone -q {d}/repo {b}/clone"));
        let fsck = sh(&format!("cd {b}/clone && {git} fsck --full --strict"));
        let commit = sh(&format!(
            "cd {b}/clone && echo more >> dir1/file1.txt && {git} commit -qam 'on the mount' && {git} gc -q && \
             {git} fsck --full && {git} status --porcelain && ./s7.sh"
        ));
        // tar x of a tree, then diff -r against the original.
        let tree = sh(&format!(
            "set -e; mkdir -p {d}/tree; for i in $(seq 1 60); do mkdir -p {d}/tree/a$((i % 6))/b$((i % 3)); \
             head -c $((i * 997)) /dev/urandom > {d}/tree/a$((i % 6))/b$((i % 3))/f$i; done; \
             ln -s a0 {d}/tree/link; tar -C {d} -cf {d}/tree.tar tree"
        ));
        assert!(tree.0, "{}", tree.1);
        let untar = sh(&format!("mkdir -p {b}/untar && tar -C {b}/untar -xf {d}/tree.tar"));
        let diff = sh(&format!("diff -r --no-dereference {d}/tree {b}/untar/tree"));
        (clone, fsck, commit, untar, diff)
    });
    let (clone, fsck, commit, untar, diff) = results;
    assert!(clone.0, "git clone onto the mount: {}", clone.1);
    assert!(fsck.0, "git fsck of the clone: {}", fsck.1);
    assert!(
        commit.0 && commit.1.trim_end().ends_with("7"),
        "commit, gc, fsck and an executable on the mount: {}",
        commit.1
    );
    assert!(untar.0, "tar x onto the mount: {}", untar.1);
    assert!(diff.0, "diff -r of the untarred tree: {}", diff.1);
    m.unmount();
    stack.shutdown().await;
}
