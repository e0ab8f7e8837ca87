//! Config file loading on any file content: the bytes are written to a file (in `$TMPDIR`) given as
//! `--config`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ssofs::config::{Sources, load_profile};

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("ssofs-fuzz-config-{}.toml", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write the fuzzed config file");
    let sources = Sources { system: None, user: None, extra: Some(path.clone()) };
    if let Ok(profile) = load_profile(&sources, None) {
        assert!(!profile.client_id.trim().is_empty());
        assert!(profile.scopes.iter().any(|s| s == "openid"));
    }
    let _ = load_profile(&sources, Some("default"));
});
