//! `ssofs login --browser`: authorization code + PKCE on a loopback redirect, driven headlessly through
//! `$BROWSER` set to a script that does what a browser does (open what ssofs hands it, the authorize
//! URL or a local page redirecting there, and follow the authorize redirect to the loopback URL). The
//! devstack signs in its auto-approve user or the `login_hint` user.

use crate::support::identity::{Stack, browser_script, curl_browser};
use crate::support::text;

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

/// A request to the loopback port with another state (a stale tab, or a page on another site forging
/// the redirect to log the user in as someone else) is answered 400 and ends nothing: ssofs keeps
/// waiting for the redirect of its own sign-in, which then succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_with_another_state_is_answered_400_and_the_sign_in_goes_on() {
    let stack = Stack::start("browser-state", |c| c.auto_approve = Some("alice".into())).await;
    let forged = stack.dir.join("forged-status");
    let forger = browser_script(
        &stack.dir,
        "forge-state.sh",
        &format!(
            "url=$(auth_url \"$1\")\nloc=$(curl -s --max-time 20 -o /dev/null -w '%{{redirect_url}}' \"$url\")\n\
             bad=$(echo \"$loc\" | sed 's/state=[^&]*/state=forged/')\n\
             curl -s --max-time 20 -o /dev/null -w '%{{http_code}}' \"$bad\" > {forged}\n\
             curl -s --max-time 20 \"$loc\" > /dev/null\n",
            forged = forged.display()
        ),
    );
    let out = stack.run(&["login", "--timeout", "20"], &[("BROWSER", forger.to_str().unwrap())]).await;
    assert!(out.status.success(), "the forged redirect must not end the sign-in: {}", text(&out));
    assert!(text(&out).contains("Signed in as alice"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&forged).unwrap(), "400", "the forged redirect is refused");
    assert!(stack.token_file("devstack").exists());
    stack.running.shutdown().await;
}

/// Only a forged redirect comes back: nothing is stored, and ssofs gives up at its timeout.
#[tokio::test(flavor = "multi_thread")]
async fn only_a_forged_redirect_signs_nobody_in() {
    let stack = Stack::start("browser-state-only", |c| c.auto_approve = Some("alice".into())).await;
    let forger = browser_script(
        &stack.dir,
        "forge-state.sh",
        "url=$(auth_url \"$1\")\nloc=$(curl -s --max-time 20 -o /dev/null -w '%{redirect_url}' \"$url\")\n\
         loc=$(echo \"$loc\" | sed 's/state=[^&]*/state=forged/')\ncurl -s --max-time 20 \"$loc\" > /dev/null\n",
    );
    let out = stack.run(&["login", "--timeout", "5"], &[("BROWSER", forger.to_str().unwrap())]).await;
    assert!(!out.status.success());
    assert!(!text(&out).contains("Signed in"), "{}", text(&out));
    assert!(!stack.token_file("devstack").exists(), "nothing stored");
    stack.running.shutdown().await;
}

/// Azure redirects errors (e.g. AADSTS65001, consent missing) to the loopback URL; ssofs shows the
/// error, its code and what to do.
#[tokio::test(flavor = "multi_thread")]
async fn an_error_redirect_is_explained() {
    let stack = Stack::start("browser-error", |_| {}).await;
    let refuser = browser_script(
        &stack.dir,
        "refuse.sh",
        "url=$(auth_url \"$1\")\nstate=$(echo \"$url\" | sed -n 's/.*[?&]state=\\([^&]*\\).*/\\1/p')\n\
         redirect=$(echo \"$url\" | sed -n 's/.*[?&]redirect_uri=\\([^&]*\\).*/\\1/p' | sed 's/%3A/:/g; s/%2F/\\//g')\n\
         curl -s \"${redirect}?error=consent_required&error_description=AADSTS65001%3A+The+user+or+administrator+has+not+consented&state=${state}\" > /dev/null\n",
    );
    let out = stack.run(&["login", "--timeout", "20"], &[("BROWSER", refuser.to_str().unwrap())]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("consent_required") && err.contains("AADSTS65001"), "{err}");
    assert!(err.contains("administrator must grant consent"), "{err}");
    stack.running.shutdown().await;
}

/// A connection to the loopback port that never sends a request (a port scanner, another user's
/// stalled client) must not hold up the browser's: connections are served concurrently.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_connection_does_not_hold_up_the_sign_in() {
    let stack = Stack::start("browser-stalled", |c| c.auto_approve = Some("alice".into())).await;
    let browser = browser_script(
        &stack.dir,
        "stalling-browser.sh",
        "url=$(auth_url \"$1\")\n[ -n \"$url\" ] || exit 1\n\
         loc=$(curl -s --max-time 20 -o /dev/null -w '%{redirect_url}' \"$url\")\n[ -n \"$loc\" ] || exit 1\n\
         port=$(printf '%s' \"$loc\" | sed 's#^http://[^:]*:\\([0-9]*\\)/.*#\\1#')\n\
         # Three connections that say nothing and stay open for 30 s.\n\
         for i in 1 2 3; do (exec 3<>/dev/tcp/127.0.0.1/$port; sleep 30) & done\n\
         sleep 0.3\n\
         curl -s --max-time 20 \"$loc\" > /dev/null\n",
    );
    // Served one at a time, each stalled connection would hold the listener for its 10 s read
    // timeout: 30 s, beyond the 8 s this sign-in may take.
    let out = stack.run(&["login", "--timeout", "8"], &[("BROWSER", &format!("bash {}", browser.display()))]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Signed in as alice"), "{}", text(&out));
    stack.running.shutdown().await;
}
