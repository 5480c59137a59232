//! Unpacking an asset archive, refusing it whole at the first entry that could reach
//! outside the asset's directory or is not a plain file, directory or contained link.

use super::Limits;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// Unpacks the tar (or gzip-compressed tar, sniffed) at `archive` into `into`, which must
/// not exist. Refused whole, with `into` removed, when an entry:
///
/// - has an absolute path, a `..` component, or a path through a link that leads outside;
/// - is a device, a FIFO or anything but a file, a directory or a link;
/// - is a symbolic link whose target is absolute or resolves outside `into`, or a hard
///   link to something that is not an earlier file of the archive;
/// - makes the files larger than `limits.unpacked` or the entries more than
///   `limits.entries`.
///
/// Modes keep their permission bits only (no setuid, setgid or sticky). Blocking.
pub fn unpack(archive: &Path, into: &Path, limits: Limits) -> Result<(), String> {
    let r = unpack_inner(archive, into, limits);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(into);
    }
    r
}

fn unpack_inner(archive: &Path, into: &Path, limits: Limits) -> Result<(), String> {
    let mut file = std::fs::File::open(archive).map_err(|e| format!("the download: {e}"))?;
    let mut magic = [0u8; 2];
    let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(file);
    let file = std::fs::File::open(archive).map_err(|e| format!("the download: {e}"))?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    std::fs::create_dir(into).map_err(|e| format!("{}: {e}", into.display()))?;
    let root = into
        .canonicalize()
        .map_err(|e| format!("{}: {e}", into.display()))?;
    let mut tar = tar::Archive::new(reader);
    let entries = tar
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    let mut total: u64 = 0;
    let mut links: Vec<PathBuf> = Vec::new();
    for (n, entry) in entries.enumerate() {
        if n >= limits.entries {
            return Err(format!(
                "refused: more than {} entries in the archive",
                limits.entries
            ));
        }
        let mut entry = entry.map_err(|e| format!("not a tar archive (entry {n}): {e}"))?;
        let raw = entry
            .path()
            .map_err(|e| format!("entry {n}: unreadable path: {e}"))?
            .into_owned();
        let shown = raw.display().to_string();
        let rel = contained(&raw).ok_or_else(|| {
            format!("refused: entry {shown:?} has an absolute path or a `..`: it would land outside the asset")
        })?;
        if rel.as_os_str().is_empty() {
            continue; // "./"
        }
        let target = root.join(&rel);
        let kind = entry.header().entry_type();
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "refused: entry {shown:?} would be written through a link of the archive"
            ));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{shown}: {e}"))?;
            // A directory made through an earlier link must still be inside.
            let real = parent.canonicalize().map_err(|e| format!("{shown}: {e}"))?;
            if !real.starts_with(&root) {
                return Err(format!(
                    "refused: entry {shown:?} goes through a link out of the asset"
                ));
            }
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                total = total.saturating_add(entry.header().size().unwrap_or(u64::MAX));
                if total > limits.unpacked {
                    return Err(format!(
                        "refused: it unpacks to more than {} MiB",
                        limits.unpacked >> 20
                    ));
                }
            }
            tar::EntryType::Directory => {}
            tar::EntryType::Symlink => {
                let to = entry
                    .link_name()
                    .map_err(|e| format!("{shown}: {e}"))?
                    .ok_or_else(|| format!("refused: link {shown:?} has no target"))?
                    .into_owned();
                if to.is_absolute() {
                    return Err(format!(
                        "refused: link {shown:?} points to the absolute path {:?}",
                        to.display().to_string()
                    ));
                }
                links.push(target.clone());
            }
            tar::EntryType::Link => {
                let to = entry
                    .link_name()
                    .map_err(|e| format!("{shown}: {e}"))?
                    .ok_or_else(|| format!("refused: hard link {shown:?} has no target"))?
                    .into_owned();
                let inside = contained(&to).map(|t| root.join(t));
                let Some(source) = inside.filter(|t| {
                    std::fs::symlink_metadata(t).is_ok_and(|m| m.file_type().is_file())
                }) else {
                    return Err(format!(
                        "refused: hard link {shown:?} is not to an earlier file of the asset"
                    ));
                };
                // Made here: tar would take a relative target from the working directory.
                std::fs::hard_link(&source, &target)
                    .map_err(|e| format!("{shown}: cannot link it: {e}"))?;
                continue;
            }
            // PAX and GNU headers carry metadata of the next entry; tar reads them itself.
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            other => {
                return Err(format!(
                    "refused: entry {shown:?} is a {other:?} (devices, FIFOs and the like have no place in an asset)"
                ))
            }
        }
        entry.set_preserve_permissions(false);
        entry.set_unpack_xattrs(false);
        entry
            .unpack(&target)
            .map_err(|e| format!("{shown}: cannot unpack it: {e}"))?;
        if kind == tar::EntryType::Symlink {
            check_link(&root, &target, &shown)?;
        }
        strip_special_bits(&target).map_err(|e| format!("{shown}: {e}"))?;
    }
    // Links made before their targets existed: every one must resolve inside now.
    for l in &links {
        check_link(&root, l, &l.display().to_string())?;
    }
    Ok(())
}

/// `p` as a relative path of normal components (`.` dropped), None when it is absolute or
/// has a `..`.
fn contained(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// A link must resolve inside `root`; one whose target does not exist (yet: it may come
/// later in the archive) must not climb with `..`, so that it cannot lead out either way.
fn check_link(root: &Path, link: &Path, shown: &str) -> Result<(), String> {
    match link.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok(()),
        Ok(_) => Err(format!("refused: link {shown:?} leads out of the asset")),
        Err(_) => {
            let target = std::fs::read_link(link).map_err(|e| format!("{shown}: {e}"))?;
            if target.components().any(|c| c == Component::ParentDir) {
                Err(format!(
                    "refused: link {shown:?} points to {:?}, which climbs with `..` to nothing in the asset",
                    target.display().to_string()
                ))
            } else {
                Ok(())
            }
        }
    }
}

fn strip_special_bits(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(p)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o7000 != 0 || mode & 0o022 != 0 {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o755))?;
    }
    Ok(())
}
