//! Lists, as Sensu's: `limit` and `continue` paging (the next page's token in
//! `Sensu-Continue`, and `Ward-Continue` as before), and `labelSelector` / `fieldSelector`
//! (`ward_types::selector`) on every list.

use super::error::{bad, ApiResult};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;
use ward_types::selector::Selection;

/// Items per page when the request gives no `limit`.
pub(super) const DEFAULT_LIMIT: usize = 500;

/// A list request's query: paging and selectors.
pub(super) struct ListQuery {
    pub(super) limit: usize,
    /// Where the page starts: after this key (decoded from `continue`).
    pub(super) after: Option<String>,
    pub(super) selection: Selection,
}

impl ListQuery {
    /// From the raw query string. A `limit` that is not a number counts as none (as in
    /// Sensu); a `continue` this server did not issue, or a selector that does not parse,
    /// is a 400.
    pub(super) fn parse(raw: Option<&str>) -> ApiResult<ListQuery> {
        let (mut limit, mut cont) = (None, None);
        let (mut labels, mut fields) = (Vec::new(), Vec::new());
        for (k, v) in ward_io::url::query_pairs(raw.unwrap_or("")) {
            match k.as_str() {
                "limit" => limit = v.parse::<usize>().ok().filter(|n| *n > 0),
                "continue" if !v.is_empty() => cont = Some(v),
                "labelSelector" => labels.push(v),
                "fieldSelector" => fields.push(v),
                _ => {}
            }
        }
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let selection = Selection::parse(&labels, &fields).map_err(|e| bad(e.to_string()))?;
        Ok(ListQuery {
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            after: decode_continue(cont.as_deref())?,
            selection,
        })
    }
}

pub(super) fn decode_continue(c: Option<&str>) -> ApiResult<Option<String>> {
    c.map(|c| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("continue: not a token this server issued"))
    })
    .transpose()
}

/// Adds the next page's token, when there is one, as `Sensu-Continue` and `Ward-Continue`.
pub(super) fn with_continue(mut r: Response, next: Option<String>) -> Response {
    if let Some(n) = next {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n);
        if let Ok(v) = HeaderValue::from_str(&token) {
            r.headers_mut().insert("sensu-continue", v.clone());
            r.headers_mut().insert("ward-continue", v);
        }
    }
    r
}

/// A JSON array of texts that are JSON already.
pub(super) fn json_array(items: &[String], next: Option<String>) -> Response {
    let mut body = String::with_capacity(items.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
    body.push('[');
    body.push_str(&items.join(","));
    body.push(']');
    with_continue(
        ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        next,
    )
}

/// One page of a selected list, read in batches: `fetch(after, n)` returns up to `n`
/// items after a key and the key to go on from (None at the end); `key` is an item's
/// key; `admit` says whether it is selected. Stops once `limit` items are selected, and
/// returns them with the key of the last one when more may follow.
pub(super) fn select_page<T, E>(
    limit: usize,
    mut after: Option<String>,
    mut fetch: impl FnMut(Option<&str>, usize) -> Result<(Vec<T>, Option<String>), E>,
    key: impl Fn(&T) -> String,
    admit: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, Option<String>), E> {
    let batch = limit.clamp(100, 1000);
    let mut out = Vec::new();
    loop {
        let (items, next) = fetch(after.as_deref(), batch)?;
        for item in items {
            if admit(&item) {
                let last = key(&item);
                out.push(item);
                if out.len() == limit {
                    // More may follow: the rest of this batch, or the next one.
                    return Ok((out, Some(last)));
                }
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok((out, None)),
        }
    }
}

/// Whether a flat JSON value of `kind_name` passes the selection.
pub(super) fn admits(selection: &Selection, kind_name: &str, flat: &Value) -> bool {
    selection.is_empty() || selection.admits(kind_name, flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selected_page_stops_at_the_limit_and_says_where_to_go_on() {
        let all: Vec<u32> = (0..1000).collect();
        let fetch = |after: Option<&str>, n: usize| -> Result<(Vec<u32>, Option<String>), ()> {
            let start = after.map_or(0, |a| a.parse::<usize>().unwrap() + 1);
            let page: Vec<u32> = all.iter().copied().skip(start).take(n).collect();
            let next = (start + n < all.len()).then(|| page.last().unwrap().to_string());
            Ok((page, next))
        };
        let (page, next) =
            select_page(3, None, fetch, |x| x.to_string(), |x| x % 200 == 7).unwrap();
        assert_eq!(page, [7, 207, 407]);
        assert_eq!(next.as_deref(), Some("407"));
        let (page, next) =
            select_page(3, next, fetch, |x| x.to_string(), |x| x % 200 == 7).unwrap();
        assert_eq!(page, [607, 807]);
        assert_eq!(next, None);
    }

    #[test]
    fn queries_parse_as_sensus() {
        let q = ListQuery::parse(Some(
            "limit=x&labelSelector=region%20%3D%3D%20eu&labelSelector=a%20in%20%5Bb%5D",
        ))
        .unwrap();
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert!(!q.selection.is_empty());
        let e = ListQuery::parse(Some("fieldSelector=check.name%20%3D"))
            .err()
            .unwrap();
        assert!(e.1.starts_with("fieldSelector:"), "{}", e.1);
        assert_eq!(e.0, axum::http::StatusCode::BAD_REQUEST);
        assert!(ListQuery::parse(Some("continue=%%%")).is_err());
    }
}
