//! The ledger's persistent Ed25519 checkpoint key: generated on first start into
//! `<data>/keys/` with mode 0600, or loaded from a configured file.

use std::io::Write;
use std::path::Path;

/// Loads the 32-byte seed from `path` (hex, one line), creating it if absent.
pub fn load_or_create_seed(path: &Path) -> Result<[u8; 32], String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_permissions(path)?;
            let bytes = hex::decode(text.trim())
                .map_err(|e| format!("signing key {}: not hex: {e}", path.display()))?;
            bytes.try_into().map_err(|_| {
                format!(
                    "signing key {}: expected 32 bytes (64 hex characters)",
                    path.display()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = mobius_http::random_bytes::<32>();
            write_secret(path, format!("{}\n", hex::encode(seed)).as_bytes())?;
            Ok(seed)
        }
        Err(e) => Err(format!("read signing key {}: {e}", path.display())),
    }
}

/// Writes a secret file with mode 0600 (directory 0700), atomically.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("create {}: {e}", tmp.display()))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename to {}: {e}", path.display()))?;
    Ok(())
}

fn check_permissions(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("stat {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "signing key {} is readable by others (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}
