use super::*;
use ward_testkit::{free_port, require_tool, TempDir};

fn sha512(bytes: &[u8]) -> String {
    ward_io::text::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, bytes).as_ref())
}

/// An archive entry: name, type, data, link target.
type Entry<'a> = (&'a str, tar::EntryType, &'a [u8], &'a str);

/// A tar built entry by entry, with raw names (so that hostile ones can be written).
fn raw_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_old();
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            let l = link.as_bytes();
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn unpack_bytes(dir: &Path, bytes: &[u8], limits: Limits) -> Result<PathBuf, String> {
    let archive = dir.join(format!("a-{}.tar", fastrand::u32(..)));
    std::fs::write(&archive, bytes).unwrap();
    let into = dir.join(format!("out-{}", fastrand::u32(..)));
    unpack(&archive, &into, limits).map(|()| into)
}

#[test]
fn an_archive_made_by_tar_unpacks_with_its_links_and_modes() {
    let t = TempDir::new();
    let src = t.join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("lib")).unwrap();
    std::fs::write(src.join("bin/check"), "#!/bin/sh\necho ok\n").unwrap();
    std::fs::write(src.join("lib/libx.so.1"), "x").unwrap();
    std::os::unix::fs::symlink("libx.so.1", src.join("lib/libx.so")).unwrap();
    std::os::unix::fs::symlink("../lib/libx.so.1", src.join("bin/libx")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        src.join("bin/check"),
        std::fs::Permissions::from_mode(0o4777),
    )
    .unwrap();
    let out = ward_testkit::Command::new(require_tool("tar"))
        .args(["-czf", "../a.tar.gz", "."])
        .current_dir(&src)
        .run()
        .ok();
    drop(out);
    let into = t.join("into");
    unpack(&t.join("a.tar.gz"), &into, Limits::default()).unwrap();
    assert_eq!(
        std::fs::read_to_string(into.join("bin/check")).unwrap(),
        "#!/bin/sh\necho ok\n"
    );
    assert_eq!(
        std::fs::read_to_string(into.join("lib/libx.so")).unwrap(),
        "x"
    );
    assert_eq!(std::fs::read_to_string(into.join("bin/libx")).unwrap(), "x");
    let mode = std::fs::metadata(into.join("bin/check"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "setuid and world-write are dropped");
}

#[test]
fn hostile_archives_are_refused_whole_and_leave_nothing() {
    use tar::EntryType::*;
    let t = TempDir::new();
    let ok: Entry<'_> = ("bin/fine", Regular, b"x", "");
    let cases: Vec<(Vec<Entry<'_>>, &str)> = vec![
        (
            vec![ok, ("../evil", Regular, b"x", "")],
            "absolute path or a `..`",
        ),
        (
            vec![ok, ("bin/../../evil", Regular, b"x", "")],
            "absolute path or a `..`",
        ),
        (
            vec![ok, ("/etc/evil", Regular, b"x", "")],
            "absolute path or a `..`",
        ),
        (vec![ok, ("bin/etc", Symlink, b"", "/etc")], "absolute path"),
        (
            vec![ok, ("bin/up", Symlink, b"", "../../..")],
            "leads out of the asset",
        ),
        (
            vec![ok, ("up", Symlink, b"", "../nothing")],
            "climbs with `..`",
        ),
        (
            vec![("c", Symlink, b"", "."), ("d", Symlink, b"", "c/../x")],
            "climbs with `..`",
        ),
        (
            vec![
                ok,
                ("bin/fine2", Symlink, b"", "fine"),
                ("bin/fine2", Regular, b"y", ""),
            ],
            "written through a link",
        ),
        (vec![ok, ("dev/null", Char, b"", "")], "Char"),
        (vec![ok, ("dev/sda", Block, b"", "")], "Block"),
        (vec![ok, ("pipe", Fifo, b"", "")], "Fifo"),
        (
            vec![ok, ("hard", Link, b"", "/etc/passwd")],
            "not to an earlier file",
        ),
        (
            vec![ok, ("hard", Link, b"", "nothing")],
            "not to an earlier file",
        ),
    ];
    for (entries, why) in cases {
        let e = unpack_bytes(t.path(), &raw_tar(&entries), Limits::default()).unwrap_err();
        assert!(e.contains(why), "{entries:?}: {e}");
        assert!(e.starts_with("refused"), "{e}");
    }
    // Nothing was left: neither the staging directories nor anything outside.
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("out-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!t.path().parent().unwrap().join("evil").exists());
    // A hard link to an earlier file is fine.
    let dir = unpack_bytes(
        t.path(),
        &raw_tar(&[ok, ("bin/again", Link, b"", "bin/fine")]),
        Limits::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(dir.join("bin/again")).unwrap(), b"x");
}

#[test]
fn archives_past_the_limits_are_refused() {
    let t = TempDir::new();
    let big = vec![0u8; 4096];
    let entries: Vec<Entry<'_>> = vec![
        ("a", tar::EntryType::Regular, &big, ""),
        ("b", tar::EntryType::Regular, &big, ""),
    ];
    let small = Limits {
        unpacked: 6000,
        ..Limits::default()
    };
    let e = unpack_bytes(t.path(), &raw_tar(&entries), small).unwrap_err();
    assert!(e.contains("more than"), "{e}");
    let few = Limits {
        entries: 1,
        ..Limits::default()
    };
    let e = unpack_bytes(t.path(), &raw_tar(&entries), few).unwrap_err();
    assert!(e.contains("more than 1 entries"), "{e}");
    let e = unpack_bytes(
        t.path(),
        b"this is not a tar archive at all, not even close",
        Limits::default(),
    )
    .unwrap_err();
    assert!(e.contains("tar"), "{e}");
}

#[test]
fn builds_are_chosen_by_their_filters_over_the_entity() {
    let spec = serde_json::json!({"builds": [
        {"url": "https://x/a", "sha512": "A", "filters": ["entity.system.os == 'windows'"]},
        {"url": "https://x/b", "sha512": "B", "filters": ["entity.system.os == 'linux'", "entity.system.arch == 'amd64'"],
         "headers": {"Authorization": "Bearer t"}},
        {"url": "https://x/c", "sha512": "C"}
    ]});
    let a = Asset::from_spec("sensu/check-cpu", spec.as_object().unwrap());
    let linux = r#"{"name": "web-1", "system": {"os": "linux", "arch": "amd64"}}"#;
    let b = a.choose(linux).unwrap();
    assert_eq!((b.url.as_str(), b.sha512.as_str()), ("https://x/b", "b"));
    assert_eq!(
        b.headers,
        [("Authorization".to_string(), "Bearer t".to_string())]
    );
    let arm = r#"{"name": "pi", "system": {"os": "linux", "arch": "arm64"}}"#;
    assert_eq!(a.choose(arm).unwrap().url, "https://x/c");
    // One build from the asset's own fields; its filters can rule it out.
    let one = serde_json::json!({"url": "https://x/d", "sha512": "D", "filters": ["entity.system.os == 'darwin'"]});
    let d = Asset::from_spec("d", one.as_object().unwrap());
    assert!(d.choose(linux).is_none());
    assert_eq!(
        path_variable("sensu/check-cpu-usage"),
        "SENSU_CHECK_CPU_USAGE_PATH"
    );
    assert_eq!(path_variable("a..b-"), "A_B__PATH");
}

#[test]
fn the_environment_prepends_the_assets_directories() {
    let installed = [
        Installed {
            name: "one".into(),
            dir: "/c/1".into(),
        },
        Installed {
            name: "two-x".into(),
            dir: "/c/2".into(),
        },
    ];
    let env = environment(&installed, &[("PATH".into(), "/usr/bin:/bin".into())]);
    let get = |k: &str| env.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
    assert_eq!(get("PATH"), Some("/c/1/bin:/c/2/bin:/usr/bin:/bin"));
    assert_eq!(get("LD_LIBRARY_PATH"), Some("/c/1/lib:/c/2/lib"));
    assert_eq!(get("CPATH"), Some("/c/1/include:/c/2/include"));
    assert_eq!(get("ONE_PATH"), Some("/c/1"));
    assert_eq!(get("TWO_X_PATH"), Some("/c/2"));
    assert_eq!(
        environment(&[], &[("PATH".into(), "/bin".into())]),
        [("PATH".to_string(), "/bin".to_string())]
    );
}

/// An HTTPS file server with a certificate from a new test CA in `pki`, and that CA.
fn serve(dir: &Path, pki: &Path) -> (ward_testkit::fixtures::HttpsFiles, PathBuf) {
    std::fs::create_dir_all(pki).unwrap();
    let ca = ward_testkit::fixtures::TestCa::create(pki, "assets CA");
    let leaf = ca.issue("assets", "server", "127.0.0.1");
    (
        ward_testkit::fixtures::HttpsFiles::start(dir, &leaf),
        ca.cert_path(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_is_fetched_over_https_once_checked_and_a_tampered_one_refused() {
    let t = TempDir::new();
    let www = t.join("www");
    let src = t.join("src");
    std::fs::create_dir_all(&www).unwrap();
    ward_testkit::fixtures::script(&src.join("bin/hello"), "echo hello from the asset");
    ward_testkit::fixtures::tar_gz(&src, &["bin"], &www.join("hello.tar.gz"));
    let bytes = std::fs::read(www.join("hello.tar.gz")).unwrap();
    std::fs::write(www.join("tampered.tar.gz"), [&bytes[..], b"\0"].concat()).unwrap();
    let (server, ca) = serve(&www, &t.join("pki"));
    let assets = Assets::new(
        &t.join("cache"),
        &ward_tls::Trust::CaFileAndSystemRoots(ca),
        Limits::default(),
    )
    .unwrap();
    let good = Build {
        url: server.url("hello.tar.gz"),
        sha512: sha512(&bytes),
        filters: vec![],
        headers: vec![],
    };
    let got = assets.install("hello", &good).await.unwrap();
    assert_eq!(got.dir, t.join("cache").join(&good.sha512));
    let out = std::process::Command::new(got.dir.join("bin/hello"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the asset\n"
    );

    // The same hash under another URL: not fetched (the cache has it).
    let elsewhere = Build {
        url: server.url("gone.tar.gz"),
        ..good.clone()
    };
    assert_eq!(assets.install("hello", &elsewhere).await.unwrap(), got);

    // Tampered: the hash differs; refused before unpacking, nothing left in the cache.
    let tampered = Build {
        url: server.url("tampered.tar.gz"),
        sha512: sha512(b"what the asset's author published"),
        ..good.clone()
    };
    let e = assets.install("hello", &tampered).await.unwrap_err();
    assert!(e.to_string().contains("its SHA-512 is"), "{e}");
    assert!(e.to_string().starts_with("asset \"hello\": "), "{e}");
    let names: Vec<String> = std::fs::read_dir(t.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, std::slice::from_ref(&good.sha512));

    // A server the CA file does not vouch for: the reason, naming the certificate.
    let (other, _) = serve(&www, &t.join("pki2"));
    let stranger = Build {
        url: other.url("hello.tar.gz"),
        sha512: sha512(b"x"),
        ..good.clone()
    };
    let e = assets.install("hello", &stranger).await.unwrap_err();
    assert!(
        e.to_string().contains("TLS") && e.to_string().contains("CN=assets"),
        "{e}"
    );
    // Unreachable.
    let down = Build {
        url: format!("https://127.0.0.1:{}/hello.tar.gz", free_port()),
        ..stranger
    };
    let e = assets.install("hello", &down).await.unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
}
