//! Latency samples and percentiles (exact: samples are kept and sorted; runs are bounded).

use serde::Serialize;

/// Latency samples in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    nanos: Vec<u64>,
}

/// Percentiles of a sample set, in milliseconds.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Samples {
    pub fn push(&mut self, nanos: u64) {
        self.nanos.push(nanos);
    }

    pub fn extend(&mut self, other: &Samples) {
        self.nanos.extend_from_slice(&other.nanos);
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    pub fn summary(&self) -> Summary {
        if self.nanos.is_empty() {
            return Summary::default();
        }
        let mut sorted = self.nanos.clone();
        sorted.sort_unstable();
        let ms = |n: u64| n as f64 / 1e6;
        let sum: u128 = sorted.iter().map(|&n| u128::from(n)).sum();
        Summary {
            count: sorted.len(),
            p50_ms: ms(percentile(&sorted, 50.0)),
            p95_ms: ms(percentile(&sorted, 95.0)),
            p99_ms: ms(percentile(&sorted, 99.0)),
            max_ms: ms(*sorted.last().unwrap_or(&0)),
            mean_ms: sum as f64 / sorted.len() as f64 / 1e6,
        }
    }
}

/// Nearest-rank percentile of sorted data.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let data: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&data, 50.0), 50);
        assert_eq!(percentile(&data, 99.0), 99);
        assert_eq!(percentile(&data, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
    }
}
