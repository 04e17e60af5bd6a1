//! A small, lenient PEM (RFC 7468 / RFC 1421) reader for key files.
//!
//! Unlike a strict RFC 7468 parser it tolerates explanatory text before the
//! `BEGIN` line, CRLF line endings, and RFC 1421 headers such as
//! `Proc-Type: 4,ENCRYPTED` (so that legacy encrypted PEM keys can be
//! recognised and refused with a clear message).

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// One decoded PEM block.
pub(crate) struct Pem {
    /// The label between `BEGIN ` and the closing dashes, e.g. `OPENSSH PRIVATE KEY`.
    pub label: String,
    /// RFC 1421 headers (`Name: value`), in order.
    pub headers: Vec<(String, String)>,
    /// The base64-decoded body.
    pub body: Zeroizing<Vec<u8>>,
}

impl Pem {
    /// True when the block carries `Proc-Type: 4,ENCRYPTED` (legacy OpenSSL encryption).
    pub(super) fn has_encrypted_header(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("Proc-Type")
                && value.to_ascii_uppercase().contains("ENCRYPTED")
        })
    }
}

/// Finds the first `-----BEGIN …-----` label in `text` without decoding anything.
pub(crate) fn first_label(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find_map(begin_label)
}

fn begin_label(line: &str) -> Option<&str> {
    line.strip_prefix("-----BEGIN ")?.strip_suffix("-----")
}

/// Decodes the first PEM block of `text`.
pub(crate) fn parse(text: &str) -> Result<Pem> {
    let mut lines = text.lines().map(str::trim);
    let label = loop {
        match lines.next() {
            Some(line) => {
                if let Some(label) = begin_label(line) {
                    break label.to_string();
                }
            }
            None => return Err(Error::key("no PEM \"-----BEGIN\" line found")),
        }
    };
    let end_line = format!("-----END {label}-----");
    let mut headers = Vec::new();
    let mut b64 = Zeroizing::new(String::new());
    let mut in_headers = true;
    let mut ended = false;
    for line in lines {
        if line.starts_with("-----END ") {
            if line != end_line {
                return Err(Error::key(format!(
                    "PEM END line does not match BEGIN {label}"
                )));
            }
            ended = true;
            break;
        }
        if line.is_empty() {
            // The blank line that ends RFC 1421 headers, or stray blank lines.
            continue;
        }
        if in_headers {
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
                continue;
            }
            in_headers = false;
        }
        b64.push_str(line);
    }
    if !ended {
        return Err(Error::key(format!("truncated PEM: missing \"{end_line}\"")));
    }
    let body = Base64::decode_vec(&b64)
        .map_err(|_| Error::key(format!("invalid base64 in PEM block {label}")))?;
    Ok(Pem {
        label,
        headers,
        body: Zeroizing::new(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_pem_parses_headers_and_body() {
        let text = "junk before\r\n-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,00\r\n\r\nAAEC\r\nAw==\r\n-----END RSA PRIVATE KEY-----\r\n";
        let pem = parse(text).unwrap();
        assert_eq!(pem.label, "RSA PRIVATE KEY");
        assert!(pem.has_encrypted_header());
        assert_eq!(&pem.body[..], &[0, 1, 2, 3]);
        assert_eq!(first_label(text), Some("RSA PRIVATE KEY"));
    }

    #[test]
    fn keys_pem_rejects_broken_input() {
        assert!(parse("").is_err());
        assert!(parse("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(parse("-----BEGIN X-----\nAAAA\n-----END Y-----\n").is_err());
        assert!(parse("-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
    }
}
