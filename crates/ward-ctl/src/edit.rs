//! `edit KIND NAME`: the resource in `$VISUAL`/`$EDITOR`, validated before it is sent.

use crate::ops::info;
use crate::resource_path;
use crate::Session;
use std::io::Write;
use std::path::{Path, PathBuf};
use ward_types::Kind;

/// What an edit did.
#[derive(Debug, PartialEq, Eq)]
pub enum Edited {
    Unchanged,
    Saved,
}

/// A new private (0600) file for the text being edited.
fn temp_file(kind: Kind, name: &str, ext: &str, text: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path = std::env::temp_dir().join(format!(
        "ward-edit-{}-{safe}-{}-{nanos}.{ext}",
        crate::ops::kind_word(kind),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Runs the editor on `path` with the terminal inherited. `$VISUAL`, else `$EDITOR`,
/// else `vi`; the variable may hold arguments (`code --wait`), so it goes through `sh`.
fn run_editor(path: &Path) -> Result<(), String> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| format!("cannot run the editor {editor:?}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the editor {editor:?} failed ({status}); nothing was sent; the text is in {}",
            path.display()
        ));
    }
    Ok(())
}

/// Fetches the resource, edits it as wrapped YAML (or JSON), and replaces it when it
/// changed and is still one valid resource of the same kind and name.
pub async fn edit(
    s: &mut Session,
    kind: Kind,
    ns: &str,
    name: &str,
    json: bool,
) -> Result<Edited, String> {
    let current = info(s, kind, ns, name).await?;
    let (text, ext) = if json {
        (
            serde_json::to_string_pretty(&current.doc).unwrap_or_default() + "\n",
            "json",
        )
    } else {
        (ward_types::to_yaml(&current.doc), "yaml")
    };
    let path = temp_file(kind, name, ext, &text)?;
    run_editor(&path)?;
    let kept = |why: String| {
        format!(
            "{why}; nothing was sent; your text is in {}",
            path.display()
        )
    };
    let edited = std::fs::read_to_string(&path).map_err(|e| kept(e.to_string()))?;
    if edited == text {
        let _ = std::fs::remove_file(&path);
        return Ok(Edited::Unchanged);
    }
    let resources = ward_types::parse_stream(&path.display().to_string(), &edited)
        .map_err(|e| kept(e.to_string()))?;
    let [r] = resources.as_slice() else {
        return Err(kept(format!(
            "expected one resource, found {}",
            resources.len()
        )));
    };
    let same_name = if kind == Kind::Event {
        r.metadata.name == current.doc.metadata.name
    } else {
        r.metadata.name == name
    };
    if r.kind != kind || !same_name {
        return Err(kept(format!(
            "edit changes a resource, it does not make another: keep type {} and name {name:?}",
            kind.type_name()
        )));
    }
    let target_ns = r.metadata.namespace.clone().unwrap_or_else(|| ns.into());
    if kind.namespaced() && target_ns != ns {
        return Err(kept(format!(
            "edit does not move a resource to another namespace (from {ns:?} to {target_ns:?})"
        )));
    }
    s.call(
        "PUT",
        &resource_path(kind, ns, name),
        Some(crate::body_for(r)),
    )
    .await
    .map_err(kept)?;
    let _ = std::fs::remove_file(&path);
    Ok(Edited::Saved)
}
