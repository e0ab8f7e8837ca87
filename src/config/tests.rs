//! Profiles from config files, flags and defaults.

use super::*;

#[test]
fn checksums_default_to_md5_and_an_unknown_one_is_named() {
    let d = tempdir("checksums");
    let base = "[profiles.p]\nissuer = \"https://i\"\nclient_id = \"c\"\n";
    let ok = write(&d, "ok.toml", base);
    let p = load_profile(&Sources { extra: Some(ok), ..Default::default() }, None).unwrap();
    assert_eq!(p.checksums, Checksums::Md5);
    let bad = write(&d, "bad.toml", &format!("{base}checksums = \"sha1\"\n"));
    let err = load_profile(&Sources { extra: Some(bad), ..Default::default() }, None).unwrap_err().to_string();
    assert!(err.contains("sha1") && err.contains("crc32c"), "{err}");
}

#[test]
fn an_endpoint_with_credentials_is_refused_without_repeating_them() {
    let err = check_endpoint("http://minio:s3cr3t@127.0.0.1:9000/x").unwrap_err();
    assert!(err.contains("http://127.0.0.1:9000") && !err.contains("s3cr3t") && !err.contains("minio:"), "{err}");
    assert!(check_endpoint("https://s3.example.com:9000").is_ok());
    assert!(check_endpoint("https://s3.example.com/path@x").is_ok(), "an @ in the path is not userinfo");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ssofs-config-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn later_files_override_earlier_key_by_key() {
    let d = tempdir("merge");
    let system = write(
        &d,
        "system.toml",
        "[profiles.corp]\ntenant = \"contoso.com\"\nclient_id = \"sys\"\nendpoint = \"https://s3\"\n",
    );
    let user = write(&d, "user.toml", "[profiles.corp]\nclient_id = \"user\"\n");
    let sources = Sources { system: Some(system), user: Some(user), extra: None };
    let p = load_profile(&sources, None).unwrap();
    assert_eq!(p.client_id, "user");
    assert_eq!(p.endpoint.as_deref(), Some("https://s3"));
    assert_eq!(p.issuer, "https://login.microsoftonline.com/contoso.com/v2.0");
    assert_eq!(p.token, StsToken::IdToken);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let d = tempdir("unknown");
    let f = write(&d, "c.toml", "[profiles.a]\nclient_id = \"x\"\nissuer = \"https://i\"\nendpiont = \"typo\"\n");
    let err = load_profile(&Sources { extra: Some(f.clone()), ..Default::default() }, None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&f.display().to_string()), "{msg}");
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("endpiont"), "{msg}");
}

#[test]
fn missing_explicit_file_and_unknown_profile_are_errors() {
    let d = tempdir("missing");
    let err = load_profile(&Sources { extra: Some(d.join("nope.toml")), ..Default::default() }, None).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    let f = write(&d, "c.toml", "[profiles.a]\nclient_id = \"x\"\nissuer = \"https://i\"\n");
    let err = load_profile(&Sources { extra: Some(f), ..Default::default() }, Some("b")).unwrap_err();
    assert!(err.to_string().contains("profiles found: a"), "{err}");
}

#[test]
fn command_line_wins_over_files() {
    let d = tempdir("cli");
    let f = write(&d, "c.toml", "[profiles.a]\nclient_id = \"x\"\nissuer = \"https://i/t/v2.0\"\n");
    let sources = Sources { extra: Some(f), ..Default::default() };
    let o = Overrides { client_id: Some("y".into()), accept_v1_issuer: Some(true), ..Default::default() };
    let p = load_profile_with(&sources, None, &o).unwrap();
    assert_eq!((p.client_id.as_str(), p.issuer.as_str(), p.accept_v1_issuer), ("y", "https://i/t/v2.0", true));
    let o = Overrides { tenant: Some("organizations".into()), ..Default::default() };
    let p = load_profile_with(&sources, None, &o).unwrap();
    assert_eq!(p.issuer, "https://login.microsoftonline.com/organizations/v2.0");
    assert!(!load_profile(&sources, None).unwrap().accept_v1_issuer);
}

#[test]
fn bad_values_are_errors() {
    let d = tempdir("bad");
    let f = write(&d, "c.toml", "[profiles.a]\nclient_id = \"x\"\nissuer = \"http://evil.example\"\n");
    assert!(load_profile(&Sources { extra: Some(f), ..Default::default() }, None).is_err());
    let f = write(&d, "d.toml", "[profiles.a]\nclient_id = \"x\"\nissuer = \"https://i\"\ntoken = \"graph\"\n");
    let err = load_profile(&Sources { extra: Some(f), ..Default::default() }, None).unwrap_err();
    assert!(err.to_string().contains("line 4"), "{err}");
    let f = write(&d, "e.toml", "[profiles.a]\nclient_id = \"x\"\nissuer = \"https://i\"\nop_timeout = 0\n");
    let err = load_profile(&Sources { extra: Some(f), ..Default::default() }, None).unwrap_err();
    assert!(err.to_string().contains("op_timeout"), "{err}");
}

#[test]
fn tls_verification_is_on_unless_turned_off_explicitly() {
    let d = tempdir("tls");
    let f = write(&d, "c.toml", "[profiles.a]\nclient_id = \"x\"\nissuer = \"https://i\"\n");
    let p = load_profile(&Sources { extra: Some(f), ..Default::default() }, None).unwrap();
    assert!(!p.insecure_tls);
    assert_eq!(p.op_timeout, None);
    let f = write(
        &d,
        "d.toml",
        "[profiles.a]\nclient_id = \"x\"\nissuer = \"https://i\"\ninsecure_tls = true\nop_timeout = 7.5\n",
    );
    let p = load_profile(&Sources { extra: Some(f), ..Default::default() }, None).unwrap();
    assert!(p.insecure_tls);
    assert_eq!(p.op_timeout, Some(Duration::from_millis(7500)));
}
