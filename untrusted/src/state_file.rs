//! Files the daemon writes into its state directory (the generated token, the self-signed
//! certificate and key). A crash or power cut mid-write must never leave a half-written file that
//! the next start would trust, so every file is written beside its final name and renamed.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `contents` to `path` with permissions `mode`, atomically: readers see the old file or
/// the complete new one. Creates missing parent directories.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = Path::new(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(temporary)?;
    // The mode above only applies to new files; a leftover temporary keeps its old mode.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_the_mode_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("camrtc-state-{}", std::process::id()));
        let path = dir.join("nested").join("secret.pem");
        write_atomically(&path, b"one", 0o600).expect("writes");
        // A stale temporary with looser permissions must not leak them into the result.
        let stale = dir.join("nested").join("secret.pem.new");
        std::fs::write(&stale, b"stale").expect("plants a temporary");
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_atomically(&path, b"two", 0o600).expect("overwrites");
        assert_eq!(std::fs::read(&path).expect("reads"), b"two");
        let mode = std::fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!stale.exists(), "the temporary was renamed into place");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
