//! The files in contrib/ that a distribution ships: the systemd unit passes
//! `systemd-analyze verify` (with the binary and man pages it names pointing at this
//! build), where that tool exists.

use std::path::Path;
use std::process::Command;

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        // Not in .ci/packages: a whole systemd in the CI image for one lint is too much.
        println!("SKIPPED: systemd-analyze not found (package systemd)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("tchat-unit-{}", std::process::id()));
    let man1 = dir.join("man").join("man1");
    std::fs::create_dir_all(&man1).unwrap();
    for page in std::fs::read_dir(root.join("man")).unwrap() {
        let page = page.unwrap().path();
        std::fs::copy(&page, man1.join(page.file_name().unwrap())).unwrap();
    }
    let unit = std::fs::read_to_string(root.join("contrib/tchat.service")).unwrap();
    for needle in [
        "DynamicUser=yes",
        "StateDirectory=",
        "LogsDirectory=",
        "RuntimeDirectory=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecReload=",
        // Every file the server writes goes where the sandbox lets it write.
        "--state-dir ${STATE_DIRECTORY} ",
        "--bans ${STATE_DIRECTORY}/",
        "--save ${LOGS_DIRECTORY}/",
        "--control-socket ${RUNTIME_DIRECTORY}/",
    ] {
        assert!(unit.contains(needle), "the unit lacks {needle}");
    }
    let unit = unit.replace("/usr/bin/tchat", env!("CARGO_BIN_EXE_tchat"));
    let path = dir.join("tchat.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", dir.join("man"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
}
