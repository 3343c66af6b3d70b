//! Input limits: how much one request, command or rule step may ask for. Each is a setting
//! under `[limits]` with a documented default (docs/security.md); input beyond one is refused
//! with a message naming the limit and its setting, never with a server error.
//!
//! Params and documents are checked where no settings are at hand (a rule step, a JSON body),
//! so the limits in force are installed once, when the settings are loaded, and read with
//! [`current`].

use std::sync::{LazyLock, OnceLock};

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::date;

time::serde::format_description!(day, Date, "[year]-[month]-[day]");

/// `[limits]`: the largest inputs accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Tag filters in one request (`?tag=` on `GET /services`, `tags` of a report).
    pub tag_filters: usize,
    /// Regions named in one report or action, after removing duplicates.
    pub regions: usize,
    /// Accounts named in one report or action, after removing duplicates.
    pub accounts: usize,
    /// Resource ids named in one action, after removing duplicates.
    pub ids: usize,
    /// Size of a service's `metadata`, serialized as JSON, in bytes.
    pub metadata_bytes: usize,
    /// Nesting depth of a service's `metadata` (an object holding scalars is depth 1).
    pub metadata_depth: usize,
    /// Earliest date a report or filter may name.
    #[serde(with = "day")]
    #[schema(value_type = String)]
    pub earliest_date: Date,
    /// Latest date a report or filter may name.
    #[serde(with = "day")]
    #[schema(value_type = String)]
    pub latest_date: Date,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tag_filters: 20,
            regions: 50,
            accounts: 1000,
            ids: 1000,
            metadata_bytes: 64 * 1024,
            metadata_depth: 32,
            earliest_date: date!(2000 - 01 - 01),
            latest_date: date!(2100 - 12 - 31),
        }
    }
}

/// The widest date range the settings may allow: reports step whole periods back and forth
/// from their dates, which must stay far inside the calendar `time` can represent.
pub const DATE_BOUNDS: (Date, Date) = (date!(1970 - 01 - 01), date!(9000 - 12 - 31));

impl Limits {
    /// Checks the limits themselves; `Err` holds the setting's key and what was wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let counts = [
            ("limits.tag_filters", self.tag_filters, 10_000),
            ("limits.regions", self.regions, 1_000),
            ("limits.accounts", self.accounts, 100_000),
            ("limits.ids", self.ids, 100_000),
            (
                "limits.metadata_bytes",
                self.metadata_bytes,
                16 * 1024 * 1024,
            ),
            ("limits.metadata_depth", self.metadata_depth, 128),
        ];
        for (key, value, most) in counts {
            if !(1..=most).contains(&value) {
                return Err((key, format!("expected 1 to {most}, got {value}")));
            }
        }
        let (first, last) = DATE_BOUNDS;
        for (key, value) in [
            ("limits.earliest_date", self.earliest_date),
            ("limits.latest_date", self.latest_date),
        ] {
            if value < first || value > last {
                return Err((key, format!("expected a date from {first} to {last}")));
            }
        }
        if self.earliest_date >= self.latest_date {
            return Err((
                "limits.latest_date",
                "expected a date after limits.earliest_date".into(),
            ));
        }
        Ok(())
    }

    /// `Err` with a message naming the limit when `date` is outside the allowed range.
    pub fn check_date(&self, date: Date) -> Result<(), String> {
        if date < self.earliest_date || date > self.latest_date {
            Err(format!(
                "{date} is out of range: use a date from {} to {} (limits.earliest_date, \
                 limits.latest_date)",
                self.earliest_date, self.latest_date
            ))
        } else {
            Ok(())
        }
    }

    /// `Err` with a message naming the limit when `count` items exceed `most`.
    pub fn check_count(what: &str, key: &str, count: usize, most: usize) -> Result<(), String> {
        if count > most {
            Err(format!("at most {most} {what} ({key}), got {count}"))
        } else {
            Ok(())
        }
    }
}

static INSTALLED: OnceLock<Limits> = OnceLock::new();
static DEFAULTS: LazyLock<Limits> = LazyLock::new(Limits::default);

/// Makes `limits` the ones [`current`] returns, for the rest of the process. The first call
/// wins; later ones (settings loaded again in one process) are ignored.
pub fn install(limits: Limits) {
    let _ = INSTALLED.set(limits);
}

/// The limits in force: those installed, or the defaults.
pub fn current() -> &'static Limits {
    INSTALLED.get().unwrap_or(&DEFAULTS)
}

/// Nesting depth of a JSON value: 0 for a scalar, 1 for an object or array of scalars.
/// Iterative, so a hostile document cannot overflow the stack.
pub fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Object(map) => Box::new(map.values()),
            serde_json::Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_containers() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!({"a": 1})), 1);
        assert_eq!(json_depth(&json!({"a": {"b": [1]}})), 3);
        assert_eq!(json_depth(&json!({"a": [], "b": {"c": {}}})), 3);
    }

    #[test]
    fn defaults_are_valid_and_dates_are_bounded() {
        let limits = Limits::default();
        assert_eq!(limits.check(), Ok(()));
        assert!(limits.check_date(date!(2000 - 01 - 01)).is_ok());
        assert!(limits.check_date(date!(2100 - 12 - 31)).is_ok());
        let err = limits.check_date(date!(1999 - 12 - 31)).unwrap_err();
        assert!(err.contains("limits.earliest_date"), "{err}");
        assert!(limits.check_date(date!(2101 - 01 - 01)).is_err());
    }

    #[test]
    fn limits_out_of_their_own_range_are_refused() {
        let limits = Limits {
            tag_filters: 0,
            ..Limits::default()
        };
        assert_eq!(limits.check().map_err(|e| e.0), Err("limits.tag_filters"));
        let limits = Limits {
            earliest_date: date!(0001 - 01 - 01),
            ..Limits::default()
        };
        assert_eq!(limits.check().map_err(|e| e.0), Err("limits.earliest_date"));
    }
}
