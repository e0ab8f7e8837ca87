//! ID token handling: parsing, the unverified claims, and verification against a fixed key set.
//!
//! Input: the first byte picks the mode. Even: the rest is a token string, verified as it is (it
//! cannot carry a valid signature, so this covers parsing and the signature checks). Odd: the rest is
//! `header\nclaims` (any bytes), made into a token signed with the test key, so that the claim
//! checks (issuer template, audience, times, nonce) see fuzzed claims.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;

/// A test key made for this target; it signs nothing else (512 bits: signing is per input, and the
/// strength is beside the point).
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAuao9IucI+xBSpkME
N5Y0LSu0rmi5aWG5nRkkX2pn86XsrPBulK+1SMypXjz0CcdCfEncXVGK4GbaAPEM
rwtOnQIDAQABAkEApaFSUu2qnFcOdFY6z+AGgfmIgULZjUJqFNTWFuzU+YyYjja4
yMNzhfXirY6mBliWpD/WIiDNfkXtyOHFRO434QIhAO6CCYwLxkgf44M8ulp9wkSr
IXvSeeXTrKWunaWxyVtFAiEAx0gUi74iPRa5aOHOvP4RiVX7rqLrydE127g7olW/
r3kCIQDMCWCjdvs0fltCzTPa8BS+a+vkIqX3cAMVZfEla5eHRQIgOTlOhQ41ALu8
xAxLdGO0n24sVmp8MLi9sXlGzoe3AmkCIAPNaTESBWpbzvx+L7NtDIE1t0N34qTM
pC5icfihPW5i
-----END PRIVATE KEY-----";

struct Keys {
    signer: SigningKey<Sha256>,
    jwks: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = RsaPrivateKey::from_pkcs8_pem(KEY).expect("the test key");
        let b64 = |b: Vec<u8>| URL_SAFE_NO_PAD.encode(b);
        let jwks = format!(
            r#"{{"keys":[{{"kty":"RSA","use":"sig","kid":"k1","n":"{}","e":"{}"}}]}}"#,
            b64(key.n().to_bytes_be()),
            b64(key.e().to_bytes_be())
        );
        Keys { signer: SigningKey::<Sha256>::new(key), jwks }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let keys = keys();
    let v1 = mode & 2 != 0;
    if mode & 1 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            ssofs::fuzzing::claims(token, &keys.jwks, v1);
        }
        return;
    }
    let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&br#"{"alg":"RS256","kid":"k1"}"#[..], rest),
    };
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = keys.signer.sign(input.as_bytes()).to_vec();
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    ssofs::fuzzing::claims(&token, &keys.jwks, v1);
});
