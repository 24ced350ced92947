//! The `intake` target's model of path decoding: written apart from `normalize_path`, from the
//! same rules, so that the two can disagree only where one of them is wrong.

use breakwater_core::intake::PathError;

/// An independent decoder with the same rules as `normalize_path`, except that a `%` must be
/// followed by exactly two ASCII hex digits (RFC 3986 §2.1: `pct-encoded = "%" HEXDIG HEXDIG`).
pub(super) fn strict_normalize(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = if bytes[i] == b'%' {
            let (Some(high), Some(low)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
                return Err(PathError::BadPercentEncoding);
            };
            i += 3;
            let byte = (high * 16 + low) as u8;
            match byte {
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                b'%' => return Err(PathError::DoubleEncoding),
                b => b,
            }
        } else {
            i += 1;
            bytes[i - 1]
        };
        if byte == b'\\' {
            return Err(PathError::EncodedSeparator);
        }
        if byte < 0x20 || byte == 0x7f {
            return Err(PathError::ControlCharacter);
        }
        decoded.push(byte);
    }
    let path = String::from_utf8(decoded).map_err(|_| PathError::InvalidUtf8)?;
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (n, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => return Err(PathError::DotSegment),
            "" if n + 1 != segments.len() => return Err(PathError::EmptySegment),
            _ => {}
        }
    }
    Ok(path)
}
