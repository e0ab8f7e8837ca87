//! Reading STS replies: MinIO's and AWS's `AssumeRoleWithWebIdentityResponse` and their error
//! documents (`ErrorResponse/Error/{Code,Message}`, or a bare S3-style `Error`). Namespace prefixes
//! are dropped first, so `xmlns` declarations and prefixed elements parse alike; unknown elements are
//! ignored; anything unreadable becomes an error naming what was wrong, never a panic.

use std::time::SystemTime;

use quick_xml::events::{BytesEnd, BytesStart, Event};
use serde::Deserialize;

/// The credentials in a successful reply.
pub(crate) struct Issued {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
}

/// Code and message of an error reply.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub code: String,
    pub message: String,
}

#[derive(Deserialize)]
struct SuccessDoc {
    #[serde(rename = "AssumeRoleWithWebIdentityResult")]
    result: Option<ResultElem>,
}

#[derive(Deserialize)]
struct ResultElem {
    #[serde(rename = "Credentials")]
    credentials: Option<CredentialsElem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsElem {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    expiration: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorDoc {
    error: Option<ErrorElem>,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorElem {
    code: Option<String>,
    message: Option<String>,
}

pub(crate) fn parse_success(xml: &str) -> Result<Issued, String> {
    let (root, doc) = local_names_only(xml)?;
    if root != "AssumeRoleWithWebIdentityResponse" {
        return Err(format!("expected an AssumeRoleWithWebIdentityResponse document, got <{root}>"));
    }
    let parsed: SuccessDoc = quick_xml::de::from_str(&doc).map_err(|e| format!("unexpected XML structure: {e}"))?;
    let c = parsed
        .result
        .ok_or("no AssumeRoleWithWebIdentityResult element")?
        .credentials
        .ok_or("no Credentials element in AssumeRoleWithWebIdentityResult")?;
    let field = |v: Option<String>, name: &str| {
        v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).ok_or(format!("Credentials has no {name}"))
    };
    let expiration = field(c.expiration, "Expiration")?;
    Ok(Issued {
        access_key_id: field(c.access_key_id, "AccessKeyId")?,
        secret_access_key: field(c.secret_access_key, "SecretAccessKey")?,
        session_token: field(c.session_token, "SessionToken")?,
        expiration: parse_rfc3339(&expiration)?,
    })
}

pub(crate) fn parse_error(xml: &str) -> Result<Refusal, String> {
    let (root, doc) = local_names_only(xml)?;
    if root != "ErrorResponse" && root != "Error" {
        return Err(format!("expected an ErrorResponse document, got <{root}>"));
    }
    let parsed: ErrorDoc = quick_xml::de::from_str(&doc).map_err(|e| format!("unexpected XML structure: {e}"))?;
    let (code, message) = match parsed.error {
        Some(e) => (e.code, e.message),
        None => (parsed.code, parsed.message),
    };
    let code = code.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).ok_or("error reply without a Code")?;
    Ok(Refusal { code, message: message.map(|m| m.trim().to_string()).unwrap_or_default() })
}

fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| format!("Expiration {s:?} is not an RFC 3339 time: {e}"))
}

/// Rewrites the document with local element names only and no attributes, dropping the
/// declaration, comments and processing instructions. Returns the root's name and the document.
fn local_names_only(xml: &str) -> Result<(String, String), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Vec::new());
    let mut root = None;
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML near byte {}: {e}", reader.error_position()))?;
        let out = match event {
            Event::Start(e) => {
                depth += 1;
                let name = local_name(e.local_name().as_ref())?;
                root.get_or_insert_with(|| name.clone());
                Event::Start(BytesStart::new(name))
            }
            Event::Empty(e) => {
                let name = local_name(e.local_name().as_ref())?;
                root.get_or_insert_with(|| name.clone());
                Event::Empty(BytesStart::new(name))
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                Event::End(BytesEnd::new(local_name(e.local_name().as_ref())?))
            }
            Event::Text(t) => Event::Text(t),
            Event::CData(c) => Event::CData(c),
            Event::GeneralRef(r) => Event::GeneralRef(r),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => continue,
        };
        writer.write_event(out).map_err(|e| format!("cannot re-encode XML: {e}"))?;
    }
    if depth != 0 {
        return Err("XML ends before its elements are closed (truncated reply?)".into());
    }
    let root = root.ok_or("empty reply: no XML elements")?;
    let doc = String::from_utf8(writer.into_inner()).map_err(|_| "reply is not UTF-8".to_string())?;
    Ok((root, doc))
}

fn local_name(bytes: &[u8]) -> Result<String, String> {
    std::str::from_utf8(bytes).map(str::to_string).map_err(|_| "element name is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIO_OK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><AssumedRoleUser><Arn></Arn><AssumeRoleId></AssumeRoleId></AssumedRoleUser><Credentials><AccessKeyId>AK</AccessKeyId><SecretAccessKey>SK</SecretAccessKey><SessionToken>ST</SessionToken><Expiration>2026-03-01T12:00:30Z</Expiration></Credentials><SubjectFromWebIdentityToken>sub</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>X</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn parses_minio_success() {
        let c = parse_success(MINIO_OK).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str(), c.session_token.as_str()),
            ("AK", "SK", "ST")
        );
        let t = time::OffsetDateTime::from(c.expiration);
        assert_eq!((t.hour(), t.minute(), t.second()), (12, 0, 30));
    }

    #[test]
    fn parses_aws_style_with_whitespace_prefixes_and_fractions() {
        let xml = r#"<sts:AssumeRoleWithWebIdentityResponse xmlns:sts="https://sts.amazonaws.com/doc/2011-06-15/">
          <!-- comment -->
          <sts:AssumeRoleWithWebIdentityResult>
            <sts:SubjectFromWebIdentityToken>amzn1</sts:SubjectFromWebIdentityToken>
            <sts:Audience>client.apps</sts:Audience>
            <sts:Credentials>
              <sts:SessionToken>
                  AQoDYXdzEE0a8ANXXXX&amp;more
              </sts:SessionToken>
              <sts:SecretAccessKey>wJalr</sts:SecretAccessKey>
              <sts:Expiration>2014-10-24T23:00:23.5+02:00</sts:Expiration>
              <sts:AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</sts:AccessKeyId>
              <sts:Unknown attr="1"/>
            </sts:Credentials>
            <sts:Provider>www.amazon.com</sts:Provider>
          </sts:AssumeRoleWithWebIdentityResult>
        </sts:AssumeRoleWithWebIdentityResponse>"#;
        let c = parse_success(xml).unwrap();
        assert_eq!(c.session_token, "AQoDYXdzEE0a8ANXXXX&more");
        assert_eq!(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
        let t = time::OffsetDateTime::from(c.expiration).to_offset(time::UtcOffset::UTC);
        assert_eq!((t.hour(), t.minute(), t.second()), (21, 0, 23));
    }

    #[test]
    fn parses_error_shapes() {
        let minio = r#"<?xml version="1.0" encoding="UTF-8"?>
<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type></Type><Code>InvalidParameterValue</Code><Message>token is expired</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
        let r = parse_error(minio).unwrap();
        assert_eq!(r, Refusal { code: "InvalidParameterValue".into(), message: "token is expired".into() });
        let bare = "<Error>\n  <Code>AccessDenied</Code>\n  <Message>Access Denied.</Message>\n</Error>";
        assert_eq!(parse_error(bare).unwrap().code, "AccessDenied");
        let aws = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Couldn&apos;t retrieve verification key</Message></Error>
  <RequestId>c6104cbe</RequestId></ErrorResponse>"#;
        assert_eq!(parse_error(aws).unwrap().message, "Couldn't retrieve verification key");
    }

    #[test]
    fn malformed_replies_are_named_errors() {
        let cases = [
            ("", "empty"),
            ("<html><body>502 Bad Gateway</body></html>", "got <html>"),
            ("not xml at all", "empty"),
            ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>", "truncated"),
            (
                "<AssumeRoleWithWebIdentityResponse></AssumeRoleWithWebIdentityResponse>",
                "no AssumeRoleWithWebIdentityResult",
            ),
            (
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult/></AssumeRoleWithWebIdentityResponse>",
                "no Credentials",
            ),
            (
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>a</AccessKeyId><SecretAccessKey>b</SecretAccessKey><SessionToken>c</SessionToken></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
                "no Expiration",
            ),
            (
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>a</AccessKeyId><SecretAccessKey>b</SecretAccessKey><SessionToken>c</SessionToken><Expiration>tomorrow</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
                "not an RFC 3339 time",
            ),
            ("<a><b></a>", "well-formed"),
        ];
        for (xml, expected) in cases {
            let err = parse_success(xml).err().unwrap_or_else(|| panic!("{xml:?} parsed"));
            assert!(err.contains(expected), "{xml:?}: {err}");
        }
        assert!(parse_error("<ErrorResponse><Error><Message>x</Message></Error></ErrorResponse>").is_err());
        assert!(parse_error("<Foo/>").unwrap_err().contains("got <Foo>"));
    }
}
