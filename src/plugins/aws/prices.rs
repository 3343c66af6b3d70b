//! The price table behind monthly cost estimates: EBS storage per GB-month by volume type,
//! snapshots per GB-month, an idle Elastic IP per hour and On-Demand instances per hour, by
//! region, and each previous-generation instance family's current equivalent. The table
//! shipped in `prices.toml` states its source and date; `aws.prices_file` names a table of
//! the user's own in the same form. A price the table lacks is reported by name, never
//! taken as zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The table shipped with pincher.
const EMBEDDED: &str = include_str!("prices.toml");

/// Why a price table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    /// The file cannot be read.
    #[error("cannot read the price table {path} (aws.prices_file): {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a price table.
    #[error("the price table {origin} is not valid: {message}")]
    Invalid {
        /// The file, or `the embedded table`.
        origin: String,
        /// What is wrong, and where.
        message: String,
    },
}

/// A price as the table writes it: a string (`"0.08"`, exact) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Price(Decimal);

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Integer(i64),
            Float(f64),
        }
        let value = match Written::deserialize(deserializer)? {
            Written::Text(text) => Decimal::from_str(text.trim())
                .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a price: {e}")))?,
            Written::Integer(n) => Decimal::from(n),
            Written::Float(f) => Decimal::try_from(f)
                .map_err(|e| serde::de::Error::custom(format!("{f} is not a price: {e}")))?,
        };
        if value.is_sign_negative() {
            return Err(serde::de::Error::custom(format!(
                "{value} is negative; a price is 0 or more"
            )));
        }
        Ok(Price(value))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    source: String,
    as_of: String,
    currency: String,
    hours_per_month: u32,
    #[serde(default)]
    previous_generation: BTreeMap<String, String>,
    #[serde(default)]
    regions: BTreeMap<String, RegionPrices>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionPrices {
    #[serde(default)]
    ebs_gb_month: BTreeMap<String, Price>,
    snapshot_gb_month: Option<Price>,
    eip_idle_hour: Option<Price>,
    #[serde(default)]
    instance_hour: BTreeMap<String, Price>,
    #[serde(default)]
    rds_gb_month: BTreeMap<String, Price>,
    rds_snapshot_gb_month: Option<Price>,
}

/// Where a report's estimates come from, shown with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceSource {
    /// What the prices are, as the table says.
    pub source: String,
    /// The date the prices were taken.
    pub as_of: String,
    /// Their currency.
    pub currency: String,
    /// The table: `embedded`, or the file `aws.prices_file` names.
    pub table: String,
}

/// A monthly estimate, or the name of the price the table lacks (`gp2 volumes in
/// ap-south-2`).
pub type Estimate = Result<Decimal, String>;

/// A loaded price table.
#[derive(Debug, Clone)]
pub struct Prices {
    table: Table,
    origin: String,
}

impl Prices {
    /// The table shipped with pincher.
    pub fn embedded() -> Result<Self, PriceError> {
        Self::parse(EMBEDDED, "embedded")
    }

    /// The table in `path`, or the shipped one when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, PriceError> {
        let Some(path) = path else {
            return Self::embedded();
        };
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self, PriceError> {
        let invalid = |message: String| PriceError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let table: Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if table.hours_per_month == 0 {
            return Err(invalid("hours_per_month must be at least 1".into()));
        }
        Ok(Self {
            table,
            origin: origin.to_owned(),
        })
    }

    /// Where the prices come from.
    pub fn source(&self) -> PriceSource {
        PriceSource {
            source: self.table.source.clone(),
            as_of: self.table.as_of.clone(),
            currency: self.table.currency.clone(),
            table: self.origin.clone(),
        }
    }

    fn region(&self, region: &str) -> Option<&RegionPrices> {
        self.table.regions.get(region)
    }

    fn per_month(&self, hourly: Decimal) -> Decimal {
        money(hourly * Decimal::from(self.table.hours_per_month))
    }

    /// A volume of `volume_type` and `gib` GiB in `region`, per month.
    pub fn volume(&self, region: &str, volume_type: &str, gib: i64) -> Estimate {
        self.region(region)
            .and_then(|r| r.ebs_gb_month.get(volume_type))
            .map(|price| money(price.0 * Decimal::from(gib)))
            .ok_or_else(|| format!("{volume_type} volumes in {region}"))
    }

    /// A snapshot of a `gib` GiB volume in `region`, per month (at most; see the table).
    pub fn snapshot(&self, region: &str, gib: i64) -> Estimate {
        self.region(region)
            .and_then(|r| r.snapshot_gb_month)
            .map(|price| money(price.0 * Decimal::from(gib)))
            .ok_or_else(|| format!("snapshots in {region}"))
    }

    /// An Elastic IP not associated with anything in `region`, per month.
    pub fn idle_address(&self, region: &str) -> Estimate {
        self.region(region)
            .and_then(|r| r.eip_idle_hour)
            .map(|price| self.per_month(price.0))
            .ok_or_else(|| format!("Elastic IPs in {region}"))
    }

    /// An On-Demand instance of `instance_type` in `region`, per month.
    pub fn instance(&self, region: &str, instance_type: &str) -> Estimate {
        self.region(region)
            .and_then(|r| r.instance_hour.get(instance_type))
            .map(|price| self.per_month(price.0))
            .ok_or_else(|| format!("{instance_type} instances in {region}"))
    }

    /// The storage of a DB instance of `storage_type` and `gib` GiB in `region`, per month
    /// (single-AZ; what a stopped instance still costs).
    pub fn database_storage(&self, region: &str, storage_type: &str, gib: i64) -> Estimate {
        self.region(region)
            .and_then(|r| r.rds_gb_month.get(storage_type))
            .map(|price| money(price.0 * Decimal::from(gib)))
            .ok_or_else(|| format!("{storage_type} RDS storage in {region}"))
    }

    /// A manual DB snapshot of a `gib` GiB instance in `region`, per month (at most: AWS
    /// bills what the snapshot stores).
    pub fn database_snapshot(&self, region: &str, gib: i64) -> Estimate {
        self.region(region)
            .and_then(|r| r.rds_snapshot_gb_month)
            .map(|price| money(price.0 * Decimal::from(gib)))
            .ok_or_else(|| format!("RDS snapshots in {region}"))
    }

    /// The current-generation type of a previous-generation `instance_type`
    /// (`m4.large` → `m5.large`); `None` for a current type.
    pub fn current_generation(&self, instance_type: &str) -> Option<String> {
        let (family, size) = instance_type.split_once('.')?;
        let current = self.table.previous_generation.get(family)?;
        Some(format!("{current}.{size}"))
    }
}

/// Rounds to cents.
pub fn money(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("a decimal")
    }

    #[test]
    fn the_shipped_table_loads_and_states_its_source_and_date() {
        let prices = Prices::embedded().expect("the shipped table");
        let source = prices.source();
        assert!(source.source.contains("AWS"), "{source:?}");
        assert!(
            time::Date::parse(
                &source.as_of,
                &time::format_description::well_known::Iso8601::DATE
            )
            .is_ok(),
            "{source:?}"
        );
        assert_eq!(source.currency, "USD");
        assert_eq!(source.table, "embedded");
    }

    #[test]
    fn estimates_multiply_the_table_and_name_what_it_lacks() {
        let prices = Prices::embedded().expect("the shipped table");
        assert_eq!(prices.volume("us-east-1", "gp2", 100), Ok(dec("10.00")));
        assert_eq!(prices.volume("us-east-1", "gp3", 100), Ok(dec("8.00")));
        assert_eq!(prices.snapshot("us-east-1", 8), Ok(dec("0.40")));
        // 0.005 per hour × 730 hours.
        assert_eq!(prices.idle_address("us-east-1"), Ok(dec("3.65")));
        // 0.10 per hour × 730 hours.
        assert_eq!(prices.instance("us-east-1", "m4.large"), Ok(dec("73.00")));
        assert_eq!(
            prices.volume("ap-south-2", "gp2", 100),
            Err("gp2 volumes in ap-south-2".into())
        );
        assert_eq!(
            prices.instance("us-east-1", "x9.huge"),
            Err("x9.huge instances in us-east-1".into())
        );
        assert_eq!(
            prices.current_generation("m4.large").as_deref(),
            Some("m5.large")
        );
        assert_eq!(prices.current_generation("m5.large"), None);
        assert_eq!(
            prices.database_storage("us-east-1", "gp2", 20),
            Ok(dec("2.30"))
        );
        assert_eq!(prices.database_snapshot("us-east-1", 20), Ok(dec("1.90")));
        assert_eq!(
            prices.database_storage("us-east-1", "aurora", 20),
            Err("aurora RDS storage in us-east-1".into())
        );
    }

    #[test]
    fn a_table_of_ones_own_is_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("prices.toml");
        std::fs::write(
            &path,
            "source = \"our EDP rates\"\nas_of = \"2026-11-01\"\ncurrency = \"EUR\"\n\
             hours_per_month = 720\n[regions.eu-west-1]\neip_idle_hour = 0.004\n\
             [regions.eu-west-1.ebs_gb_month]\ngp2 = 0.1\n",
        )
        .expect("write");
        let prices = Prices::load(Some(&path)).expect("our table");
        assert_eq!(prices.source().currency, "EUR");
        assert_eq!(prices.idle_address("eu-west-1"), Ok(dec("2.88")));
        assert_eq!(prices.volume("eu-west-1", "gp2", 30), Ok(dec("3.00")));
        assert!(prices.snapshot("eu-west-1", 30).is_err());

        std::fs::write(
            &path,
            "source = \"x\"\nas_of = \"x\"\ncurrency = \"USD\"\nhours_per_month = 730\n\
             [regions.us-east-1]\neip_idle_hour = \"-1\"\n",
        )
        .expect("write");
        let error = Prices::load(Some(&path)).expect_err("a negative price");
        assert!(error.to_string().contains("negative"), "{error}");
        let missing = Prices::load(Some(&dir.path().join("none.toml"))).expect_err("no file");
        assert!(missing.to_string().contains("aws.prices_file"), "{missing}");
    }
}
