//! The sampling mode ([`SampleMode`]: the one enum, which `alloc-core`'s
//! `set_sampling` takes and a snapshot records) and a snapshot's sampling
//! statistics ([`Sampling`]).
//!
//! In a file the mode is two fields, as it always was:
//! `"mode":"off"|"interval"|"all"` and `"mean_interval_bytes"` (0 when off,
//! 1 for all, the interval otherwise). [`SampleMode`] carries the interval
//! itself, so the two cannot disagree in memory; a file in which they
//! disagree (`off` with a non-zero interval, `all` with one other than 1) is
//! refused with an error naming both.

use serde::{Deserialize, Serialize, Serializer};

/// Whether and how often allocation call sites are sampled.
///
/// Serialised on its own (in `alloc-report`'s JSON, say) it is its
/// [`name`](SampleMode::name); inside [`Sampling`] the interval is written
/// beside it as `mean_interval_bytes`.
///
/// ```
/// use alloc_snapshot::SampleMode;
///
/// let m = SampleMode::Interval(512 << 10);
/// assert_eq!(m.name(), "interval");
/// assert_eq!(m.mean_interval_bytes(), 524_288);
/// assert_eq!(SampleMode::All.mean_interval_bytes(), 1);
/// assert_eq!(SampleMode::default(), SampleMode::Off);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SampleMode {
    /// No call sites are recorded; allocations pay one subtraction.
    #[default]
    Off,
    /// About one sample per this many allocated bytes (at least 2 when
    /// `alloc-core` samples), drawn at random (a per-thread exponential
    /// countdown) so that estimates are unbiased.
    Interval(u64),
    /// Every allocation is recorded, with its stack (for tests and short
    /// soaks; each costs a stack capture and a record, about 0.2 µs with
    /// frame pointers, a few microseconds with the unwinder).
    All,
}

impl SampleMode {
    /// `"off"`, `"interval"` or `"all"`: the mode's name in files and
    /// reports.
    pub fn name(self) -> &'static str {
        match self {
            SampleMode::Off => "off",
            SampleMode::Interval(_) => "interval",
            SampleMode::All => "all",
        }
    }

    /// The mean number of bytes between samples: the interval, 1 for
    /// [`All`](SampleMode::All), 0 when [`Off`](SampleMode::Off).
    pub fn mean_interval_bytes(self) -> u64 {
        match self {
            SampleMode::Off => 0,
            SampleMode::Interval(n) => n,
            SampleMode::All => 1,
        }
    }
}

impl Serialize for SampleMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// How a snapshot's sites were sampled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "SamplingFields", try_from = "SamplingFields")]
pub struct Sampling {
    /// The sampling mode in force when the snapshot was taken, with its
    /// interval.
    pub mode: SampleMode,
    /// Blocks sampled since start.
    pub sampled: u64,
    /// Sampled blocks live now (the entries behind
    /// [`Snapshot::sites`](crate::Snapshot::sites)).
    pub live_sampled: u64,
    /// Samples dropped because the sampled-block table was full. Non-zero
    /// means the site estimates are low.
    pub dropped_full: u64,
    /// Samples whose stack went to the overflow stack because the stack
    /// table was full.
    pub stack_overflow: u64,
}

/// The mode's name as the file spells it (only the file's side uses it).
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ModeName {
    Off,
    Interval,
    All,
}

/// [`Sampling`] as the file lays it out, fields in file order.
#[derive(Serialize, Deserialize)]
struct SamplingFields {
    mode: ModeName,
    mean_interval_bytes: u64,
    sampled: u64,
    live_sampled: u64,
    dropped_full: u64,
    stack_overflow: u64,
}

impl From<Sampling> for SamplingFields {
    fn from(s: Sampling) -> Self {
        let mode = match s.mode {
            SampleMode::Off => ModeName::Off,
            SampleMode::Interval(_) => ModeName::Interval,
            SampleMode::All => ModeName::All,
        };
        SamplingFields {
            mode,
            mean_interval_bytes: s.mode.mean_interval_bytes(),
            sampled: s.sampled,
            live_sampled: s.live_sampled,
            dropped_full: s.dropped_full,
            stack_overflow: s.stack_overflow,
        }
    }
}

impl TryFrom<SamplingFields> for Sampling {
    type Error = String;

    fn try_from(f: SamplingFields) -> Result<Self, String> {
        let n = f.mean_interval_bytes;
        let mode = match f.mode {
            ModeName::Interval => SampleMode::Interval(n),
            ModeName::Off if n == 0 => SampleMode::Off,
            ModeName::All if n == 1 => SampleMode::All,
            ModeName::Off | ModeName::All => {
                let (name, want) = match f.mode {
                    ModeName::Off => ("off", 0),
                    _ => ("all", 1),
                };
                return Err(format!(
                    "sampling mode `{name}` with mean_interval_bytes {n} (it must be {want})"
                ));
            }
        };
        Ok(Sampling {
            mode,
            sampled: f.sampled,
            live_sampled: f.live_sampled,
            dropped_full: f.dropped_full,
            stack_overflow: f.stack_overflow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_layout_is_unchanged() {
        let s = Sampling {
            mode: SampleMode::Interval(4096),
            sampled: 5,
            live_sampled: 4,
            dropped_full: 3,
            stack_overflow: 2,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"mode":"interval","mean_interval_bytes":4096,"sampled":5,"live_sampled":4,"dropped_full":3,"stack_overflow":2}"#
        );
        assert_eq!(serde_json::from_str::<Sampling>(&json).unwrap(), s);
        for (mode, text) in [
            (SampleMode::Off, r#""mode":"off","mean_interval_bytes":0"#),
            (SampleMode::All, r#""mode":"all","mean_interval_bytes":1"#),
        ] {
            let s = Sampling { mode, ..s };
            let json = serde_json::to_string(&s).unwrap();
            assert!(json.contains(text), "{json}");
            assert_eq!(serde_json::from_str::<Sampling>(&json).unwrap(), s);
        }
        assert_eq!(serde_json::to_string(&SampleMode::All).unwrap(), r#""all""#);
    }

    #[test]
    fn a_mode_that_disagrees_with_its_interval_is_refused() {
        let rest = r#""sampled":0,"live_sampled":0,"dropped_full":0,"stack_overflow":0}"#;
        for (head, name) in [
            (r#"{"mode":"off","mean_interval_bytes":5,"#, "`off`"),
            (r#"{"mode":"all","mean_interval_bytes":0,"#, "`all`"),
        ] {
            let err = serde_json::from_str::<Sampling>(&format!("{head}{rest}")).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let unknown = format!(r#"{{"mode":"some","mean_interval_bytes":0,{rest}"#);
        assert!(serde_json::from_str::<Sampling>(&unknown).is_err());
    }
}
