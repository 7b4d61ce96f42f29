//! The checks shown as badges beside each compare reply. Richer checks (schema, expected
//! fields, must-contain) slot in here; the screen only draws what `badges` returns.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    pub label: &'static str,
    pub pass: bool,
}

/// The badges of a finished reply.
pub fn badges(reply: &str) -> Vec<Badge> {
    vec![Badge {
        label: "json",
        pass: serde_json::from_str::<serde_json::Value>(reply.trim()).is_ok(),
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
