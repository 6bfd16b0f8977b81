//! A log-linear histogram: exact below 128, then 64 buckets per power of two (about 1.5 %
//! error), a fixed 3,776 counters whatever is recorded.

const SUB: u64 = 64;
const BUCKETS: usize = 3776;

/// Counts of values (microseconds, or any `u64`).
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let bits = 64 - u64::from(v.leading_zeros()); // >= 8
    let shift = bits - 7;
    ((shift + 1) * SUB + ((v >> shift) - SUB)) as usize
}

/// The largest value that lands in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let low = ((i % SUB) + SUB) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    pub(crate) fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0..=1), as the upper edge of its bucket (never above max).
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn empty_is_zero() {
        let h = Histogram::default();
        assert_eq!((h.quantile(0.5), h.count(), h.max()), (0, 0, 0));
    }

    #[test]
    fn merge_adds() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max(), 1_000_000);
        assert_eq!(a.quantile(0.5), 10);
    }

    proptest! {
        #[test]
        fn buckets_are_ordered_and_tight(v in any::<u64>()) {
            let i = index(v);
            prop_assert!(i < BUCKETS);
            prop_assert!(upper(i) >= v);
            if i > 0 { prop_assert!(upper(i - 1) < v); }
            // relative error of the bucket edge at most 1/64
            prop_assert!((upper(i) - v) as f64 <= v as f64 / 64.0 + 1.0);
        }
    }
}
