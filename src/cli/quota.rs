//! `corelog quota set|describe|delete`: client quotas of a running broker over the wire
//! (AlterClientQuotas / DescribeClientQuotas), as `kafka-configs.sh --entity-type
//! users|clients|ips --add-config producer_byte_rate=...` does. Works against Kafka too, and
//! takes `--command-config` like every tool.

use std::process::ExitCode;

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::client::Client;
use crate::quota::entity::{ENTITY_CLIENT_ID, ENTITY_IP, ENTITY_USER};

#[derive(clap::Args)]
pub struct QuotaArgs {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long, env = super::client::BROKERS_ENV, default_value = super::client::BROKERS_DEFAULT, global = true)]
    pub bootstrap: String,
    #[command(subcommand)]
    pub action: QuotaAction,
}

/// Which entity: a user, a client id, or both; either may be the default entity.
#[derive(clap::Args, Clone, Default)]
pub struct EntityArgs {
    /// The user principal's name (kafka-configs --user).
    #[arg(long, conflicts_with = "user_defaults")]
    pub user: Option<String>,
    /// The default user (kafka-configs --user-defaults).
    #[arg(long)]
    pub user_defaults: bool,
    /// The client id (kafka-configs --client).
    #[arg(long = "client", conflicts_with = "client_defaults")]
    pub client: Option<String>,
    /// The default client id (kafka-configs --client-defaults).
    #[arg(long)]
    pub client_defaults: bool,
    /// An IP address (kafka-configs --ip; alone, with connection_creation_rate).
    #[arg(long, conflicts_with_all = ["ip_defaults", "user", "user_defaults", "client", "client_defaults"])]
    pub ip: Option<String>,
    /// The default IP (kafka-configs --ip-defaults).
    #[arg(long, conflicts_with_all = ["user", "user_defaults", "client", "client_defaults"])]
    pub ip_defaults: bool,
}

#[derive(clap::Subcommand)]
pub enum QuotaAction {
    /// Set quotas: --add-config 'producer_byte_rate=1048576,consumer_byte_rate=2097152'.
    Set {
        #[command(flatten)]
        entity: EntityArgs,
        /// key=value[,key=value...]: producer_byte_rate, consumer_byte_rate (bytes/s per
        /// broker), request_percentage (percent of one thread), controller_mutation_rate
        /// (partitions created or deleted per second); connection_creation_rate for --ip.
        #[arg(long)]
        add_config: String,
    },
    /// Remove quotas: --delete-config producer_byte_rate[,consumer_byte_rate...].
    Delete {
        #[command(flatten)]
        entity: EntityArgs,
        #[arg(long)]
        delete_config: String,
    },
    /// Show quotas: of one entity, or of every entity when none is given.
    Describe {
        #[command(flatten)]
        entity: EntityArgs,
    },
}

pub fn run(args: QuotaArgs) -> ExitCode {
    let outcome = Client::connect(&args.bootstrap)
        .map_err(|e| e.to_string())
        .and_then(|mut c| act(&mut c, args.action));
    match outcome {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelog quota: {e}");
            ExitCode::FAILURE
        }
    }
}

fn act(c: &mut Client, action: QuotaAction) -> Result<String, String> {
    match action {
        QuotaAction::Set { entity, add_config } => {
            let mut ops = Vec::new();
            for pair in add_config
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--add-config {pair:?}: give key=value"))?;
                let value: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("--add-config {pair:?}: {v} is not a number"))?;
                ops.push(op(k.trim(), value, false));
            }
            alter(c, &entity, ops)?;
            Ok(format!(
                "Completed updating config for {}.\n",
                describe_entity(&entity)?
            ))
        }
        QuotaAction::Delete {
            entity,
            delete_config,
        } => {
            let ops = delete_config
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| op(k, 0.0, true))
                .collect();
            alter(c, &entity, ops)?;
            Ok(format!(
                "Completed updating config for {}.\n",
                describe_entity(&entity)?
            ))
        }
        QuotaAction::Describe { entity } => describe(c, &entity),
    }
}

fn op(key: &str, value: f64, remove: bool) -> OpData {
    let mut o = OpData::default();
    o.key = StrBytes::from_string(key.to_string());
    o.value = value;
    o.remove = remove;
    o
}

/// (entity type, name; `None` = default) of the parts given.
fn parts(e: &EntityArgs) -> Vec<(&'static str, Option<String>)> {
    let mut out = Vec::new();
    if e.user.is_some() || e.user_defaults {
        out.push((ENTITY_USER, e.user.clone()));
    }
    if e.client.is_some() || e.client_defaults {
        out.push((ENTITY_CLIENT_ID, e.client.clone()));
    }
    if e.ip.is_some() || e.ip_defaults {
        out.push((ENTITY_IP, e.ip.clone()));
    }
    out
}

fn describe_entity(e: &EntityArgs) -> Result<String, String> {
    let parts = parts(e);
    if parts.is_empty() {
        return Err(
            "name an entity: --user NAME, --user-defaults, --client ID, --client-defaults, --ip ADDRESS or --ip-defaults".into(),
        );
    }
    Ok(label(parts.iter().map(|(t, n)| (*t, n.as_deref()))))
}

/// Kafka's words: "user-principal 'alice', client-id 'app'", "the default client-id".
fn label<'a>(parts: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> String {
    parts
        .map(|(t, n)| {
            let t = if t == ENTITY_USER {
                "user-principal"
            } else {
                t
            };
            match n {
                Some(n) => format!("{t} '{n}'"),
                None => format!("the default {t}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn alter(c: &mut Client, e: &EntityArgs, ops: Vec<OpData>) -> Result<(), String> {
    describe_entity(e)?;
    let mut entry = EntryData::default();
    entry.entity = parts(e)
        .into_iter()
        .map(|(t, n)| {
            let mut d = EntityData::default();
            d.entity_type = StrBytes::from_static_str(t);
            d.entity_name = n.map(StrBytes::from_string);
            d
        })
        .collect();
    entry.ops = ops;
    let mut req = AlterClientQuotasRequest::default();
    req.entries = vec![entry];
    let v = c
        .version(ApiKey::AlterClientQuotas, (0, 1))
        .map_err(|e| e.to_string())?;
    let resp: AlterClientQuotasResponse = c
        .call(ApiKey::AlterClientQuotas, v, &req)
        .map_err(|e| e.to_string())?;
    for r in &resp.entries {
        if r.error_code != 0 {
            return Err(format!(
                "error {} ({})",
                r.error_code,
                r.error_message.as_deref().unwrap_or("")
            ));
        }
    }
    Ok(())
}

fn describe(c: &mut Client, e: &EntityArgs) -> Result<String, String> {
    let mut req = DescribeClientQuotasRequest::default();
    let given = parts(e);
    req.strict = !given.is_empty();
    req.components = given
        .into_iter()
        .map(|(t, n)| {
            let mut comp = ComponentData::default();
            comp.entity_type = StrBytes::from_static_str(t);
            comp.match_type = if n.is_some() { 0 } else { 1 };
            comp._match = n.map(StrBytes::from_string);
            comp
        })
        .collect();
    let v = c
        .version(ApiKey::DescribeClientQuotas, (0, 1))
        .map_err(|e| e.to_string())?;
    let resp: DescribeClientQuotasResponse = c
        .call(ApiKey::DescribeClientQuotas, v, &req)
        .map_err(|e| e.to_string())?;
    if resp.error_code != 0 {
        return Err(format!(
            "error {} ({})",
            resp.error_code,
            resp.error_message.as_deref().unwrap_or("")
        ));
    }
    let mut out = String::new();
    for entry in resp.entries.unwrap_or_default() {
        let who = label(
            entry
                .entity
                .iter()
                .map(|d| (d.entity_type.as_str(), d.entity_name.as_deref())),
        );
        let values: Vec<String> = entry
            .values
            .iter()
            .map(|v| format!("{}={:?}", v.key.as_str(), v.value))
            .collect();
        out.push_str(&format!(
            "Quota configs for {who} are {}\n",
            values.join(", ")
        ));
    }
    Ok(out)
}
