//! Many Unix users on one multi-user mount: one user is reading when all the others make their first
//! access at once (each one's token store read, STS exchange, listing and first read). The reader's
//! reads all succeed and go on during the rush (no user's sign-in holds a lock another user waits
//! on), each identity costs one STS call, and the mount's peak memory stays within
//! cache_size + 64 MiB + 2 MiB per identity.
//!
//! The latencies are printed, not asserted (tests carry no timings): `bench/run` runs this test with
//! `SSOFS_SCALE_USERS=50` and `SSOFS_SCALE_REPORT=<file>` and reports the reader's p99 during the rush
//! against its idle p99.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::system::{UnixUser, tag};
use crate::support::{self, sts_calls, text, vm_hwm_mib};

const CACHE_MIB: u64 = 64;
const OBJECT_MIB: usize = 16;
const MIB: usize = 1 << 20;

/// CPU time (user + system) process `pid` has used so far, in seconds: whether a slow read during
/// the rush waited on a lock or on a CPU shows in how busy both cores were.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// How long the threads of process `pid` have waited, runnable, for a CPU so far (the second
/// field of each thread's schedstat), in seconds: the part of slow reads that was a queue for a
/// core rather than work.
fn run_queue_secs(pid: &str) -> f64 {
    let tasks =
        std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    let waited: u64 = tasks
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    waited as f64 / 1e9
}

/// Runs `f` on a thread whose filesystem identity is `user`'s: the FUSE requests it makes carry the
/// user's uid and gid, as a process of theirs would, and root's capabilities do not apply to its
/// file access (the kernel drops them from a thread with a non-zero fsuid).
fn as_user<T: Send + 'static>(user: (u32, u32), f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        // SAFETY: setfsgid/setfsuid change only this thread's filesystem identity (Linux keeps it
        // per thread), which ends with the thread.
        unsafe {
            libc::setfsgid(user.1);
            libc::setfsuid(user.0);
        }
        f()
    })
}

/// 1 MiB reads of `path` at offsets going round the object until `until` says stop (or `count` reads
/// when given); the latency of each.
fn read_loop(path: &Path, count: Option<usize>, until: &AtomicBool) -> Vec<Duration> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut buf = vec![0u8; MIB];
    let mut out = Vec::new();
    for i in 0.. {
        if count.is_some_and(|c| i >= c) || (count.is_none() && until.load(Ordering::Relaxed)) {
            break;
        }
        let offset = ((i * 7) % OBJECT_MIB * MIB) as u64;
        let started = Instant::now();
        let n = file.read_at(&mut buf, offset).unwrap_or_else(|e| panic!("read at {offset}: {e}"));
        out.push(started.elapsed());
        assert_eq!(n, MIB, "a full 1 MiB read at {offset}");
        assert_eq!(buf[0], (offset as usize % 251) as u8, "the right bytes at {offset}");
    }
    out
}

/// How late a thread that sleeps 1 ms at a time wakes up, each time, until `until` says stop: the
/// machine's own scheduling delay (a control beside the reader, who also waits on the mount's
/// threads). Costs next to no CPU.
fn wake_ups(until: &AtomicBool) -> Vec<Duration> {
    let tick = Duration::from_millis(1);
    let mut out = Vec::new();
    while !until.load(Ordering::Relaxed) {
        let started = Instant::now();
        std::thread::sleep(tick);
        out.push(started.elapsed().saturating_sub(tick));
    }
    out
}

fn p99_ms(v: &mut [Duration]) -> f64 {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_readers_reads_go_on_while_many_users_make_their_first_access_at_once() {
    let users_n: usize = std::env::var("SSOFS_SCALE_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(format!("/tmp/ssofs-muscale-{}-{n}", std::process::id()));
    let homes = PathBuf::from("/tmp/ssofs-muscale-homes");
    let tag = tag();
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let users: Vec<UnixUser> = (0..users_n).map(|i| UnixUser::create(&format!("sms{i}{tag}"), &homes)).collect();
    for u in &users {
        u.sign_in(&stack, "alice").await;
    }
    let body: Vec<u8> = (0..OBJECT_MIB * MIB).map(|i| (i % 251) as u8).collect();
    let s3 = support::root_s3(&stack);
    s3.put_object().bucket("analytics-raw").key("scale.bin").body(body.into()).send().await.unwrap();
    // The others read a small object: the RSS they add is their identities', not cached data.
    let small: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
    s3.put_object().bucket("analytics-raw").key("scale-small.bin").body(small.into()).send().await.unwrap();

    let (mnt, pid) = support::mount_multiuser(&stack, &dir, CACHE_MIB);
    let m = mnt.to_str().unwrap().to_string();
    let sts_before = sts_calls(&stack).await;
    let object = mnt.join("analytics-raw/scale.bin");

    // The reader's first access, then its idle latencies (the object's blocks now cached).
    let reader = (users[0].uid, users[0].gid);
    let never = Arc::new(AtomicBool::new(false));
    let warm = {
        let (object, never) = (object.clone(), never.clone());
        as_user(reader, move || read_loop(&object, Some(OBJECT_MIB * 2), &never))
    };
    warm.join().expect("the reader's first reads");
    let idle_over = Arc::new(AtomicBool::new(false));
    let idle_control = {
        let stop = idle_over.clone();
        std::thread::spawn(move || wake_ups(&stop))
    };
    let mut idle = {
        let (object, never) = (object.clone(), never.clone());
        as_user(reader, move || read_loop(&object, Some(200), &never)).join().expect("idle reads")
    };
    idle_over.store(true, Ordering::Relaxed);
    let mut idle_wake = idle_control.join().expect("the control thread, idle");
    let one_user = vm_hwm_mib(pid);

    // The rush: every other user's first access, while the reader reads on.
    let rush_over = Arc::new(AtomicBool::new(false));
    let busy_reader = {
        let (object, stop) = (object.clone(), rush_over.clone());
        as_user(reader, move || read_loop(&object, None, &stop))
    };
    let rush_control = {
        let stop = rush_over.clone();
        std::thread::spawn(move || wake_ups(&stop))
    };
    let cpu_before = (cpu_secs(&pid.to_string()), cpu_secs("self"));
    let queued_before = run_queue_secs(&pid.to_string());
    let started = Instant::now();
    let firsts: Vec<_> = users[1..]
        .iter()
        .map(|u| {
            let bucket = mnt.join("analytics-raw");
            as_user((u.uid, u.gid), move || {
                let names = std::fs::read_dir(&bucket).map(|d| d.count()).unwrap_or(0);
                assert!(names > 0, "a signed-in user sees the bucket's objects");
                let data = std::fs::read(bucket.join("scale-small.bin")).expect("another user's first read");
                assert_eq!(data.len(), 4096);
            })
        })
        .collect();
    for f in firsts {
        f.join().expect("another user's first access");
    }
    let rush = started.elapsed();
    let cpu = (cpu_secs(&pid.to_string()) - cpu_before.0, cpu_secs("self") - cpu_before.1);
    let mount_queued = run_queue_secs(&pid.to_string()) - queued_before;
    rush_over.store(true, Ordering::Relaxed);
    let mut busy = busy_reader.join().expect("the reader's reads during the rush");
    let mut rush_wake = rush_control.join().expect("the control thread, during the rush");
    let (idle_wake_p99, rush_wake_p99) = (p99_ms(&mut idle_wake), p99_ms(&mut rush_wake));

    let peak = vm_hwm_mib(pid);
    let per_identity = (peak.saturating_sub(one_user)) as f64 / (users_n - 1) as f64;
    let (idle_p99, busy_p99) = (p99_ms(&mut idle), p99_ms(&mut busy));
    let sts = sts_calls(&stack).await - sts_before;
    eprintln!(
        "{users_n} users: the reader's 1 MiB reads p99 {idle_p99:.2} ms idle, {busy_p99:.2} ms during the others' \
         first access ({} reads in {:.2} s; ratio {:.2}); CPU during the rush: mount {:.2} s, devstack and \
         test {:.2} s, {} cores; peak RSS {one_user} MiB with one user, {peak} MiB with \
         {users_n} ({per_identity:.2} MiB per further identity); {sts} STS calls; a sleeping thread's wake-up delay p99 \
         {idle_wake_p99:.2} ms idle, {rush_wake_p99:.2} ms during the rush; the mount's threads waited \
         {mount_queued:.3} s for a CPU during the rush",
        busy.len(),
        rush.as_secs_f64(),
        busy_p99 / idle_p99,
        cpu.0,
        cpu.1,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if let Some(report) = std::env::var_os("SSOFS_SCALE_REPORT") {
        let figures = serde_json::json!({
            "users": users_n, "idle_p99_ms": idle_p99, "busy_p99_ms": busy_p99, "busy_reads": busy.len(),
            "rush_secs": rush.as_secs_f64(), "rss_one_user_mib": one_user, "rss_peak_mib": peak,
            "per_identity_mib": per_identity, "sts_calls": sts, "cache_mib": CACHE_MIB,
            "rush_cpu_mount_secs": cpu.0, "rush_cpu_devstack_secs": cpu.1,
            "wake_p99_idle_ms": idle_wake_p99, "wake_p99_rush_ms": rush_wake_p99,
            "rush_mount_run_queue_secs": mount_queued,
        });
        std::fs::write(report, figures.to_string()).unwrap();
    }
    assert!(!busy.is_empty(), "the reader read during the rush");
    assert_eq!(sts, users_n, "one STS call per identity");
    let bound = CACHE_MIB + 64 + 2 * users_n as u64;
    assert!(peak <= bound, "peak RSS {peak} MiB > cache_size + 64 MiB + 2 MiB per identity = {bound} MiB");

    let out = tokio::task::block_in_place(|| support::ssofs_cli(&stack, &dir, &["unmount", &m]));
    assert!(out.status.success(), "{}", text(&out));
    stack.shutdown().await;
}
