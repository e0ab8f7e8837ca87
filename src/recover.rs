//! `ssofs recover`: files that were being written when ssofs was killed (SIGKILL, power loss) stay in
//! the staging directory with a sidecar naming their bucket and key. The next mount reports them;
//! `recover` uploads them with the user's credentials, or exports them to a folder the user names.

use std::path::{Path, PathBuf};

use crate::fs::staging::{Leftover, forget_leftover, leftovers};
use crate::object::ObjectClient;

/// A one-line report of leftovers, for the mount to print before it starts.
pub fn report(staging_dir: &Path) -> Option<String> {
    let found = leftovers(staging_dir);
    if found.is_empty() {
        return None;
    }
    let bytes: u64 = found.iter().map(|l| l.size).sum();
    Some(format!(
        "{} file(s), {bytes} bytes, written before ssofs stopped were never uploaded (kept in {}); run `ssofs recover` \
         to upload them, or `ssofs recover --export DIR` to copy them out",
        found.len(),
        staging_dir.display()
    ))
}

/// Where a leftover goes when exported: `DIR/<bucket>/<key>`, with key segments that could escape
/// the folder (`..`, empty) replaced.
fn export_path(dir: &Path, l: &Leftover) -> PathBuf {
    let mut p = dir.join(safe_segment(&l.bucket));
    for seg in l.key.split('/') {
        p.push(safe_segment(seg));
    }
    p
}

fn safe_segment(s: &str) -> String {
    match s {
        "" | "." | ".." => "_".into(),
        other => other.replace('\0', "_"),
    }
}

/// Copies every leftover out to `dir`, then forgets it. Returns the paths written.
pub fn export(staging_dir: &Path, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for l in leftovers(staging_dir) {
        let to = export_path(dir, &l);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(&l.data, &to).map_err(|e| format!("copying {} to {}: {e}", l.data.display(), to.display()))?;
        forget_leftover(&l);
        written.push(to);
    }
    Ok(written)
}

/// Uploads every leftover; a failed one stays for the next attempt. Returns (uploaded, failed).
pub async fn upload(staging_dir: &Path, client: &dyn ObjectClient) -> (Vec<String>, Vec<String>) {
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for l in leftovers(staging_dir) {
        let name = format!("{}/{}", l.bucket, l.key);
        match client.put_file(&l.bucket, &l.key, &l.data).await {
            Ok(_) => {
                forget_leftover(&l);
                done.push(name);
            }
            Err(e) => failed.push(format!("{name}: {e} (kept in {})", l.data.display())),
        }
    }
    (done, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::staging::Staged;
    use crate::object::mock::MockObjectClient;

    /// A staged file whose writer is gone (its sidecar names a pid that does not exist).
    fn orphan(dir: &Path, bucket: &str, key: &str, body: &[u8]) {
        let mut s = Staged::create(dir, bucket, key).unwrap();
        s.write_at(0, body).unwrap();
        let meta = crate::fs::staging::sidecar_path(&s.path);
        let text = std::fs::read_to_string(&meta)
            .unwrap()
            .replace(&format!("\"pid\":{}", std::process::id()), "\"pid\":999999999");
        std::fs::write(&meta, text).unwrap();
    }

    #[tokio::test]
    async fn leftovers_are_reported_and_uploaded() {
        let dir = std::env::temp_dir().join(format!("ssofs-recover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        orphan(&dir, "data", "notes/today.txt", b"unsaved work");
        let live = Staged::create(&dir, "data", "in-progress").unwrap(); // a running mount's file
        assert!(report(&dir).unwrap().contains("1 file(s), 12 bytes"));
        let client = MockObjectClient::new();
        client.add_bucket("data");
        let (done, failed) = upload(&dir, &client).await;
        assert_eq!(done, ["data/notes/today.txt"]);
        assert!(failed.is_empty());
        assert_eq!(client.object("data", "notes/today.txt").unwrap().as_ref(), b"unsaved work");
        assert!(report(&dir).is_none());
        live.discard();
    }

    #[test]
    fn leftovers_are_exported_without_escaping_the_folder() {
        let dir = std::env::temp_dir().join(format!("ssofs-recover-export-{}", std::process::id()));
        let out = dir.join("out");
        let _ = std::fs::remove_dir_all(&dir);
        orphan(&dir.join("staging"), "data", "../../etc/passwd", b"x");
        let written = export(&dir.join("staging"), &out).unwrap();
        assert_eq!(written.len(), 1);
        assert!(written[0].starts_with(&out), "{:?}", written[0]);
        assert_eq!(std::fs::read(&written[0]).unwrap(), b"x");
    }
}
