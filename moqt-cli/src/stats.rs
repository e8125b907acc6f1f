//! Latency statistics for `moqt sub --stats`: an HDR histogram (microseconds, 3 significant
//! digits) per reporting interval and one for the whole run, so memory stays constant however
//! long the run.

use hdrhistogram::Histogram;

/// The largest latency recorded exactly (one hour); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self { histogram: Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds") }
    }
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, micros: u64) {
        self.histogram.saturating_record(micros.clamp(1, MAX_US));
    }

    /// The latency at quantile `q` (0..=1) in milliseconds, formatted, or `-` if empty.
    pub fn ms(&self, q: f64) -> String {
        if self.histogram.is_empty() {
            "-".into()
        } else {
            format!("{:.2}", self.histogram.value_at_quantile(q) as f64 / 1000.0)
        }
    }

    /// The largest latency in milliseconds, formatted, or `-` if empty.
    pub fn max_ms(&self) -> String {
        if self.histogram.is_empty() {
            "-".into()
        } else {
            format!("{:.2}", self.histogram.max() as f64 / 1000.0)
        }
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.histogram.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_precision() {
        let mut l = Latencies::default();
        assert_eq!(l.ms(0.5), "-");
        for us in 1..=1000u64 {
            l.record(us * 1000);
        }
        let near = |got: String, want: f64| {
            let got: f64 = got.parse().unwrap();
            assert!((got - want).abs() <= want * 0.001, "{got} is not within 0.1% of {want}");
        };
        near(l.ms(0.5), 500.0);
        near(l.ms(0.99), 990.0);
        near(l.max_ms(), 1000.0);
        l.clear();
        assert_eq!(l.max_ms(), "-");
    }
}
