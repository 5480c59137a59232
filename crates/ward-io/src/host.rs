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
    /// 5, 6 or 7 on 32-bit ARM (`CPU architecture` of /proc/cpuinfo), else 0.
    pub arm_version: u32,
    /// `glibc`, `musl`, or empty when neither is found.
    pub libc_type: String,
    /// The virtualization this host runs under or provides (`kvm`, `xen`, `vmware`,
    /// `vbox`, `hyperv`, `docker`, `lxc`, `podman`), and its role (`guest`, `host`);
    /// empty when none is recognised.
    pub vm_system: String,
    pub vm_role: String,
    /// `hard` (the floating-point ABI Rust builds for on every platform Ward ships on).
    pub float_type: String,
}

/// The facts of this host, now; anything unreadable is left empty.
pub fn facts() -> Facts {
    let release = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let (platform, platform_family, platform_version) = os_release(&release);
    let vm = virtualization();
    Facts {
        hostname: hostname().unwrap_or_default(),
        os: std::env::consts::OS.to_string(),
        platform,
        platform_family,
        platform_version,
        arch: go_arch(std::env::consts::ARCH).to_string(),
        arm_version: if std::env::consts::ARCH == "arm" {
            arm_version(&read("/proc/cpuinfo"))
        } else {
            0
        },
        libc_type: libc_type(),
        vm_system: vm.0,
        vm_role: vm.1,
        float_type: "hard".into(),
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `CPU architecture: 7` of /proc/cpuinfo.
pub fn arm_version(cpuinfo: &str) -> u32 {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "CPU architecture")
        .and_then(|(_, v)| {
            v.trim()
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// musl when its dynamic loader is there, else glibc when its is, else empty.
fn libc_type() -> String {
    let has = |dir: &str, prefix: &str| {
        std::fs::read_dir(dir).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
        })
    };
    if has("/lib", "ld-musl-") {
        "musl".into()
    } else if has("/lib64", "ld-linux") || has("/lib", "ld-linux") {
        "glibc".into()
    } else {
        String::new()
    }
}

/// `(vm_system, vm_role)` from what the kernel and firmware show, in gopsutil's names.
fn virtualization() -> (String, String) {
    let path = |p: &str| std::path::Path::new(p).exists();
    let environ = read("/proc/1/environ");
    let dmi = format!(
        "{} {}",
        read("/sys/class/dmi/id/sys_vendor"),
        read("/sys/class/dmi/id/product_name")
    );
    vm_from(
        path("/.dockerenv"),
        path("/run/.containerenv"),
        &environ,
        &dmi,
        &read("/proc/xen/capabilities"),
        path("/proc/xen"),
        &read("/proc/modules"),
    )
}

/// The public cloud this host runs in, as Sensu names it (`EC2`, `GCP`, `Azure`), from
/// the firmware's DMI strings; empty when none is recognised. Unlike Sensu's agent it
/// runs no `sudo dmidecode` and asks no metadata endpoint over the network: the kernel
/// publishes the same strings world-readable under /sys/class/dmi/id.
pub fn cloud_provider() -> String {
    let dmi = |f: &str| read(&format!("/sys/class/dmi/id/{f}"));
    cloud_from(
        &format!("{} {}", dmi("bios_vendor"), dmi("bios_version")),
        &dmi("sys_vendor"),
        &dmi("chassis_asset_tag"),
    )
    .to_string()
}

/// Azure's virtual machines carry this chassis asset tag (Microsoft documents it); a
/// Hyper-V guest elsewhere also says "Microsoft Corporation" but has another tag.
const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// The decision of [`cloud_provider`], from the BIOS vendor and version, the system
/// vendor and the chassis asset tag.
pub fn cloud_from(bios: &str, sys_vendor: &str, asset_tag: &str) -> &'static str {
    let bios = bios.to_ascii_lowercase();
    if bios.contains("amazon") {
        "EC2"
    } else if bios.contains("google") {
        "GCP"
    } else if sys_vendor.to_ascii_lowercase().contains("microsoft")
        && asset_tag.trim() == AZURE_ASSET_TAG
    {
        "Azure"
    } else {
        ""
    }
}

/// The decision of [`virtualization`], from what it read.
pub fn vm_from(
    dockerenv: bool,
    containerenv: bool,
    init_environ: &str,
    dmi: &str,
    xen_capabilities: &str,
    xen: bool,
    modules: &str,
) -> (String, String) {
    let guest = |s: &str| (s.to_string(), "guest".to_string());
    let env_has = |v: &str| init_environ.split('\0').any(|e| e == v);
    if dockerenv || env_has("container=docker") {
        return guest("docker");
    }
    if containerenv || env_has("container=podman") {
        return guest("podman");
    }
    if env_has("container=lxc") {
        return guest("lxc");
    }
    if xen {
        let role = if xen_capabilities.contains("control_d") {
            "host"
        } else {
            "guest"
        };
        return ("xen".into(), role.into());
    }
    for (needle, system) in [
        ("KVM", "kvm"),
        ("QEMU", "kvm"),
        ("Amazon EC2", "kvm"),
        ("Google Compute Engine", "kvm"),
        ("VMware", "vmware"),
        ("VirtualBox", "vbox"),
        ("innotek", "vbox"),
        ("Xen", "xen"),
        ("Virtual Machine", "hyperv"),
    ] {
        if dmi.contains(needle) {
            return guest(system);
        }
    }
    if modules.lines().any(|l| l.starts_with("kvm ")) {
        return ("kvm".into(), "host".into());
    }
    (String::new(), String::new())
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
    fn clouds_are_told_by_their_firmware() {
        assert_eq!(cloud_from("Amazon EC2 1.0", "Amazon EC2", ""), "EC2");
        assert_eq!(cloud_from("Google Google", "Google", ""), "GCP");
        assert_eq!(
            cloud_from(
                "Microsoft Corporation Hyper-V UEFI",
                "Microsoft Corporation",
                AZURE_ASSET_TAG
            ),
            "Azure"
        );
        // Hyper-V on premises is no cloud; nor is a plain KVM guest or bare metal.
        assert_eq!(
            cloud_from("Microsoft Corporation", "Microsoft Corporation", "None"),
            ""
        );
        assert_eq!(cloud_from("SeaBIOS 1.16", "QEMU", ""), "");
        assert_eq!(cloud_from("", "", ""), "");
    }

    #[test]
    fn arm_libc_and_vm_facts_are_read_as_gopsutil_reads_them() {
        assert_eq!(arm_version("processor\t: 0\nCPU architecture: 7\n"), 7);
        assert_eq!(arm_version("CPU architecture: 8\n"), 8);
        assert_eq!(arm_version("vendor_id : GenuineIntel\n"), 0);
        let vm = |docker, env: &str, dmi: &str, modules: &str| {
            vm_from(docker, false, env, dmi, "", false, modules)
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(vm(true, "", "", ""), pair("docker", "guest"));
        assert_eq!(
            vm(false, "PATH=/bin\0container=lxc\0", "", ""),
            pair("lxc", "guest")
        );
        assert_eq!(
            vm(false, "", "QEMU Standard PC (Q35 + ICH9, 2009)", ""),
            pair("kvm", "guest")
        );
        assert_eq!(
            vm(false, "", "Microsoft Corporation Virtual Machine", ""),
            pair("hyperv", "guest")
        );
        assert_eq!(
            vm(
                false,
                "",
                "Dell Inc. PowerEdge R640",
                "kvm_intel 1 0\nkvm 2 1 kvm_intel\n"
            ),
            pair("kvm", "host")
        );
        assert_eq!(vm(false, "", "Dell Inc. PowerEdge R640", ""), pair("", ""));
        assert_eq!(
            vm_from(false, false, "", "", "control_d\n", true, ""),
            pair("xen", "host")
        );
    }

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
