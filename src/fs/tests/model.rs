//! The filesystem against a reference model (files and explicit directories in a map), over random
//! operation sequences, as mountpoint-s3 does: after every step the listings and contents agree.
//! Objects are also put and deleted behind the mount's back (another client of the same bucket).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::object::ObjectClient;

const FILES: [&str; 5] = ["a", "b", "d/a", "d/b", "e/c"];
const DIRS: [&str; 2] = ["d", "e"];

#[derive(Debug, Clone)]
enum Op {
    Write(usize, Vec<u8>),
    Truncate(usize, u64),
    Unlink(usize),
    Rename(usize, usize),
    Mkdir(usize),
    Rmdir(usize),
    /// Another client of the bucket puts an object.
    RemotePut(usize, Vec<u8>),
    /// Another client of the bucket deletes an object (gone or not).
    RemoteDelete(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..FILES.len(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(f, d)| Op::Write(f, d)),
        (0..FILES.len(), 0u64..80).prop_map(|(f, n)| Op::Truncate(f, n)),
        (0..FILES.len()).prop_map(Op::Unlink),
        (0..FILES.len(), 0..FILES.len()).prop_map(|(a, b)| Op::Rename(a, b)),
        (0..DIRS.len()).prop_map(Op::Mkdir),
        (0..DIRS.len()).prop_map(Op::Rmdir),
        (0..FILES.len(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(f, d)| Op::RemotePut(f, d)),
        (0..FILES.len()).prop_map(Op::RemoteDelete),
    ]
}

#[derive(Default, Debug)]
struct Model {
    files: BTreeMap<String, Vec<u8>>,
    markers: BTreeSet<String>,
}

impl Model {
    fn dir_exists(&self, d: &str) -> bool {
        self.markers.contains(d) || self.files.keys().any(|f| f.starts_with(&format!("{d}/")))
    }

    fn parent_ok(&self, path: &str) -> bool {
        match path.rsplit_once('/') {
            Some((d, _)) => self.dir_exists(d),
            None => true,
        }
    }

    /// Applies an op; false when the filesystem must refuse it.
    fn apply(&mut self, op: &Op) -> bool {
        match op {
            Op::Write(f, data) => {
                let p = FILES[*f];
                if !self.parent_ok(p) {
                    return false;
                }
                self.files.insert(p.into(), data.clone());
                true
            }
            Op::Truncate(f, n) => match self.files.get_mut(FILES[*f]) {
                Some(body) => {
                    body.resize(*n as usize, 0);
                    true
                }
                None => false,
            },
            Op::Unlink(f) => self.files.remove(FILES[*f]).is_some(),
            Op::Rename(a, b) => {
                let (from, to) = (FILES[*a], FILES[*b]);
                if from == to || !self.files.contains_key(from) || !self.parent_ok(to) {
                    return false;
                }
                let body = self.files.remove(from).expect("checked");
                self.files.insert(to.into(), body);
                true
            }
            Op::Mkdir(d) => {
                let d = DIRS[*d];
                if self.dir_exists(d) {
                    return false;
                }
                self.markers.insert(d.into());
                true
            }
            Op::Rmdir(d) => {
                let d = DIRS[*d];
                if !self.dir_exists(d) || self.files.keys().any(|f| f.starts_with(&format!("{d}/"))) {
                    return false;
                }
                self.markers.remove(d);
                true
            }
            // S3 has no parents: a key makes its directories exist.
            Op::RemotePut(f, data) => {
                self.files.insert(FILES[*f].into(), data.clone());
                true
            }
            Op::RemoteDelete(f) => {
                self.files.remove(FILES[*f]);
                true
            }
        }
    }

    fn listing(&self, dir: &str) -> BTreeSet<String> {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let mut out = BTreeSet::new();
        for f in self.files.keys().filter(|f| f.starts_with(&prefix)) {
            out.insert(f[prefix.len()..].split('/').next().unwrap_or_default().to_string());
        }
        if dir.is_empty() {
            out.extend(self.markers.iter().cloned());
        }
        out
    }
}

async fn dir_ino(fs: &Fs, dir: &str) -> FsResult<u64> {
    let mut parts = vec!["data"];
    parts.extend(dir.split('/').filter(|p| !p.is_empty()));
    Ok(path(fs, &parts).await?.ino)
}

async fn run(fs: &Fs, remote: &MockObjectClient, op: &Op) -> FsResult<()> {
    let split = |p: &str| match p.rsplit_once('/') {
        Some((d, n)) => (d.to_string(), n.to_string()),
        None => (String::new(), p.to_string()),
    };
    match op {
        Op::Write(f, data) => {
            let (d, n) = split(FILES[*f]);
            let parent = dir_ino(fs, &d).await?;
            let (_, fh) = fs.create(parent, &n, OpenMode::WRITE, None).await?;
            fs.write(fh, 0, data).await?;
            fs.release(fh).await
        }
        Op::Truncate(f, len) => {
            let (d, n) = split(FILES[*f]);
            let parent = dir_ino(fs, &d).await?;
            let st = fs.lookup(parent, &n).await?;
            fs.set_size(st.ino, None, *len).await.map(|_| ())
        }
        Op::Unlink(f) => {
            let (d, n) = split(FILES[*f]);
            fs.unlink(dir_ino(fs, &d).await?, &n).await
        }
        Op::Rename(a, b) => {
            if a == b {
                return Err(FsError::Exists);
            }
            let ((da, na), (db, nb)) = (split(FILES[*a]), split(FILES[*b]));
            let (pa, pb) = (dir_ino(fs, &da).await?, dir_ino(fs, &db).await?);
            fs.rename(pa, &na, pb, &nb, RenameMode::Replace).await
        }
        Op::Mkdir(d) => {
            let parent = dir_ino(fs, "").await?;
            if fs.lookup(parent, DIRS[*d]).await.is_ok() {
                return Err(FsError::Exists);
            }
            fs.mkdir(parent, DIRS[*d]).await.map(|_| ())
        }
        Op::Rmdir(d) => fs.rmdir(dir_ino(fs, "").await?, DIRS[*d]).await,
        Op::RemotePut(f, data) => {
            remote.insert("data", FILES[*f], data.clone());
            Ok(())
        }
        Op::RemoteDelete(f) => remote.delete("data", FILES[*f]).await.map_err(FsError::from),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn filesystem_matches_the_model(ops in proptest::collection::vec(op(), 1..25)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // No TTLs: what another client did is seen at the next step, as after a TTL.
            let (remote, fs) = setup_without_ttls("model");
            let mut model = Model::default();
            for op in &ops {
                let expected = model.apply(op);
                let got = run(&fs, &remote, op).await;
                prop_assert_eq!(got.is_ok(), expected, "{:?} gave {:?}; model {:?}", op, got, model);
                for dir in ["", "d", "e"] {
                    let want = model.listing(dir);
                    let have: BTreeSet<String> = match dir_ino(&fs, dir).await {
                        Ok(ino) => fs.readdir(ino).await.unwrap().into_iter().map(|e| e.name).collect(),
                        Err(_) => BTreeSet::new(),
                    };
                    prop_assert_eq!(&have, &want, "listing of {:?} after {:?}", dir, op);
                }
                for (p, body) in &model.files {
                    let mut parts = vec!["data"];
                    parts.extend(p.split('/'));
                    let st = path(&fs, &parts).await.unwrap();
                    prop_assert_eq!(&read_all(&fs, st.ino).await, body, "content of {}", p);
                }
            }
            Ok(())
        })?;
    }
}
