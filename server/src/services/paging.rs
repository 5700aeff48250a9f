//! Pages of every listing: a page starts after the last item of the one before (keyset, by the listing's
//! sort key), so pages neither skip nor repeat items while others are added. The cursor is that sort key,
//! opaque to clients: base64url of a JSON array of strings.

use base64::Engine;
use chrono::NaiveDateTime;
use kiln_core::ErrorCode;

use crate::error::Error;

/// Which page a caller asked for.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    /// The sort key of the previous page's last item.
    after: Option<Vec<String>>,
}

/// One page, and the cursor of the next when this one is full (the next may still be empty).
#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

fn not_ours() -> Error {
    Error::bad_request(
        ErrorCode::InvalidPage,
        "cursor is not one this server gave: pass the `next` link's cursor unchanged",
    )
}

impl PageRequest {
    pub const MAX_LIMIT: i64 = 1000;
    pub const DEFAULT_LIMIT: i64 = 100;

    pub fn new(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(Error::bad_request(
                ErrorCode::InvalidPage,
                format!("limit must be 1..={}", Self::MAX_LIMIT),
            ));
        }
        let after = cursor.map(decode).transpose()?;
        Ok(Self { limit, after })
    }

    /// The first page.
    pub fn first(limit: i64) -> Self {
        Self { limit, after: None }
    }

    /// The previous page's last key, when the cursor has the `N` parts this listing's key has.
    pub fn after<const N: usize>(&self) -> Result<Option<[String; N]>, Error> {
        self.after
            .clone()
            .map(|parts| <[String; N]>::try_from(parts).map_err(|_| not_ours()))
            .transpose()
    }

    /// Whether the caller asked for a page after some other.
    pub fn has_cursor(&self) -> bool {
        self.after.is_some()
    }
}

impl<T> Paged<T> {
    /// `items` as loaded for `request` (at most its limit), with a cursor made of the last one's key when
    /// the page is full.
    pub fn new(items: Vec<T>, request: &PageRequest, key: impl Fn(&T) -> Vec<String>) -> Self {
        let next = (items.len() as i64 == request.limit)
            .then(|| items.last().map(|last| encode(&key(last))))
            .flatten();
        Self { items, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }

    pub fn try_map<U>(self, f: impl FnMut(T) -> Result<U, Error>) -> Result<Paged<U>, Error> {
        Ok(Paged {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            next: self.next,
        })
    }
}

fn encode(key: &[String]) -> String {
    let json = serde_json::to_vec(key).expect("strings serialize");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode(cursor: &str) -> Result<Vec<String>, Error> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| not_ours())?;
    serde_json::from_slice(&bytes).map_err(|_| not_ours())
}

/// A timestamp as a cursor part, to the nanosecond (so keys that differ only there stay apart).
pub fn time_key(at: &NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.9f").to_string()
}

/// A cursor part [`time_key`] made.
pub fn parse_time_key(text: &str) -> Result<NaiveDateTime, Error> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.9f").map_err(|_| not_ours())
}

/// A cursor part that is a number.
pub fn parse_number_key(text: &str) -> Result<i64, Error> {
    text.parse().map_err(|_| not_ours())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_names_its_last_key_and_the_next_request_reads_it_back() {
        let request = PageRequest::first(2);
        let page = Paged::new(vec!["a", "b"], &request, |s| {
            vec![s.to_string(), "x".into()]
        });
        let next = PageRequest::new(Some(2), page.next.as_deref()).unwrap();
        assert_eq!(
            next.after::<2>().unwrap(),
            Some(["b".to_owned(), "x".to_owned()])
        );
        assert!(next.after::<1>().is_err(), "a key of another listing");
    }

    #[test]
    fn a_short_page_is_the_last() {
        let page = Paged::new(vec!["a"], &PageRequest::first(2), |s| vec![s.to_string()]);
        assert!(page.next.is_none());
    }

    #[test]
    fn cursors_the_server_did_not_make_are_refused() {
        for cursor in ["", "!!", "bm90IGpzb24", "WzFd"] {
            let refused = PageRequest::new(None, Some(cursor)).and_then(|r| r.after::<1>());
            assert!(refused.is_err(), "{cursor:?}");
        }
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(1001), None).is_err());
    }

    #[test]
    fn time_keys_round_trip_to_the_nanosecond() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789)
            .unwrap()
            .naive_utc();
        assert_eq!(parse_time_key(&time_key(&at)).unwrap(), at);
    }
}
