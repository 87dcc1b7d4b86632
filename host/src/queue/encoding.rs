//! How a message is kept as one value: its header as one line of JSON
//! (which never holds a raw newline), a newline, then the payload's bytes
//! as they are. No payload is ever inflated by an encoding.

use super::Header;

/// `header` and `payload` as one value.
pub fn encode(header: &Header, payload: &[u8]) -> Vec<u8> {
    // A header of strings and numbers always serializes.
    let mut bytes = serde_json::to_vec(header).unwrap_or_default();
    bytes.push(b'\n');
    bytes.extend_from_slice(payload);
    bytes
}

/// The header and payload of a value [`encode`] made; `None` for anything
/// else.
pub fn decode(bytes: &[u8]) -> Option<(Header, Vec<u8>)> {
    let split = bytes.iter().position(|&b| b == b'\n')?;
    let header = serde_json::from_slice(&bytes[..split]).ok()?;
    Some((header, bytes[split + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_encoding_whatever_its_bytes() {
        let header = Header {
            id: "abc".into(),
            content_type: Some("text/plain\n".into()),
            metadata: vec![("k".into(), "v\n2".into())],
            published_at_ms: 7,
        };
        let payload = b"line 1\nline 2\n\0\xff".to_vec();
        let (back, bytes) = decode(&encode(&header, &payload)).unwrap();
        assert_eq!(back, header);
        assert_eq!(bytes, payload);
        assert!(decode(b"no header").is_none());
    }
}
