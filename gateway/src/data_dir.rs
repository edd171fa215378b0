//! The data directory at rest: who may read it, and what a start may assume about it.
//!
//! The store holds keypad PINs, key secrets and phone numbers; the CA key signs every
//! unit's identity; the bootstrap token is the platform admin. So the directory is 0700 and
//! those files 0600, tightened at every start (with a warning naming the file) when found
//! looser. And a database that is missing or empty next to an earlier install's CA or token
//! is a lost database, not a first start: the gateway refuses it unless told `--init`, which
//! sets the earlier install's CA and token aside so nothing it signed connects again.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::pki::{CA_CERT, CA_KEY, SERVER_KEY};
use crate::TOKEN_FILE;

/// Mode of the data directory: its owner only.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the database and every secret in it.
pub const FILE_MODE: u32 = 0o600;

/// Files whose content is secret, tightened to [`FILE_MODE`] when present.
const SECRET_FILES: [&str; 4] = ["fleetgate.redb", CA_KEY, SERVER_KEY, TOKEN_FILE];
/// Files an earlier install leaves behind: their presence means a database existed.
const EARLIER_INSTALL: [&str; 3] = [CA_CERT, CA_KEY, TOKEN_FILE];

/// Creates or tightens the data directory and checks that a start here is what it seems.
///
/// Errors: the directory cannot be created or its mode set; the database is missing or
/// empty while an earlier install's files are there and `config.init` is false.
pub fn prepare(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    tighten(dir, DIR_MODE, Found::AtStart)?;
    refuse_lost_database(config)?;
    tighten_files(dir, Found::AtStart)
}

/// Whose doing a loose mode is: found at a start (someone loosened it: warn), or of a file
/// this start just created under the process umask (expected: no warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    AtStart,
    JustCreated,
}

/// Tightens the secret files the store and the CA created during this start, quietly:
/// they were born under the umask, nobody loosened them.
pub fn tighten_secrets(dir: &Path) -> anyhow::Result<()> {
    tighten_files(dir, Found::JustCreated)
}

fn tighten_files(dir: &Path, found: Found) -> anyhow::Result<()> {
    for name in SECRET_FILES {
        let path = dir.join(name);
        if path.exists() {
            tighten(&path, FILE_MODE, found)?;
        }
    }
    Ok(())
}

/// Sets `path` to `mode` if it grants more (group or others), warning with its name when
/// it was found so at a start.
fn tighten(path: &Path, mode: u32, how: Found) -> anyhow::Result<()> {
    let found = std::fs::metadata(path)
        .with_context(|| format!("reading the mode of {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if found & !mode != 0 {
        if how == Found::AtStart {
            tracing::warn!(
                file = %path.display(),
                found = format!("{found:o}"),
                now = format!("{mode:o}"),
                "tightened a data file's mode: it was readable beyond its owner"
            );
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    Ok(())
}

fn refuse_lost_database(config: &Config) -> anyhow::Result<()> {
    let db = config.db_path();
    let empty = std::fs::metadata(&db).map_or(true, |meta| meta.len() == 0);
    if !empty {
        return Ok(());
    }
    let left: Vec<&str> = EARLIER_INSTALL
        .into_iter()
        .filter(|name| config.data_dir.join(name).exists())
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    if config.init {
        return retire(&config.data_dir, &left);
    }
    anyhow::bail!(
        "{} is missing or empty, but {} holds an earlier install's {}: refusing to start a \
         fresh install over it (its units and tokens would not match a new store). Restore \
         the database, or start with --init to begin anew on purpose.",
        db.display(),
        config.data_dir.display(),
        left.join(", ")
    )
}

/// `--init` over an earlier install: its CA and token are set aside (renamed with a
/// `.retired-{unix seconds}` suffix, never deleted), so the new install mints its own CA.
/// Keeping the old CA would let every certificate it ever signed connect again, revoked ones
/// included: the revocations were in the lost database.
fn retire(dir: &Path, files: &[&str]) -> anyhow::Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    for name in files {
        let from = dir.join(name);
        let to = dir.join(format!("{name}.retired-{stamp}"));
        std::fs::rename(&from, &to).with_context(|| format!("setting {} aside", from.display()))?;
        tracing::warn!(
            file = %from.display(),
            kept_as = %to.display(),
            "--init: set aside the earlier install's file; its certificates no longer connect"
        );
    }
    Ok(())
}
