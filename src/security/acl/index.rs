//! `AclIndex`: an immutable set of bindings, indexed by resource type and name so that
//! a decision looks at only the bindings that can apply: the literal name, the `*`
//! literal, and the prefixed bindings whose prefix starts the name (one hash lookup per
//! distinct prefix length in use, not a scan of every prefixed binding).

use std::collections::{BTreeSet, HashMap};

use super::{AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType};
use super::{WILDCARD, WILDCARD_PRINCIPAL};

/// A binding with its resource part taken out (the index's key holds it).
#[derive(Debug, Clone)]
struct Entry {
    principal: String,
    host: String,
    operation: Operation,
    permission: Permission,
}

#[derive(Debug, Default)]
struct ByType {
    /// Literal names, `*` among them.
    literal: HashMap<String, Vec<Entry>>,
    prefixed: HashMap<String, Vec<Entry>>,
    /// The distinct lengths (bytes) of the prefixes in `prefixed`, ascending.
    prefix_lens: Vec<usize>,
}

#[derive(Debug, Default)]
pub struct AclIndex {
    /// Every binding, ordered (DescribeAcls, DeleteAcls, the file).
    bindings: BTreeSet<AclBinding>,
    by_type: HashMap<ResourceType, ByType>,
}

/// What a check is about: who, from where, wants to do what.
pub struct Request<'a> {
    pub principal: &'a str,
    pub host: &'a str,
    pub operation: Operation,
}

impl AclIndex {
    pub fn new(bindings: impl IntoIterator<Item = AclBinding>) -> AclIndex {
        let bindings: BTreeSet<AclBinding> = bindings.into_iter().collect();
        let mut by_type: HashMap<ResourceType, ByType> = HashMap::new();
        for b in &bindings {
            let t = by_type.entry(b.resource_type).or_default();
            let map = match b.pattern {
                PatternType::Literal => &mut t.literal,
                PatternType::Prefixed => &mut t.prefixed,
            };
            map.entry(b.name.clone()).or_default().push(Entry {
                principal: b.principal.clone(),
                host: b.host.clone(),
                operation: b.operation,
                permission: b.permission,
            });
        }
        for t in by_type.values_mut() {
            let lens: BTreeSet<usize> = t.prefixed.keys().map(String::len).collect();
            t.prefix_lens = lens.into_iter().collect();
        }
        AclIndex { bindings, by_type }
    }

    pub fn bindings(&self) -> &BTreeSet<AclBinding> {
        &self.bindings
    }

    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    pub fn matching<'a>(&'a self, filter: &'a AclFilter) -> impl Iterator<Item = &'a AclBinding> {
        self.bindings.iter().filter(move |b| filter.matches(b))
    }

    /// StandardAuthorizer's decision for everyone but super users: a matching DENY
    /// wins; else a matching ALLOW (directly or by an implied operation) allows; else,
    /// when no binding at all names the resource, `allow_if_none`.
    pub fn authorize(
        &self,
        req: &Request<'_>,
        resource_type: ResourceType,
        name: &str,
        allow_if_none: bool,
    ) -> bool {
        let Some(t) = self.by_type.get(&resource_type) else {
            return allow_if_none;
        };
        let prefixes = t
            .prefix_lens
            .iter()
            .take_while(|len| **len <= name.len())
            .filter_map(|len| name.get(..*len))
            .filter_map(|prefix| t.prefixed.get(prefix));
        let lists = [t.literal.get(name), t.literal.get(WILDCARD)]
            .into_iter()
            .flatten()
            .chain(prefixes);
        let mut found = false;
        let mut allowed = false;
        for entry in lists.flatten() {
            found = true;
            if !applies_to(entry, req) {
                continue;
            }
            match entry.permission {
                Permission::Deny if denies(entry.operation, req.operation) => return false,
                Permission::Allow if allows(entry.operation, req.operation) => allowed = true,
                _ => {}
            }
        }
        allowed || (!found && allow_if_none)
    }
}

/// The made-up resource name Kafka's `authorizeByResourceType` first authorizes, so
/// that a `*` ALLOW and `allow.everyone.if.no.acl.found` count as they do for any name.
const BY_TYPE_PROBE_NAME: &str = "hardcode";

impl AclIndex {
    /// Kafka's `authorizeByResourceType` (what an idempotent producer without
    /// IDEMPOTENT_WRITE needs: WRITE on some topic), for everyone but super users:
    /// allowed when a made-up name is; else refused by a DENY on `*`; else allowed by
    /// an ALLOW literal that no DENY literal of the same name and no DENY prefix covers,
    /// or by an ALLOW prefix that no DENY prefix covers. Only the operation itself and
    /// ALL count here (no implied operations), as in Kafka.
    pub fn authorize_any(
        &self,
        req: &Request<'_>,
        resource_type: ResourceType,
        allow_if_none: bool,
    ) -> bool {
        if self.authorize(req, resource_type, BY_TYPE_PROBE_NAME, allow_if_none) {
            return true;
        }
        let Some(t) = self.by_type.get(&resource_type) else {
            return false;
        };
        let with = |entries: &[Entry], permission: Permission| {
            entries.iter().any(|e| {
                e.permission == permission
                    && applies_to(e, req)
                    && (e.operation == req.operation || e.operation == Operation::All)
            })
        };
        let names = |map: &HashMap<String, Vec<Entry>>, permission| -> Vec<String> {
            map.iter()
                .filter(|(_, entries)| with(entries, permission))
                .map(|(name, _)| name.clone())
                .collect()
        };
        let deny_literals = names(&t.literal, Permission::Deny);
        if deny_literals.iter().any(|n| n == WILDCARD) {
            return false;
        }
        let deny_prefixes = names(&t.prefixed, Permission::Deny);
        let covered = |name: &str| deny_prefixes.iter().any(|p| name.starts_with(p.as_str()));
        let literal_ok = names(&t.literal, Permission::Allow)
            .iter()
            .any(|n| n == WILDCARD || (!deny_literals.contains(n) && !covered(n)));
        literal_ok
            || names(&t.prefixed, Permission::Allow)
                .iter()
                .any(|p| !covered(p))
    }
}

fn applies_to(entry: &Entry, req: &Request<'_>) -> bool {
    (entry.principal == req.principal || entry.principal == WILDCARD_PRINCIPAL)
        && (entry.host == req.host || entry.host == WILDCARD)
}

fn denies(acl: Operation, wanted: Operation) -> bool {
    acl == wanted || acl == Operation::All
}

/// Kafka's implied operations: ALL allows everything; READ, WRITE, DELETE and ALTER
/// allow DESCRIBE; ALTER_CONFIGS allows DESCRIBE_CONFIGS.
fn allows(acl: Operation, wanted: Operation) -> bool {
    use Operation::*;
    acl == wanted
        || acl == All
        || (wanted == Describe && matches!(acl, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && acl == AlterConfigs)
}

#[cfg(test)]
mod tests {
    use super::super::tests::binding;
    use super::*;
    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    fn req(principal: &str, op: Operation) -> Request<'_> {
        Request {
            principal,
            host: "127.0.0.1",
            operation: op,
        }
    }

    #[test]
    fn allow_deny_and_the_default() {
        let idx = AclIndex::new([binding(Topic, "t", Literal, "User:alice", Write, Allow)]);
        assert!(idx.authorize(&req("User:alice", Write), Topic, "t", false));
        assert!(!idx.authorize(&req("User:bob", Write), Topic, "t", false));
        assert!(!idx.authorize(&req("User:alice", Read), Topic, "t", false));
        // No binding names u: the default decides.
        assert!(!idx.authorize(&req("User:alice", Write), Topic, "u", false));
        assert!(idx.authorize(&req("User:alice", Write), Topic, "u", true));
        // t has a binding, so the default does not let bob in.
        assert!(!idx.authorize(&req("User:bob", Write), Topic, "t", true));
        // Another resource type is another resource.
        assert!(!idx.authorize(&req("User:alice", Write), Group, "t", false));
    }

    #[test]
    fn by_resource_type_as_kafka() {
        let any = |bindings: &[(&str, PatternType, Operation, Permission)], allow_if_none| {
            AclIndex::new(
                bindings
                    .iter()
                    .map(|(n, pat, op, perm)| binding(Topic, n, *pat, "User:alice", *op, *perm)),
            )
            .authorize_any(&req("User:alice", Write), Topic, allow_if_none)
        };
        assert!(!any(&[], false));
        assert!(
            any(&[], true),
            "allow.everyone.if.no.acl.found, nothing names the probe"
        );
        assert!(any(&[("t", Literal, Read, Allow)], true));
        assert!(any(&[("t", Literal, Write, Allow)], false));
        assert!(any(&[("t", Literal, All, Allow)], false));
        assert!(
            !any(&[("t", Literal, Read, Allow)], false),
            "READ is not WRITE"
        );
        assert!(any(&[("*", Literal, Write, Allow)], false));
        let cases = [
            // (allow, deny, allowed)
            (("t", Literal), ("t", Literal), false),
            (("t", Literal), ("u", Literal), true),
            (("pay-1", Literal), ("pay", Prefixed), false),
            (("pay-eu", Prefixed), ("pay", Prefixed), false),
            (("pay", Prefixed), ("pay-eu", Prefixed), true),
            (("pay", Prefixed), ("pay", Literal), true),
            (("t", Literal), ("*", Literal), false),
        ];
        for ((an, ap), (dn, dp), want) in cases {
            let got = any(&[(an, ap, Write, Allow), (dn, dp, Write, Deny)], false);
            assert_eq!(got, want, "allow {an} {ap:?}, deny {dn} {dp:?}");
        }
    }

    #[test]
    fn deny_wins_over_allow_from_any_pattern() {
        let idx = AclIndex::new([
            binding(Topic, "*", Literal, "User:*", All, Allow),
            binding(Topic, "secret-", Prefixed, "User:alice", Read, Deny),
        ]);
        assert!(idx.authorize(&req("User:alice", Read), Topic, "public", false));
        assert!(!idx.authorize(&req("User:alice", Read), Topic, "secret-x", false));
        // DENY READ does not deny DESCRIBE (only DENY ALL or DENY DESCRIBE would).
        assert!(idx.authorize(&req("User:alice", Describe), Topic, "secret-x", false));
        assert!(idx.authorize(&req("User:bob", Read), Topic, "secret-x", false));
    }

    #[test]
    fn implied_operations() {
        let idx = AclIndex::new([
            binding(Topic, "t", Literal, "User:a", Read, Allow),
            binding(Topic, "c", Literal, "User:a", AlterConfigs, Allow),
            binding(Group, "g", Literal, "User:a", All, Allow),
        ]);
        assert!(idx.authorize(&req("User:a", Describe), Topic, "t", false));
        assert!(!idx.authorize(&req("User:a", DescribeConfigs), Topic, "t", false));
        assert!(idx.authorize(&req("User:a", DescribeConfigs), Topic, "c", false));
        assert!(!idx.authorize(&req("User:a", Describe), Topic, "c", false));
        for op in Operation::ALL {
            assert!(
                idx.authorize(&req("User:a", *op), Group, "g", false),
                "{op:?}"
            );
        }
    }

    #[test]
    fn prefixes_hosts_and_wildcards() {
        let mut from_host = binding(Topic, "pay", Prefixed, "User:a", Write, Allow);
        from_host.host = "10.0.0.1".into();
        let idx = AclIndex::new([
            binding(Topic, "pay", Prefixed, "User:b", Write, Allow),
            binding(Topic, "payments-eu", Prefixed, "User:c", Write, Allow),
            from_host,
        ]);
        assert!(idx.authorize(&req("User:b", Write), Topic, "payments", false));
        assert!(idx.authorize(&req("User:b", Write), Topic, "pay", false));
        assert!(!idx.authorize(&req("User:b", Write), Topic, "pa", false));
        assert!(idx.authorize(&req("User:c", Write), Topic, "payments-eu-1", false));
        assert!(!idx.authorize(&req("User:c", Write), Topic, "payments-us", false));
        // Host must match.
        assert!(!idx.authorize(&req("User:a", Write), Topic, "payments", false));
        let a_there = Request {
            principal: "User:a",
            host: "10.0.0.1",
            operation: Write,
        };
        assert!(idx.authorize(&a_there, Topic, "payments", false));
        // A prefix never splits a multi-byte character into a panic.
        assert!(!idx.authorize(&req("User:b", Write), Topic, "pé", false));
    }

    #[test]
    fn filters_over_the_index() {
        let idx = AclIndex::new([
            binding(Topic, "t", Literal, "User:a", Read, Allow),
            binding(Group, "g", Literal, "User:a", Read, Allow),
        ]);
        let topics = AclFilter::from_wire(Topic.code(), None, 1, None, None, 1, 1).unwrap();
        assert_eq!(idx.matching(&topics).count(), 1);
        assert_eq!(idx.len(), 2);
    }
}
