//! Store methods for XEP-0045 rooms (SQL in `sqlite/muc.rs`).
