//! The results of all runs: per case, pair and metric the median, minimum and maximum over
//! the repetitions, and with a baseline the ratios of each repetition's pair of runs.

use std::fmt::Write;

use serde_json::json;

use crate::measure::Metric;
use crate::run::Settings;

/// One run's figures.
pub(crate) struct Run {
    pub(crate) case: String,
    pub(crate) pair: String,
    pub(crate) metrics: Vec<Metric>,
}

/// Median, minimum and maximum of some samples.
#[derive(Debug, Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

impl Summary {
    fn of(samples: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    fn json(&self) -> serde_json::Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

/// One metric of one case: its samples per pair, in pair order.
struct Row {
    name: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    samples: Vec<Vec<f64>>,
}

impl Row {
    /// The second pair's value over the first's, repetition by repetition.
    fn ratios(&self) -> Vec<f64> {
        match self.samples.as_slice() {
            [base, tested, ..] => base
                .iter()
                .zip(tested)
                .filter(|(b, _)| **b != 0.0)
                .map(|(b, t)| t / b)
                .collect(),
            _ => Vec::new(),
        }
    }
}

pub(crate) struct Results {
    pairs: Vec<String>,
    /// Per case, in the order run: its metrics.
    cases: Vec<(String, Vec<Row>)>,
}

impl Results {
    pub(crate) fn collect(runs: &[Run], pairs: &[String]) -> Results {
        let mut cases: Vec<(String, Vec<Row>)> = Vec::new();
        for run in runs {
            let index = match cases.iter().position(|(c, _)| *c == run.case) {
                Some(i) => i,
                None => {
                    cases.push((run.case.clone(), Vec::new()));
                    cases.len() - 1
                }
            };
            let Some(p) = pairs.iter().position(|p| *p == run.pair) else {
                continue;
            };
            let rows = &mut cases[index].1;
            for metric in &run.metrics {
                let row = match rows.iter().position(|r| r.name == metric.name) {
                    Some(i) => &mut rows[i],
                    None => {
                        rows.push(Row {
                            name: metric.name,
                            unit: metric.unit,
                            higher_is_better: metric.higher_is_better,
                            samples: vec![Vec::new(); pairs.len()],
                        });
                        rows.last_mut().expect("just pushed")
                    }
                };
                row.samples[p].push(metric.value);
            }
        }
        Results {
            pairs: pairs.to_vec(),
            cases,
        }
    }

    fn compared(&self) -> bool {
        self.pairs.len() > 1
    }

    pub(crate) fn table(&self, settings: &Settings) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "MTU {}, offloads {}, {:?} warm-up + {:?} measured per run; median [min–max]",
            settings.mtu,
            if settings.offloads { "on" } else { "off" },
            settings.timing.warmup,
            settings.timing.duration
        );
        if settings.faults.any() {
            let _ = writeln!(out, "{}", settings.faults.describe());
        }
        let _ = writeln!(
            out,
            "kernel congestion control: {}",
            settings.kernel_cc.describe()
        );
        if self.compared() {
            let _ = writeln!(
                out,
                "ratio: {} ÷ {} per repetition (above 1 is better where ↑, below 1 where ↓)",
                self.pairs[1], self.pairs[0]
            );
        }
        let width = 26;
        for (case, rows) in &self.cases {
            let _ = write!(out, "\n{case:<34}");
            for pair in &self.pairs {
                let _ = write!(out, "{pair:>width$}");
            }
            if self.compared() {
                let _ = write!(out, "{:>width$}", "ratio");
            }
            out.push('\n');
            for row in rows {
                let arrow = if row.higher_is_better { '↑' } else { '↓' };
                let name = format!("  {} ({}) {arrow}", row.name, row.unit);
                let _ = write!(out, "{name:<34}");
                for samples in &row.samples {
                    let cell = Summary::of(samples).map_or("—".to_string(), |s| cell(s, 3));
                    let _ = write!(out, "{cell:>width$}");
                }
                if self.compared() {
                    let cell = Summary::of(&row.ratios()).map_or("—".to_string(), |s| cell(s, 2));
                    let _ = write!(out, "{cell:>width$}");
                }
                out.push('\n');
            }
        }
        out
    }

    pub(crate) fn json(&self, settings: &Settings, command: &str) -> String {
        let mut results = Vec::new();
        for (case, rows) in &self.cases {
            for row in rows {
                let mut by_pair = serde_json::Map::new();
                for (pair, samples) in self.pairs.iter().zip(&row.samples) {
                    by_pair.insert(
                        pair.clone(),
                        json!({
                            "samples": samples,
                            "summary": Summary::of(samples).map(|s| s.json()),
                        }),
                    );
                }
                let mut entry = json!({
                    "case": case,
                    "metric": row.name,
                    "unit": row.unit,
                    "higher_is_better": row.higher_is_better,
                    "pairs": by_pair,
                });
                if self.compared() {
                    let ratios = row.ratios();
                    entry["ratio"] = json!({
                        "of": [self.pairs[1], self.pairs[0]],
                        "samples": ratios,
                        "summary": Summary::of(&ratios).map(|s| s.json()),
                    });
                }
                results.push(entry);
            }
        }
        let document = json!({
            "command": command,
            "settings": {
                "mtu": settings.mtu,
                "offloads": settings.offloads,
                "warmup_s": settings.timing.warmup.as_secs_f64(),
                "duration_s": settings.timing.duration.as_secs_f64(),
                "seed": settings.seed,
                "pinned": settings.pin,
                "path": settings.faults.any().then(|| settings.faults.describe()),
                "kernel_cc": settings.kernel_cc.describe(),
            },
            "pairs": self.pairs,
            "results": results,
        });
        serde_json::to_string_pretty(&document).expect("JSON of plain values")
    }
}

/// `median [min–max]` with `digits` significant digits.
fn cell(summary: Summary, digits: usize) -> String {
    format!(
        "{} [{}–{}]",
        number(summary.median, digits),
        number(summary.min, digits),
        number(summary.max, digits)
    )
}

/// A number with about `digits` significant digits, without an exponent.
pub(crate) fn number(value: f64, digits: usize) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    format!("{value:.decimals$}")
}
