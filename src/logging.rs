//! Where the log goes: a file when `--log-file`/`-o log_file=` names one, the systemd journal when
//! stderr is connected to it (a service), stderr otherwise. The level comes from `-o log_level=`,
//! else `SSOFS_LOG`, else `RUST_LOG`, else warnings only.

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Warnings only; the clock warning is printed plainly by the commands, so its log line is off.
pub const DEFAULT_FILTER: &str = "warn,ssofs::identity::clock=off";

/// Where the log went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    File(std::path::PathBuf),
    Journald,
    Stderr,
}

/// The filter: `level` (from `-o log_level=`), else `SSOFS_LOG`, else `RUST_LOG`, else [`DEFAULT_FILTER`].
pub fn filter(level: Option<&str>) -> EnvFilter {
    let filter = level
        .and_then(|l| EnvFilter::try_new(l).ok())
        .or_else(|| EnvFilter::try_from_env("SSOFS_LOG").ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    // fuser unmounts again when its session ends and warns "Unmount failed: Invalid argument" when
    // the kernel already did (every `umount`/`fusermount3 -u`): not a failure, so not a warning.
    match UNMOUNT_NOISE.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// fuser's own unmount-on-drop messages (see `filter`): errors only.
const UNMOUNT_NOISE: &str = "fuser::mnt=error";

/// True when stderr is the journal: systemd sets `JOURNAL_STREAM=DEV:INODE` for a service whose
/// output goes to the journal; it is only trusted when stderr still is that stream.
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else { return false };
    // SAFETY: stat is plain old data; all-zero is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on fd 2 fills a stat we own.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// Installs the global subscriber. A log file that cannot be opened is an error (said before
/// anything runs); journald that cannot be reached falls back to stderr.
pub fn init(level: Option<&str>, file: Option<&Path>) -> Result<Sink, String> {
    let filter = filter(level);
    if let Some(path) = file {
        let f = ssofs::untrusted::open_log(path)
            .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::sync::Mutex::new(f)).init();
        return Ok(Sink::File(path.to_path_buf()));
    }
    if stderr_is_journal()
        && let Ok(journald) = tracing_journald::layer()
    {
        tracing_subscriber::registry().with(filter).with(journald.with_syslog_identifier("ssofs".into())).init();
        return Ok(Sink::Journald);
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    Ok(Sink::Stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_level_wins_and_a_bad_one_falls_back() {
        let f = filter(Some("debug")).to_string();
        assert!(f.starts_with("debug") || f.contains(",debug") || f.split(',').any(|d| d == "debug"), "{f}");
        // fuser's unmount-on-drop warning stays quiet at any level (issue 17).
        assert!(f.contains("fuser::mnt=error"), "{f}");
        assert!(filter(Some("ssofs=debug,warn")).to_string().contains("ssofs=debug"));
        // Not a filter: the environment's or the default.
        let f = filter(Some("=")).to_string();
        assert!(!f.is_empty());
    }

    #[test]
    fn journal_stream_must_match_stderr() {
        // Whatever this process's stderr is, a made-up stream is not it.
        // SAFETY: tests in this module do not read JOURNAL_STREAM concurrently with this write.
        unsafe { std::env::set_var("JOURNAL_STREAM", "1:1") };
        assert!(!stderr_is_journal());
        // SAFETY: as above.
        unsafe { std::env::remove_var("JOURNAL_STREAM") };
        assert!(!stderr_is_journal());
    }
}
