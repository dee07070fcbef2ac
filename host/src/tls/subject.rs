//! The subject common name of an X.509 certificate, read from its DER: the
//! few fields before the subject are skipped, nothing else is interpreted
//! (the certificate was verified by rustls before this reads it).

/// One DER element: its tag, its contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let octets = (first & 0x7f) as usize;
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let len = rest[..octets]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | b as usize);
        (len, &rest[octets..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0]`, the optional version field of a certificate.
const EXPLICIT_0: u8 = 0xa0;
/// 2.5.4.3, id-at-commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// UTF8String, PrintableString, IA5String.
const TEXT: &[u8] = &[0x0c, 0x13, 0x16];

/// The subject's common name (the first, if several), or `None` for a
/// certificate without one or that is not DER.
pub fn common_name(cert: &[u8]) -> Option<String> {
    let (SEQUENCE, certificate, _) = element(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = element(certificate)? else {
        return None;
    };
    if tbs.first() == Some(&EXPLICIT_0) {
        tbs = element(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity: then the subject.
    for _ in 0..4 {
        tbs = element(tbs)?.2;
    }
    let (SEQUENCE, mut name, _) = element(tbs)? else {
        return None;
    };
    while !name.is_empty() {
        let (tag, mut set, rest) = element(name)?;
        name = rest;
        if tag != SET {
            return None;
        }
        while !set.is_empty() {
            let (_, attribute, rest) = element(set)?;
            set = rest;
            let (OID, oid, value) = element(attribute)? else {
                return None;
            };
            let (kind, text, _) = element(value)?;
            if oid == COMMON_NAME && TEXT.contains(&kind) {
                return String::from_utf8(text.to_vec()).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(name: rcgen::DistinguishedName) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.distinguished_name = name;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_the_common_name_among_other_attributes() {
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::OrganizationName, "Example Ltd");
        name.push(rcgen::DnType::CommonName, "rollout-bot ✓");
        name.push(rcgen::DnType::CountryName, "DE");
        assert_eq!(
            common_name(&certificate(name)).as_deref(),
            Some("rollout-bot ✓")
        );
    }

    #[test]
    fn none_without_a_common_name_or_for_garbage() {
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::OrganizationName, "Example Ltd");
        assert_eq!(common_name(&certificate(name)), None);
        assert_eq!(common_name(b""), None);
        assert_eq!(common_name(&[0x30, 0x82, 0xff]), None);
        let mut cut = certificate(rcgen::DistinguishedName::new());
        cut.truncate(40);
        assert_eq!(common_name(&cut), None);
    }
}
