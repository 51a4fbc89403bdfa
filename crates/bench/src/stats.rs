//! Latency samples and their summary (nearest-rank percentiles over all samples, no binning: runs are bounded,
//! so at most a few hundred thousand samples are kept).

use std::time::Duration;

/// Latency samples in microseconds.
#[derive(Clone, Debug, Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn new() -> Samples {
        Samples(Vec::new())
    }

    pub fn record(&mut self, d: Duration) {
        self.record_us(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    pub fn record_us(&mut self, us: u64) {
        self.0.push(us);
    }

    pub fn merge(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut v = self.0.clone();
        v.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let rank = |p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest sample with at least p% of the samples at or below it.
            let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
            ms(v[i.clamp(1, v.len()) - 1])
        };
        let mean = if v.is_empty() { 0.0 } else { ms(v.iter().sum::<u64>()) / v.len() as f64 };
        Summary {
            count: v.len() as u64,
            mean_ms: mean,
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: v.last().map_or(0.0, |&m| ms(m)),
        }
    }
}

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::new();
        for us in (1..=100).rev() {
            s.record_us(us * 1000);
        }
        let sum = s.summary();
        assert_eq!(sum.count, 100);
        assert_eq!(sum.p50_ms, 50.0);
        assert_eq!(sum.p90_ms, 90.0);
        assert_eq!(sum.p99_ms, 99.0);
        assert_eq!(sum.max_ms, 100.0);
        assert_eq!(sum.mean_ms, 50.5);
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(Samples::new().summary(), Summary::default());
        let mut s = Samples::new();
        s.record(Duration::from_micros(1500));
        let sum = s.summary();
        assert_eq!((sum.p50_ms, sum.p99_ms, sum.max_ms), (1.5, 1.5, 1.5));
    }
}
