//! Files in and out of a container with the real OpenSSH `scp` (SFTP mode, its default) and
//! `sftp`, through the agent's SSH server and the SFTP server it mounts into the container:
//! byte-exact both ways, modes and times kept with `-p`, directories with `-r`, and sftp's
//! mkdir, rename, symlink, chmod, listing and removal — all on the container's own files
//! (the host's are out of reach, a symlink to /etc/passwd is the container's), behind the
//! same keys and `ssh_enabled` as the shell.

use anyhow::Result;
use berth_tests::Cluster;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn ok(out: &Output, what: &str) -> Result<String> {
    anyhow::ensure!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn random_file(path: &Path, len: usize) -> Result<Vec<u8>> {
    let mut data = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut data);
    std::fs::write(path, &data)?;
    Ok(data)
}

#[tokio::test(flavor = "multi_thread")]
async fn scp_and_sftp_move_files_in_and_out_of_the_container() -> Result<()> {
    let c = Cluster::start().await?;
    let keys = c.dir.join("keys");
    let alice = c.user("alice")?;
    let bob = c.user("bob")?;
    let (key, path) = alice.add_key_in("laptop", &keys).await?;
    let (_, bob_path) = bob.add_key_in("bob", &keys).await?;
    let id = c
        .running_container(
            &alice,
            json!({"name": "files", "ssh_key_ids": [key], "ssh_enabled": true}),
        )
        .await?;
    let ssh = c.ssh();
    let sh = |cmd: &str| -> Result<String> {
        let out = ssh.run(&path, &id, &[cmd], b"")?;
        ok(&out, cmd)
    };
    let local = c.dir.join("files");
    std::fs::create_dir_all(&local)?;
    let remote = |p: &str| format!("{id}@127.0.0.1:{p}");
    // `scp` with `args` (flags, then from and to), failing with its stderr.
    let scp = |args: &[&std::ffi::OsStr]| -> Result<String> {
        let out = ssh.scp(&path).args(args).output()?;
        ok(&out, &format!("scp {args:?}"))
    };

    // Up and down, byte-exact (5 MiB: many SFTP reads and writes).
    let up = local.join("blob");
    let data = random_file(&up, 50 * 1024 * 1024)?;
    scp(&[up.as_ref(), remote("/root/").as_ref()])?;
    let sum = sh("sha256sum /root/blob")?;
    let want = berth_tests::run(std::process::Command::new("sha256sum").arg(&up))?;
    assert_eq!(
        sum.split(' ').next(),
        want.split(' ').next(),
        "the same bytes arrived"
    );
    let down = local.join("blob.back");
    scp(&[remote("/root/blob").as_ref(), down.as_ref()])?;
    assert!(std::fs::read(&down)? == data, "the same bytes came back");

    // -p keeps the mode and the modification time; -r copies a tree.
    let kept = local.join("kept");
    std::fs::write(&kept, "kept\n")?;
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640))?;
    std::fs::File::options()
        .write(true)
        .open(&kept)?
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000))?;
    scp(&["-p".as_ref(), kept.as_ref(), remote("/root/kept").as_ref()])?;
    assert_eq!(sh("stat -c '%a %Y' /root/kept")?.trim(), "640 1700000000");
    let tree = local.join("tree");
    std::fs::create_dir_all(tree.join("sub"))?;
    std::fs::write(tree.join("sub/leaf"), "leaf\n")?;
    scp(&["-r".as_ref(), tree.as_ref(), remote("/root/").as_ref()])?;
    assert_eq!(sh("cat /root/tree/sub/leaf")?, "leaf\n");

    // sftp: the session starts in the home directory; mkdir, rename, symlink, chmod, ls, rm.
    // One path, on the host and in the container, holding different words.
    let both = format!("/tmp/berth-where-{id}");
    std::fs::write(&both, "host\n")?;
    sh(&format!("echo container > {both}"))?;
    let got = local.join("where.got");
    let passwd = local.join("passwd.got");
    let batch = format!(
        "pwd\nmkdir made\nrename kept made/renamed\nsymlink made/renamed link\n\
         chmod 600 made/renamed\nls -l\nrm blob\nget {both} {}\nsymlink /etc/passwd pw\nget pw {}\n",
        got.display(),
        passwd.display()
    );
    let out = ssh.run_with(ssh.sftp(&path, &id), &[], batch.as_bytes())?;
    let listing = ok(&out, "sftp batch")?;
    assert!(listing.contains("/root"), "{listing}");
    assert!(listing.contains("link"), "{listing}");
    assert_eq!(sh("readlink /root/link")?.trim(), "made/renamed");
    assert_eq!(sh("stat -c %a /root/made/renamed")?.trim(), "600");
    assert_eq!(sh("cat /root/link")?, "kept\n");
    assert_eq!(sh("ls /root/blob 2>/dev/null || echo gone")?.trim(), "gone");
    // The container's files, not the host's.
    let got = std::fs::read_to_string(&got)?;
    let _ = std::fs::remove_file(&both);
    assert_eq!(got, "container\n", "{both} is read from the container");
    // A symlink to /etc/passwd is the container's /etc/passwd.
    assert_eq!(std::fs::read_to_string(&passwd)?, sh("cat /etc/passwd")?);
    // The server itself is read-only inside the container.
    let out = ssh.run_with(
        ssh.sftp(&path, &id),
        &[],
        b"put /etc/hostname /.berth/sftp-server\n",
    )?;
    assert!(!out.status.success(), "the SFTP server cannot be replaced");

    // Failures are reported, not hidden: a missing file, a directory that is not empty.
    let out = ssh.run_with(ssh.sftp(&path, &id), &[], b"get /nope/none\n")?;
    assert!(!out.status.success());
    let out = ssh.run_with(ssh.sftp(&path, &id), &[], b"rmdir made\n")?;
    assert!(!out.status.success());

    // The same keys as the shell: another user's key gets nothing, neither files nor a
    // forward; with SSH turned off nothing opens.
    let stolen = local.join("stolen");
    let out = ssh
        .scp(&bob_path)
        .arg(remote("/root/made/renamed"))
        .arg(&stolen)
        .output()?;
    assert!(!out.status.success() && !stolen.exists());
    let mut forward = ssh.cmd(&bob_path, &id, false);
    forward.args(["-W", "127.0.0.1:22"]);
    assert_eq!(ssh.run_with(forward, &[], b"")?.status.code(), Some(255));
    alice
        .expect(
            200,
            "PUT",
            &format!("/compute/containers/{id}/ssh"),
            Some(json!({"ssh_enabled": false})),
        )
        .await?;
    c.eventually(Duration::from_secs(30), "sftp closed", || async {
        let out = ssh
            .scp(&path)
            .arg(remote("/root/link"))
            .arg(&stolen)
            .output()?;
        Ok(!out.status.success())
    })
    .await?;
    assert!(!stolen.exists());
    let mut forward = ssh.cmd(&path, &id, false);
    forward.args(["-W", "127.0.0.1:22"]);
    assert_eq!(ssh.run_with(forward, &[], b"")?.status.code(), Some(255));
    Ok(())
}
