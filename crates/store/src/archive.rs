//! The message archive's domain types: entries and queries (XEP-0313 with XEP-0059 paging
//! and XEP-0431 full-text search) and archiving preferences (XEP-0441).

/// One archived message, as the owner's archive holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The XEP-0359 stanza-id the server gave it; unique per owner. RSM anchors are these.
    pub stanza_id: String,
    /// The other party's bare JID (for a room archive: the occupant JID).
    pub with: String,
    /// Sent by the owner (`true`) or received.
    pub outgoing: bool,
    pub timestamp_ms: i64,
    /// The sender's XEP-0359 origin-id, if it gave one (for XEP-0424 and XEP-0308 lookups).
    pub origin_id: Option<String>,
    /// The message body, kept for full-text search (XEP-0431).
    pub body: Option<String>,
    /// The serialised `<message/>`.
    pub stanza: String,
}

/// A MAM query (XEP-0313 §4): filters, then one page of what matches.
///
/// `Default` is every message with `max = 0`; callers set `max` (already clamped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// Only messages with this exact (bare) JID.
    pub with: Option<String>,
    /// Only messages at or after this time.
    pub start_ms: Option<i64>,
    /// Only messages at or before this time.
    pub end_ms: Option<i64>,
    /// RSM `<after>`: the page just after this stanza-id (paging forward).
    pub after_id: Option<String>,
    /// RSM `<before>`: `Some(None)` (an empty `<before/>`) asks for the last page,
    /// `Some(Some(id))` for the page just before `id` (paging backward).
    pub before_id: Option<Option<String>>,
    /// XEP-0313 §4.1.4: when not empty, only the messages with these stanza-ids.
    pub ids: Vec<String>,
    /// XEP-0431 full-text search: messages whose body holds every word of this text.
    pub text: Option<String>,
    /// Page size.
    pub max: usize,
}

impl ArchiveQuery {
    /// Whether the page is taken backward from an RSM `<before>` anchor.
    pub fn is_backward(&self) -> bool {
        self.before_id.is_some()
    }
}

/// One page of a MAM query's results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchivePage {
    /// Always in archive (chronological) order, whichever way the page was taken.
    pub items: Vec<ArchiveEntry>,
    /// No more matching items in the paging direction (XEP-0313 `complete='true'`).
    pub complete: bool,
    /// How many items match the filters, ignoring paging (RSM `<count/>`).
    pub count: Option<u64>,
}

/// Which messages are archived by default (XEP-0441 §4, the `default` attribute).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ArchiveDefault {
    /// Every message (what a user who never set preferences gets).
    #[default]
    Always,
    Never,
    /// Only messages with contacts in the roster.
    Roster,
}

impl ArchiveDefault {
    /// The value of the `default` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveDefault::Always => "always",
            ArchiveDefault::Never => "never",
            ArchiveDefault::Roster => "roster",
        }
    }

    /// Parses an attribute value; `None` for anything but the three modes.
    pub fn parse(value: &str) -> Option<ArchiveDefault> {
        match value {
            "always" => Some(ArchiveDefault::Always),
            "never" => Some(ArchiveDefault::Never),
            "roster" => Some(ArchiveDefault::Roster),
            _ => None,
        }
    }
}

/// A user's archiving preferences (XEP-0441 §4). `Default` is what a user who never set
/// any has: archive everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchivePrefs {
    pub default: ArchiveDefault,
    /// JIDs whose messages are always archived; stored sorted and without duplicates.
    pub always: Vec<String>,
    /// JIDs whose messages are never archived; stored sorted and without duplicates.
    pub never: Vec<String>,
}
