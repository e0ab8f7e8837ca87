//! The identity provider's signing keys: fixed test keys checked in under `devstack/keys/`, so start-up
//! never generates RSA keys.

use jsonwebtoken::EncodingKey;
use serde::Deserialize;

const PEMS: [&str; 6] = [
    include_str!("../keys/key0.pem"),
    include_str!("../keys/key1.pem"),
    include_str!("../keys/key2.pem"),
    include_str!("../keys/key3.pem"),
    include_str!("../keys/key4.pem"),
    include_str!("../keys/key5.pem"),
];
const MATERIAL: &str = include_str!("../keys/jwks-material.json");

#[derive(Debug, Clone, Deserialize)]
struct PublicParts {
    kid: String,
    x5t: String,
    n: String,
    e: String,
    x5c: Vec<String>,
}

/// One RSA key: the private half for signing and the public JWK fields.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    public: PublicParts,
}

impl SigningKey {
    /// The key as Azure publishes it: kty, use, kid, x5t, n, e, x5c, issuer, and no `alg`.
    pub fn jwk(&self, issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.public.kid,
            "x5t": self.public.x5t,
            "n": self.public.n,
            "e": self.public.e,
            "x5c": self.public.x5c,
            "issuer": issuer,
        })
    }

    /// Public modulus and exponent (base64url), for verifying with `DecodingKey::from_rsa_components`.
    pub fn components(&self) -> (&str, &str) {
        (&self.public.n, &self.public.e)
    }
}

/// All checked-in keys, in a fixed order. Rotation walks through them.
pub fn all() -> Vec<SigningKey> {
    let public: Vec<PublicParts> = serde_json::from_str(MATERIAL).expect("checked-in jwks-material.json is valid");
    PEMS.iter()
        .zip(public)
        .map(|(pem, public)| SigningKey {
            kid: public.kid.clone(),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("checked-in key PEM is valid"),
            public,
        })
        .collect()
}
