//! `-o writeback_cache`: a program that writes one 150-byte CSV row per write(2) (Python's csv
//! writer on an unbuffered file) costs a copy into the kernel's page cache per row instead of a
//! round trip to ssofs: the kernel sends the rows on in large writes, and every row reaches S3 at
//! close, exactly once, appends included.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use ssofs::mount::MountOptions;

use crate::support::prometheus::{scrape, total};
use crate::support::{self, sha};

const ROWS: usize = 10_000;

fn rows(from: usize, to: usize) -> Vec<Vec<u8>> {
    (from..to).map(|i| format!("{i:08},{:0>140}\n", i * 7).into_bytes()).collect()
}

/// Writes each row with one write(2) on a file opened with `flags`, then closes it.
fn write_rows(path: &std::path::Path, flags: i32, append: bool, rows: &[Vec<u8>]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(!append)
        .append(append)
        .custom_flags(flags)
        .open(path)
        .unwrap();
    for row in rows {
        assert_eq!(f.write(row).unwrap(), row.len(), "one write(2) takes the whole row");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_written_one_at_a_time_reach_ssofs_in_large_writes_and_s3_exactly_once() {
    let dir = support::temp_dir("writeback");
    let stack = support::system::devstack(&dir).await;
    let port = support::free_port();
    let options = MountOptions {
        writeback_cache: true,
        metrics: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ..Default::default()
    };
    let m = support::mount_as(&stack, "alice", &dir, options).await;
    let path = m.path("analytics-raw/writeback/rows.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let write_ok = ["operation=\"write\"", "errno=\"0\""];

    let first = rows(0, ROWS);
    let before = scrape(port).await;
    tokio::task::block_in_place(|| write_rows(&path, 0, false, &first));
    let after = scrape(port).await;
    let writes = total(&after, "ssofs_fuse_operations_total", &write_ok)
        - total(&before, "ssofs_fuse_operations_total", &write_ok);
    // 1.5 MB in 4 KiB pages at the very least coalescing: at most 370 writes; one per row without.
    assert!(writes > 0.0 && writes <= (ROWS / 27) as f64, "{writes} FUSE writes for {ROWS} rows");
    let mut want = first.concat();
    assert_eq!(sha(&support::s3_get(&stack, "analytics-raw", "writeback/rows.csv").await), sha(&want));

    // Appending to the uploaded file: the kernel reads its last page, puts each row after the end
    // it knows, and sends that page again as it fills. Appending those writes here as well would
    // store the page's rows twice.
    let more = rows(ROWS, ROWS + 2_000);
    tokio::task::block_in_place(|| write_rows(&path, 0, true, &more));
    want.extend(more.concat());
    assert_eq!(sha(&support::s3_get(&stack, "analytics-raw", "writeback/rows.csv").await), sha(&want));
    let read_back = tokio::task::block_in_place(|| std::fs::read(&path).unwrap());
    assert_eq!(sha(&read_back), sha(&want), "the mount reads back what S3 has");
    m.unmount();
}

#[test]
fn a_multiuser_mount_refuses_writeback_cache_naming_both_options() {
    let e = ssofs::mount::options::parse(&["multiuser,writeback_cache".to_string()]).unwrap_err();
    assert!(e.to_string().contains("multiuser and writeback_cache cannot be combined"), "{e}");
}
