//! OpenSSH public keys (`authorized_keys` lines), parsed rather than pattern-matched: the
//! base64 blob is decoded and its wire format checked against the declared key type.

use aws_lc_rs::digest;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: String,
    /// The decoded SSH wire-format key blob.
    pub blob: Vec<u8>,
    pub comment: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("is not an OpenSSH public key (expected \"<type> <base64> [comment]\")")]
    Shape,
    #[error(
        "key type {0:?} is not accepted (use ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521)"
    )]
    UnsupportedType(String),
    #[error("key data is not valid base64")]
    Base64,
    #[error("key data is malformed: {0}")]
    Malformed(&'static str),
    #[error("RSA keys must be at least 2048 bits (this one has {0})")]
    WeakRsa(usize),
}

const ACCEPTED: [&str; 5] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
];

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Result<&'a [u8], KeyError> {
        if self.0.len() < 4 {
            return Err(KeyError::Malformed("truncated"));
        }
        let n = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) as usize;
        let rest = &self.0[4..];
        if rest.len() < n {
            return Err(KeyError::Malformed("truncated"));
        }
        let (s, tail) = rest.split_at(n);
        self.0 = tail;
        Ok(s)
    }

    fn end(&self) -> Result<(), KeyError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(KeyError::Malformed("trailing bytes"))
        }
    }
}

/// A positive mpint's bit length (SSH mpints are two's complement, big-endian).
fn mpint_bits(m: &[u8]) -> Result<usize, KeyError> {
    if m.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(KeyError::Malformed("negative integer"));
    }
    let m = match m.iter().position(|b| *b != 0) {
        Some(i) => &m[i..],
        None => return Ok(0),
    };
    Ok(m.len() * 8 - m[0].leading_zeros() as usize)
}

fn check_blob(algorithm: &str, blob: &[u8]) -> Result<(), KeyError> {
    let mut r = Reader(blob);
    if r.string()? != algorithm.as_bytes() {
        return Err(KeyError::Malformed("key type inside the data differs"));
    }
    match algorithm {
        "ssh-ed25519" => {
            if r.string()?.len() != 32 {
                return Err(KeyError::Malformed("an ed25519 key is 32 bytes"));
            }
        }
        "ssh-rsa" => {
            let e = r.string()?;
            let n = r.string()?;
            let e_bits = mpint_bits(e)?;
            if e_bits < 2 || e.last().is_some_and(|b| b & 1 == 0) {
                return Err(KeyError::Malformed("bad RSA exponent"));
            }
            let bits = mpint_bits(n)?;
            if bits < 2048 {
                return Err(KeyError::WeakRsa(bits));
            }
        }
        _ => {
            let curve = &algorithm["ecdsa-sha2-".len()..];
            if r.string()? != curve.as_bytes() {
                return Err(KeyError::Malformed("curve name differs from key type"));
            }
            let point = r.string()?;
            use aws_lc_rs::signature;
            let alg: &'static signature::EcdsaVerificationAlgorithm = match curve {
                "nistp256" => &signature::ECDSA_P256_SHA256_FIXED,
                "nistp384" => &signature::ECDSA_P384_SHA384_FIXED,
                _ => &signature::ECDSA_P521_SHA512_FIXED,
            };
            signature::UnparsedPublicKey::new(alg, point)
                .parse()
                .map_err(|_| KeyError::Malformed("the point is not on the curve"))?;
        }
    }
    r.end()
}

impl PublicKey {
    pub fn parse(line: &str) -> Result<PublicKey, KeyError> {
        let mut parts = line.split_whitespace();
        let (Some(algorithm), Some(data)) = (parts.next(), parts.next()) else {
            return Err(KeyError::Shape);
        };
        let comment = parts.collect::<Vec<_>>().join(" ");
        if !ACCEPTED.contains(&algorithm) {
            return Err(KeyError::UnsupportedType(
                algorithm.chars().take(40).collect(),
            ));
        }
        let blob = STANDARD.decode(data).map_err(|_| KeyError::Base64)?;
        check_blob(algorithm, &blob)?;
        Ok(PublicKey {
            algorithm: algorithm.to_string(),
            blob,
            comment,
        })
    }

    /// `SHA256:…`, as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        let d = digest::digest(&digest::SHA256, &self.blob);
        format!("SHA256:{}", STANDARD_NO_PAD.encode(d.as_ref()))
    }

    /// The key without its comment: what identifies it.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.algorithm, STANDARD.encode(&self.blob))
    }

    /// The key as the user gave it, normalised to single spaces.
    pub fn to_line(&self) -> String {
        if self.comment.is_empty() {
            self.to_openssh()
        } else {
            format!("{} {}", self.to_openssh(), self.comment)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with ssh-keygen for these tests.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIII0ojfQrBh4VZiVyztJ/c5/AdaqTuBLHwwyzoKTcikq user@laptop";
    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBL0WKNQQQpVaQAVlG60IdcB9O0ySd6mviq6BeLAJrPxAzNYqgJzX5BVrDUBWuE09FuZ3Y/V5/3HHGGFMobHO9og=";

    #[test]
    fn accepts_real_keys() {
        let k = PublicKey::parse(ED25519).expect("ed25519");
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(k.comment, "user@laptop");
        assert!(k.fingerprint().starts_with("SHA256:"));
        assert_eq!(k.to_line(), ED25519);
    }

    #[test]
    fn rejects_garbage_and_lies() {
        assert_eq!(PublicKey::parse("hello"), Err(KeyError::Shape));
        assert!(matches!(
            PublicKey::parse("ssh-dss AAAA"),
            Err(KeyError::UnsupportedType(_))
        ));
        assert_eq!(PublicKey::parse("ssh-ed25519 !!!"), Err(KeyError::Base64));
        // A well-formed ed25519 blob declared as RSA.
        let blob = ED25519.split(' ').nth(1).expect("blob");
        assert!(PublicKey::parse(&format!("ssh-rsa {blob}")).is_err());
        // Truncated data.
        assert!(PublicKey::parse("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0").is_err());
    }

    #[test]
    fn ecdsa_points_are_checked() {
        let k = PublicKey::parse(P256);
        // The fixed test vector must be a real point; flipping a byte makes it invalid.
        if let Ok(k) = k {
            let mut blob = k.blob.clone();
            let last = blob.len() - 1;
            blob[last] ^= 0xff;
            let bad = format!("ecdsa-sha2-nistp256 {}", STANDARD.encode(&blob));
            assert!(PublicKey::parse(&bad).is_err());
        } else {
            panic!("P-256 test key rejected: {k:?}");
        }
    }
}
