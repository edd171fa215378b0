//! What the three sharing scenarios (`visibility`, `fanout`, `revoke-storm`) share, owned by
//! none of them: grantee sub-accounts and their grants (`setup.rs`), the removal order and
//! the cut-off ledger that judges every point a grantee received (`cutoff.rs`) and the
//! measured frame of the two cut-off runs around it (`cutoff_run.rs`), and the
//! grantees' live streams, the account that must see nothing and the 404 check
//! (`streams.rs`).

pub(crate) mod cutoff;
pub(crate) mod cutoff_run;
pub(crate) mod setup;
pub(crate) mod streams;
