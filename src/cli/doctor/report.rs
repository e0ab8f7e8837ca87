//! The checks doctor collects and the report it prints (text or JSON).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name: config, discovery, clock, token, audience, groups, sts, buckets, bucket:NAME, fuse.
    pub check: String,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub profile: Option<String>,
    pub ok: bool,
    /// The first failed check's name, the cause in one word for scripts: e.g. `clock`, `audience`.
    pub diagnosis: Option<String>,
    pub checks: Vec<Check>,
}

/// The checks so far, in the order they ran.
#[derive(Default)]
pub struct Checks {
    pub list: Vec<Check>,
}

impl Checks {
    pub fn add(&mut self, check: impl Into<String>, outcome: Outcome, detail: impl Into<String>, fix: Option<String>) {
        self.list.push(Check { check: check.into(), outcome, detail: detail.into(), fix });
    }
    pub fn pass(&mut self, check: &str, detail: impl Into<String>) {
        self.add(check, Outcome::Pass, detail, None);
    }
    pub fn fail(&mut self, check: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(check, Outcome::Fail, detail, Some(fix.into()));
    }
    pub fn skip(&mut self, check: &str, why: &str) {
        self.add(check, Outcome::Skip, why, None);
    }

    /// Skips `from` and every check of [`IDENTITY_CHAIN`] after it: they need what just failed.
    pub fn skip_rest(&mut self, from: &str, why: &str) {
        let start = IDENTITY_CHAIN.iter().position(|c| *c == from).unwrap_or(IDENTITY_CHAIN.len());
        for check in &IDENTITY_CHAIN[start..] {
            self.skip(check, why);
        }
    }

    /// The report: ok when nothing failed; the diagnosis is the first failed check's name.
    pub fn report(self, profile: Option<String>) -> Report {
        let first_fail = self.list.iter().find(|c| c.outcome == Outcome::Fail);
        Report {
            profile,
            ok: first_fail.is_none(),
            diagnosis: first_fail.map(|c| c.check.split(':').next().unwrap_or_default().to_string()),
            checks: self.list,
        }
    }
}

/// The checks after the config, in the order they run; each needs the ones before it.
const IDENTITY_CHAIN: [&str; 7] = ["discovery", "clock", "token", "audience", "groups", "sts", "buckets"];

impl Report {
    pub fn text(&self) -> String {
        let mut out = format!("ssofs doctor: profile {}\n", self.profile.as_deref().unwrap_or("(none)"));
        for c in &self.checks {
            let mark = match c.outcome {
                Outcome::Pass => "✓",
                Outcome::Warn => "!",
                Outcome::Fail => "✗",
                Outcome::Skip => "-",
            };
            out.push_str(&format!("{mark} {}: {}\n", c.check, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("    fix: {fix}\n"));
            }
        }
        match &self.diagnosis {
            None => out.push_str("All checks passed.\n"),
            Some(d) => out.push_str(&format!("Diagnosis: {d} (the first ✗ above).\n")),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_text_marks_and_diagnosis() {
        let r = Report {
            profile: Some("p".into()),
            ok: false,
            diagnosis: Some("clock".into()),
            checks: vec![
                Check { check: "config".into(), outcome: Outcome::Pass, detail: "fine".into(), fix: None },
                Check { check: "clock".into(), outcome: Outcome::Fail, detail: "off".into(), fix: Some("ntp".into()) },
            ],
        };
        let t = r.text();
        assert!(t.contains("✓ config: fine") && t.contains("✗ clock: off") && t.contains("fix: ntp"), "{t}");
        assert!(t.contains("Diagnosis: clock"), "{t}");
    }
}
