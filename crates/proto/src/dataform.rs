//! XEP-0004 Data Forms: reading submitted fields and building forms.

use crate::xml::Element;

pub const NS: &str = "jabber:x:data";

/// The fields of a submitted form, in order: (var, values).
pub fn fields(x: &Element) -> Vec<(String, Vec<String>)> {
    x.children()
        .filter(|f| f.is("field", NS))
        .filter_map(|f| {
            let var = f.attr("var")?.to_owned();
            let values = f.children().filter(|v| v.is("value", NS)).map(Element::text).collect();
            Some((var, values))
        })
        .collect()
}

/// The `FORM_TYPE` of a form, if any.
pub fn form_type(x: &Element) -> Option<String> {
    fields(x).into_iter().find(|(var, _)| var == "FORM_TYPE").and_then(|(_, v)| v.into_iter().next())
}

/// A form of `kind` ("form", "result", ...) with a hidden FORM_TYPE.
pub fn form(kind: &str, form_type: &str) -> Element {
    Element::new("x", NS).with_attr("type", kind).with_child(
        Element::new("field", NS)
            .with_attr("var", "FORM_TYPE")
            .with_attr("type", "hidden")
            .with_child(Element::new("value", NS).with_text(form_type)),
    )
}

/// A field of `kind` (e.g. "text-single", "jid-single") with no value.
pub fn field(var: &str, kind: &str) -> Element {
    Element::new("field", NS).with_attr("var", var).with_attr("type", kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_form_type() {
        let x = form("submit", "urn:xmpp:mam:2")
            .with_child(field("with", "jid-single").with_child(Element::new("value", NS).with_text("a@b")))
            .with_child(
                field("ids", "list-multi")
                    .with_child(Element::new("value", NS).with_text("1"))
                    .with_child(Element::new("value", NS).with_text("2")),
            );
        assert_eq!(form_type(&x).as_deref(), Some("urn:xmpp:mam:2"));
        let f = fields(&x);
        assert_eq!(f[1], ("with".to_owned(), vec!["a@b".to_owned()]));
        assert_eq!(f[2].1, vec!["1", "2"]);
    }
}
