//! Shared harness: a devstack started in-process on ephemeral ports, and small HTTP helpers that play
//! the client side (device-code sign-in, STS exchange, aws-sdk-s3 clients).
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use ssofs_devstack::{Config, Running, scenario};

pub struct Stack {
    pub running: Running,
    pub http: reqwest::Client,
    pub dir: PathBuf,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let d = std::env::temp_dir().join(format!("devstack-test-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Stack {
    pub async fn start(tag: &str) -> Stack {
        Self::start_with(tag, |_| {}).await
    }

    pub async fn start_with(tag: &str, tweak: impl FnOnce(&mut Config)) -> Stack {
        let dir = temp_dir(tag);
        let mut cfg = Config::new(&dir);
        cfg.device_code_interval = Duration::from_secs(1);
        cfg.sts_min_duration = Duration::from_secs(30);
        tweak(&mut cfg);
        let running = ssofs_devstack::start(cfg).await.expect("devstack starts");
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Stack { running, http, dir }
    }

    pub fn tenant_url(&self, path: &str) -> String {
        format!("{}/{}/{}", self.running.idp_url, scenario::TENANT_ID, path)
    }

    pub async fn control(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let resp = self.http.post(format!("{}/{path}", self.running.control_url)).form(form).send().await.unwrap();
        assert!(resp.status().is_success(), "control {path} failed: {}", resp.status());
        resp.json().await.unwrap()
    }

    pub async fn requests(&self) -> Vec<Value> {
        let v: Value =
            self.http.get(format!("{}/requests", self.running.control_url)).send().await.unwrap().json().await.unwrap();
        v.as_array().cloned().unwrap()
    }

    /// POST devicecode; returns the JSON answer.
    pub async fn device_code(&self, scope: &str) -> Value {
        let resp = self
            .http
            .post(self.tenant_url("oauth2/v2.0/devicecode"))
            .form(&[("client_id", scenario::CLIENT_ID), ("scope", scope)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// One poll of the token endpoint for a device code: (HTTP status, JSON).
    pub async fn poll(&self, device_code: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", scenario::CLIENT_ID),
            ("device_code", device_code),
        ])
        .await
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let resp = self.http.post(self.tenant_url("oauth2/v2.0/token")).form(form).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// Signs `user` in with the device-code flow (approved through the control API); returns the
    /// token response.
    pub async fn login(&self, user: &str) -> Value {
        let dc = self.device_code("openid profile email offline_access").await;
        let user_code = dc["user_code"].as_str().unwrap();
        self.control("approve", &[("user_code", user_code), ("user", user)]).await;
        let (status, tokens) = self.poll(dc["device_code"].as_str().unwrap()).await;
        assert_eq!(status, 200, "token response: {tokens}");
        tokens
    }

    pub async fn id_token(&self, user: &str) -> String {
        self.login(user).await["id_token"].as_str().unwrap().to_string()
    }

    /// AssumeRoleWithWebIdentity as a plain form POST: (HTTP status, XML body).
    pub async fn sts(&self, token: &str, extra: &[(&str, &str)]) -> (u16, String) {
        let mut form =
            vec![("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("WebIdentityToken", token)];
        form.extend_from_slice(extra);
        let resp = self.http.post(&self.running.s3_endpoint).form(&form).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// STS credentials for `user`, or panics with the STS answer.
    pub async fn credentials_for(&self, user: &str) -> StsCredentials {
        let token = self.id_token(user).await;
        let (status, xml) = self.sts(&token, &[]).await;
        assert_eq!(status, 200, "{xml}");
        StsCredentials::parse(&xml)
    }

    pub fn s3(&self, creds: &StsCredentials) -> aws_sdk_s3::Client {
        s3_client(&self.running.s3_endpoint, &creds.access_key, &creds.secret_key, Some(&creds.session_token))
    }

    pub fn root_s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.running.s3_endpoint, scenario::ROOT_ACCESS_KEY, scenario::ROOT_SECRET_KEY, None)
    }
}

#[derive(Debug, Clone)]
pub struct StsCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    pub expiration: String,
}

pub fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

impl StsCredentials {
    pub fn parse(xml: &str) -> Self {
        StsCredentials {
            access_key: xml_field(xml, "AccessKeyId").expect("AccessKeyId"),
            secret_key: xml_field(xml, "SecretAccessKey").expect("SecretAccessKey"),
            session_token: xml_field(xml, "SessionToken").expect("SessionToken"),
            expiration: xml_field(xml, "Expiration").expect("Expiration"),
        }
    }
}

pub fn s3_client(endpoint: &str, ak: &str, sk: &str, token: Option<&str>) -> aws_sdk_s3::Client {
    let creds = aws_credential_types::Credentials::new(ak, sk, token.map(str::to_string), None, "devstack-test");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(creds)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The claims of a JWT, without verifying it (tests verify separately where it matters).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

pub fn header(jwt: &str) -> Value {
    use base64::Engine;
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

/// The S3 error code of an aws-sdk error.
pub fn s3_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()).unwrap_or("<no service error>").to_string()
}
