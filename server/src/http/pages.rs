//! A page of a listing as an HTTP answer: the items as a JSON array, and when the page is full a
//! `Link: <...>; rel="next"` (RFC 8288) with the same query and the next page's cursor.

use actix_web::http::header::LINK;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::services::paging::Paged;

pub fn page_response<T: Serialize>(req: &HttpRequest, page: Paged<T>) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(cursor) = &page.next {
        response.insert_header((LINK, format!("<{}>; rel=\"next\"", next_url(req, cursor))));
    }
    response.json(page.items)
}

/// This request's path and query, its `cursor` (and `offset`) replaced by the next page's cursor: the
/// API's `Link` and the web UI's "next page" alike.
pub fn next_url(req: &HttpRequest, cursor: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        if name != "cursor" && name != "offset" {
            query.append_pair(&name, &value);
        }
    }
    query.append_pair("cursor", cursor);
    format!("{}?{}", req.path(), query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_next_link_keeps_the_filters_and_replaces_the_cursor_and_offset() {
        let req = TestRequest::get()
            .uri("/api/v1/models?tag=a%20b&offset=5&cursor=old&limit=2")
            .to_http_request();
        assert_eq!(
            next_url(&req, "new"),
            "/api/v1/models?tag=a+b&limit=2&cursor=new"
        );
    }
}
