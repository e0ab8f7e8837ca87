//! Which account a sign-in gave, checked against what was asked for and what the profile had.

/// What to say loudly when a sign-in gave another account than the one asked for (`--login-hint`)
/// or than the profile's previous sign-in: a forged redirect or a shared browser session would
/// otherwise send the user's files to someone else's storage without a word.
pub fn account_warnings(account: &str, hint: Option<&str>, previous: Option<&str>) -> Vec<String> {
    let same = |a: &str, b: &str| {
        a.eq_ignore_ascii_case(b) || a.split_once('@').is_some_and(|(local, _)| local.eq_ignore_ascii_case(b))
    };
    let mut out = Vec::new();
    if let Some(hint) = hint.filter(|h| !same(account, h)) {
        out.push(format!(
            "signed in as {account}, but --login-hint asked for {hint}. If you did not choose {account}, run `ssofs \
             logout` now and sign in again"
        ));
    }
    if let Some(previous) = previous.filter(|p| !same(account, p)) {
        out.push(format!(
            "this profile was signed in as {previous} and is now signed in as {account}: files written from now on go \
             to {account}'s storage. If you did not mean to switch accounts, run `ssofs logout` and sign in again"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::account_warnings;

    #[test]
    fn another_account_than_asked_for_or_than_before_is_said_loudly() {
        assert!(account_warnings("bob@contoso.com", Some("bob"), Some("bob@contoso.com")).is_empty());
        assert!(account_warnings("Bob@contoso.com", Some("bob@CONTOSO.com"), None).is_empty());
        let w = account_warnings("mallory@contoso.com", Some("alice"), Some("alice@contoso.com"));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("--login-hint asked for alice") && w[1].contains("was signed in as alice@contoso.com"));
    }
}
