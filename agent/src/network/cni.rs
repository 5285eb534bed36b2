//! Calls to the CNI `bridge` plugin (with `static` IPAM) per the CNI spec: the command in
//! `CNI_COMMAND`, the network config on stdin, a JSON result or error on stdout.

use super::NetworkError;
use crate::config::NetworkConfig;
use crate::subnet::Subnet;
use serde_json::{json, Value};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

fn conf(cfg: &NetworkConfig, subnet: &Subnet, ip: Ipv4Addr) -> Value {
    json!({
        "cniVersion": "0.4.0",
        "name": "berth",
        "type": "bridge",
        "bridge": cfg.bridge,
        "isGateway": true,
        "ipMasq": true,
        "hairpinMode": false,
        "ipam": {
            "type": "static",
            "addresses": [{"address": format!("{ip}/{}", subnet.prefix), "gateway": subnet.gateway().to_string()}],
            "routes": [{"dst": "0.0.0.0/0"}]
        }
    })
}

fn call(
    command: &'static str,
    cfg: &NetworkConfig,
    subnet: &Subnet,
    id: &str,
    netns: &Path,
    ip: Ipv4Addr,
) -> Result<Value, NetworkError> {
    invoke(command, cfg, id, netns, "eth0", &conf(cfg, subnet, ip))
}

/// Runs the plugin named by `conf["type"]` per the CNI spec.
fn invoke(
    command: &'static str,
    cfg: &NetworkConfig,
    id: &str,
    netns: &Path,
    ifname: &str,
    conf: &Value,
) -> Result<Value, NetworkError> {
    let plugin = conf["type"].as_str().unwrap_or("bridge");
    let fail = |message: String| NetworkError::Cni {
        command,
        id: id.to_string(),
        message,
    };
    let mut child = Command::new(cfg.cni_bin_dir.join(plugin))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", &cfg.cni_bin_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run {}/{plugin}: {e}",
                cfg.cni_bin_dir.display()
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(conf.to_string().as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if !out.status.success() {
        let msg = result["msg"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned());
        return Err(fail(msg));
    }
    Ok(result)
}

/// Connects the namespace to the bridge with `ip`; isolates its bridge port.
pub fn add(
    cfg: &NetworkConfig,
    subnet: &Subnet,
    id: &str,
    netns: &Path,
    ip: Ipv4Addr,
) -> Result<(), NetworkError> {
    let lo = json!({"cniVersion": "0.4.0", "name": "berth-lo", "type": "loopback"});
    invoke("ADD", cfg, id, netns, "lo", &lo)?;
    let result = call("ADD", cfg, subnet, id, netns, ip)?;
    // The host end of the veth: the interface without a sandbox that is not the bridge.
    let host_veth = result["interfaces"].as_array().and_then(|ifs| {
        ifs.iter()
            .filter(|i| i["sandbox"].is_null() && i["name"] != json!(cfg.bridge))
            .find_map(|i| i["name"].as_str().map(str::to_string))
    });
    if let Some(veth) = host_veth {
        // Isolated bridge ports reach the bridge (the host, NAT) but not one another.
        let ok = Command::new("ip")
            .args([
                "link",
                "set",
                "dev",
                &veth,
                "type",
                "bridge_slave",
                "isolated",
                "on",
            ])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = call("DEL", cfg, subnet, id, netns, ip);
            return Err(NetworkError::Cni {
                command: "ADD",
                id: id.into(),
                message: format!("cannot isolate bridge port {veth}"),
            });
        }
    }
    Ok(())
}

pub fn del(
    cfg: &NetworkConfig,
    subnet: &Subnet,
    id: &str,
    netns: &Path,
    ip: Ipv4Addr,
) -> Result<(), NetworkError> {
    call("DEL", cfg, subnet, id, netns, ip).map(|_| ())
}
