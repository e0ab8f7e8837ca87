//! The S3 endpoint and its STS behave as MinIO does (`../shared/spec/minio-sts.md`), seen through
//! aws-sdk-s3 and plain HTTP.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use common::{Stack, StsCredentials, s3_code, xml_field};
use ssofs_devstack::scenario;

async fn bucket_names(c: &aws_sdk_s3::Client) -> Result<Vec<String>, String> {
    let out = c.list_buckets().send().await.map_err(|e| s3_code(&e))?;
    Ok(out.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect())
}

#[tokio::test]
async fn alice_gets_credentials_for_her_groups_buckets() {
    let s = Stack::start("alice").await;
    let creds = s.credentials_for("alice").await;
    assert_eq!(creds.access_key.len(), 20);
    let alice = s.s3(&creds);
    let mut names = bucket_names(&alice).await.unwrap();
    names.sort();
    assert_eq!(names, ["analytics-curated", "analytics-raw"], "finance is filtered out");
    alice
        .put_object()
        .bucket("analytics-raw")
        .key("alice/notes.txt")
        .body(ByteStream::from_static(b"hi"))
        .send()
        .await
        .unwrap();
    let got = alice.get_object().bucket("analytics-raw").key("alice/notes.txt").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"hi");
    let denied = alice.get_object().bucket("finance").key("ledger/2026-q3.csv").send().await.unwrap_err();
    assert_eq!(s3_code(&denied), "AccessDenied");

    // The request log names the operation and alice's access key.
    let log = s.requests().await;
    assert!(
        log.iter()
            .any(|r| r["op"] == "PutObject" && r["access_key"] == creds.access_key.as_str() && r["status"] == 200)
    );
    assert!(log.iter().any(|r| r["op"] == "AssumeRoleWithWebIdentity" && r["status"] == 200));
    assert!(log.iter().any(|r| r["op"] == "GetObject" && r["status"] == 403));
    s.running.shutdown().await;
}

#[tokio::test]
async fn oscar_reads_analytics_but_cannot_write_and_never_sees_finance() {
    let s = Stack::start("oscar").await;
    let oscar = s.s3(&s.credentials_for("oscar").await);
    let mut names = bucket_names(&oscar).await.unwrap();
    names.sort();
    assert_eq!(names, ["analytics-curated", "analytics-raw"]);
    let got = oscar.get_object().bucket("analytics-raw").key("README.txt").send().await.unwrap();
    assert!(!got.body.collect().await.unwrap().into_bytes().is_empty());
    let put = oscar.put_object().bucket("analytics-raw").key("x.txt").body(ByteStream::from_static(b"no")).send().await;
    assert_eq!(s3_code(&put.unwrap_err()), "AccessDenied");
    let del = oscar.delete_object().bucket("analytics-raw").key("README.txt").send().await;
    assert_eq!(s3_code(&del.unwrap_err()), "AccessDenied");
    let list = oscar.list_objects_v2().bucket("finance").send().await;
    assert_eq!(s3_code(&list.unwrap_err()), "AccessDenied");
    s.running.shutdown().await;
}

#[tokio::test]
async fn eve_and_bob_get_minios_claim_missing_error() {
    let s = Stack::start("claims").await;
    for user in ["eve", "bob"] {
        let token = s.id_token(user).await;
        let (status, xml) = s.sts(&token, &[]).await;
        assert_eq!(status, 400, "{user}: {xml}");
        assert_eq!(xml_field(&xml, "Code").unwrap(), "InvalidParameterValue");
        assert_eq!(
            xml_field(&xml, "Message").unwrap(),
            "groups claim missing from the JWT token, credentials will not be generated",
            "{user}"
        );
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn undefined_policies_are_named_in_the_error() {
    // With claim_name=roles, eve (no roles) has no claim; bob's role maps; the error for a user whose
    // claim names nothing defined lists what was asked for.
    let s = Stack::start_with("roles", |c| c.sts_claim_name = "oid".into()).await;
    let (status, xml) = s.sts(&s.id_token("alice").await, &[]).await;
    assert_eq!(status, 400);
    let msg = xml_field(&xml, "Message").unwrap();
    assert!(
        msg.starts_with("None of the given policies (`0a1b2c3d-aaaa-4bbb-8ccc-000000000001`) are defined"),
        "{msg}"
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn role_arn_mode_and_unknown_role_arn() {
    let s = Stack::start("rolearn").await;
    // eve has no groups, but the role-policy provider gives her read-only access.
    let token = s.id_token("eve").await;
    let (status, xml) = s.sts(&token, &[("RoleArn", scenario::ROLE_ARN)]).await;
    assert_eq!(status, 200, "{xml}");
    let eve = s.s3(&StsCredentials::parse(&xml));
    eve.get_object().bucket("analytics-curated").key("reports/weekly/summary.md").send().await.unwrap();
    let put = eve.put_object().bucket("analytics-curated").key("x").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(s3_code(&put.unwrap_err()), "AccessDenied");
    // An unknown RoleArn is ignored while a claim-based provider exists (minio #21421).
    let (status, xml) = s.sts(&s.id_token("alice").await, &[("RoleArn", "arn:aws:iam::123456789012:role/x")]).await;
    assert_eq!(status, 200, "{xml}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn sts_checks_time_claims_with_zero_leeway() {
    let s = Stack::start("leeway").await;
    // Tokens issued 30 s in the future: iat and nbf are after MinIO's now.
    s.control("clock-offset", &[("seconds", "30")]).await;
    let (status, xml) = s.sts(&s.id_token("alice").await, &[]).await;
    assert_eq!(status, 400, "{xml}");
    let msg = xml_field(&xml, "Message").unwrap();
    assert!(msg == "token is not valid yet" || msg == "token used before issued", "{msg}");
    // Tokens issued two hours ago have expired.
    s.control("clock-offset", &[("seconds", "-7200")]).await;
    let (status, xml) = s.sts(&s.id_token("alice").await, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(xml_field(&xml, "Message").unwrap(), "token is expired");
    // Back to a true clock, the same user gets credentials.
    s.control("clock-offset", &[("seconds", "0")]).await;
    assert_eq!(s.sts(&s.id_token("alice").await, &[]).await.0, 200);
    s.running.shutdown().await;
}

#[tokio::test]
async fn sts_refuses_a_token_for_another_audience_and_a_bad_signature() {
    let s = Stack::start("aud").await;
    // A token signed with the IdP's own current key, but issued to another application.
    let token = s.id_token("alice").await;
    let kid = common::header(&token)["kid"].as_str().unwrap().to_string();
    let key = ssofs_devstack::keys::all().into_iter().find(|k| k.kid == kid).unwrap();
    let mut claims = common::claims(&token);
    claims["aud"] = "11111111-2222-3333-4444-555555555555".into();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(kid);
    let forged = jsonwebtoken::encode(&h, &claims, &key.encoding).unwrap();
    let (status, xml) = s.sts(&forged, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        xml_field(&xml, "Message").unwrap(),
        "STS JWT Token has `azp` claim invalid, `azp` must match configured OpenID Client ID"
    );
    // A tampered payload no longer matches its signature.
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = s.id_token("oscar").await;
    parts[1] = other.split('.').nth(1).unwrap();
    let (status, xml) = s.sts(&parts.join("."), &[]).await;
    assert_eq!(status, 400);
    assert!(xml_field(&xml, "Message").unwrap().contains("verification error"), "{xml}");
    // A Microsoft Graph access token cannot be verified by third parties.
    let graph = s.login("alice").await["access_token"].as_str().unwrap().to_string();
    assert_eq!(s.sts(&graph, &[]).await.0, 400);
    s.running.shutdown().await;
}

/// MinIO's order (internal/config/identity/openid/jwt.go Validate): signature and times, then
/// DurationSeconds, then the audience; and its words for a kid it has no key for.
#[tokio::test]
async fn sts_checks_duration_before_audience_and_names_an_unknown_kid() {
    let s = Stack::start("order").await;
    let token = s.id_token("alice").await;
    let kid = common::header(&token)["kid"].as_str().unwrap().to_string();
    let key = ssofs_devstack::keys::all().into_iter().find(|k| k.kid == kid).unwrap();
    let sign = |kid: Option<&str>, claims: &serde_json::Value| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&h, claims, &key.encoding).unwrap()
    };
    let mut other_app = common::claims(&token);
    other_app["aud"] = "11111111-2222-3333-4444-555555555555".into();
    let forged = sign(Some(&kid), &other_app);
    let (status, xml) = s.sts(&forged, &[("DurationSeconds", "10")]).await;
    assert_eq!(status, 400);
    assert_eq!(xml_field(&xml, "Message").unwrap(), "invalid token expiry", "{xml}");
    let (_, xml) = s.sts(&forged, &[("DurationSeconds", "3600")]).await;
    assert!(xml_field(&xml, "Message").unwrap().contains("`azp` claim invalid"), "{xml}");

    let claims = common::claims(&token);
    let (status, xml) = s.sts(&sign(Some("no-such-kid"), &claims), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(xml_field(&xml, "Message").unwrap(), "No public key found for kid no-such-kid", "{xml}");
    let (_, xml) = s.sts(&sign(None, &claims), &[]).await;
    assert_eq!(xml_field(&xml, "Message").unwrap(), "Invalid kid value &lt;nil&gt;", "{xml}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn sts_refetches_keys_after_rotation() {
    let s = Stack::start("rotation").await;
    s.credentials_for("alice").await; // STS caches the JWKS
    s.control("rotate-keys", &[]).await;
    s.credentials_for("alice").await; // unknown kid: refetched once, verified
    s.running.shutdown().await;
}

/// MinIO fetches the JWKS again only when a token does not verify with the keys it has (a new kid
/// after rotation); when the IdP cannot be reached then, it answers 400 InvalidParameterValue with
/// Go's error text, here the status line of the IdP's 503.
#[tokio::test]
async fn sts_unable_to_fetch_the_idps_keys_answers_400_with_gos_text() {
    let s = Stack::start("jwks-down").await;
    s.credentials_for("alice").await; // STS has the current keys
    s.control("rotate-keys", &[]).await;
    let token = s.id_token("alice").await; // signed with a key STS has not seen
    s.control("faults", &[("idp_down", "1")]).await;
    let (status, xml) = s.sts(&token, &[]).await;
    assert_eq!(status, 400, "{xml}");
    assert_eq!(xml_field(&xml, "Code").unwrap(), "InvalidParameterValue", "{xml}");
    assert_eq!(xml_field(&xml, "Message").unwrap(), "503 Service Unavailable", "{xml}");
    s.control("faults", &[("idp_down", "0")]).await;
    assert_eq!(s.sts(&token, &[]).await.0, 200);
    s.running.shutdown().await;
}

#[tokio::test]
async fn duration_seconds_bounds_and_expiry() {
    let s = Stack::start("duration").await;
    let token = s.id_token("alice").await;
    for bad in ["10", "31536001", "soon"] {
        let (status, xml) = s.sts(&token, &[("DurationSeconds", bad)]).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(xml_field(&xml, "Message").unwrap(), "invalid token expiry");
    }
    let (status, xml) = s.sts(&token, &[("DurationSeconds", "3600")]).await;
    assert_eq!(status, 200);
    let exp = time::OffsetDateTime::parse(
        &xml_field(&xml, "Expiration").unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let in_secs = (exp - time::OffsetDateTime::now_utc()).whole_seconds();
    assert!((3590..=3600).contains(&in_secs), "expires in {in_secs} s");
    // Without DurationSeconds the credentials expire with the token.
    let (_, xml) = s.sts(&token, &[]).await;
    let exp = time::OffsetDateTime::parse(
        &xml_field(&xml, "Expiration").unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(exp.unix_timestamp(), common::claims(&token)["exp"].as_i64().unwrap());
    // A wrong version and an unknown action are MinIO's errors.
    let form =
        [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2010-01-01"), ("WebIdentityToken", token.as_str())];
    let xml = s.http.post(&s.running.s3_endpoint).form(&form).send().await.unwrap().text().await.unwrap();
    assert_eq!(xml_field(&xml, "Code").unwrap(), "MissingParameter");
    let form = [("Action", "AssumeRole"), ("Version", "2011-06-15")];
    let xml = s.http.post(&s.running.s3_endpoint).form(&form).send().await.unwrap().text().await.unwrap();
    assert_eq!(xml_field(&xml, "Message").unwrap(), "Unsupported action AssumeRole");
    s.running.shutdown().await;
}

#[tokio::test]
async fn expired_credentials_are_an_unknown_access_key_also_on_head() {
    let s = Stack::start("expired").await;
    let creds = s.credentials_for("alice").await;
    let alice = s.s3(&creds);
    alice.head_object().bucket("analytics-raw").key("README.txt").send().await.unwrap();
    let expired = s.control("expire-sessions", &[]).await;
    assert!(expired["expired"].as_u64().unwrap() >= 1);
    // MinIO looks an expired temporary key up as unknown: 403 InvalidAccessKeyId, never ExpiredToken.
    let err = alice.list_objects_v2().bucket("analytics-raw").send().await.unwrap_err();
    assert_eq!(s3_code(&err), "InvalidAccessKeyId");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    assert_eq!(
        err.as_service_error().and_then(aws_sdk_s3::error::ProvideErrorMetadata::message),
        Some("The Access Key Id you provided does not exist in our records.")
    );

    // HEAD has no body: MinIO carries the code in x-minio-error-code.
    let presigned = alice
        .head_object()
        .bucket("analytics-raw")
        .key("README.txt")
        .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let resp = s.http.head(presigned.uri()).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-minio-error-code"], "InvalidAccessKeyId");

    // The request log names the code of each refusal.
    let codes: Vec<String> = s
        .requests()
        .await
        .iter()
        .filter(|r| r["access_key"] == creds.access_key.as_str() && r["status"] == 403)
        .map(|r| r["code"].as_str().unwrap_or("<none>").to_string())
        .collect();
    assert_eq!(codes, ["InvalidAccessKeyId", "InvalidAccessKeyId"]);
    s.running.shutdown().await;
}

/// MinIO's session token is a JWT (HS512, cmd/sts-handlers.go AssumeRoleWithSSO, internal/auth
/// GetNewCredentialsWithMetadata) carrying the ID token's claims plus accessKey and the credentials'
/// exp, in every request's x-amz-security-token. Its size follows the ID token's claims: about 1.2 KB
/// with the devstack's compact Azure tokens, 1.5 to 3 KB with real ones carrying more claims.
#[tokio::test]
async fn session_tokens_are_jwts_with_the_id_tokens_claims() {
    let s = Stack::start("jwt-session").await;
    let id_token = s.id_token("alice").await;
    let (status, xml) = s.sts(&id_token, &[("DurationSeconds", "3600")]).await;
    assert_eq!(status, 200, "{xml}");
    let creds = StsCredentials::parse(&xml);
    let token = &creds.session_token;
    assert!((1000..=3000).contains(&token.len()), "{} characters: {token}", token.len());
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    // Every claim of the ID token is in it, and more.
    assert!(parts[1].len() > id_token.split('.').nth(1).unwrap().len(), "{token}");
    for p in &parts {
        assert!(!p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{p}");
    }
    assert_eq!(common::header(token)["alg"], "HS512");
    let (claims, id) = (common::claims(token), common::claims(&id_token));
    assert_eq!(claims["accessKey"], creds.access_key.as_str());
    for name in ["sub", "oid", "tid", "iss", "aud", "preferred_username", "name"] {
        assert_eq!(claims[name], id[name], "{name}");
    }
    let expiration =
        time::OffsetDateTime::parse(&creds.expiration, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(claims["exp"].as_i64(), Some(expiration.unix_timestamp()));

    // S3 takes it: the whole token travels in x-amz-security-token.
    let alice = s.s3(&creds);
    alice
        .put_object()
        .bucket("analytics-raw")
        .key("alice/jwt.txt")
        .body(ByteStream::from_static(b"signed with a JWT session token"))
        .send()
        .await
        .unwrap();
    let got = alice.get_object().bucket("analytics-raw").key("alice/jwt.txt").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"signed with a JWT session token");
    s.running.shutdown().await;
}

#[tokio::test]
async fn session_credentials_need_their_session_token() {
    let s = Stack::start("token").await;
    let creds = s.credentials_for("alice").await;
    let no_token = common::s3_client(&s.running.s3_endpoint, &creds.access_key, &creds.secret_key, None);
    let err = no_token.list_objects_v2().bucket("analytics-raw").send().await.unwrap_err();
    assert_eq!(s3_code(&err), "InvalidTokenId");
    let unknown = common::s3_client(&s.running.s3_endpoint, "AKNOTAKEY", "secret", None);
    assert_eq!(s3_code(&unknown.list_buckets().send().await.unwrap_err()), "InvalidAccessKeyId");
    s.running.shutdown().await;
}

#[tokio::test]
async fn s3_protocol_ranged_get_multipart_copy_listing_and_batch_delete() {
    let s = Stack::start("protocol").await;
    let root = s.root_s3();
    let b = "analytics-raw";

    // Ranged GET.
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 256) as u8).collect();
    let put = root.put_object().bucket(b).key("blob.bin").body(ByteStream::from(body.clone())).send().await.unwrap();
    let etag = put.e_tag().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", hex::encode(<md5::Md5 as md5::Digest>::digest(&body))));
    let part = root.get_object().bucket(b).key("blob.bin").range("bytes=100-199").send().await.unwrap();
    assert_eq!(part.content_range(), Some("bytes 100-199/10000"));
    assert_eq!(part.body.collect().await.unwrap().into_bytes().as_ref(), &body[100..200]);
    let head = root.head_object().bucket(b).key("blob.bin").send().await.unwrap();
    assert_eq!(head.content_length(), Some(10_000));
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    // Multipart upload: 5 MiB + 1 byte.
    let up = root.create_multipart_upload().bucket(b).key("big.bin").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let p1 = vec![7u8; 5 << 20];
    let r1 = root
        .upload_part()
        .bucket(b)
        .key("big.bin")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(p1))
        .send()
        .await
        .unwrap();
    let r2 = root
        .upload_part()
        .bucket(b)
        .key("big.bin")
        .upload_id(id)
        .part_number(2)
        .body(ByteStream::from(vec![9u8]))
        .send()
        .await
        .unwrap();
    let done = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(r1.e_tag().unwrap()).build())
        .parts(CompletedPart::builder().part_number(2).e_tag(r2.e_tag().unwrap()).build())
        .build();
    let fin = root
        .complete_multipart_upload()
        .bucket(b)
        .key("big.bin")
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert!(fin.e_tag().unwrap().ends_with("-2\""), "multipart ETag: {:?}", fin.e_tag());
    let head = root.head_object().bucket(b).key("big.bin").send().await.unwrap();
    assert_eq!(head.content_length(), Some((5 << 20) + 1));

    // CopyObject.
    root.copy_object().bucket(b).key("copy.bin").copy_source(format!("{b}/blob.bin")).send().await.unwrap();
    let copy = root.get_object().bucket(b).key("copy.bin").send().await.unwrap();
    assert_eq!(copy.body.collect().await.unwrap().into_bytes().as_ref(), body.as_slice());

    // ListObjectsV2 with delimiter, directory markers, continuation.
    let top = root.list_objects_v2().bucket(b).delimiter("/").send().await.unwrap();
    let prefixes: Vec<&str> = top.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert!(prefixes.contains(&"events/") && prefixes.contains(&"schemas/"), "{prefixes:?}");
    let schemas = root.list_objects_v2().bucket(b).prefix("schemas/").delimiter("/").send().await.unwrap();
    let keys: Vec<&str> = schemas.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["schemas/", "schemas/events.json"], "the directory marker is listed");
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = root
            .list_objects_v2()
            .bucket(b)
            .prefix("events/")
            .max_keys(2)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        seen.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        token = page.next_continuation_token().map(str::to_string);
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    // DeleteObjects.
    let del = Delete::builder()
        .objects(ObjectIdentifier::builder().key("copy.bin").build().unwrap())
        .objects(ObjectIdentifier::builder().key("blob.bin").build().unwrap())
        .build()
        .unwrap();
    let out = root.delete_objects().bucket(b).delete(del).send().await.unwrap();
    assert_eq!(out.deleted().len(), 2);
    let gone = root.head_object().bucket(b).key("blob.bin").send().await.unwrap_err();
    assert!(gone.raw_response().map(|r| r.status().as_u16()) == Some(404));
    s.running.shutdown().await;
}

#[tokio::test]
async fn session_policy_with_prefix_condition_narrows_what_alice_may_list() {
    let s = Stack::start("prefix").await;
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::analytics-raw"],
         "Condition":{"StringLike":{"s3:prefix":["events/*"]}}},
        {"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::analytics-raw/events/*"]}]}"#;
    let (status, xml) = s.sts(&s.id_token("alice").await, &[("Policy", policy)]).await;
    assert_eq!(status, 200, "{xml}");
    let alice = s.s3(&StsCredentials::parse(&xml));
    let listed = alice.list_objects_v2().bucket("analytics-raw").prefix("events/2026/").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(3));
    let top = alice.list_objects_v2().bucket("analytics-raw").delimiter("/").send().await;
    assert_eq!(s3_code(&top.unwrap_err()), "AccessDenied", "the session policy intersects the group policy");
    let readme = alice.get_object().bucket("analytics-raw").key("README.txt").send().await;
    assert_eq!(s3_code(&readme.unwrap_err()), "AccessDenied");
    s.running.shutdown().await;
}

#[tokio::test]
async fn the_briefs_scenario_is_seeded() {
    let s = Stack::start("seed").await;
    let root = s.root_s3();
    let mut names = bucket_names(&root).await.unwrap();
    names.sort();
    assert_eq!(names, ["analytics-curated", "analytics-raw", "finance"], "root sees every bucket");
    for bucket in names {
        let listed = root.list_objects_v2().bucket(&bucket).send().await.unwrap();
        assert!(listed.key_count().unwrap_or(0) >= 2, "{bucket} has seed objects");
    }
    let nested =
        root.list_objects_v2().bucket("analytics-raw").prefix("events/2026/11/").delimiter("/").send().await.unwrap();
    assert_eq!(nested.common_prefixes().len(), 2, "nested prefixes to walk");
    s.running.shutdown().await;
}

/// Benchmarks seed listings of 100,000 objects through the control API, and read only the part of
/// the request log one step made.
#[tokio::test]
async fn bulk_seeding_and_the_request_log_from_an_index() {
    let s = Stack::start("bulk-seed").await;
    let seeded = s
        .control("seed-objects", &[("bucket", "analytics-raw"), ("prefix", "bulk/"), ("count", "1500"), ("size", "16")])
        .await;
    assert_eq!(seeded["count"], 1500);
    let url = |path: &str| format!("{}/{path}", s.running.control_url);
    let count = |v: serde_json::Value| v["count"].as_u64().unwrap() as usize;
    let before = count(s.http.get(url("requests/count")).send().await.unwrap().json().await.unwrap());
    assert_eq!(before, s.requests().await.len(), "seeding made no S3 request");

    let root = s.root_s3();
    let mut pages = root.list_objects_v2().bucket("analytics-raw").prefix("bulk/").into_paginator().send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        keys.extend(page.contents().iter().map(|o| (o.key().unwrap().to_string(), o.size().unwrap())));
    }
    assert_eq!(keys.len(), 1500);
    assert_eq!(keys[0], ("bulk/000000".to_string(), 16));
    assert_eq!(keys[1499].0, "bulk/001499");

    let since: Vec<serde_json::Value> =
        s.http.get(url(&format!("requests?since={before}"))).send().await.unwrap().json().await.unwrap();
    let ops: Vec<&str> = since.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["ListObjectsV2", "ListObjectsV2"], "two pages of 1000, nothing else");
    let after: Vec<serde_json::Value> =
        s.http.get(url("requests?since=1000000")).send().await.unwrap().json().await.unwrap();
    assert!(after.is_empty());

    let resp = s
        .http
        .post(url("seed-objects"))
        .form(&[("bucket", "no-such-bucket"), ("prefix", "x/"), ("count", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    s.running.shutdown().await;
}
