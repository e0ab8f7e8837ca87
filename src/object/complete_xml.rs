//! S3 replies whose XML is cut short must not be taken as answers. The SDK's XML reader stops
//! quietly at the end of the input, so a listing cut in half (a proxy's truncated buffer, a reply
//! whose Content-Length matches its truncated body) reads as a shorter listing: files would vanish
//! from directories, and "no such file" would be cached. This interceptor checks that every
//! buffered XML reply is complete before the SDK's result is used.

use aws_sdk_s3::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use quick_xml::events::Event;

#[derive(Debug)]
pub struct CompleteXml;

impl Intercept for CompleteXml {
    fn name(&self) -> &'static str {
        "CompleteXml"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let response = context.response();
        // Streaming bodies (GetObject) are not buffered and are checked by length instead.
        let Some(body) = response.body().bytes() else { return Ok(()) };
        if !response.status().is_success() || !looks_like_xml(body) {
            return Ok(());
        }
        complete(body).map_err(|why| format!("the S3 endpoint sent an incomplete XML reply ({why})").into())
    }
}

fn looks_like_xml(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// Well-formed, with its root element closed.
pub fn complete(body: &[u8]) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Empty(_)) if depth == 0 => roots += 1,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("malformed at byte {}: {e}", reader.buffer_position())),
        }
        buf.clear();
    }
    match (roots, depth) {
        (1, 0) => Ok(()),
        (0, _) => Err("no root element".into()),
        (_, 0) => Err("more than one root element".into()),
        (_, d) => Err(format!("ends inside {d} unclosed element(s)")),
    }
}

#[cfg(test)]
mod tests {
    use super::complete;

    #[test]
    fn only_whole_documents_pass() {
        let whole = "<?xml version=\"1.0\"?>\n<ListBucketResult><Name>b</Name><Contents><Key>a</Key></Contents>\
                     <IsTruncated>false</IsTruncated></ListBucketResult>";
        assert!(complete(whole.as_bytes()).is_ok());
        assert!(complete(b"<Empty/>").is_ok());
        for cut in [whole.len() / 2, whole.len() - 1, 30] {
            let err = complete(&whole.as_bytes()[..cut]).unwrap_err();
            assert!(err.contains("unclosed") || err.contains("malformed"), "{cut}: {err}");
        }
        assert!(complete(b"<a></b>").unwrap_err().contains("malformed"));
        assert!(complete(b"<a/><b/>").unwrap_err().contains("more than one"));
        assert!(complete(b"   ").unwrap_err().contains("no root"));
    }
}
