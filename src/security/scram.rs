//! SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka name them): stored
//! credentials and the server's side of one exchange. No I/O.
//!
//! A credential keeps only the salt, the iteration count, StoredKey = H(ClientKey) and
//! ServerKey, never the password or the salted password: a stolen credential file lets
//! nobody log in without first brute-forcing the password through PBKDF2.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

/// Kafka's bounds on SCRAM iterations (ScramMechanism.minIterations / maxIterations).
pub const ITERATIONS_MIN: u32 = 4096;
pub const ITERATIONS_MAX: u32 = 16384;
/// What `corelog user add` and `storage format --add-scram` use unless told otherwise.
pub const ITERATIONS_DEFAULT: u32 = 8192;
/// Random bytes of a new salt.
pub const SALT_BYTES: usize = 32;
/// Random bytes of the server's nonce part.
const NONCE_BYTES: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha256, Mechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(n: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(n))
    }

    /// The mechanism's number in AlterUserScramCredentials / DescribeUserScramCredentials.
    pub fn wire(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    pub fn from_wire(n: i8) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.wire() == n)
    }

    fn hmac_alg(self) -> hmac::Algorithm {
        match self {
            Mechanism::Sha256 => hmac::HMAC_SHA256,
            Mechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2_alg(self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Mechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            Mechanism::Sha256 => &digest::SHA256,
            Mechanism::Sha512 => &digest::SHA512,
        }
    }

    pub fn output_bytes(self) -> usize {
        self.digest_alg().output_len()
    }

    /// Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC-H.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_bytes()];
        let n = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2_alg(), n, salt, password, &mut out);
        out
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_alg(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_alg(), data).as_ref().to_vec()
    }
}

/// What the broker stores for one user and mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl Credential {
    /// From the salted password (what AlterUserScramCredentials carries).
    pub fn from_salted(m: Mechanism, salted: &[u8], salt: Vec<u8>, iterations: u32) -> Credential {
        let client_key = m.hmac(salted, b"Client Key");
        Credential {
            salt,
            iterations,
            stored_key: m.hash(&client_key),
            server_key: m.hmac(salted, b"Server Key"),
        }
    }

    /// From a password, with a fresh random salt.
    pub fn from_password(m: Mechanism, password: &str, iterations: u32) -> Credential {
        let salt = random_bytes(SALT_BYTES);
        let salted = m.salted_password(password.as_bytes(), &salt, iterations);
        Credential::from_salted(m, &salted, salt, iterations)
    }

    /// Whether `password` is this credential's (SASL/PLAIN checks through this).
    pub fn verifies(&self, m: Mechanism, password: &str) -> bool {
        let salted = m.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        constant_time_eq(&m.hash(&client_key), &self.stored_key)
    }
}

/// A credential for a user that does not exist, so that an unknown name is refused at
/// client-final exactly like a wrong password, never earlier: a prober cannot list
/// users. The salt is stable per name for the life of the process (an HMAC under a
/// random key), as a real user's is; the keys are random, so no proof can match.
pub fn decoy_credential(m: Mechanism, username: &str) -> Credential {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| random_bytes(32));
    let tag = Mechanism::Sha256.hmac(key, format!("{}\0{username}", m.name()).as_bytes());
    Credential {
        salt: tag[..SALT_BYTES].to_vec(),
        iterations: ITERATIONS_DEFAULT,
        stored_key: random_bytes(m.output_bytes()),
        server_key: random_bytes(m.output_bytes()),
    }
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut v)
        .expect("the OS random source works");
    v
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why an exchange failed. `Malformed` is a client bug; `BadCredentials` covers an
/// unknown user and a wrong password alike, so the answer does not tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("invalid username or password")]
    BadCredentials,
}

/// The client-first message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` or `n,a=...,`: repeated in the client-final `c=`.
    pub gs2_header: String,
    pub username: String,
    pub nonce: String,
    /// client-first-message-bare, for the AuthMessage.
    pub bare: String,
}

pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, ScramError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let mut parts = msg.splitn(3, ',');
    let cb = parts.next().unwrap_or("");
    let authzid = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
    let bare = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
    match cb {
        "n" | "y" => {}
        _ if cb.starts_with("p=") => {
            return Err(ScramError::Unsupported(
                "SCRAM channel binding is not supported",
            ))
        }
        _ => return Err(ScramError::Malformed("bad channel-binding flag")),
    }
    let mut username = None;
    let mut nonce = None;
    for attr in bare.split(',') {
        if let Some(v) = attr.strip_prefix("n=") {
            username = Some(decode_name(v)?);
        } else if let Some(v) = attr.strip_prefix("r=") {
            nonce = Some(v.to_string());
        } else if attr.starts_with("m=") {
            return Err(ScramError::Unsupported(
                "SCRAM mandatory extensions are not supported",
            ));
        } else if attr.starts_with("tokenauth") {
            return Err(ScramError::Unsupported(
                "delegation tokens are not supported",
            ));
        }
    }
    let username = username.ok_or(ScramError::Malformed("no n= (username)"))?;
    let nonce = nonce
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
        .ok_or(ScramError::Malformed("no usable r= (nonce)"))?;
    if let Some(a) = authzid.strip_prefix("a=") {
        if decode_name(a)? != username {
            return Err(ScramError::Unsupported(
                "an authorization id other than the username is not supported",
            ));
        }
    }
    Ok(ClientFirst {
        gs2_header: format!("{cb},{authzid},"),
        username,
        nonce,
        bare: bare.to_string(),
    })
}

/// saslname of RFC 5802: `=2C` is `,` and `=3D` is `=`.
fn decode_name(v: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest
            .get(i..i + 3)
            .ok_or(ScramError::Malformed("bad = escape in name"))?;
        out.push(match esc {
            "=2C" => ',',
            "=3D" => '=',
            _ => return Err(ScramError::Malformed("bad = escape in name")),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The server side after client-first: it has sent server-first and waits for
/// client-final.
#[derive(Debug)]
pub struct ServerExchange {
    mechanism: Mechanism,
    credential: Credential,
    first: ClientFirst,
    server_first: String,
    nonce: String,
}

impl ServerExchange {
    /// Answers client-first for a known user's credential; returns the exchange and
    /// server-first.
    pub fn start(
        m: Mechanism,
        first: ClientFirst,
        credential: Credential,
    ) -> (ServerExchange, Vec<u8>) {
        let nonce = format!("{}{}", first.nonce, B64.encode(random_bytes(NONCE_BYTES)));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let out = server_first.clone().into_bytes();
        (
            ServerExchange {
                mechanism: m,
                credential,
                first,
                server_first,
                nonce,
            },
            out,
        )
    }

    pub fn username(&self) -> &str {
        &self.first.username
    }

    /// Checks client-final; returns server-final (`v=...`) when the proof is right.
    pub fn finish(&self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let m = self.mechanism;
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no p= (proof)"))?;
        let mut channel = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(v) = attr.strip_prefix("c=") {
                channel = Some(v);
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            }
        }
        if channel != Some(B64.encode(self.first.gs2_header.as_bytes()).as_str()) {
            return Err(ScramError::Malformed("c= does not repeat the GS2 header"));
        }
        // RFC 5802 wants the server-first nonce repeated. librdkafka before 2.x's fix
        // sends the client nonce again in front of it (Kafka accepts any nonce that ends
        // with the server's); accept exactly that form too. Either way the fresh server
        // part is there and the proof covers the message as sent.
        let doubled = format!("{}{}", self.first.nonce, self.nonce);
        if nonce != Some(self.nonce.as_str()) && nonce != Some(doubled.as_str()) {
            return Err(ScramError::Malformed(
                "r= is not the nonce of this exchange",
            ));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("p= is not base64"))?;
        let auth_message = format!("{},{},{without_proof}", self.first.bare, self.server_first);
        let signature = m.hmac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::BadCredentials);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if !constant_time_eq(&m.hash(&client_key), &self.credential.stored_key) {
            return Err(ScramError::BadCredentials);
        }
        let verifier = m.hmac(&self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(verifier)).into_bytes())
    }
}

/// The client side, for the toolbox (`cli::security`): client-first, then client-final
/// from server-first, then a check of server-final.
pub struct ClientExchange {
    mechanism: Mechanism,
    password: String,
    bare: String,
    nonce: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl ClientExchange {
    pub fn new(m: Mechanism, username: &str, password: &str) -> (ClientExchange, Vec<u8>) {
        let nonce = B64.encode(random_bytes(NONCE_BYTES));
        let name = username.replace('=', "=3D").replace(',', "=2C");
        let bare = format!("n={name},r={nonce}");
        let first = format!("n,,{bare}").into_bytes();
        (
            ClientExchange {
                mechanism: m,
                password: password.to_string(),
                bare,
                nonce,
                expected_server_signature: None,
            },
            first,
        )
    }

    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let m = self.mechanism;
        let sf =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in sf.split(',') {
            if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            } else if let Some(v) = attr.strip_prefix("s=") {
                salt = B64.decode(v).ok();
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = v.parse::<u32>().ok();
            }
        }
        let nonce = nonce
            .filter(|n| n.starts_with(&self.nonce))
            .ok_or(ScramError::Malformed("server nonce does not extend ours"))?;
        let salt = salt.ok_or(ScramError::Malformed("no s= (salt)"))?;
        let iterations = iterations
            .filter(|i| *i >= ITERATIONS_MIN)
            .ok_or(ScramError::Malformed("no i= of at least 4096"))?;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{sf},{without_proof}", self.bare);
        let signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Whether server-final proves the server knows the credential.
    pub fn verify_server(&self, server_final: &[u8]) -> bool {
        let Some(expected) = &self.expected_server_signature else {
            return false;
        };
        std::str::from_utf8(server_final)
            .ok()
            .and_then(|s| s.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .is_some_and(|v| constant_time_eq(&v, expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn rfc7677_example_verifies() {
        let m = Mechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let cred = Credential::from_salted(m, &salted, salt, 4096);
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let (mut ex, _) = ServerExchange::start(m, first, cred);
        // Pin the server nonce to the RFC's so its proof applies.
        ex.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        ex.server_first = format!("r={},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", ex.nonce);
        let fin = ex
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(fin, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn client_and_server_agree_and_wrong_password_fails() {
        for m in Mechanism::ALL {
            let cred = Credential::from_password(m, "s3cret", ITERATIONS_MIN);
            assert!(cred.verifies(m, "s3cret"));
            assert!(!cred.verifies(m, "s3creT"));
            for (password, ok) in [("s3cret", true), ("nope", false)] {
                let (mut client, first) = ClientExchange::new(m, "a,l=ice", password);
                let first = parse_client_first(&first).unwrap();
                assert_eq!(first.username, "a,l=ice");
                let (server, sf) = ServerExchange::start(m, first, cred.clone());
                let cf = client.client_final(&sf).unwrap();
                match server.finish(&cf) {
                    Ok(fin) => {
                        assert!(ok);
                        assert!(client.verify_server(&fin));
                    }
                    Err(e) => {
                        assert!(!ok);
                        assert_eq!(e, ScramError::BadCredentials);
                    }
                }
            }
        }
    }

    #[test]
    fn a_decoy_refuses_the_right_proof_and_keeps_its_salt() {
        let m = Mechanism::Sha512;
        let a = decoy_credential(m, "nobody");
        assert_eq!(a.salt, decoy_credential(m, "nobody").salt);
        assert_ne!(a.salt, decoy_credential(m, "somebody").salt);
        let (mut client, first) = ClientExchange::new(m, "nobody", "");
        let (server, sf) = ServerExchange::start(m, parse_client_first(&first).unwrap(), a);
        let cf = client.client_final(&sf).unwrap();
        assert_eq!(server.finish(&cf), Err(ScramError::BadCredentials));
    }

    #[test]
    fn malformed_messages_are_errors() {
        for bad in [
            &b""[..],
            b"n",
            b"n,,",
            b"n,,r=abc",
            b"n,,n=u",
            b"x,,n=u,r=a",
            b"n,,n=u=,r=a",
            b"p=tls,,n=u,r=a",
            b"\xff,,",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
        let m = Mechanism::Sha256;
        let cred = Credential::from_password(m, "p", ITERATIONS_MIN);
        let (server, _) =
            ServerExchange::start(m, parse_client_first(b"n,,n=u,r=abc").unwrap(), cred);
        for bad in [
            &b""[..],
            b"c=biws",
            b"c=biws,r=abc,p=AAAA",
            b"c=xx,r=abc,p=AAAA",
            b"c=biws,r=zzz,p=!!",
        ] {
            assert!(server.finish(bad).is_err(), "{bad:?}");
        }
    }
}
