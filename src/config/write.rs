//! Adding a profile to a config file (`ssofs init`): the new `[profiles.NAME]` table is checked by
//! the same rules a profile is read with, and the file's other tables and comments are kept
//! (toml_edit), written through a new file renamed over the old one.

use std::path::Path;

use super::{ConfigError, ConfigFile, Profile, resolve};

/// What `ssofs init` was told; `None` leaves the key out (its default applies).
#[derive(Debug, Clone, Default)]
pub struct NewProfile {
    pub issuer: Option<String>,
    pub tenant: Option<String>,
    pub client_id: String,
    pub endpoint: String,
    pub role_arn: Option<String>,
    pub buckets: Vec<String>,
    pub ca_file: Option<std::path::PathBuf>,
}

/// Whether `path` already defines profile `name` (a missing file defines none).
pub fn has_profile(path: &Path, name: &str) -> Result<bool, ConfigError> {
    Ok(read_document(path)?.get("profiles").and_then(|p| p.get(name)).is_some())
}

/// The profile as it will be read back, and the file's new text. Fails, naming the key, when the
/// values would not make a usable profile.
pub fn with_profile(path: &Path, name: &str, new: &NewProfile) -> Result<(Profile, String), ConfigError> {
    let mut doc = read_document(path)?;
    let mut table = toml_edit::Table::new();
    let mut set = |key: &str, value: toml_edit::Value| {
        table.insert(key, toml_edit::Item::Value(value));
    };
    if let Some(issuer) = &new.issuer {
        set("issuer", issuer.as_str().into());
    }
    if let Some(tenant) = &new.tenant {
        set("tenant", tenant.as_str().into());
    }
    set("client_id", new.client_id.as_str().into());
    set("endpoint", new.endpoint.as_str().into());
    if let Some(role_arn) = &new.role_arn {
        set("role_arn", role_arn.as_str().into());
    }
    if let Some(ca_file) = &new.ca_file {
        set("ca_file", ca_file.to_string_lossy().as_ref().into());
    }
    if !new.buckets.is_empty() {
        set("buckets", new.buckets.iter().map(String::as_str).collect::<toml_edit::Array>().into());
    }
    let profiles = doc.entry("profiles").or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    let Some(profiles) = profiles.as_table_mut() else {
        return Err(parse_error(path, "`profiles` is not a table".into()));
    };
    profiles.insert(name, toml_edit::Item::Table(table));
    let text = doc.to_string();
    // Read back exactly as `load_profile` will read it.
    let file: ConfigFile = toml::from_str(&text).map_err(|e| parse_error(path, e.message().to_string()))?;
    let written = file.profiles.get(name).cloned().unwrap_or_default();
    Ok((resolve(name.to_string(), written)?, text))
}

/// Replaces `path` with `text`: a new file in the same directory (created with its parents), synced,
/// then renamed over it, so a crash leaves the old file or the new one.
pub fn write(path: &Path, text: &str) -> Result<(), ConfigError> {
    use std::io::Write;
    let io = |source: std::io::Error| ConfigError::Read { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    // The file keeps the mode it had (a user may have made theirs private).
    let mode = std::fs::metadata(path).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    let mut f = crate::untrusted::create_new(&tmp, mode.unwrap_or(0o644)).map_err(io)?;
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

fn read_document(path: &Path) -> Result<toml_edit::DocumentMut, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
    };
    text.parse().map_err(|e: toml_edit::TomlError| parse_error(path, e.message().to_string()))
}

fn parse_error(path: &Path, message: String) -> ConfigError {
    ConfigError::Parse { path: path.to_path_buf(), line: 0, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new() -> NewProfile {
        NewProfile {
            tenant: Some("contoso.onmicrosoft.com".into()),
            client_id: "11111111-2222-3333-4444-555555555555".into(),
            endpoint: "https://minio.example.com".into(),
            buckets: vec!["shared/reports".into()],
            ..Default::default()
        }
    }

    #[test]
    fn adds_a_profile_and_keeps_the_rest_of_the_file() {
        let dir = std::env::temp_dir().join(format!("ssofs-config-write-{}", std::process::id()));
        let path = dir.join("config.toml");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, "# mine\ndefault_profile = \"old\"\n[profiles.old]\ntenant = \"t\"\nclient_id = \"c\"\n")
            .unwrap();
        assert!(!has_profile(&path, "corp").unwrap());
        let (profile, text) = with_profile(&path, "corp", &new()).unwrap();
        assert_eq!(profile.issuer, "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0");
        assert_eq!(profile.buckets, ["shared/reports"]);
        assert!(text.contains("# mine") && text.contains("[profiles.old]"), "{text}");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        write(&path, &text).unwrap();
        assert!(has_profile(&path, "corp").unwrap() && has_profile(&path, "old").unwrap());
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "the file keeps its mode");
    }

    #[test]
    fn values_that_make_no_usable_profile_are_named() {
        let path = std::env::temp_dir().join("ssofs-config-write-none/config.toml");
        let bad = NewProfile { issuer: Some("http://idp.example.com".into()), tenant: None, ..new() };
        let err = with_profile(&path, "corp", &bad).unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
        let bad = NewProfile { endpoint: "https://key:secret@minio.example.com".into(), ..new() };
        let err = with_profile(&path, "corp", &bad).unwrap_err().to_string();
        assert!(err.contains("user name or password") && !err.contains("secret"), "{err}");
    }
}
