//! Reading server.properties: the file, its values (numbers, booleans, dirs,
//! host:port) and the quorum voters `corelog storage format` wrote.

use super::*;

/// Which of two alias keys was given, for error messages.
pub(super) fn key_of<'a>(
    props: &BTreeMap<String, String>,
    main: &'a str,
    alias: &'a str,
) -> &'a str {
    if props.contains_key(main) {
        main
    } else {
        alias
    }
}

pub(super) fn invalid(key: &str, value: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    }
}

/// Java properties syntax, the subset server.properties files use: `key=value` or
/// `key: value`, `#` and `!` comments, blank lines, trailing-backslash continuations.
pub fn parse_properties(
    text: &str,
    file: &str,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let mut pending = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':']).ok_or_else(|| ConfigError::Syntax {
            file: file.to_string(),
            line: i + 1,
            text: entry.clone(),
        })?;
        let (k, v) = entry.split_at(split);
        out.insert(k.trim().to_string(), v[1..].trim().to_string());
    }
    Ok(())
}

/// A comma-separated list of server-side assignor names (Kafka also takes class names;
/// corelog knows its two assignors by name only).
pub(super) fn parse_assignors(
    key: &str,
    v: &str,
) -> Result<Vec<crate::groups::assignor::Assignor>, ConfigError> {
    let mut out = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let a = crate::groups::assignor::Assignor::from_name(name).ok_or_else(|| {
            ConfigError::Invalid {
                key: key.into(),
                value: v.into(),
                why: format!("unknown assignor {name:?} (known: uniform, range)"),
            }
        })?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    if out.is_empty() {
        return Err(ConfigError::Invalid {
            key: key.into(),
            value: v.into(),
            why: "at least one assignor is needed".into(),
        });
    }
    Ok(out)
}

pub(super) fn parse_num(key: &str, v: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n: i64 = v
        .parse()
        .map_err(|_| invalid(key, v, "expected an integer"))?;
    if n < min || n > max {
        return Err(invalid(key, v, &format!("must be between {min} and {max}")));
    }
    Ok(n)
}

pub(super) fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, v, "expected true or false")),
    }
}

/// The properties of an optional file with the overrides (`key=value`) over them, as
/// given: nothing checked, nothing defaulted.
pub fn read_properties(
    file: Option<&Path>,
    overrides: &[String],
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut props = BTreeMap::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        parse_properties(&text, &path.display().to_string(), &mut props)?;
    }
    for o in overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| ConfigError::Override(o.clone()))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(props)
}

/// A member named by `controller.quorum.bootstrap.servers` alone takes its voters from
/// its first log dir, where `corelog storage format --initial-controllers` or
/// `--standalone` wrote them (`cluster::config::QUORUM_VOTERS_FILE`), as Kafka's reads
/// them from the metadata log its format bootstrapped.
pub(super) fn formatted_voters(props: &mut BTreeMap<String, String>) -> Result<(), ConfigError> {
    if props.contains_key("controller.quorum.voters")
        || !props.contains_key(crate::cluster::config::BOOTSTRAP_SERVERS_KEY)
    {
        return Ok(());
    }
    let first = match props.get("log.dirs").or(props.get("log.dir")) {
        Some(v) => parse_dirs(key_of(props, "log.dirs", "log.dir"), v)?.swap_remove(0),
        None => BrokerConfig::default().log_dirs.swap_remove(0),
    };
    let path = first.join(crate::cluster::config::QUORUM_VOTERS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(voters) => {
            props.insert("controller.quorum.voters".into(), voters.trim().to_string());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ConfigError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

pub(super) fn parse_dirs(key: &str, v: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let dirs: Vec<PathBuf> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        return Err(invalid(key, v, "at least one directory is needed"));
    }
    for (i, d) in dirs.iter().enumerate() {
        if dirs[..i].contains(d) {
            return Err(invalid(key, v, &format!("{} is listed twice", d.display())));
        }
    }
    Ok(dirs)
}

/// `host:port` (`[v6]:port` for IPv6), as `admin.listener` takes it.
pub(super) fn parse_host_port(key: &str, v: &str) -> Result<Listener, ConfigError> {
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, v, "expected host:port, or empty to disable"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(key, v, "port must be a number from 0 to 65535"))?;
    if host.contains("://") {
        return Err(invalid(key, v, "expected host:port without a scheme"));
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(Listener { host, port })
}
