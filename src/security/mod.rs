//! Who a client is: SCRAM credentials and the user store. No network code; the SASL
//! exchange on a connection is `server::sasl`.

pub mod scram;
