//! Store methods for XEP-0060/0163 PubSub (PEP) and XEP-0054 vcard-temp (SQL in `sqlite/pubsub.rs`).
