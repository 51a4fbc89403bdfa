//! XEP-0059 Result Set Management: the paging request and the `<set/>` of a response.

use crate::xml::Element;

pub const NS: &str = "http://jabber.org/protocol/rsm";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub max: Option<usize>,
    pub after: Option<String>,
    /// `Some(None)`: an empty `<before/>`, i.e. the last page.
    pub before: Option<Option<String>>,
    pub index: Option<usize>,
}

impl Request {
    /// Parses a `<set/>` element. `Err` on a malformed `max` or `index`.
    #[allow(clippy::result_unit_err)]
    pub fn parse(set: &Element) -> Result<Request, ()> {
        let text = |name: &str| set.child(name, NS).map(Element::text);
        let number = |name: &str| -> Result<Option<usize>, ()> {
            text(name).map(|t| t.trim().parse().map_err(|_| ())).transpose()
        };
        Ok(Request {
            max: number("max")?,
            after: text("after").filter(|a| !a.is_empty()),
            before: text("before").map(|b| Some(b).filter(|b| !b.is_empty())),
            index: number("index")?,
        })
    }
}

/// The `<set/>` of a response page: first/last ids and the total count.
pub fn response(first: Option<(&str, Option<usize>)>, last: Option<&str>, count: Option<u64>) -> Element {
    let mut set = Element::new("set", NS);
    if let Some((first, index)) = first {
        let mut el = Element::new("first", NS).with_text(first);
        if let Some(i) = index {
            el.set_attr("index", i.to_string());
        }
        set.push(el);
    }
    if let Some(last) = last {
        set.push(Element::new("last", NS).with_text(last));
    }
    if let Some(count) = count {
        set.push(Element::new("count", NS).with_text(count.to_string()));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paging_requests() {
        let set = Element::new("set", NS)
            .with_child(Element::new("max", NS).with_text("10"))
            .with_child(Element::new("before", NS));
        assert_eq!(Request::parse(&set).unwrap(), Request { max: Some(10), before: Some(None), ..Default::default() });
        let set = Element::new("set", NS).with_child(Element::new("after", NS).with_text("x"));
        assert_eq!(Request::parse(&set).unwrap().after.as_deref(), Some("x"));
        let bad = Element::new("set", NS).with_child(Element::new("max", NS).with_text("ten"));
        assert!(Request::parse(&bad).is_err());
    }
}
