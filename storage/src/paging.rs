//! Cursor paging of list answers (design section 5.1): `{items, next_cursor?}`, where the
//! cursor is opaque to clients and a page holds at most `limit` items.
//!
//! A list read whole from its table (grants, keys, support access, users, certificates,
//! partnerships, profiles) is paged here by a unique, stable key: the cursor is the key of
//! the previous page's last item, so an item added or removed between two pages neither
//! repeats nor hides one that stays.

use crate::read::Page;

/// The items whose key sorts after `cursor`, at most `limit` of them (at least one), in key
/// order; `next_cursor` is the last one's key when more follow.
pub fn page_of<T>(
    items: impl IntoIterator<Item = T>,
    cursor: Option<&str>,
    limit: usize,
    key: impl Fn(&T) -> String,
) -> Page<T> {
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
        true => keyed.last().map(|(k, _)| k.clone()),
        false => None,
    };
    Page {
        items: keyed.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    }
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

    #[test]
    fn pages_follow_each_other_without_repeating_or_skipping() {
        let items = ["c", "a", "e", "b", "d"];
        let first = page_of(items, None, 2, |s| s.to_string());
        assert_eq!(
            (ids(&first), first.next_cursor.as_deref()),
            (vec!["a", "b"], Some("b"))
        );
        let second = page_of(items, first.next_cursor.as_deref(), 2, |s| s.to_string());
        assert_eq!(ids(&second), ["c", "d"]);
        let last = page_of(items, second.next_cursor.as_deref(), 2, |s| s.to_string());
        assert_eq!((ids(&last), last.next_cursor), (vec!["e"], None));
    }

    #[test]
    fn an_item_removed_between_pages_hides_nothing() {
        let first = page_of(["a", "b", "c", "d"], None, 2, |s| s.to_string());
        // "b" (the cursor itself) is gone before the next page is read.
        let next = page_of(["a", "c", "d"], first.next_cursor.as_deref(), 2, |s| {
            s.to_string()
        });
        assert_eq!((ids(&next), next.next_cursor), (vec!["c", "d"], None));
    }

    #[test]
    fn an_exact_page_has_no_cursor_and_q_ignores_case() {
        let page = page_of(["a", "b"], None, 2, |s| s.to_string());
        assert_eq!(page.next_cursor, None);
        assert!(matches("DIG", "Big digger"));
        assert!(!matches("crane", "Big digger"));
    }
}
