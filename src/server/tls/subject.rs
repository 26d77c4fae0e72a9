//! The subject of a client certificate as Kafka's default principal builder names it:
//! Java's `X500Principal.getName()`, RFC 2253 — the RDNs last-first, `CN=client,O=corp,C=US`.
//! A small DER walk over the certificate the TLS stack has already verified; any shape
//! it does not expect gives `None` (the principal is then `User:ANONYMOUS`).

/// One DER element: tag, contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;

/// The RFC 2253 subject of a DER certificate.
pub fn subject_dn(cert: &[u8]) -> Option<String> {
    let (SEQUENCE, cert, _) = element(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = element(cert)? else {
        return None;
    };
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs)?.2;
    }
    // serial, signature algorithm, issuer, validity, then the subject.
    for _ in 0..4 {
        tbs = element(tbs)?.2;
    }
    let (SEQUENCE, mut name, _) = element(tbs)? else {
        return None;
    };
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (SET, mut set, rest) = element(name)? else {
            return None;
        };
        name = rest;
        let mut parts = Vec::new();
        while !set.is_empty() {
            let (SEQUENCE, atv, rest) = element(set)? else {
                return None;
            };
            set = rest;
            let (OID, oid, value) = element(atv)? else {
                return None;
            };
            parts.push(format!(
                "{}={}",
                attribute_name(oid),
                attribute_value(value)?
            ));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The keywords Java's RFC 2253 form uses; any other type as its dotted OID.
fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".into(),
        _ => dotted(oid),
    }
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A string value escaped as RFC 2253 asks; other types as `#` and the hex of their DER.
fn attribute_value(der: &[u8]) -> Option<String> {
    let (tag, content, _) = element(der)?;
    let text = match tag {
        // UTF8String, PrintableString, IA5String
        0x0c | 0x13 | 0x16 => String::from_utf8(content.to_vec()).ok()?,
        // TeletexString: Latin-1 in practice.
        0x14 => content.iter().map(|&b| b as char).collect(),
        _ => {
            let used = der.len() - element(der)?.2.len();
            let hex: String = der[..used].iter().map(|b| format!("{b:02x}")).collect();
            return Some(format!("#{hex}"));
        }
    };
    Some(escape(&text))
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        v.extend_from_slice(content);
        v
    }

    fn atv(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        let mut c = tlv(OID, oid);
        c.extend(tlv(tag, value.as_bytes()));
        tlv(SET, &tlv(SEQUENCE, &c))
    }

    /// A certificate with just enough structure: version, serial, algorithm, issuer,
    /// validity, subject.
    fn cert(subject: Vec<u8>) -> Vec<u8> {
        let mut tbs = tlv(VERSION, &tlv(0x02, &[2]));
        tbs.extend(tlv(0x02, &[1, 2, 3]));
        tbs.extend(tlv(SEQUENCE, &tlv(OID, &[0x2a, 0x86, 0x48])));
        tbs.extend(tlv(SEQUENCE, &atv(&[0x55, 4, 3], 0x0c, "ca")));
        tbs.extend(tlv(SEQUENCE, &[0u8; 200]));
        tbs.extend(tlv(SEQUENCE, &subject));
        tlv(SEQUENCE, &tlv(SEQUENCE, &tbs))
    }

    #[test]
    fn subject_in_rfc2253_order_with_escapes() {
        let mut name = atv(&[0x55, 4, 6], 0x13, "US");
        name.extend(atv(&[0x55, 4, 10], 0x0c, "Acme, Inc"));
        name.extend(atv(&[0x55, 4, 3], 0x0c, "alice"));
        name.extend(atv(
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
            0x16,
            "a@b",
        ));
        assert_eq!(
            subject_dn(&cert(name)).as_deref(),
            Some("1.2.840.113549.1.9.1=a@b,CN=alice,O=Acme\\, Inc,C=US")
        );
    }

    #[test]
    fn odd_shapes_give_none_never_a_panic() {
        let good = cert(atv(&[0x55, 4, 3], 0x0c, "x"));
        for cut in 0..good.len() {
            let _ = subject_dn(&good[..cut]);
        }
        assert_eq!(subject_dn(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject_dn(&good).as_deref(), Some("CN=x"));
    }
}
