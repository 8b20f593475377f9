//! The one atomic file writer of the workspace: every snapshot file, every
//! report and every benchmark result is written through [`write_atomic`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` so that a reader sees the old file, the new
/// file, or no file, never part of one, and the new file survives a crash
/// once this returns.
///
/// The bytes go to a hidden temporary file in the same directory
/// (`.NAME.tmp-PID-N`, which a series reader skips), which is fsynced and
/// renamed over `path`; then the directory is fsynced. Missing parent
/// directories are created. On an error the temporary file is removed and
/// `path` is as it was.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("atomic-doc-{}", std::process::id()));
/// let path = dir.join("out/report.txt");
/// alloc_snapshot::file::write_atomic(&path, b"no leak\n").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"no leak\n");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    /// Tells apart the temporary files of writes running at once.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable. Not every platform can open a directory.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_atomic;

    #[test]
    fn replaces_creates_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("atomic-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("a/b.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["b.txt"]);
        // A path that is a directory cannot be replaced: an error, the
        // directory untouched, no temporary file left.
        let e = write_atomic(&dir.join("a"), b"x").unwrap_err();
        assert!(dir.join("a/b.txt").is_file(), "{e}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(write_atomic(std::path::Path::new("/"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
