//! memtrail-collect: /proc -> snapshots.
