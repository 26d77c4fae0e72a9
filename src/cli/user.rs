//! `corelog user add|delete|list`: SCRAM users of a running broker over the wire
//! (AlterUserScramCredentials / DescribeUserScramCredentials), as
//! `kafka-configs.sh --entity-type users` does. The salt and the salted password are
//! computed here, so the password never leaves this process.

use std::process::ExitCode;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{Client, ClientError};
use crate::security::scram::{random_bytes, Mechanism, ITERATIONS_DEFAULT, SALT_BYTES};

#[derive(clap::Subcommand)]
pub enum UserAction {
    /// Create a user, or set a new password for one mechanism.
    Add {
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// The password (or set CORELOG_USER_PASSWORD, which keeps it out of `ps`).
        #[arg(long, env = "CORELOG_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// PBKDF2 iterations, 4096 to 16384.
        #[arg(long, default_value_t = ITERATIONS_DEFAULT)]
        iterations: u32,
    },
    /// Remove a user's credential for one mechanism (the user goes with its last one).
    Delete {
        name: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
    /// The users and their mechanisms (all users when no name is given).
    List { names: Vec<String> },
}

pub fn run(client: Result<Client, ClientError>, action: UserAction) -> ExitCode {
    match client
        .map_err(|e| e.to_string())
        .and_then(|mut c| act(&mut c, action))
    {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelog user: {e}");
            ExitCode::FAILURE
        }
    }
}

fn mechanism(name: &str) -> Result<Mechanism, String> {
    Mechanism::from_name(name)
        .ok_or_else(|| format!("--mechanism {name}: give SCRAM-SHA-256 or SCRAM-SHA-512"))
}

fn act(c: &mut Client, action: UserAction) -> Result<String, String> {
    let mut req = AlterUserScramCredentialsRequest::default();
    let name = match action {
        UserAction::List { names } => return list(c, &names),
        UserAction::Add {
            name,
            mechanism: m,
            password,
            iterations,
        } => {
            let m = mechanism(&m)?;
            let salt = random_bytes(SALT_BYTES);
            let salted = m.salted_password(password.as_bytes(), &salt, iterations);
            let mut u = ScramCredentialUpsertion::default();
            u.name = StrBytes::from_string(name.clone());
            u.mechanism = m.wire();
            u.iterations = iterations as i32;
            u.salt = Bytes::from(salt);
            u.salted_password = Bytes::from(salted);
            req.upsertions.push(u);
            name
        }
        UserAction::Delete { name, mechanism: m } => {
            let mut d = ScramCredentialDeletion::default();
            d.name = StrBytes::from_string(name.clone());
            d.mechanism = mechanism(&m)?.wire();
            req.deletions.push(d);
            name
        }
    };
    let v = c
        .version(ApiKey::AlterUserScramCredentials, (0, 0))
        .map_err(|e| e.to_string())?;
    let resp: AlterUserScramCredentialsResponse = c
        .call(ApiKey::AlterUserScramCredentials, v, &req)
        .map_err(|e| e.to_string())?;
    for r in &resp.results {
        if r.error_code != 0 {
            return Err(format!(
                "{}: error {} ({})",
                r.user,
                r.error_code,
                r.error_message.as_deref().unwrap_or("")
            ));
        }
    }
    let verb = if req.deletions.is_empty() {
        "set"
    } else {
        "deleted"
    };
    Ok(format!("{verb} SCRAM credential of user {name}\n"))
}

fn list(c: &mut Client, names: &[String]) -> Result<String, String> {
    let mut req = DescribeUserScramCredentialsRequest::default();
    req.users = Some(
        names
            .iter()
            .map(|n| {
                let mut u = UserName::default();
                u.name = StrBytes::from_string(n.clone());
                u
            })
            .collect(),
    );
    let v = c
        .version(ApiKey::DescribeUserScramCredentials, (0, 0))
        .map_err(|e| e.to_string())?;
    let resp: DescribeUserScramCredentialsResponse = c
        .call(ApiKey::DescribeUserScramCredentials, v, &req)
        .map_err(|e| e.to_string())?;
    if resp.error_code != 0 {
        return Err(format!(
            "error {} ({})",
            resp.error_code,
            resp.error_message.as_deref().unwrap_or("")
        ));
    }
    let mut out = String::new();
    let mut failed = Vec::new();
    for r in &resp.results {
        if r.error_code != 0 {
            failed.push(format!(
                "{}: error {} ({})",
                r.user,
                r.error_code,
                r.error_message.as_deref().unwrap_or("")
            ));
            continue;
        }
        let mechs: Vec<String> = r
            .credential_infos
            .iter()
            .map(|i| {
                let name = Mechanism::from_wire(i.mechanism).map_or("unknown", Mechanism::name);
                format!("{name} ({} iterations)", i.iterations)
            })
            .collect();
        out.push_str(&format!("{}\t{}\n", r.user, mechs.join(", ")));
    }
    if !failed.is_empty() {
        return Err(format!("{out}{}", failed.join("\n")));
    }
    Ok(out)
}
