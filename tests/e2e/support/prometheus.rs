//! Reading a mount's Prometheus metrics (`-o metrics=127.0.0.1:PORT`) in tests.

use std::collections::BTreeMap;

/// The samples of a Prometheus text exposition: `name{labels}` → value.
pub fn samples(scrape: &str) -> BTreeMap<String, f64> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(series, value)| Some((series.to_string(), value.parse().ok()?)))
        .collect()
}

/// The sum of every sample of `name` whose labels include each of `labels` (`k="v"`).
pub fn total(samples: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .filter(|(series, _)| labels.iter().all(|l| series.contains(l)))
        .map(|(_, v)| v)
        .sum()
}

pub async fn scrape(port: u16) -> BTreeMap<String, f64> {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    samples(&body)
}
