//! The host facts a keepalive carries (Sensu's `entity.system`): host name, OS and
//! distribution from /etc/os-release, architecture (and ARM version), libc, the
//! virtualization (`ward_io::host`), and the network interfaces with their MAC and
//! addresses. Read at every keepalive, so a renumbered host is seen within one
//! interval; anything unreadable is left empty rather than failing the keepalive.

use std::net::IpAddr;
use ward_types::agent::{Interface, Network, System};

/// The facts of this host, now; with `cloud`, the public cloud it runs in
/// (`detect-cloud-provider`).
pub fn facts(cloud: bool) -> System {
    let f = ward_io::host::facts();
    System {
        hostname: f.hostname,
        os: f.os,
        platform: f.platform,
        platform_family: f.platform_family,
        platform_version: f.platform_version,
        arch: f.arch,
        arm_version: f.arm_version,
        libc_type: f.libc_type,
        vm_system: f.vm_system,
        vm_role: f.vm_role,
        cloud_provider: if cloud {
            ward_io::host::cloud_provider()
        } else {
            String::new()
        },
        float_type: f.float_type,
        network: Network {
            interfaces: interfaces(),
        },
        processes: None,
    }
}

/// The interfaces: name, MAC (from /sys/class/net) and addresses in CIDR form
/// (`10.0.0.5/24`), in the kernel's order.
pub fn interfaces() -> Vec<Interface> {
    let mut out: Vec<Interface> = Vec::new();
    for (name, addr) in if_addrs() {
        let i = match out.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                let mac = std::fs::read_to_string(format!("/sys/class/net/{name}/address"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                out.push(Interface {
                    name: name.clone(),
                    mac,
                    addresses: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(a) = addr {
            out[i].addresses.push(a);
        }
    }
    out
}

fn prefix_len(mask: Option<IpAddr>) -> u32 {
    match mask {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones(),
        Some(IpAddr::V6(m)) => u128::from(m).count_ones(),
        None => 0,
    }
}

/// `getifaddrs(3)`: each interface with each of its addresses (or none).
// unsafe: neither std nor rustix wraps getifaddrs(3); this FFI call and the sockaddr casts
// below are the workspace's only unsafe code (unsafe_code is denied everywhere else).
#[allow(unsafe_code)]
fn if_addrs() -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list that stays valid until freeifaddrs; we
    // read it only in between, checking every pointer for null and every sockaddr's family
    // before casting it to the matching sockaddr type.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_name.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let addr = sockaddr_ip(ifa.ifa_addr);
            let mask = sockaddr_ip(ifa.ifa_netmask);
            out.push((name, addr.map(|a| format!("{a}/{}", prefix_len(mask)))));
        }
        libc::freeifaddrs(head);
    }
    out
}

/// The IP address in a sockaddr, if it is one.
///
/// # Safety
/// `sa` is null or points to a sockaddr whose family says how long it is.
#[allow(unsafe_code)]
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match (*sa).sa_family as i32 {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_hosts_facts_include_loopback() {
        let s = facts(false);
        assert_eq!(s.os, "linux");
        assert!(!s.arch.is_empty());
        let lo = s
            .network
            .interfaces
            .iter()
            .find(|i| i.name == "lo")
            .expect("lo");
        assert!(lo.addresses.iter().any(|a| a == "127.0.0.1/8"), "{lo:?}");
    }
}
