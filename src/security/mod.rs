//! Who a client is: SCRAM credentials and the user store. No network code; the SASL
//! exchange on a connection is `server::sasl`.

pub mod scram;

/// A SASL mechanism a listener may enable (`sasl.enabled.mechanisms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616: the password travels to the broker (use it over SASL_SSL), which checks
    /// it against the user's stored SCRAM credential.
    Plain,
    Scram(scram::Mechanism),
}

impl SaslMechanism {
    pub fn parse(s: &str) -> Option<SaslMechanism> {
        if s.eq_ignore_ascii_case("PLAIN") {
            return Some(SaslMechanism::Plain);
        }
        scram::Mechanism::from_name(s).map(SaslMechanism::Scram)
    }

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
        }
    }
}
pub mod acl;
pub mod throttle;
pub mod users;
