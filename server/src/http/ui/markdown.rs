//! A model card (README.md or MODEL.md) as HTML: Markdown rendered by pulldown-cmark, then sanitized by
//! ammonia, which keeps formatting and drops every script, event handler, `javascript:` URL and style.

/// Cards longer than this are cut: a page must stay fast, and no card needs more.
pub const MAX_CARD_BYTES: usize = 256 * 1024;

/// The files read as a model card, in order of preference.
pub const CARD_FILES: [&str; 4] = ["README.md", "MODEL.md", "readme.md", "model.md"];

pub fn card_html(markdown: &str) -> String {
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    options.insert(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);
    let parser = pulldown_cmark::Parser::new_ext(markdown, options);
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::Builder::default()
        // Images from anywhere would tell other sites who reads the card (and the CSP blocks them).
        .rm_tags(&["img"])
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_javascript_links_come_out_inert() {
        let html = card_html(
            "# Card\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1))\n\n\
             <a href=\"javascript:alert(2)\" onclick=\"alert(3)\">x</a> <img src=x onerror=alert(4)>\n\n\
             | a | b |\n|---|---|\n| 1 | 2 |\n",
        );
        assert!(html.contains("<h1>Card</h1>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        for bad in ["<script", "javascript:", "onclick", "onerror", "<img"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }
}
