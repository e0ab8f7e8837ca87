//! Several handles on one file, as real tools use them: writers of different ranges, appenders, a
//! reader beside an appender (`tail -f` next to a logger), a file created and unlinked while open
//! (the temp-file pattern), and a file deleted between its open and its first read. Each is checked
//! through a real mount against what ext4 does, and against S3 with an independent client.

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;

use crate::support::{self, Mounted, mount_as, s3_get, s3_put, unique_dir};
use ssofs::mount::MountOptions;

async fn mounted(tag: &str) -> (ssofs_devstack::Running, Mounted) {
    let dir = unique_dir(tag);
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    (stack, m)
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_of_different_ranges_both_land() {
    let (stack, m) = mounted("two-writers").await;
    let p = m.path("analytics-raw/halves.bin");
    blocking(move || {
        std::fs::write(&p, b"").unwrap();
        let first = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        let second = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        first.write_all_at(&[b'a'; 4096], 0).unwrap();
        second.write_all_at(&[b'b'; 4096], 4096).unwrap();
        drop(first);
        drop(second);
    });
    let stored = s3_get(&stack, "analytics-raw", "halves.bin").await;
    let mut expected = vec![b'a'; 4096];
    expected.extend([b'b'; 4096]);
    assert!(
        stored == expected,
        "one half lost: {} bytes, {} zeros",
        stored.len(),
        stored.iter().filter(|b| **b == 0).count()
    );
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_appenders_keep_every_line() {
    let (stack, m) = mounted("two-appenders").await;
    let p = m.path("analytics-raw/log.txt");
    blocking(move || {
        std::fs::write(&p, b"").unwrap();
        let open = || std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        let (mut a, mut b) = (open(), open());
        for i in 0..50 {
            a.write_all(format!("A{i:02}\n").as_bytes()).unwrap();
            b.write_all(format!("B{i:02}\n").as_bytes()).unwrap();
        }
        drop(a);
        drop(b);
    });
    let stored = String::from_utf8(s3_get(&stack, "analytics-raw", "log.txt").await).unwrap();
    assert!(!stored.contains('\0'), "NULs in an appended file: {stored:?}");
    for i in 0..50 {
        assert!(
            stored.contains(&format!("A{i:02}\n")) && stored.contains(&format!("B{i:02}\n")),
            "line {i} lost: {stored:?}"
        );
    }
    assert_eq!(stored.len(), 400);
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_beside_an_appender_sees_the_new_lines_and_nothing_is_lost() {
    let (stack, m) = mounted("reader-appender").await;
    let p = m.path("analytics-raw/tail.txt");
    let seen = blocking(move || {
        std::fs::write(&p, b"header\n").unwrap();
        let mut reader = std::fs::File::open(&p).unwrap();
        let mut appender = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        for _ in 0..3 {
            appender.write_all(b"AAAA\n").unwrap();
        }
        let mut seen = String::new();
        reader.read_to_string(&mut seen).unwrap();
        let mut late = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        late.write_all(b"BBBB\n").unwrap();
        drop(appender);
        drop(late);
        drop(reader);
        seen
    });
    assert_eq!(seen, "header\nAAAA\nAAAA\nAAAA\n", "what ext4's reader sees");
    let stored = s3_get(&stack, "analytics-raw", "tail.txt").await;
    assert_eq!(String::from_utf8_lossy(&stored), "header\nAAAA\nAAAA\nAAAA\nBBBB\n");
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_created_and_unlinked_while_open_is_listed_then_gone_and_never_uploaded() {
    let (stack, m) = mounted("temp-file").await;
    let (dir, p) = (m.path("analytics-raw"), m.path("analytics-raw/scratch.tmp"));
    let (listed, read_back) = blocking(move || {
        let mut f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&p).unwrap();
        f.write_all(b"scratch data").unwrap();
        let listed = std::fs::read_dir(&dir).unwrap().any(|e| e.unwrap().file_name() == "scratch.tmp");
        std::fs::remove_file(&p).expect("rm of a file still open");
        f.write_all(b", more").unwrap();
        let mut back = vec![0u8; 18];
        f.read_exact_at(&mut back, 0).unwrap();
        drop(f);
        (listed, back)
    });
    assert!(listed, "ls shows a file created and still open");
    assert_eq!(read_back, b"scratch data, more", "the open handle keeps its data after unlink");
    let gone = std::fs::metadata(m.path("analytics-raw/scratch.tmp"));
    assert!(gone.is_err(), "unlinked");
    let listed = support::root_s3(&stack).list_objects_v2().bucket("analytics-raw").send().await.unwrap();
    assert!(
        !listed.contents().iter().any(|o| o.key() == Some("scratch.tmp")),
        "an unlinked file is not uploaded at close"
    );
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_deleted_before_its_first_read_still_reads_from_the_open_handle() {
    let (stack, m) = mounted("unlinked-read").await;
    s3_put(&stack, "analytics-raw", "doomed.txt", b"still here after rm".to_vec()).await;
    let p = m.path("analytics-raw/doomed.txt");
    let read = blocking(move || {
        let mut f = std::fs::File::open(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).map(|_| text)
    });
    assert_eq!(read.expect("read after unlink").as_str(), "still here after rm");
    m.unmount();
    stack.shutdown().await;
}

/// The errors tools expect: a name over 255 bytes is ENAMETOOLONG, mkfifo is EPERM (a FIFO cannot
/// be an object), mknod of a regular file makes an empty file.
#[tokio::test(flavor = "multi_thread")]
async fn long_names_and_fifos_get_the_errors_tools_expect() {
    let (stack, m) = mounted("errnos").await;
    let (long, fifo, plain) = (
        m.path(&format!("analytics-raw/{}", "n".repeat(256))),
        m.path("analytics-raw/fifo"),
        m.path("analytics-raw/node"),
    );
    let (long_err, fifo_rc, node_rc) = blocking(move || {
        let long_err = std::fs::write(&long, b"x").unwrap_err().raw_os_error();
        let c = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mknod reads the NUL-terminated path.
        let fifo_rc = unsafe { libc::mkfifo(c(&fifo).as_ptr(), 0o644) };
        let fifo_errno = std::io::Error::last_os_error().raw_os_error();
        // SAFETY: as above.
        let node_rc = unsafe { libc::mknod(c(&plain).as_ptr(), libc::S_IFREG | 0o644, 0) };
        (long_err, (fifo_rc, fifo_errno), node_rc)
    });
    assert_eq!(long_err, Some(libc::ENAMETOOLONG));
    assert_eq!(fifo_rc, (-1, Some(libc::EPERM)));
    assert_eq!(node_rc, 0);
    assert_eq!(s3_get(&stack, "analytics-raw", "node").await, b"");
    m.unmount();
    stack.shutdown().await;
}
