//! Operations and schemas of this area (to be filled).

use super::Op;
use serde_json::Value;

/// This area's operations.
pub(super) fn operations() -> Vec<Op> {
    Vec::new()
}

/// The schemas this area's operations refer to.
pub(super) fn schemas() -> Vec<(String, Value)> {
    Vec::new()
}
