//! KRaft's configuration keys: what makes a `corelog serve` a cluster member.
//!
//! `controller.quorum.voters` (or `process.roles`) turns cluster mode on; without
//! them the broker is the single broker it always was and none of this runs.

use std::collections::BTreeMap;

use crate::config::{ConfigError, Listener};

/// `broker.heartbeat.interval.ms` (Kafka's default).
pub const BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 2000;
/// `broker.session.timeout.ms` (Kafka's default).
pub const BROKER_SESSION_TIMEOUT_MS_DEFAULT: u64 = 9000;

/// Turns fast failure detection (fencing a member whose process is gone) off.
pub const FAST_FENCING_KEY: &str = "controller.fast.fencing.enable";

/// KIP-392: which replica a consumer is told to read from.
pub const REPLICA_SELECTOR_KEY: &str = "replica.selector.class";
/// Kafka's selectors, by the class names operators write.
const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
const LEADER_SELECTOR: &str = "org.apache.kafka.common.replica.LeaderSelector";

/// A voter of `controller.quorum.voters`: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub node_id: i32,
    pub voters: Vec<Voter>,
    /// Where this node's controller listener binds.
    pub controller_listener: Listener,
    /// Its TLS settings when `listener.security.protocol.map` maps it to SSL (set by
    /// `BrokerConfig`, `config::controller_listener`); used for serving and for
    /// connecting to the other voters.
    pub controller_tls: Option<crate::config::tls::TlsSettings>,
    /// `broker.rack`.
    pub rack: Option<String>,
    pub heartbeat_interval_ms: u64,
    pub session_timeout_ms: u64,
    /// Unclean election and automatic preferred-leader rebalancing (`elect.rs`).
    pub election: super::elect::ElectionConfig,
    /// `controller.fast.fencing.enable` (corelog's own, default true): a member whose
    /// controller listener refuses connections (its process is gone) is fenced at once
    /// rather than after `broker.session.timeout.ms`.
    pub fast_fencing: bool,
    /// Every client listener of this broker as advertised, registered with the quorum
    /// so other members reach it on the listener they need (set by `BrokerConfig`).
    pub endpoints: Vec<super::state::Endpoint>,
    /// `replica.selector.class` names Kafka's RackAwareReplicaSelector: a consumer
    /// that sends its `client.rack` is pointed to an in-sync replica in its rack
    /// (KIP-392). Off (Kafka's default, no selector): consumers read from leaders.
    pub rack_aware_reads: bool,
    /// The cluster.id of this node's meta.properties (set by `serve`), sent with the
    /// registration: the quorum refuses a broker of another cluster.
    pub cluster_id: String,
    /// The controller listener's PLAIN login when `listener.security.protocol.map`
    /// maps it to SASL_PLAINTEXT or SASL_SSL (set by `BrokerConfig`).
    pub controller_sasl: Option<crate::config::controller_listener::ControllerSasl>,
}

impl ClusterConfig {
    /// The cluster id members agree on when `cluster.id` is not set: a name-based UUID
    /// (v5) of the sorted voter set, so every member started with the same
    /// `controller.quorum.voters` formats its log dirs with the same id and clients
    /// see one cluster (Kafka has the operator pass one id to every `storage format`).
    pub fn derived_cluster_id(&self) -> String {
        let mut voters: Vec<String> = self
            .voters
            .iter()
            .map(|v| format!("{}@{}", v.id, v.addr()))
            .collect();
        voters.sort();
        let name = format!("corelog-cluster:{}", voters.join(","));
        let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes());
        crate::util::base64_url(id.as_bytes())
    }
}

fn invalid(key: &str, value: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        why: why.into(),
    }
}

/// The cluster part of the properties; `None` for a single broker. `controller` is the
/// listener named by `controller.listener.names` among `listeners`, if any.
pub fn from_properties(
    props: &BTreeMap<String, String>,
    node_id: i32,
    controller: Option<Listener>,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let get = |k: &str| props.get(k).map(String::as_str);
    let roles = get("process.roles");
    let bootstrap = get(BOOTSTRAP_SERVERS_KEY).filter(|v| !v.trim().is_empty());
    let voters = get("controller.quorum.voters");
    if roles.is_none() && voters.is_none() {
        if let Some(v) = bootstrap {
            return Err(invalid(
                BOOTSTRAP_SERVERS_KEY,
                v,
                "a quorum member also needs process.roles=broker,controller",
            ));
        }
        return Ok(None);
    }
    let roles_value = roles.unwrap_or("");
    let mut names: Vec<&str> = roles_value.split(',').map(str::trim).collect();
    names.sort_unstable();
    if names != ["broker", "controller"] {
        return Err(invalid(
            "process.roles",
            roles_value,
            "corelog runs combined-mode members: set process.roles=broker,controller",
        ));
    }
    let standalone;
    let voters_value =
        match (voters, bootstrap) {
            (Some(v), _) => v,
            (None, Some(servers)) => {
                standalone = standalone_voter(servers, node_id, controller.as_ref())?;
                &standalone
            }
            (None, None) => return Err(invalid(
                "controller.quorum.voters",
                "",
                "a cluster member needs the voters: id@host:port,... (or, for a one-node quorum, \
                 controller.quorum.bootstrap.servers naming this node's controller listener)",
            )),
        };
    let voters = parse_voters(voters_value)?;
    if !voters.iter().any(|v| v.id == node_id) {
        return Err(invalid(
            "controller.quorum.voters",
            voters_value,
            &format!("node.id {node_id} is not among the voters"),
        ));
    }
    let controller_listener = controller.ok_or_else(|| {
        invalid(
            "listeners",
            get("listeners").unwrap_or(""),
            "a controller needs a listener named in controller.listener.names (e.g. CONTROLLER://:9093)",
        )
    })?;
    let ms = |key: &str, default: u64| -> Result<u64, ConfigError> {
        match get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid(key, v, "expected a positive number of ms")),
        }
    };
    let heartbeat_interval_ms = ms(
        "broker.heartbeat.interval.ms",
        BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
    )?;
    let session_timeout_ms = ms(
        "broker.session.timeout.ms",
        BROKER_SESSION_TIMEOUT_MS_DEFAULT,
    )?;
    if session_timeout_ms <= heartbeat_interval_ms {
        return Err(invalid(
            "broker.session.timeout.ms",
            &session_timeout_ms.to_string(),
            "must be longer than broker.heartbeat.interval.ms",
        ));
    }
    let fast_fencing = match get(FAST_FENCING_KEY) {
        None => true,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => return Err(invalid(FAST_FENCING_KEY, v, "expected true or false")),
    };
    let rack_aware_reads = match get(REPLICA_SELECTOR_KEY).map(str::trim) {
        None | Some("") | Some(LEADER_SELECTOR) => false,
        Some(RACK_AWARE_SELECTOR) => true,
        Some(v) => {
            return Err(invalid(
                REPLICA_SELECTOR_KEY,
                v,
                &format!(
                    "corelog has Kafka's two built-in selectors only: \
                     {RACK_AWARE_SELECTOR} or {LEADER_SELECTOR}"
                ),
            ))
        }
    };
    Ok(Some(ClusterConfig {
        node_id,
        voters,
        controller_listener,
        controller_tls: None,
        rack: get("broker.rack")
            .map(str::to_owned)
            .filter(|r| !r.is_empty()),
        heartbeat_interval_ms,
        session_timeout_ms,
        election: super::elect::ElectionConfig::from_properties(props)?,
        fast_fencing,
        endpoints: Vec::new(),
        rack_aware_reads,
        cluster_id: String::new(),
        controller_sasl: None,
    }))
}

/// `1@host1:9093,2@host2:9093`: distinct ids, each with host:port.
/// Kafka's dynamic-quorum key: the voters come from the formatted log dir
/// (`QUORUM_VOTERS_FILE`), or, unformatted, from its one-node form (below).
pub const BOOTSTRAP_SERVERS_KEY: &str = "controller.quorum.bootstrap.servers";
/// In the first log dir: the voters `corelog storage format` was given
/// (`--initial-controllers`, `--standalone`), as `id@host:port,...`.
pub const QUORUM_VOTERS_FILE: &str = "quorum-voters";

/// `controller.quorum.bootstrap.servers` without `controller.quorum.voters`: Kafka 4's
/// stock server.properties, formatted with `kafka-storage format --standalone`, is a
/// quorum of this node alone, found at the one server listed. corelog has no format
/// step, so one entry on this node's controller port is that quorum (as the voters
/// `node.id@host:port`). Several entries would need the other controllers' ids, which
/// Kafka learns from `format --initial-controllers`: they are refused with a message
/// naming controller.quorum.voters.
fn standalone_voter(
    servers: &str,
    node_id: i32,
    controller: Option<&Listener>,
) -> Result<String, ConfigError> {
    let entries: Vec<&str> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let [entry] = entries[..] else {
        return Err(invalid(
            BOOTSTRAP_SERVERS_KEY,
            servers,
            "several controllers need their ids: format each member's log dirs with \
             `corelog storage format --initial-controllers id@host:port,...` (as Kafka's \
             kafka-storage format), or list them in controller.quorum.voters",
        ));
    };
    let port = entry
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .ok_or_else(|| invalid(BOOTSTRAP_SERVERS_KEY, servers, "expected host:port"))?;
    if let Some(listener) = controller.filter(|l| l.port != port) {
        return Err(invalid(
            BOOTSTRAP_SERVERS_KEY,
            servers,
            &format!(
                "a one-node quorum is this node: the port must be its controller listener's ({})",
                listener.port
            ),
        ));
    }
    Ok(format!("{node_id}@{entry}"))
}

fn parse_voters(v: &str) -> Result<Vec<Voter>, ConfigError> {
    let key = "controller.quorum.voters";
    let mut voters: Vec<Voter> = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: &str| invalid(key, v, &format!("{item:?}: {why}"));
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| bad("expected id@host:port"))?;
        let id: i32 = id
            .parse()
            .ok()
            .filter(|&i| i >= 0)
            .ok_or_else(|| bad("the id must be a node.id"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:port after @"))?;
        let port: u16 = port.parse().map_err(|_| bad("the port must be a number"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if voters.iter().any(|o| o.id == id) {
            return Err(bad("the id appears twice"));
        }
        voters.push(Voter { id, host, port });
    }
    if voters.is_empty() {
        return Err(invalid(key, v, "no voter given"));
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn controller() -> Option<Listener> {
        Some(Listener {
            host: "127.0.0.1".into(),
            port: 9093,
        })
    }

    #[test]
    fn replica_selector_takes_kafkas_two_class_names() {
        let voters = ("controller.quorum.voters", "1@127.0.0.1:9093");
        let with = |v: Option<&str>| {
            let mut pairs = vec![("process.roles", "broker,controller"), voters];
            if let Some(v) = v {
                pairs.push((REPLICA_SELECTOR_KEY, v));
            }
            from_properties(&props(&pairs), 1, controller()).map(|c| c.unwrap().rack_aware_reads)
        };
        assert!(!with(None).unwrap());
        assert!(!with(Some(LEADER_SELECTOR)).unwrap());
        assert!(with(Some(RACK_AWARE_SELECTOR)).unwrap());
        let e = with(Some("com.example.MySelector")).unwrap_err();
        assert!(e.to_string().contains("RackAwareReplicaSelector"), "{e}");
    }

    #[test]
    fn no_quorum_keys_is_a_single_broker() {
        assert_eq!(from_properties(&props(&[]), 0, None).unwrap(), None);
        let e = from_properties(
            &props(&[("controller.quorum.bootstrap.servers", "h:9093")]),
            0,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("process.roles"), "{e}");
    }

    #[test]
    fn one_bootstrap_server_on_this_nodes_controller_port_is_a_one_node_quorum() {
        let controller = || {
            Some(Listener {
                host: String::new(),
                port: 9093,
            })
        };
        let member = |servers: &str| {
            from_properties(
                &props(&[
                    ("process.roles", "broker,controller"),
                    ("controller.quorum.bootstrap.servers", servers),
                ]),
                1,
                controller(),
            )
        };
        let c = member("localhost:9093").unwrap().unwrap();
        assert_eq!(
            c.voters,
            vec![Voter {
                id: 1,
                host: "localhost".into(),
                port: 9093
            }]
        );
        let e = member("localhost:9093,h2:9093").unwrap_err().to_string();
        assert!(e.contains("controller.quorum.voters"), "{e}");
        let e = member("localhost:9999").unwrap_err().to_string();
        assert!(e.contains("controller listener's (9093)"), "{e}");
        // Both given: the static voters, which name every id, are the quorum.
        let both = from_properties(
            &props(&[
                ("process.roles", "broker,controller"),
                ("controller.quorum.voters", "1@a:9093,2@b:9093"),
                ("controller.quorum.bootstrap.servers", "a:9093"),
            ]),
            1,
            controller(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(both.voters.len(), 2);
    }

    #[test]
    fn combined_mode_member() {
        let p = props(&[
            ("process.roles", "broker,controller"),
            (
                "controller.quorum.voters",
                "1@127.0.0.1:9093,2@127.0.0.2:9093,3@[::1]:9095",
            ),
            ("broker.rack", "r1"),
        ]);
        let c = from_properties(&p, 2, controller()).unwrap().unwrap();
        assert_eq!(c.voters.len(), 3);
        assert_eq!(c.voters[2].addr(), "[::1]:9095");
        assert_eq!(c.rack.as_deref(), Some("r1"));
        assert_eq!(c.session_timeout_ms, BROKER_SESSION_TIMEOUT_MS_DEFAULT);
        assert!(c.fast_fencing, "on unless turned off");
    }

    #[test]
    fn fast_fencing_can_be_turned_off_and_wants_a_boolean() {
        let with = |v: &str| {
            let p = props(&[
                ("process.roles", "broker,controller"),
                ("controller.quorum.voters", "1@127.0.0.1:9093"),
                (FAST_FENCING_KEY, v),
            ]);
            from_properties(&p, 1, controller())
        };
        assert!(!with("false").unwrap().unwrap().fast_fencing);
        assert!(with("TRUE").unwrap().unwrap().fast_fencing);
        let e = with("soon").unwrap_err().to_string();
        assert!(e.contains(FAST_FENCING_KEY), "{e}");
    }

    #[test]
    fn members_of_one_voter_set_derive_one_cluster_id() {
        let member = |node: i32, voters: &str| {
            let p = props(&[
                ("process.roles", "broker,controller"),
                ("controller.quorum.voters", voters),
            ]);
            from_properties(&p, node, controller()).unwrap().unwrap()
        };
        let a = member(1, "1@h1:9093,2@h2:9093,3@h3:9093");
        let b = member(3, "3@h3:9093,1@h1:9093,2@h2:9093");
        let other = member(1, "1@h1:9093,2@h2:9093,4@h4:9093");
        assert_eq!(a.derived_cluster_id(), b.derived_cluster_id());
        assert_ne!(a.derived_cluster_id(), other.derived_cluster_id());
        assert_eq!(a.derived_cluster_id().len(), 22, "Kafka's base64 UUID form");
    }

    #[test]
    fn bad_member_configs_say_why() {
        let voters = ("controller.quorum.voters", "1@h:9093");
        /// (properties, node.id, what the error must say)
        type Case<'a> = (&'a [(&'a str, &'a str)], i32, &'a str);
        let cases: &[Case] = &[
            (&[("process.roles", "broker"), voters], 1, "combined-mode"),
            (
                &[("process.roles", "broker,controller")],
                1,
                "needs the voters",
            ),
            (
                &[("process.roles", "broker,controller"), voters],
                4,
                "not among",
            ),
            (
                &[
                    ("process.roles", "broker,controller"),
                    ("controller.quorum.voters", "1@h:9093,1@g:9093"),
                ],
                1,
                "twice",
            ),
            (
                &[
                    ("process.roles", "broker,controller"),
                    ("controller.quorum.voters", "x@h:9093"),
                ],
                1,
                "node.id",
            ),
            (
                &[
                    ("process.roles", "broker,controller"),
                    voters,
                    ("broker.session.timeout.ms", "1000"),
                ],
                1,
                "longer than",
            ),
        ];
        for (pairs, node, want) in cases {
            let e = from_properties(&props(pairs), *node, controller()).unwrap_err();
            assert!(e.to_string().contains(want), "{pairs:?}: {e}");
        }
        let e = from_properties(
            &props(&[("process.roles", "broker,controller"), voters]),
            1,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("controller.listener.names"), "{e}");
    }
}
