//! Identity layer: log the user in against the OpenID provider (Azure AD) and keep their tokens.

pub mod account;
pub mod browser;
pub mod clock;
pub mod login;
pub mod notify;
pub mod qr;
pub mod refresh;
pub mod source;
pub mod status;
pub mod store;
pub mod verify;

pub use refresh::StoreTokenSource;
pub use source::{TokenError, TokenSource, WebIdentityToken};
pub use store::{StoredTokens, TokenStore};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot reach the identity provider at {url}: {detail}. Check the profile's issuer and your network")]
    Unreachable { url: String, detail: String },
    #[error("the identity provider's discovery document at {url} is unusable: {detail}")]
    Discovery { url: String, detail: String },
    #[error("sign-in failed: {error}{}. {advice}", code.map(|c| format!(" (AADSTS{c})")).unwrap_or_default())]
    Refused { error: String, code: Option<u32>, advice: String },
    #[error("the identity provider returned an ID token that does not verify: {0}")]
    BadIdToken(String),
    #[error("token store: {0}")]
    Store(String),
    #[error("{0}")]
    Config(String),
}

/// Turns an Azure error (`error` plus the AADSTS code inside `error_description`) into what the user
/// should do. Branches on the code only to add advice; the `error` name is always reported.
pub fn azure_advice(error: &str, code: Option<u32>) -> String {
    let by_code = match code {
        Some(7000218) => "Enable \"Allow public client flows\" in the app registration (Authentication blade)",
        Some(700016) => "The client id is not registered in this tenant: check the profile's client_id and tenant",
        Some(50011) => {
            "Register http://localhost as a redirect URI (Mobile and desktop applications) in the app registration"
        }
        Some(65001) => "An administrator must grant consent to the application for this tenant",
        Some(53003) => "Blocked by Conditional Access; try `ssofs login --browser` from a compliant device",
        Some(50076 | 50079) => "Multi-factor authentication is required: use `ssofs login --browser`",
        Some(700082 | 50173 | 70043) => "Your sign-in has expired or was revoked: run `ssofs login` again",
        Some(90002) => "The tenant does not exist: check the profile's tenant (or issuer)",
        Some(54005 | 70008) => "The sign-in took too long or was already used: run `ssofs login` again",
        Some(70020) => "The code expired before it was entered: run `ssofs login` again and enter the code sooner",
        _ => "",
    };
    if !by_code.is_empty() {
        return by_code.to_string();
    }
    match error {
        "authorization_declined" | "access_denied" => {
            "The sign-in was declined; run `ssofs login` again to retry".into()
        }
        "expired_token" => {
            "The code expired before it was entered: run `ssofs login` again and enter the code sooner".into()
        }
        "bad_verification_code" => {
            "The identity provider did not recognise the device code: run `ssofs login` again".into()
        }
        "invalid_grant" => "Run `ssofs login` again".into(),
        _ => "See the identity provider's message above".into(),
    }
}

/// The number after "AADSTS" in an Azure error description.
pub fn aadsts_code(description: &str) -> Option<u32> {
    let rest = &description[description.find("AADSTS")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_aadsts_codes() {
        assert_eq!(aadsts_code("AADSTS70016: pending\r\nTrace ID: x"), Some(70016));
        assert_eq!(aadsts_code("no code here"), None);
        assert_eq!(aadsts_code("AADSTS"), None);
    }

    #[test]
    fn advice_names_the_fix() {
        assert!(azure_advice("invalid_client", Some(7000218)).contains("Allow public client flows"));
        assert!(azure_advice("authorization_declined", None).contains("declined"));
    }

    /// Every code the issue lists, with the error name Azure sends it under.
    #[test]
    fn each_listed_azure_code_has_its_own_advice() {
        let cases: [(&str, u32, &str); 10] = [
            ("invalid_client", 7000218, "Allow public client flows"),
            ("unauthorized_client", 700016, "not registered in this tenant"),
            ("invalid_request", 50011, "redirect URI"),
            ("invalid_grant", 65001, "consent"),
            ("invalid_grant", 53003, "Conditional Access"),
            ("interaction_required", 50076, "--browser"),
            ("interaction_required", 50079, "--browser"),
            ("invalid_grant", 700082, "ssofs login"),
            ("invalid_grant", 50173, "ssofs login"),
            ("invalid_grant", 70043, "ssofs login"),
        ];
        for (error, code, needle) in cases {
            let advice = azure_advice(error, Some(code));
            assert!(advice.contains(needle), "AADSTS{code}: {advice}");
            let shown = IdentityError::Refused { error: error.into(), code: Some(code), advice }.to_string();
            assert!(shown.contains(&format!("AADSTS{code}")) && shown.contains(error), "{shown}");
        }
        assert!(azure_advice("interaction_required", Some(50076)).contains("Multi-factor"));
        assert!(azure_advice("invalid_grant", Some(53003)).contains("compliant device"));
        assert!(azure_advice("invalid_request", Some(90002)).contains("tenant"));
    }
}
