//! Fleetgate's domain model and the one place its rules are enforced.
//!
//! # Layout
//! - [`access`]: access events reported by units.
//! - [`arrivals`]: the arrival index: what was accepted, in order, for live streams to
//!   resume from.
//! - [`certificates`]: the client certificates the gateway CA issued, and their revocation.
//! - [`keys`]: access keys and the per-unit key sets (rule 6).
//! - [`ids`]: newtype ids and the character rules that keep them safe in MQTT topics and
//!   certificate subjects.
//! - [`codec`]: how records become bytes (postcard behind a schema version byte).
//! - [`tables`]: every redb table definition, with its key and value encodings.
//! - [`model`]: the records (accounts, principals, devices, assets, device status).
//! - [`telemetry`]: decoding and validating a unit's telemetry payload.
//! - [`policy`]: who may see and change what; the single authorization authority.
//! - [`ops`]: every mutation, each a function over one redb write transaction.
//! - [`operators`]: operators (rule 6) and the durable outbox of their SMS invitations.
//! - [`read`]: queries over a read transaction (history scans, listings).
//! - [`retention`]: how long telemetry, access events and the audit log are kept, and the
//!   bounded batches that delete what is older.
//! - [`resume`]: what a live stream that reconnects is replayed, as its viewer may see it now.
//! - [`rule`]: the rules a refusal names, each with its problem `type` URI and sentence.
//! - [`sharing`]: partnerships and visibility grants (rules 2 and 3), and their schedule.
//! - [`support`]: support access requests and cases (rule 4).
//! - [`staff_admin`]: platform staff as the platform admin manages them (disable, delete,
//!   rotate a token), their access ending with them.
//! - [`details`]: asset details and the sharing-profile fields that select them.
//! - [`tenant`]: tenant sharing, mirrors and sharing profiles (rule 5).
//! - [`visibility`]: what an account sees of an asset (owned or shared, and the window).
//! - [`window`]: the one predicate "may this account see this point" (by the point's `ts`).
//! - [`store`]: opening the database (and reopening it after a disk failure), its health,
//!   and bootstrapping an empty one.
//! - [`faults`]: tests only: a storage backend that fails as a full disk would.
//!
//! **Invariant:** this crate knows nothing about actix, MQTT or HTTP. Callers decide on which
//! thread a write transaction runs; the rules a transaction must check live here.

pub mod access;
pub mod arrivals;
pub mod audit;
pub mod binding;
pub mod certificates;
pub mod codec;
pub mod customers;
pub mod details;
pub mod error;
pub mod faults;
pub mod ids;
pub mod keys;
pub mod model;
pub mod operators;
pub mod ops;
pub mod paging;
pub mod policy;
pub mod profile_use;
pub mod read;
pub mod resume;
pub mod retention;
pub mod retire;
pub mod rule;
pub mod share_targets;
pub mod sharing;
pub mod sign_in;
pub mod staff;
pub mod staff_admin;
pub mod stamps;
pub mod store;
pub mod support;
pub mod tables;
pub mod telemetry;
pub mod tenant;
pub mod text;
pub mod time;
pub mod token;
pub mod users;
pub mod visibility;
pub mod window;

pub use error::{OpError, StoreError};
pub use ids::{AccountId, AssetId, DeviceId, GrantId, IdError, PartnershipId, PrincipalId};
/// Re-exported so callers name transaction types without a second redb version.
pub use redb;
pub use rule::Rule;
pub use store::Store;
