//! SCRAM users as records of the metadata quorum, so that every member authenticates
//! every user: AlterUserScramCredentials' changes (`Command::AlterScramCredentials`)
//! and each member's formatted users (`Command::BootstrapScramCredentials`, taken once
//! per node id). Records carry salted keys only (`security::users::CredentialRecord`).

use super::state::{ClusterState, Reply};
use crate::security::users::CredentialRecord;

/// A credential to remove: (user name, mechanism name).
pub type Deletion = (String, String);

impl ClusterState {
    /// Sets `upserts` (replacing the same user and mechanism) and removes `deletions`;
    /// a deletion of a credential that is not there changes nothing (the proposing
    /// broker already answered RESOURCE_NOT_FOUND for it from its image).
    pub(super) fn alter_scram(
        &mut self,
        upserts: &[CredentialRecord],
        deletions: &[Deletion],
    ) -> Reply {
        for (name, mechanism) in deletions {
            self.scram_credentials
                .retain(|r| !(&r.name == name && &r.mechanism == mechanism));
        }
        for u in upserts {
            self.scram_credentials
                .retain(|r| !(r.name == u.name && r.mechanism == u.mechanism));
            self.scram_credentials.insert(u.clone());
        }
        Reply::Ok
    }

    /// A member's formatted users, taken the first time that member proposes them and
    /// never again, and only where the quorum has no credential for the same user and
    /// mechanism: afterwards the quorum's set wins, so a user deleted through the quorum
    /// does not come back when the member that formatted it restarts.
    pub(super) fn bootstrap_scram(&mut self, node_id: i32, records: &[CredentialRecord]) -> Reply {
        if !self.scram_bootstrapped.insert(node_id) {
            return Reply::Ok;
        }
        for r in records {
            let present = self
                .scram_credentials
                .iter()
                .any(|c| c.name == r.name && c.mechanism == r.mechanism);
            if !present {
                self.scram_credentials.insert(r.clone());
            }
        }
        Reply::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::Command;
    use super::*;
    use crate::security::scram::{Credential, Mechanism, ITERATIONS_MIN};

    fn record(name: &str, m: Mechanism, password: &str) -> CredentialRecord {
        CredentialRecord::new(
            name,
            m,
            &Credential::from_password(m, password, ITERATIONS_MIN),
        )
    }

    fn names(state: &ClusterState) -> Vec<(String, String)> {
        state
            .scram_credentials
            .iter()
            .map(|r| (r.name.clone(), r.mechanism.clone()))
            .collect()
    }

    #[test]
    fn upserts_replace_and_deletions_remove_exactly() {
        let mut state = ClusterState::default();
        let a1 = record("alice", Mechanism::Sha256, "one");
        let a2 = record("alice", Mechanism::Sha256, "two");
        let a512 = record("alice", Mechanism::Sha512, "x");
        let set = |upserts: Vec<CredentialRecord>, deletions: Vec<Deletion>| {
            Command::AlterScramCredentials { upserts, deletions }
        };
        assert_eq!(
            state.apply(1, &set(vec![a1, a512.clone()], vec![])),
            Reply::Ok
        );
        assert_eq!(state.apply(2, &set(vec![a2.clone()], vec![])), Reply::Ok);
        assert_eq!(state.scram_credentials.len(), 2);
        assert!(
            state.scram_credentials.contains(&a2),
            "the new one replaced the old"
        );
        let gone = ("alice".to_string(), "SCRAM-SHA-512".to_string());
        let unknown = ("bob".to_string(), "SCRAM-SHA-256".to_string());
        assert_eq!(state.apply(3, &set(vec![], vec![gone, unknown])), Reply::Ok);
        assert_eq!(
            names(&state),
            [("alice".to_string(), "SCRAM-SHA-256".to_string())]
        );
        let json = serde_json::to_vec(&state).unwrap();
        assert_eq!(
            serde_json::from_slice::<ClusterState>(&json).unwrap(),
            state
        );
    }

    #[test]
    fn a_bootstrap_is_taken_once_per_node_and_never_overrides_the_quorum() {
        let mut state = ClusterState::default();
        let admin_q = record("admin", Mechanism::Sha256, "quorum's");
        let admin_f = record("admin", Mechanism::Sha256, "formatted");
        let broker = record("broker", Mechanism::Sha512, "b");
        state.apply(
            1,
            &Command::AlterScramCredentials {
                upserts: vec![admin_q.clone()],
                deletions: vec![],
            },
        );
        let boot = |node_id| Command::BootstrapScramCredentials {
            node_id,
            credentials: vec![admin_f.clone(), broker.clone()],
        };
        assert_eq!(state.apply(2, &boot(1)), Reply::Ok);
        assert!(
            state.scram_credentials.contains(&admin_q),
            "the quorum's wins"
        );
        assert!(state.scram_credentials.contains(&broker));
        // The user is deleted through the quorum; the member restarts and proposes its
        // file again: nothing comes back.
        state.apply(
            3,
            &Command::AlterScramCredentials {
                upserts: vec![],
                deletions: vec![("broker".into(), "SCRAM-SHA-512".into())],
            },
        );
        assert_eq!(state.apply(4, &boot(1)), Reply::Ok);
        assert!(!state.scram_credentials.contains(&broker));
        // Another member's first bootstrap is taken.
        state.apply(5, &boot(2));
        assert!(state.scram_credentials.contains(&broker));
        assert_eq!(
            state.scram_bootstrapped.iter().copied().collect::<Vec<_>>(),
            [1, 2]
        );
    }
}
