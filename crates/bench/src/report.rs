//! The result of a scenario as named numbers: a human table or one JSON object.

use std::fmt::Write as _;

use crate::proc::ToolCpuUse;
use crate::stats::Summary;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
    Text(String),
    /// Not measured (e.g. no `--pid`): `null` in JSON, `-` in the table.
    Missing,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub scenario: String,
    rows: Vec<(String, Value, &'static str)>,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report { scenario: scenario.to_owned(), rows: Vec::new(), warnings: Vec::new() }
    }

    pub fn int(&mut self, key: &str, v: u64, unit: &'static str) {
        self.rows.push((key.to_owned(), Value::Int(v), unit));
    }

    pub fn float(&mut self, key: &str, v: f64, unit: &'static str) {
        self.rows.push((key.to_owned(), Value::Float(v), unit));
    }

    pub fn text(&mut self, key: &str, v: &str) {
        self.rows.push((key.to_owned(), Value::Text(v.to_owned()), ""));
    }

    pub fn opt_float(&mut self, key: &str, v: Option<f64>, unit: &'static str) {
        self.rows.push((key.to_owned(), v.map_or(Value::Missing, Value::Float), unit));
    }

    pub fn opt_int(&mut self, key: &str, v: Option<u64>, unit: &'static str) {
        self.rows.push((key.to_owned(), v.map_or(Value::Missing, Value::Int), unit));
    }

    /// Adds `<prefix>_p50_ms`, `_p99_ms`, ... for a latency summary.
    pub fn latency(&mut self, prefix: &str, s: &Summary) {
        self.int(&format!("{prefix}_samples"), s.count, "");
        self.float(&format!("{prefix}_mean_ms"), s.mean_ms, "ms");
        self.float(&format!("{prefix}_p50_ms"), s.p50_ms, "ms");
        self.float(&format!("{prefix}_p90_ms"), s.p90_ms, "ms");
        self.float(&format!("{prefix}_p99_ms"), s.p99_ms, "ms");
        self.float(&format!("{prefix}_max_ms"), s.max_ms, "ms");
    }

    /// Adds the tool's own CPU use and a warning when it was saturated.
    pub fn tool_cpu(&mut self, cpu: &ToolCpuUse) {
        self.float("bench_cpu_pct", cpu.percent, "%");
        self.float("bench_busiest_worker_pct", cpu.busiest_worker_percent, "%");
        self.int("bench_workers", cpu.workers as u64, "");
        self.warnings.extend(cpu.warning());
    }

    pub fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.rows.iter().find(|(k, _, _)| k == key).map(|(_, v, _)| v)
    }

    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"scenario\":");
        json_string(&mut out, &self.scenario);
        for (key, value, _) in &self.rows {
            out.push(',');
            json_string(&mut out, key);
            out.push(':');
            match value {
                Value::Int(v) => write!(out, "{v}").unwrap(),
                Value::Float(v) if v.is_finite() => write!(out, "{}", (v * 1000.0).round() / 1000.0).unwrap(),
                Value::Float(_) | Value::Missing => out.push_str("null"),
                Value::Text(t) => json_string(&mut out, t),
            }
        }
        out.push_str(",\"warnings\":[");
        for (i, w) in self.warnings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(&mut out, w);
        }
        out.push_str("]}");
        out
    }

    pub fn to_table(&self) -> String {
        let width = self.rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
        let mut out = format!("== {} ==\n", self.scenario);
        for (key, value, unit) in &self.rows {
            let v = match value {
                Value::Int(v) => v.to_string(),
                Value::Float(v) => format!("{v:.2}"),
                Value::Text(t) => t.clone(),
                Value::Missing => "-".into(),
            };
            writeln!(out, "{key:<width$}  {v:>12} {unit}").unwrap();
        }
        for w in &self.warnings {
            writeln!(out, "WARNING: {w}").unwrap();
        }
        out
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_row() {
        let mut r = Report::new("chat");
        r.int("sent", 10, "");
        r.float("rate", 1.23456, "/s");
        r.opt_float("server_cpu_pct", None, "%");
        r.text("mechanism", "PLAIN \"x\"");
        r.warn("slow\n".into());
        assert_eq!(
            r.to_json(),
            "{\"scenario\":\"chat\",\"sent\":10,\"rate\":1.235,\"server_cpu_pct\":null,\
             \"mechanism\":\"PLAIN \\\"x\\\"\",\"warnings\":[\"slow\\u000a\"]}"
        );
        assert!(r.to_table().contains("WARNING: slow"));
    }
}
