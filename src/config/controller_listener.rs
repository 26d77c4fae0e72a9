//! The security of the CONTROLLER listener (the quorum's Raft RPC between members):
//! its protocol comes from `listener.security.protocol.map` as for any listener
//! (`CONTROLLER:SSL`), its TLS settings from `listener.name.controller.ssl.*` or
//! `ssl.*`. SSL is served, with mutual TLS when `ssl.client.auth=required`, so only
//! holders of a certificate from the cluster's CA can vote or forward commands. SASL on
//! it (Kafka's `sasl.mechanism.controller.protocol`) is refused at start-up.

use std::collections::BTreeMap;

use super::listeners::{protocol_map, SecurityProtocol};
use super::tls::TlsSettings;
use super::{invalid, ConfigError};

/// The controller listener's TLS settings, None when it is PLAINTEXT (or absent).
pub fn tls(props: &BTreeMap<String, String>) -> Result<Option<TlsSettings>, ConfigError> {
    let Some(name) = props
        .get("controller.listener.names")
        .and_then(|v| v.split(',').map(str::trim).find(|n| !n.is_empty()))
        .map(str::to_ascii_uppercase)
    else {
        return Ok(None);
    };
    let map = protocol_map(
        props
            .get("listener.security.protocol.map")
            .map(String::as_str),
    )?;
    let protocol = map
        .get(&name)
        .copied()
        .or_else(|| SecurityProtocol::parse(&name))
        .unwrap_or(SecurityProtocol::Plaintext);
    if protocol.sasl() {
        return Err(invalid(
            "listener.security.protocol.map",
            &format!("{name}:{}", protocol.name()),
            "the controller listener serves PLAINTEXT or SSL only (no SASL yet): map it to SSL, with ssl.client.auth=required so only certificates of the cluster's CA get in",
        ));
    }
    if !protocol.tls() {
        return Ok(None);
    }
    Ok(Some(super::tls::settings(props, &name)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn protocol_of_the_controller_listener() {
        assert_eq!(tls(&props(&[])).unwrap(), None);
        let names = ("controller.listener.names", "CONTROLLER");
        assert_eq!(tls(&props(&[names])).unwrap(), None, "PLAINTEXT by default");
        let s = tls(&props(&[
            names,
            (
                "listener.security.protocol.map",
                "CONTROLLER:SSL,PLAINTEXT:PLAINTEXT",
            ),
            ("listener.name.controller.ssl.keystore.location", "/c.pem"),
            ("ssl.truststore.location", "/ca.pem"),
            ("ssl.client.auth", "required"),
        ]))
        .unwrap()
        .expect("SSL");
        assert_eq!(
            s.keystore,
            crate::config::tls::Keystore::File("/c.pem".into())
        );
        let e = tls(&props(&[
            names,
            ("listener.security.protocol.map", "CONTROLLER:SASL_SSL"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("no SASL yet"), "{e}");
        let e = tls(&props(&[
            names,
            ("listener.security.protocol.map", "CONTROLLER:SSL"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("keystore"), "{e}");
    }
}
