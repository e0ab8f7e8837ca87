//! `ssofs recover` run by root (an admin cleaning up after a crash, or a multi-user mount's staging)
//! must not be steered by what is in the staging tree. A leftover's sidecar names its bucket and key,
//! and its data file is whatever sits at that name: an ordinary user who owns a staging tree can make
//! the bucket `../../../etc/cron.d` (a root-owned file of their choosing) or the data file a symlink
//! to a root-only secret (copied out to where the user can read it). So root's recover refuses a
//! staging tree someone else owns, and even in its own tree skips a bucket that is not one path
//! segment, never follows a symlinked data file, and only creates new files in the export folder.
//!
//! No test touches /etc: the "cron.d" here is a root-owned directory the test made.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::system::{TestDir, UnixUser, is_root, require, tag};
use crate::support::text;

/// A pid that exists nowhere (pid_max is at most 2^22): the writer of the leftover is gone.
const DEAD_PID: u32 = 999_999_999;
const CRON_LINE: &[u8] = b"* * * * * root sh -c 'id > /tmp/pwned-by-ssofs-recover'\n";

/// Plants a leftover: data file `name` (its content, or a symlink to `link_to`) and its sidecar.
fn leftover(staging: &Path, name: &str, bucket: &str, key: &str, content: &[u8], link_to: Option<&Path>) {
    let data = staging.join(name);
    match link_to {
        Some(target) => std::os::unix::fs::symlink(target, &data).unwrap(),
        None => std::fs::write(&data, content).unwrap(),
    }
    let sidecar = serde_json::json!({ "bucket": bucket, "key": key, "pid": DEAD_PID });
    std::fs::write(staging.join(format!("{name}.meta.json")), serde_json::to_vec(&sidecar).unwrap()).unwrap();
}

/// Every path below `root` (not below `skip`), with its type and, for regular files, its content.
fn snapshot(root: &Path, skip: &[&Path]) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if skip.iter().any(|s| p.starts_with(s)) {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let what = if m.is_dir() {
                todo.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else {
                format!("file {:?}", String::from_utf8_lossy(&std::fs::read(&p).unwrap()))
            };
            out.insert(p, what);
        }
    }
    out
}

fn changes(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut c = Vec::new();
    for (p, what) in after {
        match before.get(p) {
            None => c.push(format!("new {}: {what}", p.display())),
            Some(was) if was != what => c.push(format!("changed {}: {was} => {what}", p.display())),
            _ => {}
        }
    }
    for p in before.keys().filter(|p| !after.contains_key(*p)) {
        c.push(format!("removed {}", p.display()));
    }
    c
}

/// Every regular file below `dir` (none when it does not exist), with its content.
fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// `ssofs recover --cache-dir CACHE --export EXPORT` as root, with a profile of its own (recover
/// never reaches it when exporting) and its state in `env_dir`, nothing from this process's
/// environment.
fn recover_export(env_dir: &Path, cache: &Path, export: &Path) -> Output {
    let config = env_dir.join("config.toml");
    std::fs::write(
        &config,
        "default_profile = \"t\"\n[profiles.t]\nissuer = \"http://127.0.0.1:9/tenant/v2.0\"\n\
         client_id = \"00000000-0000-0000-0000-000000000000\"\nendpoint = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_ssofs"), "recover", "--cache-dir"])
        .arg(cache)
        .arg("--export")
        .arg(export)
        .env("SSOFS_CONFIG", &config)
        .env("SSOFS_STATE_DIR", env_dir.join("root-state"))
        .env("XDG_CONFIG_HOME", env_dir.join("no-config"))
        .env_remove("SSOFS_LOG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// A root-owned directory standing in for /etc/cron.d, and a root-only secret (mode 0600).
fn root_targets(base: &Path, secret: &str) -> (PathBuf, PathBuf) {
    let cron_d = base.join("cron.d");
    std::fs::create_dir(&cron_d).unwrap();
    std::fs::set_permissions(&cron_d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret_file = base.join("shadow");
    std::fs::write(&secret_file, secret).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    (cron_d, secret_file)
}

/// An ordinary user owns DIR/cache and plants, in DIR/cache/staging, a leftover whose bucket climbs
/// out of the export folder into a root-owned directory, and one whose data file is a symlink to a
/// root-only secret. Root runs `ssofs recover --cache-dir DIR/cache --export ...`: it refuses the
/// tree, naming it and its owner, and writes nothing anywhere.
#[test]
fn root_recover_refuses_a_staging_tree_an_ordinary_user_owns() {
    if !require(is_root(), "creating Unix users needs root") {
        return;
    }
    let guard = TestDir::new("recover-hostile-user");
    let base = guard.0.clone();
    let env = TestDir::new("recover-hostile-user-env");
    let user = UnixUser::create(&format!("srh-{}", tag()), Path::new("/tmp/ssofs-recover-homes"));
    let secret = format!("TOP-SECRET-{}", tag());
    let (cron_d, secret_file) = root_targets(&base, &secret);

    let dir = base.join("attack");
    let cache = dir.join("cache");
    let staging = cache.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700)).unwrap();
    // export is base/out/a/export (not there yet): "../../../cron.d" from there is base/cron.d.
    let export = base.join("out/a/export");
    std::fs::create_dir_all(export.parent().unwrap()).unwrap();
    leftover(&staging, &format!("{DEAD_PID}-0-evil"), "../../../cron.d", "ssofs-evil", CRON_LINE, None);
    leftover(&staging, &format!("{DEAD_PID}-1-loot"), "loot", "secret.txt", b"", Some(&secret_file));
    // All of it the user's, as if they had made it themselves (symlinks included).
    for p in [dir.clone(), cache.clone(), staging.clone()]
        .into_iter()
        .chain(std::fs::read_dir(&staging).unwrap().flatten().map(|e| e.path()))
    {
        std::os::unix::fs::lchown(&p, Some(user.uid), Some(user.gid)).unwrap();
    }

    let before = snapshot(&base, &[&export, &staging]);
    let out = recover_export(&env.0, &cache, &export);
    let after = snapshot(&base, &[&export, &staging]);
    let o = text(&out);

    let outside = changes(&before, &after);
    assert!(outside.is_empty(), "root's recover wrote outside the export folder: {outside:?}\n{o}");
    assert!(std::fs::read_dir(&cron_d).unwrap().next().is_none(), "cron.d stays empty: {o}");
    for (p, content) in files_below(&export) {
        assert!(
            !String::from_utf8_lossy(&content).contains(&secret),
            "the root-only secret was copied out to {}: {o}",
            p.display()
        );
    }
    assert!(!out.status.success(), "recover must refuse a staging tree another user owns: {o}");
    assert!(o.contains(&cache.display().to_string()), "the refusal names the directory: {o}");
    assert!(
        o.contains(&user.name) || o.contains(&user.uid.to_string()),
        "the refusal names the owner ({} / uid {}): {o}",
        user.name,
        user.uid
    );
    assert!(files_below(&export).is_empty(), "nothing exported from a refused tree: {o}");
}

/// Root's own staging tree (a multi-user mount's, say) holding what a bug could leave: buckets that
/// climb out (`../../../cron.d`) or are absolute paths, a data file that is a symlink to a root-only
/// secret, and an export folder where a symlink already sits at a leftover's target. Recover skips
/// the bad buckets, naming them; copies no secret; writes nothing outside the export folder, through
/// no symlink; and still exports the ordinary leftover.
#[test]
fn root_recover_of_its_own_staging_skips_hostile_leftovers_and_follows_no_symlink() {
    if !require(is_root(), "recover's checks of ownership are root's") {
        return;
    }
    let guard = TestDir::new("recover-hostile-root");
    let base = guard.0.clone();
    let env = TestDir::new("recover-hostile-root-env");
    let secret = format!("TOP-SECRET-{}", tag());
    let (cron_d, secret_file) = root_targets(&base, &secret);
    let abs_target = base.join("abs-target");
    std::fs::create_dir(&abs_target).unwrap();
    let precious = base.join("precious.conf");
    std::fs::write(&precious, "ORIGINAL\n").unwrap();
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o644)).unwrap();

    let cache = base.join("cache");
    let staging = cache.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700)).unwrap();
    let export = base.join("out/a/export");
    leftover(&staging, &format!("{DEAD_PID}-0-evil-dotdot"), "../../../cron.d", "evil-dotdot", CRON_LINE, None);
    leftover(
        &staging,
        &format!("{DEAD_PID}-1-evil-absolute"),
        abs_target.to_str().unwrap(),
        "evil-absolute",
        CRON_LINE,
        None,
    );
    leftover(&staging, &format!("{DEAD_PID}-2-loot"), "loot", "secret.txt", b"", Some(&secret_file));
    leftover(&staging, &format!("{DEAD_PID}-3-planted"), "data", "planted.txt", b"OVERWRITTEN\n", None);
    leftover(&staging, &format!("{DEAD_PID}-4-today"), "data", "notes/today.txt", b"unsaved work\n", None);
    // A symlink already in the export folder, where data/planted.txt would go.
    std::fs::create_dir_all(export.join("data")).unwrap();
    std::os::unix::fs::symlink(&precious, export.join("data/planted.txt")).unwrap();
    assert_eq!(std::fs::metadata(&staging).unwrap().uid(), 0);

    let before = snapshot(&base, &[&export, &staging]);
    let out = recover_export(&env.0, &cache, &export);
    let after = snapshot(&base, &[&export, &staging]);
    let o = text(&out);

    let outside = changes(&before, &after);
    assert!(outside.is_empty(), "root's recover wrote outside the export folder: {outside:?}\n{o}");
    assert!(std::fs::read_dir(&cron_d).unwrap().next().is_none(), "cron.d stays empty: {o}");
    assert!(std::fs::read_dir(&abs_target).unwrap().next().is_none(), "an absolute bucket stays unwritten: {o}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "ORIGINAL\n", "the symlink in the export was followed");
    for (p, content) in files_below(&export) {
        assert!(
            !String::from_utf8_lossy(&content).contains(&secret),
            "the data file's symlink was followed: the secret is in {}: {o}",
            p.display()
        );
    }
    assert!(o.contains("cron.d") || o.contains("evil-dotdot"), "the `..` bucket's leftover is named: {o}");
    assert!(
        o.contains(&abs_target.display().to_string()) || o.contains("evil-absolute"),
        "the absolute bucket's leftover is named: {o}"
    );
    assert_eq!(
        std::fs::read(export.join("data/notes/today.txt")).ok().as_deref(),
        Some(&b"unsaved work\n"[..]),
        "the ordinary leftover is still exported: {o}"
    );
}
