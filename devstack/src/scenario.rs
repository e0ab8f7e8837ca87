//! The product brief's scenario, seeded into every devstack: an Azure tenant whose security groups map to
//! MinIO policies named by the group object ids, as MinIO is set up for Azure (`claim_name=groups`).

/// Directory (tenant) id of the emulated Azure AD tenant.
pub const TENANT_ID: &str = "7d3a6c1e-51b4-4f0e-9d0c-5a6f2b8e4c11";
/// Verified domain of the tenant; also accepted in place of the tenant id in URLs.
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// Application (client) id of the ssofs app registration, and MinIO's `client_id`.
pub const CLIENT_ID: &str = "3f2c8b9a-6d1e-4a7b-b5c4-0e9f8d7c6b5a";
/// Object id of the `data-engineering` security group.
pub const GROUP_DATA_ENGINEERING: &str = "a1b2c3d4-1111-4e5f-8a9b-0c1d2e3f4a5b";
/// Object id of the `operations` security group.
pub const GROUP_OPERATIONS: &str = "b2c3d4e5-2222-4f60-9bac-1d2e3f4a5b6c";
/// App role values (the `roles` claim); policies of the same names exist for `--sts-claim-name roles`.
pub const ROLE_READWRITE: &str = "analytics.readwrite";
pub const ROLE_READONLY: &str = "analytics.readonly";
/// Azure sends the groups overage claim instead of `groups` above this many groups in a JWT.
pub const GROUPS_OVERAGE_LIMIT: usize = 200;

pub const ROOT_ACCESS_KEY: &str = "devstackadmin";
pub const ROOT_SECRET_KEY: &str = "devstack-root-secret-not-for-production";

/// ARN of the role-policy provider (MinIO `role_policy` mode): a token presented with this RoleArn gets
/// [`ROLE_POLICY`] whatever its claims.
pub const ROLE_ARN: &str = "arn:minio:iam:::role/devstack-readonly";
pub const ROLE_POLICY: &str = "analytics.readonly";

#[derive(Debug, Clone)]
pub struct User {
    /// Short name used by `login_hint`, `--auto-approve` and the control API.
    pub name: &'static str,
    pub display_name: &'static str,
    /// Object id in the tenant (`oid`).
    pub oid: &'static str,
    /// Group object ids, in the order Azure would list them.
    pub groups: Vec<String>,
    pub roles: Vec<&'static str>,
}

impl User {
    /// `preferred_username` / `upn`.
    pub fn upn(&self) -> String {
        format!("{}@{}", self.name, TENANT_DOMAIN)
    }
}

pub fn users() -> Vec<User> {
    // bob is in data-engineering plus 249 other groups: only the overage keeps him out.
    let mut bob_groups = vec![GROUP_DATA_ENGINEERING.to_string()];
    bob_groups.extend((1..250).map(|i| format!("c0ffee00-0000-4000-8000-{i:012x}")));
    vec![
        User {
            name: "alice",
            display_name: "Alice Analyst",
            oid: "0a1b2c3d-aaaa-4bbb-8ccc-000000000001",
            groups: vec![GROUP_DATA_ENGINEERING.to_string()],
            roles: vec![ROLE_READWRITE],
        },
        User {
            name: "oscar",
            display_name: "Oscar Operator",
            oid: "0a1b2c3d-aaaa-4bbb-8ccc-000000000002",
            groups: vec![GROUP_OPERATIONS.to_string()],
            roles: vec![ROLE_READONLY],
        },
        User {
            name: "eve",
            display_name: "Eve External",
            oid: "0a1b2c3d-aaaa-4bbb-8ccc-000000000003",
            groups: vec![],
            roles: vec![],
        },
        User {
            name: "bob",
            display_name: "Bob Busy",
            oid: "0a1b2c3d-aaaa-4bbb-8ccc-000000000004",
            groups: bob_groups,
            roles: vec![ROLE_READWRITE],
        },
    ]
}

/// Finds a user by short name or UPN (case-insensitive), as `login_hint` may carry either.
pub fn find_user(name_or_upn: &str) -> Option<User> {
    let wanted = name_or_upn.trim().to_ascii_lowercase();
    users().into_iter().find(|u| u.name == wanted || u.upn().to_ascii_lowercase() == wanted)
}

fn rw_policy(buckets: &[&str]) -> serde_json::Value {
    let bucket_arns: Vec<String> = buckets.iter().map(|b| format!("arn:aws:s3:::{b}")).collect();
    let object_arns: Vec<String> = buckets.iter().map(|b| format!("arn:aws:s3:::{b}/*")).collect();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], "Resource": bucket_arns},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"], "Resource": object_arns}
        ]
    })
}

fn ro_policy(buckets: &[&str]) -> serde_json::Value {
    let bucket_arns: Vec<String> = buckets.iter().map(|b| format!("arn:aws:s3:::{b}")).collect();
    let object_arns: Vec<String> = buckets.iter().map(|b| format!("arn:aws:s3:::{b}/*")).collect();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": bucket_arns},
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": object_arns}
        ]
    })
}

pub const ANALYTICS_BUCKETS: [&str; 2] = ["analytics-raw", "analytics-curated"];

/// MinIO IAM policies by name: the group GUIDs (claim mode, `claim_name=groups`), the app-role values
/// (`claim_name=roles`), and MinIO's built-in `readwrite`/`readonly`.
pub fn policies() -> Vec<(String, serde_json::Value)> {
    let all = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]});
    let all_ro = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:GetObject"], "Resource": ["arn:aws:s3:::*"]}]});
    vec![
        (GROUP_DATA_ENGINEERING.to_string(), rw_policy(&ANALYTICS_BUCKETS)),
        (GROUP_OPERATIONS.to_string(), ro_policy(&ANALYTICS_BUCKETS)),
        (ROLE_READWRITE.to_string(), rw_policy(&ANALYTICS_BUCKETS)),
        (ROLE_READONLY.to_string(), ro_policy(&ANALYTICS_BUCKETS)),
        ("readwrite".to_string(), all),
        ("readonly".to_string(), all_ro),
    ]
}

/// A bucket's name and its seed objects (key, body).
pub type SeedBucket = (&'static str, Vec<(String, Vec<u8>)>);

/// Buckets and their seed objects. Nested prefixes so a mount has directories to walk.
pub fn seed_objects() -> Vec<SeedBucket> {
    let text = |s: &str| s.as_bytes().to_vec();
    vec![
        (
            "analytics-raw",
            vec![
                ("README.txt".into(), text("Raw event exports, one folder per day.\n")),
                ("events/2026/11/01/part-0000.csv".into(), text("ts,user,event\n1,alice,login\n2,oscar,view\n")),
                ("events/2026/11/01/part-0001.csv".into(), text("ts,user,event\n3,alice,logout\n")),
                ("events/2026/11/02/part-0000.csv".into(), text("ts,user,event\n4,bob,login\n")),
                ("schemas/".into(), Vec::new()),
                ("schemas/events.json".into(), text("{\"fields\":[\"ts\",\"user\",\"event\"]}\n")),
            ],
        ),
        (
            "analytics-curated",
            vec![
                ("daily/2026-11-01.parquet".into(), (0..4096u32).map(|i| (i % 251) as u8).collect()),
                ("reports/weekly/summary.md".into(), text("# Weekly summary\n\nLogins: 3\n")),
            ],
        ),
        (
            "finance",
            vec![
                ("ledger/2026-q3.csv".into(), text("account,amount\nops,1200\n")),
                ("payroll/confidential.txt".into(), text("not for analysts\n")),
            ],
        ),
    ]
}
