//! `corelog storage format`: prepares the log dirs before a broker's first start, as
//! `kafka-storage.sh format` does, with `--add-scram` to create the first SCRAM users
//! (say, the super user) before anyone can connect, `-t` for the cluster id and
//! `--initial-controllers` / `--standalone` for the voters of a quorum that the
//! config names only by `controller.quorum.bootstrap.servers`. It writes files, so it runs on the
//! broker's machine with the broker stopped; `corelog user` changes users of a running
//! broker over the wire.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::config::BrokerConfig;
use crate::security::scram::{
    Credential, Mechanism, ITERATIONS_DEFAULT, ITERATIONS_MAX, ITERATIONS_MIN,
};
use crate::security::users::{apply, decode, encode, Change, CREDENTIALS_FILE};

#[derive(clap::Subcommand)]
pub enum StorageAction {
    /// Create the log dirs and, with --add-scram, the first SCRAM users.
    #[command(
        after_help = "Examples:\n  corelog storage format --config server.properties \\\n      --add-scram 'SCRAM-SHA-256=[name=admin,password=admin-secret]'\n  corelog storage format --override log.dirs=/var/lib/corelog --add-scram 'SCRAM-SHA-512=[name=alice,password=pw,iterations=8192]'\n  corelog storage format -c node1.properties -t q4ZmN0PTQcWo3o5hRzYb1A --initial-controllers 1@h1:9093,2@h2:9093,3@h3:9093\n\nA dir that already holds meta.properties (a broker has run on it) is refused unless\n--ignore-formatted is given; users are then added to those already there."
    )]
    Format(FormatArgs),
}

#[derive(clap::Args)]
pub struct FormatArgs {
    /// The broker's server.properties (log.dirs is read from it).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// key=value, with Kafka's property names; repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// MECHANISM=[name=NAME,password=PASSWORD(,iterations=N)] or
    /// MECHANISM=[name=NAME,salt=BASE64,saltedpassword=BASE64,iterations=N]; repeatable.
    #[arg(long = "add-scram", short = 'S', value_name = "SCRAM")]
    add_scram: Vec<String>,
    /// Format even if a log dir was already formatted.
    #[arg(long = "ignore-formatted", short = 'g')]
    ignore_formatted: bool,
    /// The cluster id to write into meta.properties (Kafka's `-t`; see `random-uuid`
    /// in Kafka's tool). Default: the id derived from the voters at first start.
    #[arg(long = "cluster-id", short = 't')]
    cluster_id: Option<String>,
    /// A quorum of this node alone, at its one controller.quorum.bootstrap.servers entry.
    #[arg(long, conflicts_with = "initial_controllers")]
    standalone: bool,
    /// The voters of a quorum named by controller.quorum.bootstrap.servers:
    /// id@host:port[:directory-id],... (Kafka's form; the directory id is not used).
    #[arg(long, value_name = "VOTERS")]
    initial_controllers: Option<String>,
}

pub fn run(action: StorageAction) -> ExitCode {
    let StorageAction::Format(args) = action;
    match format(&args) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelog storage format: {e}");
            ExitCode::FAILURE
        }
    }
}

fn format(args: &FormatArgs) -> Result<String, String> {
    let given = crate::config::read_properties(args.config.as_deref(), &args.overrides)
        .map_err(|e| e.to_string())?;
    if let Some(id) = &args.cluster_id {
        check_cluster_id(id)?;
    }
    let quorum = args.standalone || args.initial_controllers.is_some();
    if quorum && given.contains_key("controller.quorum.voters") {
        return Err(
            "the config names its voters (controller.quorum.voters): --standalone and \
             --initial-controllers are for a quorum named by controller.quorum.bootstrap.servers"
                .into(),
        );
    }
    let mut overrides = args.overrides.clone();
    if let Some(list) = &args.initial_controllers {
        overrides.push(format!(
            "controller.quorum.voters={}",
            initial_controllers(list)?
        ));
    }
    let (config, _) = BrokerConfig::load(args.config.as_deref(), &overrides, Some(1))
        .map_err(|e| e.to_string())?;
    let voters = match (&config.cluster, quorum) {
        (Some(c), true) => Some(
            c.voters
                .iter()
                .map(|v| format!("{}@{}", v.id, v.addr()))
                .collect::<Vec<_>>()
                .join(","),
        ),
        (None, true) => {
            return Err(
                "--standalone and --initial-controllers need a quorum member's config: \
                 process.roles=broker,controller and controller.quorum.bootstrap.servers"
                    .into(),
            )
        }
        _ => None,
    };
    let changes = args
        .add_scram
        .iter()
        .map(|s| parse_add_scram(s))
        .collect::<Result<Vec<_>, _>>()?;
    for dir in &config.log_dirs {
        if dir.join(crate::boot::dirs::META_PROPERTIES).exists() && !args.ignore_formatted {
            return Err(format!(
                "{} is already formatted (it holds {}); give --ignore-formatted to add users anyway",
                dir.display(),
                crate::boot::dirs::META_PROPERTIES
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if let Some(voters) = &voters {
        let path = config.log_dirs[0].join(crate::cluster::config::QUORUM_VOTERS_FILE);
        crate::util::write_file_atomic_mode_blocking(&path, voters.as_bytes(), 0o644)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(id) = &args.cluster_id {
        // Writes meta.properties with this id (locks released when dropped); dirs
        // formatted before (--ignore-formatted) keep theirs, which must be this one.
        let dirs = crate::boot::dirs::prepare(&config.log_dirs, config.node_id, id)
            .map_err(|e| e.to_string())?;
        if dirs.cluster_id != *id {
            return Err(format!(
                "the log dirs already belong to cluster {}, not {id}",
                dirs.cluster_id
            ));
        }
    }
    let path = config.log_dirs[0].join(CREDENTIALS_FILE);
    let mut users = match std::fs::read(&path) {
        Ok(b) => decode(&b).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !changes.is_empty() {
        apply(&mut users, &changes);
        crate::util::write_file_atomic_mode_blocking(&path, &encode(&users), 0o600)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let quorum_note = voters
        .map(|v| format!("; metadata quorum voters {v}"))
        .unwrap_or_default();
    Ok(format!(
        "formatted {} ({} SCRAM user{} in {}){quorum_note}",
        config
            .log_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        users.len(),
        if users.len() == 1 { "" } else { "s" },
        path.display()
    ))
}

/// A cluster id as Kafka's `kafka-storage random-uuid` prints one: 16 bytes in URL-safe
/// base64 without padding (22 characters), so it is one safe line of meta.properties.
fn check_cluster_id(id: &str) -> Result<(), String> {
    let ok = id.len() == CLUSTER_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "-t {id:?}: a cluster id is {CLUSTER_ID_CHARS} characters of URL-safe base64 \
             (a UUID, as `kafka-storage.sh random-uuid` prints)"
        ))
    }
}

/// Characters of a cluster id (a 16-byte UUID in unpadded base64).
const CLUSTER_ID_CHARS: usize = 22;

/// Kafka's `--initial-controllers` (`id@host:port:directory-id,...`) as voters
/// (`id@host:port,...`): the directory id, when given, is dropped (corelog's metadata
/// log has none).
fn initial_controllers(list: &str) -> Result<String, String> {
    let bad = |item: &str, why: &str| format!("--initial-controllers {item:?}: {why}");
    let mut voters = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| bad(item, "expected id@host:port[:directory-id]"))?;
        let addr = match addr.rsplit_once(':') {
            Some((rest, last)) if last.parse::<u16>().is_err() && rest.contains(':') => rest,
            _ => addr,
        };
        voters.push(format!("{id}@{addr}"));
    }
    if voters.is_empty() {
        return Err(bad(list, "no controller given"));
    }
    Ok(voters.join(","))
}

/// Kafka's `--add-scram` syntax: `SCRAM-SHA-256=[name=alice,password=alice-secret]`.
pub fn parse_add_scram(s: &str) -> Result<Change, String> {
    let bad = |why: &str| format!("--add-scram {s:?}: {why}");
    let (mech, rest) = s
        .split_once('=')
        .ok_or_else(|| bad("expected MECHANISM=[...]"))?;
    let mechanism = Mechanism::from_name(mech.trim())
        .ok_or_else(|| bad("the mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512"))?;
    let inner = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| bad("expected [key=value,...] after the mechanism"))?;
    let (mut name, mut password, mut salt, mut salted, mut iterations) =
        (None, None, None, None, None);
    for kv in inner.split(',') {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| bad("expected key=value entries"))?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "name" => name = Some(v),
            "password" => password = Some(v),
            "salt" => salt = Some(B64.decode(&v).map_err(|_| bad("salt is not base64"))?),
            "saltedpassword" => {
                salted = Some(
                    B64.decode(&v)
                        .map_err(|_| bad("saltedpassword is not base64"))?,
                )
            }
            "iterations" => {
                iterations = Some(
                    v.parse::<u32>()
                        .map_err(|_| bad("iterations is not a number"))?,
                )
            }
            other => return Err(bad(&format!("unknown key {other:?}"))),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name= is required"))?;
    let iterations = iterations.unwrap_or(ITERATIONS_DEFAULT);
    if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&iterations) {
        return Err(bad(&format!(
            "iterations must be from {ITERATIONS_MIN} to {ITERATIONS_MAX}"
        )));
    }
    let credential = match (password, salt, salted) {
        (Some(p), None, None) => Credential::from_password(mechanism, &p, iterations),
        (None, Some(salt), Some(salted)) if salted.len() == mechanism.output_bytes() => {
            Credential::from_salted(mechanism, &salted, salt, iterations)
        }
        _ => {
            return Err(bad(
                "give password=, or salt= and saltedpassword= (of the mechanism's hash length)",
            ))
        }
    };
    Ok(Change::Upsert {
        name,
        mechanism,
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_kafka_uuids() {
        assert!(check_cluster_id("q4ZmN0PTQcWo3o5hRzYb1A").is_ok());
        assert!(check_cluster_id("MkU3OEVBNTcwNTJENDM2Qk").is_ok());
        for bad in [
            "",
            "short",
            "q4ZmN0PTQcWo3o5hRzYb1A=",
            "q4ZmN0PTQcWo3o5hRzYb\n1",
        ] {
            assert!(check_cluster_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kafka_initial_controllers_drop_their_directory_ids() {
        assert_eq!(
            initial_controllers(
                "1@h1:9093:pqi_YMl_TKqrL3IEXHKixg, 2@h2:9093,3@[::1]:9094:AAAAAAAAAAAAAAAAAAAAAA"
            )
            .unwrap(),
            "1@h1:9093,2@h2:9093,3@[::1]:9094"
        );
        assert!(initial_controllers("h1:9093").is_err());
        assert!(initial_controllers(" ,").is_err());
    }

    #[test]
    fn kafka_add_scram_syntax() {
        let Change::Upsert {
            name,
            mechanism,
            credential,
        } = parse_add_scram("SCRAM-SHA-512=[name=admin,password=\"admin-secret\",iterations=4096]")
            .unwrap()
        else {
            panic!("an upsert")
        };
        assert_eq!((name.as_str(), mechanism), ("admin", Mechanism::Sha512));
        assert!(credential.verifies(mechanism, "admin-secret"));
        assert_eq!(credential.iterations, 4096);
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256=name=a",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=a,pass=b]",
        ] {
            assert!(parse_add_scram(bad).is_err(), "{bad}");
        }
    }
}
