//! The checks shown as badges beside each compare reply. Richer checks (crate::eval's schema,
//! expected fields, must-contain) slot in here; the screen only draws what `badges` returns.

use crate::eval::checks::parse_reply_json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    pub label: &'static str,
    pub pass: bool,
}

/// The badges of a finished reply.
pub fn badges(reply: &str) -> Vec<Badge> {
    vec![Badge {
        label: "json",
        pass: parse_reply_json(reply, false).is_some(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_validity() {
        assert!(badges(" {\"a\": [1, 2]}\n")[0].pass);
        assert!(!badges("Sure! {\"a\": 1}")[0].pass);
        assert!(!badges("")[0].pass);
    }
}
