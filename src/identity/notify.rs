//! Desktop notification that a new sign-in is needed: the mount that finds out runs in the
//! background, where its log and `ssofs status` are not where the user looks. One
//! `org.freedesktop.Notifications.Notify` call on the user's session bus (D-Bus), naming the
//! profile, what to run and the identity provider's reason (never a token). Best effort: without a
//! session bus (a server, a root mount from fstab) it is skipped with a debug line, and nothing
//! waits for it.

use std::collections::HashMap;
use std::time::Duration;

use zbus::zvariant::Value;

use super::TokenStore;

/// A notification daemon answers in milliseconds; a bus that does not is given up on.
const BUS_TIMEOUT: Duration = Duration::from_secs(10);

const DESTINATION: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// What the notification says: a summary line and a body.
pub fn message(profile: &str, reason: &str) -> (String, String) {
    let summary = format!("ssofs: sign in again (profile {profile})");
    let body = format!(
        "Your ssofs mount of profile {profile} cannot renew its S3 credentials: {}.\nRun `ssofs login --profile {profile}`; the mount then works again by itself.",
        reason.trim_end_matches('.')
    );
    (summary, body)
}

/// Sends the notification in the background when there is a session bus to send it on. Called once
/// per event (the first refusal after a sign-in), not per failing request.
pub fn sign_in_needed(store: &TokenStore, profile: &str, reason: &str) {
    // A multi-user mount runs as root on behalf of each user. Their bus (/run/user/UID/bus) admits
    // only their uid, checked on the socket's peer credentials: root would have to connect with
    // the user's effective uid and then speak D-Bus, as root, with a daemon the user controls. Not
    // done: there the log and `ssofs status` say it.
    if store.owner().is_some() {
        tracing::debug!(profile, "no desktop notification from a multi-user mount; see `ssofs status`");
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!(profile, "no desktop notification outside the async runtime");
        return;
    };
    let (summary, body) = message(profile, reason);
    let profile = profile.to_string();
    runtime.spawn(async move {
        match tokio::time::timeout(BUS_TIMEOUT, notify(&summary, &body)).await {
            Ok(Ok(id)) => tracing::info!(profile, id, "desktop notification sent: a new sign-in is needed"),
            Ok(Err(e)) => tracing::debug!(profile, error = %e, "no desktop notification (no session bus?)"),
            Err(_) => tracing::debug!(profile, "no desktop notification: the session bus did not answer"),
        }
    });
}

/// One Notify call on the session bus (`DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`);
/// returns the notification's id.
async fn notify(summary: &str, body: &str) -> zbus::Result<u32> {
    let connection = zbus::Connection::session().await?;
    // The spec lets servers read the body as markup: a profile name is shown as written.
    let body = escape_markup(body);
    let mut hints: HashMap<&str, Value> = HashMap::new();
    // Critical: the mount refuses every file until the user acts, so the notification stays.
    hints.insert("urgency", Value::U8(2));
    let actions: Vec<&str> = Vec::new();
    let args = ("ssofs", 0u32, "dialog-password", summary, body.as_str(), actions, hints, -1i32);
    let reply = connection.call_method(Some(DESTINATION), PATH, Some(DESTINATION), "Notify", &args).await?;
    reply.body().deserialize::<u32>()
}

fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_profile_the_command_and_the_reason() {
        let (summary, body) = message("work", "the identity provider refused the refresh token: invalid_grant");
        assert!(summary.contains("work"), "{summary}");
        assert!(body.contains("ssofs login --profile work") && body.contains("invalid_grant"), "{body}");
        assert_eq!(escape_markup("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
