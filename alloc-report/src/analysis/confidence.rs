//! A confidence is no surer than its samples.
//!
//! A sampled site's survivors are a sum of `n` sampled blocks, so its rise
//! is `n` events at most. The most a one-sided sign test on `n` events can
//! show is all of them on the rising side, which chance gives with
//! probability `2^-n`; the confidence a site shows is never above
//! `1 - 2^-n` ([`confidence`]): three samples show at most 87.5%, never
//! 99.9%. (The verdict itself still comes from the trend test and the
//! false-discovery control.) A site with fewer than [`FEW_SAMPLES`] live
//! samples says so in words at the head of its reason. The other half of
//! the report agreeing with itself, the sites against the whole heap, is
//! `site_agreement` (`agreement.rs`).

/// Below this many live samples a site's figures are called uncertain in
/// its reason (its relative standard error is above 1/sqrt(30), 18%).
pub(crate) const FEW_SAMPLES: u64 = 30;

/// The smallest p-value `samples` sampled blocks can support (`2^-n`, the
/// one-sided sign test's most extreme outcome); 1 for none. A sampled
/// verdict's [`confidence`](super::Verdict::confidence) is never above
/// `1 - sample_floor(samples)` (public, so that a report can be checked
/// against it).
pub fn sample_floor(samples: u64) -> f64 {
    0.5f64.powi(samples.min(1100) as i32)
}

/// The confidence a site shows: `1 - p`, capped at `1 - 2^-samples` for
/// a sampled site.
pub(crate) fn confidence(estimated: bool, samples: u64, p: f64) -> f64 {
    if estimated {
        1.0 - p.max(sample_floor(samples))
    } else {
        1.0 - p
    }
}

/// The words put before a sampled site's reason when its figures rest on
/// fewer than [`FEW_SAMPLES`] live samples; empty otherwise.
pub(crate) fn few_samples_caveat(estimated: bool, samples: u64) -> String {
    if estimated && samples < FEW_SAMPLES {
        format!("uncertain: {samples} live sample(s) behind this site's figures; ")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_samples_cannot_say_more_than_seven_eighths() {
        assert_eq!(sample_floor(3), 0.125);
        assert!(sample_floor(6) > 0.01);
        assert!(sample_floor(7) < 0.01);
        assert_eq!(sample_floor(0), 1.0);
        assert!(sample_floor(u64::MAX) >= 0.0);
    }

    #[test]
    fn few_samples_are_called_uncertain_in_words() {
        assert!(few_samples_caveat(true, 3).starts_with("uncertain: 3 live sample"));
        assert!(few_samples_caveat(true, FEW_SAMPLES).is_empty());
        assert!(few_samples_caveat(false, 0).is_empty());
    }
}
