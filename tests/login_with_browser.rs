//! `ssofs login --browser`: authorization code + PKCE on a loopback redirect, driven headlessly through
//! `$BROWSER` set to a script that does what a browser does (follow the authorize redirect to the
//! loopback URL). The devstack signs in its auto-approve user or the `login_hint` user.

mod identity_support;

use identity_support::{Stack, curl_browser, script, text};

#[tokio::test(flavor = "multi_thread")]
async fn browser_sign_in_with_pkce_stores_verified_tokens() {
    let stack = Stack::start("browser-pkce", |c| c.auto_approve = Some("alice".into())).await;
    let browser = curl_browser(&stack.dir);
    // $BROWSER set: the browser flow is the default.
    let out = stack.run(&["login"], &[("BROWSER", browser.to_str().unwrap())]).await;
    assert!(out.status.success(), "{}", text(&out));
    let o = text(&out);
    assert!(o.contains("Opening the sign-in page"), "{o}");
    assert!(o.contains("code_challenge_method=S256") && o.contains("redirect_uri=http%3A%2F%2Flocalhost%3A"), "{o}");
    assert!(o.contains("Signed in as alice@contoso.onmicrosoft.com"), "{o}");
    let page = std::fs::read_to_string(stack.dir.join("loopback-page.html")).unwrap();
    assert!(page.contains("close this tab"), "{page}");
    let status = stack.run(&["status"], &[]).await;
    assert!(text(&status).contains("signed in as alice@contoso.onmicrosoft.com"), "{}", text(&status));
    assert!(text(&status).contains("refresh token: present"), "{}", text(&status));
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overage_user_is_accepted_and_status_says_overage() {
    let stack = Stack::start("browser-overage", |_| {}).await;
    let browser = curl_browser(&stack.dir);
    let out =
        stack.run(&["login", "--browser", "--login-hint", "bob"], &[("BROWSER", browser.to_str().unwrap())]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Signed in as bob@contoso.onmicrosoft.com"), "{}", text(&out));
    let status = stack.run(&["status"], &[]).await;
    assert!(text(&status).contains("groups:        overage"), "{}", text(&status));
    let json = stack.run(&["status", "--json"], &[]).await;
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["groups"], "overage");
    assert_eq!(v["upn"], "bob@contoso.onmicrosoft.com");
    stack.running.shutdown().await;
}

/// A profile on `/organizations`: discovery publishes the `{tenantid}` template, and the token's
/// issuer is completed with its `tid`.
#[tokio::test(flavor = "multi_thread")]
async fn organizations_authority_verifies_against_the_tenantid_template() {
    let stack = Stack::start("browser-orgs", |c| c.auto_approve = Some("alice".into())).await;
    let browser = curl_browser(&stack.dir);
    let issuer = format!("{}/organizations/v2.0", stack.running.idp_url);
    let out = stack.run(&["login", "--issuer", &issuer], &[("BROWSER", browser.to_str().unwrap())]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Signed in as alice"), "{}", text(&out));
    // A tenant named by its domain: discovery answers with the tenant GUID's issuer, as Azure does.
    let by_domain = format!("{}/contoso.onmicrosoft.com/v2.0", stack.running.idp_url);
    let out = stack.run(&["login", "--issuer", &by_domain], &[("BROWSER", browser.to_str().unwrap())]).await;
    assert!(out.status.success(), "{}", text(&out));
    // An unknown tenant: AADSTS90002 with what to check.
    let unknown = format!("{}/no-such-tenant/v2.0", stack.running.idp_url);
    let out = stack.run(&["login", "--issuer", &unknown], &[("BROWSER", browser.to_str().unwrap())]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("AADSTS90002") && text(&out).contains("tenant"), "{}", text(&out));
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_from_the_browser_times_out_with_advice() {
    let stack = Stack::start("browser-timeout", |_| {}).await;
    let out = stack.run(&["login", "--timeout", "2"], &[("BROWSER", "true")]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no answer from the browser within 2 s") && err.contains("--device-code"), "{err}");
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_with_another_state_is_refused() {
    let stack = Stack::start("browser-state", |c| c.auto_approve = Some("alice".into())).await;
    let forger = script(
        &stack.dir,
        "forge-state.sh",
        "#!/bin/sh\nloc=$(curl -s -o /dev/null -w '%{redirect_url}' \"$1\")\n\
         loc=$(echo \"$loc\" | sed 's/state=[^&]*/state=forged/')\ncurl -s \"$loc\" > /dev/null\n",
    );
    let out = stack.run(&["login", "--timeout", "20"], &[("BROWSER", forger.to_str().unwrap())]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("state that does not belong to this sign-in"), "{err}");
    assert!(!stack.token_file("devstack").exists(), "nothing stored");
    stack.running.shutdown().await;
}

/// Azure redirects errors (e.g. AADSTS65001, consent missing) to the loopback URL; ssofs shows the
/// error, its code and what to do.
#[tokio::test(flavor = "multi_thread")]
async fn an_error_redirect_is_explained() {
    let stack = Stack::start("browser-error", |_| {}).await;
    let refuser = script(
        &stack.dir,
        "refuse.sh",
        "#!/bin/sh\nstate=$(echo \"$1\" | sed -n 's/.*[?&]state=\\([^&]*\\).*/\\1/p')\n\
         redirect=$(echo \"$1\" | sed -n 's/.*[?&]redirect_uri=\\([^&]*\\).*/\\1/p' | sed 's/%3A/:/g; s/%2F/\\//g')\n\
         curl -s \"${redirect}?error=consent_required&error_description=AADSTS65001%3A+The+user+or+administrator+has+not+consented&state=${state}\" > /dev/null\n",
    );
    let out = stack.run(&["login", "--timeout", "20"], &[("BROWSER", refuser.to_str().unwrap())]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("consent_required") && err.contains("AADSTS65001"), "{err}");
    assert!(err.contains("administrator must grant consent"), "{err}");
    stack.running.shutdown().await;
}
