//! ACLs with Kafka's StandardAuthorizer semantics (issue 12 item 4): the model
//! (bindings, filters, Kafka's wire codes), the authorizer's settings, the index that
//! decides (`index.rs`), where bindings live (`store.rs`) and the per-request view the
//! handlers ask (`access.rs`). No network code.
//!
//! A binding says: `principal` from `host` is ALLOWed or DENYed `operation` on the
//! resources `pattern` names (a literal name, `*` for all, or a name prefix).

pub mod access;
pub mod index;
pub mod store;

use serde::{Deserialize, Serialize};

pub use access::Access;
pub use index::AclIndex;
pub use store::AclStore;

/// The resource name and principal/host that match everything.
pub const WILDCARD: &str = "*";
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The principal of a connection that did not authenticate (PLAINTEXT, SSL without a
/// client certificate), as Kafka names it.
pub const ANONYMOUS: &str = "User:ANONYMOUS";
/// The name of the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The `authorizer.class.name` values that turn the authorizer on.
pub const AUTHORIZER_CLASSES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

// Kafka's wire codes shared by filters: 0 UNKNOWN, 1 ANY, (patterns) 2 MATCH.
pub const CODE_ANY: i8 = 1;
pub const CODE_MATCH: i8 = 2;

macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $code:expr, $text:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($v),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            pub fn code(self) -> i8 { match self { $($name::$v => $code),* } }
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$v),)* _ => None }
            }
            /// Kafka's upper-case name (`TRANSACTIONAL_ID`, `DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str { match self { $($name::$v => $text),* } }
            /// Parses Kafka's name in any case, with `-` or `_` or none between words
            /// (`describe-configs`, `DescribeConfigs`).
            pub fn parse(s: &str) -> Option<$name> {
                let want: String = s.chars().filter(|c| *c != '_' && *c != '-')
                    .collect::<String>().to_ascii_uppercase();
                $name::ALL.iter().copied().find(|v| v.name().replace('_', "") == want)
            }
        }
    };
}

coded_enum!(
    /// What an ACL protects (Kafka's `ResourceType`). DELEGATION_TOKEN and USER
    /// bindings are kept and listed like any other, and decided by the same rules, but
    /// no API corelog serves checks them (Kafka checks them only in the delegation
    /// token APIs, which corelog does not serve).
    ResourceType {
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

coded_enum!(
    /// How a binding's name selects resources.
    PatternType {
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

coded_enum!(
    /// Kafka's `AclOperation`.
    Operation {
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
);

coded_enum!(
    /// Kafka's `AclPermissionType`.
    Permission {
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// One ACL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Which pattern types a filter selects (Kafka's `PatternType` in a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type, the name compared exactly.
    Any,
    /// Every binding that would apply to the named resource: the literal name, the `*`
    /// literal and every prefix of the name.
    Match,
    Exact(PatternType),
}

/// DescribeAcls and DeleteAcls select bindings with this; `None` is Kafka's ANY/null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, b: &AclBinding) -> bool {
        self.resource_type.is_none_or(|t| t == b.resource_type)
            && self.matches_pattern(b)
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && self.operation.is_none_or(|o| o == b.operation)
            && self.permission.is_none_or(|p| p == b.permission)
    }

    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if let PatternFilter::Exact(p) = self.pattern {
            if p != b.pattern {
                return false;
            }
        }
        let Some(name) = &self.name else {
            return true;
        };
        match (self.pattern, b.pattern) {
            (PatternFilter::Match, PatternType::Literal) => *name == b.name || b.name == WILDCARD,
            (PatternFilter::Match, PatternType::Prefixed) => name.starts_with(&b.name),
            _ => *name == b.name,
        }
    }

    /// Decodes the wire form; `Err` says which field is not a filter value.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, String> {
        let resource_type = match resource_type {
            CODE_ANY => None,
            c => Some(ResourceType::from_code(c).ok_or("unknown resource type in the filter")?),
        };
        let pattern = match pattern {
            CODE_ANY => PatternFilter::Any,
            CODE_MATCH => PatternFilter::Match,
            c => PatternFilter::Exact(
                PatternType::from_code(c).ok_or("unknown pattern type in the filter")?,
            ),
        };
        let operation = match operation {
            CODE_ANY => None,
            c => Some(Operation::from_code(c).ok_or("unknown operation in the filter")?),
        };
        let permission = match permission {
            CODE_ANY => None,
            c => Some(Permission::from_code(c).ok_or("unknown permission type in the filter")?),
        };
        Ok(AclFilter {
            resource_type,
            name: name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation,
            permission,
        })
    }
}

impl AclBinding {
    /// Decodes and checks a CreateAcls entry as Kafka's controller does; `Err` is the
    /// message of that entry's INVALID_REQUEST.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: &str,
        pattern: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<AclBinding, String> {
        let resource_type = ResourceType::from_code(resource_type)
            .ok_or_else(|| format!("Invalid resource type code {resource_type}"))?;
        let pattern = PatternType::from_code(pattern)
            .ok_or_else(|| format!("Invalid pattern type code {pattern}"))?;
        let operation = Operation::from_code(operation)
            .ok_or_else(|| format!("Invalid operation code {operation}"))?;
        let permission = Permission::from_code(permission)
            .ok_or_else(|| format!("Invalid permission type code {permission}"))?;
        if name.is_empty() {
            return Err("Resource name should not be empty".into());
        }
        if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match principal.split_once(':') {
            Some((kind, who)) if !kind.is_empty() && !who.is_empty() => {}
            _ => {
                return Err(format!(
                    "Could not parse principal from `{principal}` (no colon is present \
                     separating the principal type from the principal name)"
                ))
            }
        }
        if host.is_empty() {
            return Err("Host should not be empty; use * for every host".into());
        }
        Ok(AclBinding {
            resource_type,
            name: name.to_string(),
            pattern,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        })
    }
}

/// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Whether `authorizer.class.name` names an authorizer.
    pub enabled: bool,
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

pub const CONFIG_KEYS: &[&str] = &[
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
];

impl AuthorizerConfig {
    /// Reads the keys; `Err((key, value, why))` for a value that cannot be used.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<AuthorizerConfig, (String, String, String)> {
        let mut c = AuthorizerConfig::default();
        let bad = |key: &str, v: &str, why: String| (key.to_string(), v.to_string(), why);
        if let Some(v) = get(CONFIG_KEYS[0]).map(str::trim) {
            if !v.is_empty() && !AUTHORIZER_CLASSES.contains(&v) {
                let why = format!(
                    "corelog has one authorizer, with Kafka's StandardAuthorizer semantics; \
                     set {} or leave the key out",
                    AUTHORIZER_CLASSES.join(" or ")
                );
                return Err(bad(CONFIG_KEYS[0], v, why));
            }
            c.enabled = !v.is_empty();
        }
        if let Some(v) = get(CONFIG_KEYS[1]) {
            for p in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                if !p.contains(':') {
                    let why =
                        format!("`{p}` is not a principal; write User:<name>, separated by ;");
                    return Err(bad(CONFIG_KEYS[1], v, why));
                }
                c.super_users.push(p.to_string());
            }
        }
        if let Some(v) = get(CONFIG_KEYS[2]) {
            c.allow_everyone_if_no_acl_found = match v.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(bad(CONFIG_KEYS[2], v, "expected true or false".into())),
            };
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn binding(
        rt: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            name: name.into(),
            pattern,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    #[test]
    fn names_parse_in_kafka_and_cli_spellings() {
        assert_eq!(
            Operation::parse("describe-configs"),
            Some(Operation::DescribeConfigs)
        );
        assert_eq!(
            Operation::parse("DescribeConfigs"),
            Some(Operation::DescribeConfigs)
        );
        assert_eq!(Operation::parse("WRITE"), Some(Operation::Write));
        assert_eq!(
            ResourceType::parse("transactional_id"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(Operation::parse("fly"), None);
        for op in Operation::ALL {
            assert_eq!(Operation::from_code(op.code()), Some(*op));
        }
    }

    #[test]
    fn filters_select_as_kafka() {
        use Operation::*;
        use PatternType::*;
        use ResourceType::*;
        let lit = binding(
            Topic,
            "payments",
            Literal,
            "User:a",
            Read,
            Permission::Allow,
        );
        let star = binding(Topic, "*", Literal, "User:a", Read, Permission::Allow);
        let pre = binding(Topic, "pay", Prefixed, "User:a", Read, Permission::Allow);
        let f = |pattern: i8, name: Option<&str>| {
            AclFilter::from_wire(2, name, pattern, None, None, CODE_ANY, CODE_ANY).unwrap()
        };
        // MATCH with a name: every binding that applies to that resource.
        let m = f(CODE_MATCH, Some("payments"));
        assert!(m.matches(&lit) && m.matches(&star) && m.matches(&pre));
        // ANY with a name: the name exactly, any pattern type.
        let any = f(CODE_ANY, Some("pay"));
        assert!(!any.matches(&lit) && !any.matches(&star) && any.matches(&pre));
        // An exact pattern type.
        let exact = f(Literal.code(), None);
        assert!(exact.matches(&lit) && exact.matches(&star) && !exact.matches(&pre));
        // Other fields: null/ANY match all, a value matches itself only.
        let by_principal =
            AclFilter::from_wire(CODE_ANY, None, CODE_ANY, Some("User:b"), None, 1, 1).unwrap();
        assert!(!by_principal.matches(&lit));
        let by_op = AclFilter::from_wire(1, None, 1, None, Some("*"), Read.code(), 3).unwrap();
        assert!(by_op.matches(&lit));
        assert!(AclFilter::from_wire(9, None, 1, None, None, 1, 1).is_err());
    }

    #[test]
    fn creations_are_checked() {
        let ok = AclBinding::from_wire(2, "t", 3, "User:alice", "*", 4, 3).unwrap();
        assert_eq!(ok.operation, Operation::Write);
        assert!(
            AclBinding::from_wire(1, "t", 3, "User:alice", "*", 4, 3).is_err(),
            "ANY type"
        );
        assert!(
            AclBinding::from_wire(2, "t", 2, "User:alice", "*", 4, 3).is_err(),
            "MATCH"
        );
        assert!(
            AclBinding::from_wire(2, "t", 3, "alice", "*", 4, 3).is_err(),
            "principal"
        );
        assert!(
            AclBinding::from_wire(2, "", 3, "User:a", "*", 4, 3).is_err(),
            "empty name"
        );
        assert!(
            AclBinding::from_wire(2, "t", 3, "User:a", "*", 1, 3).is_err(),
            "ANY op"
        );
        assert!(
            AclBinding::from_wire(4, "c", 3, "User:a", "*", 7, 3).is_err(),
            "cluster"
        );
        assert!(AclBinding::from_wire(4, CLUSTER_NAME, 3, "User:a", "*", 7, 3).is_ok());
    }

    #[test]
    fn config_keys() {
        let props = |k: &'static str, v: &'static str| move |key: &str| (key == k).then_some(v);
        let c = AuthorizerConfig::parse(props("authorizer.class.name", AUTHORIZER_CLASSES[0]));
        assert!(c.unwrap().enabled);
        assert!(AuthorizerConfig::parse(props("authorizer.class.name", "com.x.Y")).is_err());
        let su = AuthorizerConfig::parse(props("super.users", "User:a; User:b")).unwrap();
        assert_eq!(su.super_users, ["User:a", "User:b"]);
        assert!(AuthorizerConfig::parse(props("super.users", "admin")).is_err());
        assert!(AuthorizerConfig::parse(props("allow.everyone.if.no.acl.found", "yes")).is_err());
    }
}
