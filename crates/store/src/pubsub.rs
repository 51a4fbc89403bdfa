//! Store methods for XEP-0060/0163 PubSub (PEP) and XEP-0054 vcard-temp (SQL in `sqlite/pubsub.rs`).
//!
//! A PEP service is one account's set of nodes; nodes hold items in publication order. The store keeps the node
//! configuration as typed columns and items as serialized payloads; what a node means (access rules, notifications)
//! is the server's business. XEP-0049 private XML storage lives here too, since bookmarks are kept in sync with it.

use crate::{Store, StoreError};

/// Who may see a node's items (XEP-0060 §4.5; the models PEP needs, XEP-0163 §5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccessModel {
    /// Anyone, subscribed to the owner's presence or not (OMEMO bundles, XEP-0384).
    Open,
    /// Contacts subscribed to the owner's presence (the PEP default).
    #[default]
    Presence,
    /// Only the owner and JIDs it affiliated (XEP-0223 private storage, bookmarks).
    Whitelist,
}

impl AccessModel {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessModel::Open => "open",
            AccessModel::Presence => "presence",
            AccessModel::Whitelist => "whitelist",
        }
    }

    pub fn parse(value: &str) -> Option<AccessModel> {
        match value {
            "open" => Some(AccessModel::Open),
            "presence" => Some(AccessModel::Presence),
            "whitelist" => Some(AccessModel::Whitelist),
            _ => None,
        }
    }
}

/// When the last published item is sent to a subscriber (XEP-0060 §16.4.4 `pubsub#send_last_published_item`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SendLast {
    Never,
    OnSub,
    /// The PEP default: also whenever a subscribed contact comes online (XEP-0163 §6.2).
    #[default]
    OnSubAndPresence,
}

impl SendLast {
    pub fn as_str(self) -> &'static str {
        match self {
            SendLast::Never => "never",
            SendLast::OnSub => "on_sub",
            SendLast::OnSubAndPresence => "on_sub_and_presence",
        }
    }

    pub fn parse(value: &str) -> Option<SendLast> {
        match value {
            "never" => Some(SendLast::Never),
            "on_sub" => Some(SendLast::OnSub),
            "on_sub_and_presence" => Some(SendLast::OnSubAndPresence),
            _ => None,
        }
    }
}

/// A node's configuration (the `pubsub#*` fields drupe supports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub access_model: AccessModel,
    /// `false`: only the latest item is kept (for last-item delivery), whatever `max_items` says.
    pub persist_items: bool,
    /// Items kept; publishing more drops the oldest.
    pub max_items: u32,
    pub send_last: SendLast,
    pub notify_retract: bool,
    pub notify_delete: bool,
    pub title: Option<String>,
}

impl Default for NodeConfig {
    /// The PEP defaults (XEP-0163 §4.3 and what peers use): presence access, one persistent item.
    fn default() -> NodeConfig {
        NodeConfig {
            access_model: AccessModel::Presence,
            persist_items: true,
            max_items: 1,
            send_last: SendLast::OnSubAndPresence,
            notify_retract: true,
            notify_delete: true,
            title: None,
        }
    }
}

impl NodeConfig {
    /// How many items the store keeps for this configuration.
    pub fn kept_items(&self) -> u32 {
        if self.persist_items {
            self.max_items.max(1)
        } else {
            1
        }
    }
}

/// One published item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubsubItem {
    /// Unique within its node; publishing the same id again replaces the item (and makes it the latest).
    pub id: String,
    /// The publisher's JID.
    pub publisher: String,
    /// The serialized payload element (the one child of `<item/>`).
    pub payload: String,
    pub published_ms: i64,
}

/// Which items of a node to read: by id, or a page (XEP-0059) in publication order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemsQuery {
    /// When not empty, only these items (in publication order; missing ids are skipped).
    pub ids: Vec<String>,
    /// RSM `<after>`: items published after this one.
    pub after: Option<String>,
    /// RSM `<before>`: `Some(None)` (or `max_items`) asks for the latest items, `Some(Some(id))` for those just
    /// before `id`.
    pub before: Option<Option<String>>,
    /// Page size.
    pub max: usize,
}

/// A page of items, always in publication order (oldest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemsPage {
    pub items: Vec<PubsubItem>,
    /// Items in the node, ignoring paging.
    pub count: u64,
    /// No more items in the paging direction.
    pub complete: bool,
}

/// The outcome of a publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// Stored; `created` when the node was created (auto-create, XEP-0163 §3) with the given configuration.
    Stored { created: bool, config: NodeConfig },
    /// The node does not exist and the owner already has the most nodes allowed.
    TooManyNodes,
}

/// The outcome of creating a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeCreated {
    Created,
    Exists,
    TooManyNodes,
}

/// A JID's affiliation with a node (XEP-0060 §4.1), as far as PEP's whitelist model needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Affiliation {
    Member,
    Publisher,
    Outcast,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Member => "member",
            Affiliation::Publisher => "publisher",
            Affiliation::Outcast => "outcast",
        }
    }

    pub fn parse(value: &str) -> Option<Affiliation> {
        match value {
            "member" => Some(Affiliation::Member),
            "publisher" => Some(Affiliation::Publisher),
            "outcast" => Some(Affiliation::Outcast),
            _ => None,
        }
    }
}

impl Store {
    // --- PEP nodes (XEP-0060 §8, XEP-0163) ------------------------------------------------

    /// A node's configuration, `None` if the owner has no such node (or no account).
    pub async fn pubsub_node(&self, owner: &str, node: &str) -> Result<Option<NodeConfig>, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_node(owner, node).await,
        }
    }

    /// Every node of the owner with its configuration, sorted by name.
    pub async fn pubsub_nodes(&self, owner: &str) -> Result<Vec<(String, NodeConfig)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_nodes(owner).await,
        }
    }

    /// Creates a node unless it exists or the owner has `max_nodes` already.
    /// [`StoreError::NoSuchAccount`] if there is no such owner.
    pub async fn pubsub_node_create(
        &self,
        owner: &str,
        node: &str,
        config: &NodeConfig,
        max_nodes: u32,
    ) -> Result<NodeCreated, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_node_create(owner, node, config, max_nodes).await,
        }
    }

    /// Replaces a node's configuration, dropping the oldest items beyond what it now keeps; `false` if there is no
    /// such node.
    pub async fn pubsub_node_configure(
        &self,
        owner: &str,
        node: &str,
        config: &NodeConfig,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_node_configure(owner, node, config).await,
        }
    }

    /// Deletes a node with its items and affiliations; `false` if there was none.
    pub async fn pubsub_node_delete(&self, owner: &str, node: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_node_delete(owner, node).await,
        }
    }

    // --- items ---------------------------------------------------------------------------

    /// Publishes an item: creates the node with `create` if missing (unless the owner has `max_nodes`), replaces
    /// an item with the same id, and drops the oldest items beyond what the node keeps. One transaction.
    /// [`StoreError::NoSuchAccount`] if there is no such owner.
    pub async fn pubsub_publish(
        &self,
        owner: &str,
        node: &str,
        create: &NodeConfig,
        item: &PubsubItem,
        max_nodes: u32,
    ) -> Result<Published, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_publish(owner, node, create, item, max_nodes).await,
        }
    }

    /// Removes one item; `false` if it was not there.
    pub async fn pubsub_retract(&self, owner: &str, node: &str, id: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_retract(owner, node, id).await,
        }
    }

    /// Removes every item of a node (XEP-0060 §8.5); `false` if there is no such node.
    pub async fn pubsub_purge(&self, owner: &str, node: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_purge(owner, node).await,
        }
    }

    /// Items of a node (see [`ItemsQuery`]). [`StoreError::NotFound`] if an RSM anchor is not in the node.
    pub async fn pubsub_items(&self, owner: &str, node: &str, query: &ItemsQuery) -> Result<ItemsPage, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_items(owner, node, query).await,
        }
    }

    /// The latest item of a node, if any.
    pub async fn pubsub_last_item(&self, owner: &str, node: &str) -> Result<Option<PubsubItem>, StoreError> {
        let query = ItemsQuery { before: Some(None), max: 1, ..Default::default() };
        let page = match self.pubsub_items(owner, node, &query).await {
            Err(StoreError::NotFound) => return Ok(None),
            other => other?,
        };
        Ok(page.items.into_iter().next_back())
    }

    // --- affiliations (whitelist access, XEP-0060 §8.9) ---------------------------------

    /// The node's affiliated JIDs (bare), sorted; the owner is implicit and not listed.
    pub async fn pubsub_affiliations(&self, owner: &str, node: &str) -> Result<Vec<(String, Affiliation)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_affiliations(owner, node).await,
        }
    }

    /// Sets (`Some`) or removes (`None`) affiliations; `false` if there is no such node.
    pub async fn pubsub_set_affiliations(
        &self,
        owner: &str,
        node: &str,
        changes: &[(String, Option<Affiliation>)],
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.pubsub_set_affiliations(owner, node, changes).await,
        }
    }

    // --- vcard-temp (XEP-0054) and private XML storage (XEP-0049) -----------------------

    /// The owner's serialized `<vCard/>`, if one was stored.
    pub async fn vcard(&self, owner: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.vcard(owner).await,
        }
    }

    /// Replaces the owner's vCard. [`StoreError::NoSuchAccount`] if there is no such owner.
    pub async fn vcard_set(&self, owner: &str, vcard: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.vcard_set(owner, vcard).await,
        }
    }

    /// The owner's private XML element (serialized) stored under `namespace`.
    pub async fn private_xml(&self, owner: &str, namespace: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.private_xml(owner, namespace).await,
        }
    }

    /// Stores (`Some`) or removes (`None`) the owner's private XML under `namespace`, unless storing would take the
    /// owner past `max_total_bytes` of private XML (then `false`, nothing stored).
    /// [`StoreError::NoSuchAccount`] if there is no such owner.
    pub async fn private_xml_set(
        &self,
        owner: &str,
        namespace: &str,
        xml: Option<&str>,
        max_total_bytes: u64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.private_xml_set(owner, namespace, xml, max_total_bytes).await,
        }
    }
}
