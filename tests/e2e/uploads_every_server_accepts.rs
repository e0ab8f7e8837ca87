//! A server from before trailing checksums (Ceph RGW 16, MinIO before 2023, other S3 stores)
//! refuses aws-chunked bodies with a CRC32 trailer, the SDK's default: every upload through the
//! mount failed there. The devstack plays such a server (`no_trailing_checksums`); small and
//! multipart uploads must land byte for byte, checked by an independent client.

use crate::support::{self, mount_as, s3_get, sha, unique_dir};
use ssofs::mount::MountOptions;

#[tokio::test(flavor = "multi_thread")]
async fn uploads_land_on_a_server_that_refuses_trailing_checksums() {
    let dir = unique_dir("no-trailer");
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/faults", stack.control_url))
        .form(&[("no_trailing_checksums", "1")])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;

    let small = b"a small file, one PutObject\n".to_vec();
    // Above the 16 MiB single-PUT limit: a multipart upload of two parts.
    let large: Vec<u8> = (0..20u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let (s, l) = (m.path("analytics-raw/small.txt"), m.path("analytics-raw/large.bin"));
    // fsync reports a failed upload (a plain close's error is dropped by std::fs::write).
    let put = |path: std::path::PathBuf, data: Vec<u8>| {
        use std::io::Write;
        let mut f = std::fs::File::create(path)?;
        f.write_all(&data)?;
        f.sync_all()
    };
    let written = tokio::task::spawn_blocking(move || (put(s, small), put(l, large)));
    let (small_result, large_result) = written.await.unwrap();
    small_result.expect("a small upload succeeds");
    large_result.expect("a multipart upload succeeds");

    assert_eq!(s3_get(&stack, "analytics-raw", "small.txt").await, b"a small file, one PutObject\n");
    let stored = s3_get(&stack, "analytics-raw", "large.bin").await;
    let expected: Vec<u8> = (0..20u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    assert_eq!(stored.len(), expected.len());
    assert_eq!(sha(&stored), sha(&expected));
    m.unmount();
    stack.shutdown().await;
}

/// `checksums = "crc32c"` (servers with flexible checksums) and `"off"` upload byte for byte too,
/// single PUT and multipart; an unknown value is refused naming the key.
#[tokio::test(flavor = "multi_thread")]
async fn the_checksums_key_picks_crc32c_or_none() {
    for mode in ["crc32c", "off"] {
        let dir = unique_dir(&format!("checksums-{mode}"));
        let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
        let text = std::fs::read_to_string(&stack.profile_file).unwrap();
        let header = "[profiles.devstack]\n";
        assert!(text.contains(header), "{text}");
        let with_mode = text.replace(header, &format!("{header}checksums = \"{mode}\"\n"));
        std::fs::write(&stack.profile_file, &with_mode).unwrap();
        assert_ne!(support::profile_of(&stack).checksums, ssofs::config::Checksums::Md5, "{with_mode}");
        let m = mount_as(&stack, "alice", &dir, MountOptions::default()).await;
        let data: Vec<u8> = (0..17u32 << 20).map(|i| (i % 251) as u8).collect();
        let (p, expected) = (m.path("analytics-raw/mode.bin"), data.clone());
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(p).unwrap();
            f.write_all(&data).unwrap();
            f.sync_all().unwrap();
        })
        .await
        .unwrap();
        assert_eq!(sha(&s3_get(&stack, "analytics-raw", "mode.bin").await), sha(&expected), "{mode}");
        m.unmount();
        stack.shutdown().await;
    }
}
