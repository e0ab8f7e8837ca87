//! Issue 15, item A: the devstack's connections disable Nagle's algorithm, as MinIO's do (Go's `net`
//! package sets TCP_NODELAY on every connection it accepts). Without it a response written in two
//! pieces (the headers, then a GetObject body) waits for the client's delayed ACK: about 40 ms on every
//! request after the first on a kept-alive connection (curl: 1.4 ms, then 41.9 and 43.8 ms).

mod common;

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use common::Stack;
use ssofs_devstack::scenario;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Whether this process's end of the connection from `client` (the devstack runs in-process: the
/// socket whose local address is `client`'s peer and whose peer is `client`) has TCP_NODELAY set;
/// `None` when no such socket is found.
fn server_side_nodelay(client: SocketAddr, server: SocketAddr) -> Option<bool> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()? {
        let Ok(fd) = entry.ok()?.file_name().to_string_lossy().parse::<RawFd>() else { continue };
        // SAFETY: the descriptor is only duplicated (F_DUPFD_CLOEXEC), never used as borrowed; one
        // closed in the meantime fails with EBADF and one reused is told apart by its addresses.
        let Ok(dup) = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned() else { continue };
        let socket = std::net::TcpStream::from(dup);
        if socket.local_addr().ok() == Some(server) && socket.peer_addr().ok() == Some(client) {
            return socket.nodelay().ok();
        }
    }
    None
}

/// Connects to `url`'s host and port and returns the server side's TCP_NODELAY once the devstack has
/// accepted the connection (it sets the option right after accepting, before any TLS handshake).
async fn accepted_nodelay(url: &str) -> Option<bool> {
    let addr: SocketAddr = url.split("://").nth(1).unwrap().trim_end_matches('/').parse().unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let started = Instant::now();
    loop {
        let seen = server_side_nodelay(local, addr);
        if seen == Some(true) || started.elapsed() > Duration::from_secs(2) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_sets_tcp_nodelay_on_the_connections_it_accepts() {
    for tls in [false, true] {
        let s = Stack::start_with(if tls { "nodelay-tls" } else { "nodelay" }, |c| {
            c.tls = tls;
            c.tls_two_cas = tls;
        })
        .await;
        for (what, url) in [("identity provider", &s.running.idp_url), ("S3/STS", &s.running.s3_endpoint)] {
            let seen = accepted_nodelay(url).await;
            assert_eq!(seen, Some(true), "{what} at {url}: TCP_NODELAY on the accepted connection (None: not found)");
        }
        let _ = std::fs::remove_dir_all(&s.dir);
        s.running.shutdown().await;
    }
}

/// One HTTP/1.1 GET of `target` on `conn`; returns the status and the body length.
async fn get(conn: &mut BufReader<TcpStream>, host: &str, target: &str) -> (u16, usize) {
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).await.unwrap();
    let mut status = String::new();
    conn.read_line(&mut status).await.unwrap();
    let code: u16 = status.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{status:?}"));
    let mut length = None;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok();
        }
    }
    let mut body = vec![0; length.expect("a Content-Length")];
    conn.read_exact(&mut body).await.unwrap();
    (code, body.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_gets_on_one_kept_alive_connection_wait_for_no_delayed_ack() {
    let s = Stack::start("nodelay-gets").await;
    let root = common::s3_client(&s.running.s3_endpoint, scenario::ROOT_ACCESS_KEY, scenario::ROOT_SECRET_KEY, None);
    let presigned = root
        .get_object()
        .bucket("analytics-raw")
        .key("README.txt")
        .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let host = s.running.s3_endpoint.trim_start_matches("http://").to_string();
    let target = presigned.uri().split_once(&host).unwrap().1.to_string();

    // Nagle's ~40 ms shows on every round; a loaded machine may slow one request now and then, so a
    // round where every request is quick is enough.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let stream = TcpStream::connect(&host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut conn = BufReader::new(stream);
        assert_eq!(get(&mut conn, &host, &target).await, (200, 39), "the first GET on the connection");
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            assert_eq!(get(&mut conn, &host, &target).await.0, 200);
            times.push(t.elapsed());
        }
        drop(conn);
        if times.iter().all(|t| *t < Duration::from_millis(20)) {
            let _ = std::fs::remove_dir_all(&s.dir);
            s.running.shutdown().await;
            return;
        }
        rounds.push(times);
    }
    panic!("GETs on a reused connection took {rounds:?}: over 20 ms each is Nagle + delayed ACK (~40 ms)");
}
