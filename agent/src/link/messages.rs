//! The messages a session is opened and kept with — the hello and the heartbeats — built
//! from the stored inventory. Building one fails when the inventory cannot be read: an empty
//! inventory would tell the coordinator this host holds nothing.

use crate::state::{State, StateError};
use berth_shared::protocol::{AgentMessage, HostInfo, ObservedState, PROTOCOL_VERSION};

/// The hello that opens a session, with the full inventory; an error when it cannot be read.
pub(super) fn hello(host: &HostInfo, state: &State) -> Result<AgentMessage, StateError> {
    Ok(AgentMessage::Hello {
        protocol: PROTOCOL_VERSION,
        host: host.clone(),
        inventory: state.inventory()?,
    })
}

/// A heartbeat with the full inventory, each container's volume use (`volume_used`, bytes)
/// and, if running, memory use; an error when the inventory cannot be read.
pub(super) fn heartbeat(
    host: &HostInfo,
    state: &State,
    volume_used: impl Fn(&str) -> Option<u64>,
) -> Result<AgentMessage, StateError> {
    let mut inventory = state.inventory()?;
    for r in &mut inventory {
        r.storage_used_gb =
            volume_used(&r.id).map(|b| (b as f64 / (1u64 << 30) as f64 * 1000.0).round() / 1000.0);
        if r.state == ObservedState::Running {
            r.memory_used_mb = crate::usage::memory_bytes(&r.id).map(|b| b.div_ceil(1024 * 1024));
        }
    }
    Ok(AgentMessage::Heartbeat {
        host: host.clone(),
        inventory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use berth_shared::catalog::Arch;
    use berth_shared::protocol::{ContainerSpec, DesiredState, Resources};

    fn host() -> HostInfo {
        HostInfo {
            host_key: "h1".into(),
            region: "r1".into(),
            arch: Arch::Amd64,
            capacity: Resources {
                cpu_millis: 1000,
                memory_mb: 1024,
                disk_gb: 10,
            },
            placeable: None,
            public_address: None,
            ssh_port: None,
            agent_version: "test".into(),
            runtimes: vec![berth_shared::protocol::Runtime::Runc],
        }
    }

    fn spec(id: &str) -> ContainerSpec {
        testing::spec(id, DesiredState::Running, &[])
    }

    fn inventory_of(m: &AgentMessage) -> Vec<String> {
        match m {
            AgentMessage::Hello { inventory, .. } | AgentMessage::Heartbeat { inventory, .. } => {
                inventory.iter().map(|r| r.id.clone()).collect()
            }
            other => panic!("not a hello or heartbeat: {other:?}"),
        }
    }

    #[test]
    fn hello_and_heartbeat_carry_every_held_container() {
        let state = State::temporary().expect("state");
        state.offer_spec(&spec("aaaa1111")).expect("offer");
        state.offer_spec(&spec("bbbb2222")).expect("offer");
        let hi = hello(&host(), &state).expect("hello");
        assert_eq!(inventory_of(&hi), ["aaaa1111", "bbbb2222"]);
        let beat = heartbeat(&host(), &state, |_| Some(1 << 30)).expect("heartbeat");
        assert_eq!(inventory_of(&beat), ["aaaa1111", "bbbb2222"]);
        let AgentMessage::Heartbeat { inventory, .. } = beat else {
            unreachable!()
        };
        assert_eq!(inventory[0].storage_used_gb, Some(1.0));
    }

    #[test]
    fn an_unreadable_inventory_makes_no_hello_and_no_heartbeat() {
        let state = State::temporary().expect("state");
        state.offer_spec(&spec("aaaa1111")).expect("offer");
        state.corrupt_spec_for_test("bbbb2222").expect("corrupt");
        // An empty inventory would tell the coordinator this host holds nothing.
        assert!(matches!(hello(&host(), &state), Err(StateError::Record(_))));
        assert!(matches!(
            heartbeat(&host(), &state, |_| None),
            Err(StateError::Record(_))
        ));
    }
}
