//! One directory's entries from what a delimiter listing of its prefix returned: common prefixes
//! become directories, objects become files, an object shadowed by a prefix of the same name stays
//! reachable under [`SHADOWED_OBJECT_SUFFIX`]. The server's answer is not trusted: a key or prefix
//! that is not below the requested prefix, or that names no single usable segment, is skipped (with a
//! debug line), never sliced blindly.

use std::collections::HashSet;

use super::names::{self, SHADOWED_OBJECT_SUFFIX};
use super::superblock::Entry;
use crate::object::ObjectInfo;

/// The entries of directory `prefix` (`""` or ending in `/`) of `bucket`, sorted by name, each name
/// once. `bucket` is only for the log.
pub(crate) fn entries(bucket: &str, prefix: &str, files: &[ObjectInfo], dirs: &[String]) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(files.len() + dirs.len());
    let mut dir_names = HashSet::new();
    for p in dirs {
        // A common prefix is `prefix` + one segment + `/`.
        match p.strip_prefix(prefix).and_then(|rest| rest.strip_suffix('/')) {
            Some(name) if names::usable(name) && !name.contains('/') => {
                dir_names.insert(name);
                entries.push(Entry::dir(name));
            }
            _ => tracing::debug!(bucket, prefix = %p, "prefix skipped: not a usable directory name"),
        }
    }
    for o in files {
        let Some(name) = o.key.strip_prefix(prefix) else {
            tracing::debug!(bucket, key = %o.key, "object skipped: not below the listed prefix");
            continue;
        };
        if name.is_empty() {
            continue; // the directory marker itself
        }
        if !names::usable(name) || name.contains('/') {
            tracing::debug!(bucket, key = %o.key, "object skipped: not a usable file name");
            continue;
        }
        if dir_names.contains(name) {
            let shown = format!("{name}{SHADOWED_OBJECT_SUFFIX}");
            if names::usable(&shown) {
                entries.push(Entry { key: Some(o.key.clone()), ..Entry::file(&shown, o) });
            }
        } else {
            entries.push(Entry::file(name, o));
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries.dedup_by(|a, b| a.name == b.name);
    entries
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::fs::inode::Kind;

    fn obj(key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size: 1,
            etag: "\"e\"".into(),
            last_modified: SystemTime::UNIX_EPOCH,
            meta: Default::default(),
        }
    }

    fn list(prefix: &str, keys: &[&str], prefixes: &[&str]) -> Vec<(String, Kind, Option<String>)> {
        let files: Vec<ObjectInfo> = keys.iter().map(|k| obj(k)).collect();
        let dirs: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        entries("b", prefix, &files, &dirs).into_iter().map(|e| (e.name, e.kind, e.key)).collect()
    }

    fn names_of(prefix: &str, keys: &[&str], prefixes: &[&str]) -> Vec<String> {
        list(prefix, keys, prefixes).into_iter().map(|(n, ..)| n).collect()
    }

    #[test]
    fn files_and_directories_sorted() {
        let got = list("d/", &["d/", "d/b", "d/a"], &["d/c/", "d/0/"]);
        let kinds: Vec<(&str, Kind)> = got.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
        assert_eq!(kinds, [("0", Kind::Dir), ("a", Kind::File), ("b", Kind::File), ("c", Kind::Dir)]);
        assert!(got.iter().all(|(.., key)| key.is_none()));
        assert_eq!(names_of("", &["x", "y"], &["z/"]), ["x", "y", "z"]);
    }

    #[test]
    fn shadowed_object_keeps_its_key() {
        let got = list("p/", &["p/a"], &["p/a/"]);
        assert_eq!(
            got,
            [
                ("a".to_string(), Kind::Dir, None),
                (format!("a{SHADOWED_OBJECT_SUFFIX}"), Kind::File, Some("p/a".to_string())),
            ]
        );
        // A real object of that name too: one entry per name.
        let both = names_of("p/", &["p/a", &format!("p/a{SHADOWED_OBJECT_SUFFIX}")], &["p/a/"]);
        assert_eq!(both, ["a".to_string(), format!("a{SHADOWED_OBJECT_SUFFIX}")]);
        // Too long once suffixed: the directory alone.
        let long = "x".repeat(250);
        assert_eq!(names_of("", &[&long], &[&format!("{long}/")]), [long]);
    }

    #[test]
    fn unusable_segments_are_skipped() {
        let long = "x".repeat(256);
        let got = names_of("p/", &["p/.", "p/..", "p/a\0b", &format!("p/{long}"), "p/ok"], &["p//", "p/../", "p/a//"]);
        assert_eq!(got, ["ok"]);
    }

    #[test]
    fn duplicates_across_pages_show_once() {
        assert_eq!(names_of("", &["a", "a"], &["d/", "d/"]), ["a", "d"]);
    }

    // A hostile or broken server: answers that are not below the prefix, or name more than one
    // segment, used to be sliced at prefix.len() and could panic (not a char boundary) or show names
    // with '/'.
    #[test]
    fn keys_not_below_the_prefix_are_skipped() {
        assert_eq!(
            names_of("dir/", &["other/x", "di", "", "dir/ok"], &["elsewhere/", "d/", "dir/sub/"]),
            ["ok", "sub"]
        );
        // prefix.len() falls inside a multi-byte character of the key
        assert_eq!(names_of("ab", &["aé", "é"], &["a\u{1F600}/"]), Vec::<String>::new());
        assert_eq!(names_of("é/", &["\u{1F600}x"], &["e/"]), Vec::<String>::new());
    }

    #[test]
    fn multi_segment_answers_are_skipped() {
        // Objects below a deeper prefix, common prefixes without the delimiter or with two segments.
        assert_eq!(names_of("p/", &["p/a/b", "p/c/"], &["p/d", "p/e/f/", "p/g/h"]), Vec::<String>::new());
        assert_eq!(names_of("", &["a/b"], &["c"]), Vec::<String>::new());
    }
}
