//! This host's facts as Sensu's `entity.system` names them: host name, OS, distribution
//! (from os-release, as gopsutil names it) and Go's architecture name. The agent's
//! keepalives and the backend's own entity (asset build filters) read them here.

use std::collections::BTreeMap;

/// The host's facts, without its network interfaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub hostname: String,
    pub os: String,
    pub platform: String,
    pub platform_family: String,
    pub platform_version: String,
    pub arch: String,
}

/// The facts of this host, now; anything unreadable is left empty.
pub fn facts() -> Facts {
    let release = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let (platform, platform_family, platform_version) = os_release(&release);
    Facts {
        hostname: hostname().unwrap_or_default(),
        os: std::env::consts::OS.to_string(),
        platform,
        platform_family,
        platform_version,
        arch: go_arch(std::env::consts::ARCH).to_string(),
    }
}

/// The kernel's host name, None when it cannot be read or is empty.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Go's names for architectures, which Sensu reports (`amd64`, not `x86_64`).
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `(platform, platform_family, platform_version)` from os-release, as gopsutil names them
/// (`ubuntu`, `debian`, `22.04`; `rocky`, `rhel`, `9.3`).
pub fn os_release(text: &str) -> (String, String, String) {
    let mut kv = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.trim().split_once('=') {
            kv.insert(k.trim(), v.trim().trim_matches('"').trim_matches('\''));
        }
    }
    let id = kv.get("ID").copied().unwrap_or_default().to_string();
    let like = kv.get("ID_LIKE").copied().unwrap_or_default();
    let family = match id.as_str() {
        "debian" | "ubuntu" | "linuxmint" | "raspbian" | "pop" | "kali" => "debian".to_string(),
        "rhel" | "centos" | "rocky" | "almalinux" | "ol" | "scientific" | "amzn" => {
            "rhel".to_string()
        }
        "fedora" => "fedora".to_string(),
        "alpine" => "alpine".to_string(),
        "arch" | "manjaro" => "arch".to_string(),
        "opensuse-leap" | "opensuse-tumbleweed" | "sles" | "opensuse" => "suse".to_string(),
        _ => {
            if like.contains("debian") {
                "debian".into()
            } else if like.contains("rhel") || like.contains("fedora") {
                "rhel".into()
            } else {
                like.split_whitespace().next().unwrap_or(&id).to_string()
            }
        }
    };
    let version = kv
        .get("VERSION_ID")
        .copied()
        .unwrap_or_default()
        .to_string();
    (id, family, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_names_platform_family_and_version() {
        let ubuntu = "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n";
        assert_eq!(
            os_release(ubuntu),
            ("ubuntu".into(), "debian".into(), "22.04".into())
        );
        let rocky = "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n";
        assert_eq!(
            os_release(rocky),
            ("rocky".into(), "rhel".into(), "9.3".into())
        );
        let odd = "ID=foo\nID_LIKE=\"bar baz\"\n";
        assert_eq!(os_release(odd), ("foo".into(), "bar".into(), "".into()));
        assert_eq!(os_release(""), ("".into(), "".into(), "".into()));
    }
}
