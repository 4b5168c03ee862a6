//! PEM private key blocks: `-----BEGIN ... PRIVATE KEY-----` to the matching end line.

/// Where the next `-----END` at or after some position is, remembered so that many BEGIN
/// lines without an end do not each search the rest of the text.
#[derive(Debug, Default)]
pub(crate) struct EndCache {
    /// `(from, found)`: the first `-----END` at or after `from` is at `found` (`None`: none).
    known: Option<(usize, Option<usize>)>,
}

impl EndCache {
    fn next_end(&mut self, text: &str, from: usize) -> Option<usize> {
        if let Some((searched_from, found)) = self.known
            && searched_from <= from
            && found.is_none_or(|f| f >= from)
        {
            return found;
        }
        let found = text.get(from..).and_then(|t| t.find(END)).map(|i| from + i);
        self.known = Some((from, found));
        found
    }
}

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";
/// Longest key block we look for an end line in (an 8192-bit RSA key is about 6.5 kB).
const MAX_BLOCK: usize = 64 * 1024;

/// The end of the private key block starting at `start`, if one starts there. A block whose
/// end line is missing (cut off) ends where its base64 body ends.
pub(crate) fn block(text: &str, start: usize, cache: &mut EndCache) -> Option<usize> {
    let rest = text.get(start..)?;
    let label_start = rest.strip_prefix(BEGIN)?;
    let label_len = label_start
        .bytes()
        .take(64)
        .position(|b| !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '))?;
    let label = label_start.get(..label_len)?;
    if !label.contains("PRIVATE KEY") || !label_start.get(label_len..)?.starts_with(DASHES) {
        return None;
    }
    let body = start + BEGIN.len() + label_len + DASHES.len();
    let closing = format!("{END}{label}{DASHES}");
    match cache.next_end(text, body) {
        Some(e) if e - body <= MAX_BLOCK && text.get(e..)?.starts_with(&closing) => {
            Some(e + closing.len())
        }
        _ => Some(base64_body_end(text, body)),
    }
}

fn base64_body_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    while i - from < MAX_BLOCK
        && bytes.get(i).is_some_and(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n' | b' ' | b'\t' | b'\\')
        })
    {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_block_is_found() {
        let text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\nbye";
        let start = text.find("-----BEGIN").unwrap();
        let end = block(text, start, &mut EndCache::default()).unwrap();
        assert!(text[..end].ends_with("-----END RSA PRIVATE KEY-----"));
    }

    #[test]
    fn a_cut_off_block_ends_with_its_body() {
        let text = "-----BEGIN PRIVATE KEY-----\nMIIBOgIBAAJBAK\nQQ==";
        assert_eq!(block(text, 0, &mut EndCache::default()), Some(text.len()));
    }

    #[test]
    fn a_public_key_is_not_a_secret() {
        let text = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----";
        assert_eq!(block(text, 0, &mut EndCache::default()), None);
    }
}
