//! Structural checks of a decoded snapshot (what serde's types cannot say):
//! ordered, disjoint ranges and consistent references between fields.

use crate::Snapshot;

/// Structural checks a snapshot must pass: epoch ranges ordered and
/// disjoint; stacks sorted by id; sites sorted by stack then epoch, naming
/// known stacks, with finite non-negative estimates; histogram buckets
/// sorted and disjoint; a run identity's id of 32 lowercase hex digits.
pub(super) fn validate(s: &Snapshot) -> Result<(), String> {
    validate_epochs(s)?;
    validate_modules(s)?;
    validate_run(s)?;
    if let Some(r) = &s.retention {
        let ids: Vec<u32> = s.stacks.iter().map(|st| st.id).collect();
        r.check(s.modules.len(), &ids)?;
    }
    validate_stacks(s)?;
    validate_sites(s)?;
    validate_histograms(s)
}

/// Stacks sorted by id, each once, their user frames among their frames.
fn validate_stacks(s: &Snapshot) -> Result<(), String> {
    for w in s.stacks.windows(2) {
        if w[1].id <= w[0].id {
            return Err(format!(
                "stack ids {} then {}: stacks must be sorted by id, each once",
                w[0].id, w[1].id
            ));
        }
    }
    for st in &s.stacks {
        if let Some(u) = st.user_frame {
            if u as usize >= st.frames.len() {
                return Err(format!(
                    "stack {} has user_frame {u} but only {} frames",
                    st.id,
                    st.frames.len()
                ));
            }
        }
    }
    Ok(())
}

/// Sites sorted by stack then epoch, naming known stacks, born no later
/// than the snapshot, with finite non-negative estimates.
fn validate_sites(s: &Snapshot) -> Result<(), String> {
    for (i, site) in s.sites.iter().enumerate() {
        if s.stacks
            .binary_search_by_key(&site.stack, |st| st.id)
            .is_err()
        {
            return Err(format!(
                "sites[{i}] names stack {} which is not in stacks",
                site.stack
            ));
        }
        if site.epoch > s.epoch {
            return Err(format!(
                "sites[{i}] was born in epoch {} but the snapshot is at epoch {}",
                site.epoch, s.epoch
            ));
        }
        if !(site.bytes.is_finite()
            && site.bytes >= 0.0
            && site.blocks.is_finite()
            && site.blocks >= 0.0)
        {
            return Err(format!(
                "sites[{i}] has a negative or non-finite estimate ({} bytes, {} blocks)",
                site.bytes, site.blocks
            ));
        }
        if i > 0 {
            let p = &s.sites[i - 1];
            if (p.stack, p.epoch) >= (site.stack, site.epoch) {
                return Err(format!(
                    "sites[{i}] (stack {}, epoch {}) is not after sites[{}] (stack {}, epoch {}): \
                     sites must be sorted by stack then epoch, each pair once",
                    site.stack,
                    site.epoch,
                    i - 1,
                    p.stack,
                    p.epoch
                ));
            }
        }
    }
    Ok(())
}

/// Histogram buckets sorted and disjoint.
fn validate_histograms(s: &Snapshot) -> Result<(), String> {
    for (name, h) in [
        ("alloc_size", &s.histograms.alloc_size),
        ("lifetime_epochs", &s.histograms.lifetime_epochs),
        ("lifetime_ns", &s.histograms.lifetime_ns),
    ] {
        let mut prev_high: Option<u64> = None;
        for b in &h.buckets {
            if b.low > b.high || prev_high.is_some_and(|p| b.low <= p) {
                return Err(format!(
                    "histogram {name}: bucket {}..={} is reversed or overlaps the one before it",
                    b.low, b.high
                ));
            }
            prev_high = Some(b.high);
        }
    }
    Ok(())
}

/// Epoch ranges ordered, disjoint and not after the snapshot.
fn validate_epochs(s: &Snapshot) -> Result<(), String> {
    let mut prev_last: Option<u32> = None;
    for e in &s.epochs {
        if e.first > e.last {
            return Err(format!("epoch range {}..={} is reversed", e.first, e.last));
        }
        if let Some(p) = prev_last {
            if e.first <= p {
                return Err(format!(
                    "epoch range {}..={} overlaps or precedes the one before it",
                    e.first, e.last
                ));
            }
        }
        if e.last > s.epoch {
            return Err(format!(
                "blocks born in epoch {} but the snapshot is at epoch {}",
                e.last, s.epoch
            ));
        }
        prev_last = Some(e.last);
    }
    Ok(())
}

/// Modules: a path; a build id of lowercase hex digits, whole bytes; address
/// ranges non-empty, sorted, disjoint and not below the load bias; and no
/// address in two modules, so that an instruction pointer names one module.
fn validate_modules(s: &Snapshot) -> Result<(), String> {
    let mut all = Vec::new();
    for (i, m) in s.modules.iter().enumerate() {
        if m.path.is_empty() {
            return Err(format!("modules[{i}] has an empty path"));
        }
        if let Some(id) = &m.build_id {
            if id.is_empty() || id.len() % 2 != 0 || !is_lower_hex(id) {
                return Err(format!(
                    "modules[{i}] ({}) has build id {id:?}: expected lowercase hex, whole bytes",
                    m.path
                ));
            }
        }
        let mut prev_end: Option<u64> = None;
        for r in &m.ranges {
            if r.start >= r.end || r.start < m.base || prev_end.is_some_and(|p| r.start < p) {
                return Err(format!(
                    "modules[{i}] ({}) has address range {:#x}..{:#x}: ranges must be \
                     non-empty, sorted, disjoint and not below the load bias {:#x}",
                    m.path, r.start, r.end, m.base
                ));
            }
            prev_end = Some(r.end);
            all.push((r.start, r.end, i));
        }
    }
    all.sort_unstable();
    for w in all.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(format!(
                "modules[{}] and modules[{}] both hold address {:#x}",
                w[0].2, w[1].2, w[1].0
            ));
        }
    }
    Ok(())
}

/// The run identity, if any: a pid, and an id of 32 lowercase hex digits.
fn validate_run(s: &Snapshot) -> Result<(), String> {
    let Some(run) = &s.run else {
        return Ok(());
    };
    if run.id.len() != 32 || !is_lower_hex(&run.id) {
        return Err(format!(
            "run.id is {:?}: expected 32 lowercase hex digits",
            run.id
        ));
    }
    if run.pid == 0 {
        return Err("run.pid is 0: no process has that id".to_string());
    }
    Ok(())
}

/// Whether `s` is lowercase hex digits only.
fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
