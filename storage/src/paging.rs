//! Cursor paging of list answers (design section 5.1): `{items, next_cursor?}`, where the
//! cursor is opaque to clients and a page holds at most `limit` items.
//!
//! A list read whole from its table (grants, keys, support access, users, certificates,
//! partnerships, profiles) is paged here by a unique, stable key: the cursor holds the key
//! of the previous page's last item, so an item added or removed between two pages neither
//! repeats nor hides one that stays.
//!
//! Every cursor, of these lists and of those that page in their own reads (assets,
//! operators, telemetry, access events, audit), is made and checked here: [`cursor`] is
//! `c1` (the encoding's version) and the hex of the list's name, a newline and the key, so a
//! cursor is opaque, and one that another list gave, or that no list gave, is refused by
//! [`cursor_key`] with a 422 naming `cursor`.

use crate::error::OpError;
use crate::read::Page;

/// The version of the cursor encoding, its first characters.
const CURSOR_VERSION: &str = "c1";

/// What a refused cursor is told.
pub const NOT_A_CURSOR: &str = "is not a cursor this list gave";

/// The cursor that continues `list` after the item whose key is `key`.
pub fn cursor(list: &str, key: &str) -> String {
    format!("{CURSOR_VERSION}{}", hex::encode(format!("{list}\n{key}")))
}

/// The key after which a cursor of `list` continues.
///
/// # Errors
/// [`OpError::Invalid`] naming `cursor` when `list` did not give `raw`: another list's
/// cursor, another version's, or text that is no cursor.
pub fn cursor_key(list: &str, raw: &str) -> Result<String, OpError> {
    let refused = || OpError::invalid("cursor", NOT_A_CURSOR);
    let bytes = raw
        .strip_prefix(CURSOR_VERSION)
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or_else(refused)?;
    let text = String::from_utf8(bytes).map_err(|_| refused())?;
    match text.split_once('\n') {
        Some((tag, key)) if tag == list => Ok(key.to_owned()),
        _ => Err(refused()),
    }
}

/// [`cursor_key`] of an optional cursor, parsed by `parse` (a refusal as [`cursor_key`]'s):
/// the start of a list that pages in its own read.
///
/// # Errors
/// As [`cursor_key`], and when `parse` refuses the key.
pub fn after<K>(
    list: &str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<K>,
) -> Result<Option<K>, OpError> {
    raw.map(|raw| {
        parse(&cursor_key(list, raw)?).ok_or_else(|| OpError::invalid("cursor", NOT_A_CURSOR))
    })
    .transpose()
}

/// `page` of `list` with its `next_cursor` (the last item's key, as the read gave it) made a
/// [`cursor`].
pub fn with_cursor<T>(list: &str, page: Page<T>) -> Page<T> {
    Page {
        next_cursor: page.next_cursor.map(|key| cursor(list, &key)),
        items: page.items,
    }
}

/// The items whose key sorts after the cursor's, at most `limit` of them (at least one), in
/// key order; `next_cursor` is the [`cursor`] of the last one when more follow.
///
/// # Errors
/// As [`cursor_key`].
pub fn page_of<T>(
    items: impl IntoIterator<Item = T>,
    (list, cursor_given): (&str, Option<&str>),
    limit: usize,
    key: impl Fn(&T) -> String,
) -> Result<Page<T>, OpError> {
    let after = after(list, cursor_given, |key| Some(key.to_owned()))?;
    let cursor = after.as_deref();
    let mut keyed: Vec<(String, T)> = items
        .into_iter()
        .map(|item| (key(&item), item))
        .filter(|(k, _)| cursor.is_none_or(|after| k.as_str() > after))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = limit.max(1);
    let more = keyed.len() > limit;
    keyed.truncate(limit);
    let next_cursor = match more {
        true => keyed.last().map(|(k, _)| self::cursor(list, k)),
        false => None,
    };
    Ok(Page {
        items: keyed.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    })
}

/// Whether `text` contains `q`, ignoring case: the `q` search of the lists that have one.
pub fn matches(q: &str, text: &str) -> bool {
    text.to_lowercase().contains(&q.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<'a>(page: &Page<&'a str>) -> Vec<&'a str> {
        page.items.clone()
    }

    /// A page of the list `l` by the items' own text.
    fn page<'a>(items: &[&'a str], cursor: Option<&str>, limit: usize) -> Page<&'a str> {
        page_of(items.iter().copied(), ("l", cursor), limit, |s| {
            s.to_string()
        })
        .expect("page")
    }

    #[test]
    fn pages_follow_each_other_without_repeating_or_skipping() {
        let items = ["c", "a", "e", "b", "d"];
        let first = page(&items, None, 2);
        assert_eq!(ids(&first), ["a", "b"]);
        assert_eq!(first.next_cursor, Some(cursor("l", "b")));
        let second = page(&items, first.next_cursor.as_deref(), 2);
        assert_eq!(ids(&second), ["c", "d"]);
        let last = page(&items, second.next_cursor.as_deref(), 2);
        assert_eq!((ids(&last), last.next_cursor), (vec!["e"], None));
    }

    #[test]
    fn an_item_removed_between_pages_hides_nothing() {
        let first = page(&["a", "b", "c", "d"], None, 2);
        // "b" (the cursor's item) is gone before the next page is read.
        let next = page(&["a", "c", "d"], first.next_cursor.as_deref(), 2);
        assert_eq!((ids(&next), next.next_cursor), (vec!["c", "d"], None));
    }

    #[test]
    fn an_exact_page_has_no_cursor_and_q_ignores_case() {
        assert_eq!(page(&["a", "b"], None, 2).next_cursor, None);
        assert!(matches("DIG", "Big digger"));
        assert!(!matches("crane", "Big digger"));
    }

    #[test]
    fn a_cursor_is_opaque_and_only_its_own_list_takes_it() {
        let given = cursor("assets", "ex1");
        assert!(!given.contains("ex1"), "{given}");
        assert_eq!(cursor_key("assets", &given).expect("its own"), "ex1");
        let key_with_a_newline = cursor("assets", "a\nb");
        assert_eq!(
            cursor_key("assets", &key_with_a_newline).expect("its own"),
            "a\nb"
        );
        for foreign in [
            cursor("keys", "ex1"),
            "zzzz".to_owned(),
            "ex1".to_owned(),
            "1796077202664".to_owned(),
            "c1".to_owned(),
            "c1zz".to_owned(),
            format!("c2{}", &given[2..]),
            String::new(),
        ] {
            let refused = cursor_key("assets", &foreign).expect_err(&foreign);
            assert!(matches!(refused, OpError::Invalid { ref field, .. } if field == "cursor"));
            assert!(page_of(["a"], ("assets", Some(foreign.as_str())), 1, |s| s
                .to_string())
            .is_err());
        }
        let number = after("telemetry", Some(&cursor("telemetry", "x")), |k| {
            k.parse::<u64>().ok()
        });
        assert!(number.is_err());
        let number = after("telemetry", Some(&cursor("telemetry", "7")), |k| {
            k.parse::<u64>().ok()
        });
        assert_eq!(number.expect("a number"), Some(7));
    }
}
