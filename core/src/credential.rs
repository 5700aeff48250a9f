//! What a bearer credential looks like.

/// Whether a bearer credential is a JWT (three base64url segments); anything else is an API token, which
/// lets an operator choose any string as the bootstrap token.
pub fn is_jwt(credential: &str) -> bool {
    let segments: Vec<&str> = credential.split('.').collect();
    segments.len() == 3
        && segments[..2].iter().all(|s| !s.is_empty())
        && segments.iter().all(|s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::is_jwt;

    #[test]
    fn three_base64url_segments_are_a_jwt_and_nothing_else_is() {
        assert!(is_jwt("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(is_jwt("a.b."));
        assert!(!is_jwt(".b.c"));
        assert!(!is_jwt("kiln_0123abcd"));
        assert!(!is_jwt("a.b.c.d"));
        assert!(!is_jwt("a b.c.d"));
    }
}
