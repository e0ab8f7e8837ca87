//! The reference model for several handles on one file (what the kernel does on a local disk):
//! writers and appenders share one content, a reader by name sees it at once, a file unlinked while
//! open keeps serving its handles and is never uploaded, changes behind the mount's back show when
//! no handle holds the file. Each case fails on one-staged-copy-per-handle (the old design).

use proptest::prelude::*;

use super::*;

const SLOTS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Open(usize, bool),
    Write(usize, u64, Vec<u8>),
    ReadByName,
    ReadHandle(usize),
    Close(usize),
    Unlink,
    Remote(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let data = || proptest::collection::vec(any::<u8>(), 1..24);
    prop_oneof![
        (0..SLOTS, any::<bool>()).prop_map(|(s, a)| Op::Open(s, a)),
        (0..SLOTS, 0u64..48, data()).prop_map(|(s, o, d)| Op::Write(s, o, d)),
        Just(Op::ReadByName),
        (0..SLOTS).prop_map(Op::ReadHandle),
        (0..SLOTS).prop_map(Op::Close),
        Just(Op::Unlink),
        data().prop_map(Op::Remote),
    ]
}

#[derive(Debug, Default)]
struct Model {
    /// What the name `f` shows (None: no such file).
    named: Option<Vec<u8>>,
    /// The content every open handle shares.
    open: Option<Vec<u8>>,
    unlinked: bool,
    slots: [Option<bool>; SLOTS],
}

impl Model {
    fn handles(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn several_handles_on_one_file_match_the_model(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (c, fs) = setup_without_ttls("handles-model");
            let data = path(&fs, &["data"]).await.unwrap().ino;
            let mut m = Model::default();
            let mut fhs: [Option<u64>; SLOTS] = [None; SLOTS];
            for op in &ops {
                match op {
                    Op::Open(s, append) => {
                        if m.slots[*s].is_some() || (m.unlinked && m.handles() > 0) {
                            continue;
                        }
                        let fh = match fs.lookup(data, "f").await {
                            Ok(st) => fs.open(st.ino, OpenMode { append: *append, ..OpenMode::WRITE }).await.unwrap(),
                            Err(_) => fs.create(data, "f", OpenMode { append: *append, ..OpenMode::WRITE }, None).await.unwrap().1,
                        };
                        fhs[*s] = Some(fh);
                        if m.handles() == 0 {
                            m.open = Some(m.named.clone().unwrap_or_default());
                            m.named = m.open.clone();
                        }
                        m.slots[*s] = Some(*append);
                    }
                    Op::Write(s, off, bytes) => {
                        let (Some(append), Some(fh)) = (m.slots[*s], fhs[*s]) else { continue };
                        fs.write(fh, *off, bytes).await.unwrap();
                        let content = m.open.as_mut().unwrap();
                        let at = if append { content.len() } else { *off as usize };
                        if content.len() < at + bytes.len() {
                            content.resize(at + bytes.len(), 0);
                        }
                        content[at..at + bytes.len()].copy_from_slice(bytes);
                        if !m.unlinked {
                            m.named = m.open.clone();
                        }
                    }
                    Op::ReadByName => match (&m.named, fs.lookup(data, "f").await) {
                        (None, got) => prop_assert!(got.is_err(), "{:?}: f should not exist", op),
                        (Some(want), Ok(st)) => {
                            prop_assert_eq!(&read_all(&fs, st.ino).await, want, "read by name after {:?}", ops);
                        }
                        (Some(_), Err(e)) => prop_assert!(false, "f should exist: {:?}", e),
                    },
                    Op::ReadHandle(s) => {
                        let Some(fh) = fhs[*s] else { continue };
                        let got = fs.read(fh, 0, 1 << 16).await.unwrap();
                        prop_assert_eq!(&got, m.open.as_ref().unwrap(), "read through handle {}", s);
                    }
                    Op::Close(s) => {
                        let Some(fh) = fhs[*s].take() else { continue };
                        fs.release(fh).await.unwrap();
                        m.slots[*s] = None;
                        if m.handles() == 0 {
                            if !m.unlinked {
                                m.named = m.open.take();
                            }
                            m.open = None;
                            m.unlinked = false;
                        }
                    }
                    Op::Unlink => {
                        let got = fs.unlink(data, "f").await;
                        prop_assert_eq!(got.is_ok(), m.named.is_some(), "unlink of {:?}", m.named);
                        if m.named.take().is_some() && m.handles() > 0 {
                            m.unlinked = true;
                        }
                    }
                    Op::Remote(bytes) => {
                        if m.handles() > 0 {
                            continue;
                        }
                        c.insert("data", "f", bytes.clone());
                        m.named = Some(bytes.clone());
                    }
                }
                if m.handles() == 0 {
                    let stored = c.object("data", "f").map(|b| b.to_vec());
                    prop_assert_eq!(&stored, &m.named, "what S3 holds after {:?}", op);
                }
            }
            Ok(())
        })?;
    }
}
