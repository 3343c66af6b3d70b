//! `services.report`: one registered service, its EC2, RDS, EBS and Lambda resources (found
//! by its tags), the waste among them, and its cost for a period.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::cost_report::{CostReportParams, DEFAULT_METRIC};
use super::params::{SERVICE_KEY, Selection, check_date, date_pattern, refine, result, ymd};
use super::{Action, ActionError, Assessment, Params, RunEnv, registered};
use crate::app::Context;
use crate::domain::service::{Service, ServiceKey};
use crate::domain::{FieldError, ValidationErrors};
use crate::plugins::aws::ce::{self, CostRow, CostSummary, Granularity, GroupBy};
use crate::plugins::aws::ebs::{self, EbsQuery, EbsRow, EbsSummary};
use crate::plugins::aws::ec2::{self, Ec2Query, Ec2Row, Ec2Summary};
use crate::plugins::aws::lambdas::{self, LambdaQuery, LambdaRow, LambdaSummary};
use crate::plugins::aws::prices::Prices;
use crate::plugins::aws::rds::{self, RdsQuery, RdsRow, RdsSummary};
use crate::plugins::aws::savings::{self, Finding, SavingsQuery, SavingsSummary, Thresholds};
use crate::report::{Completeness, Report};

/// Params of `services.report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ServiceReportParams {
    /// The registered service (name or id).
    pub service: String,
    /// Accounts and regions to look for its resources in.
    #[serde(flatten)]
    pub selection: Selection,
    /// First day of the cost period (YYYY-MM-DD); default: the first day of last month.
    #[serde(with = "ymd::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub start: Option<Date>,
    /// First day not included (YYYY-MM-DD); default: today.
    #[serde(with = "ymd::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub end: Option<Date>,
}

impl ServiceReportParams {
    fn cost(&self) -> CostReportParams {
        CostReportParams {
            start: self.start,
            end: self.end,
            ..CostReportParams::default()
        }
    }
}

impl Params for ServiceReportParams {
    fn refine_schema(schema: &mut serde_json::Value) {
        Selection::refine_schema(schema);
        refine::set(schema, "service", "pattern", SERVICE_KEY.into());
        refine::set(schema, "start", "pattern", date_pattern().into());
        refine::set(schema, "end", "pattern", date_pattern().into());
        if let Some(object) = schema.as_object_mut() {
            object.insert("required".into(), serde_json::json!(["service"]));
        }
    }

    const QUERY_ALIASES: &'static [(&'static str, &'static str)] =
        &[("region", "regions"), ("account", "accounts")];

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        if let Err(message) = ServiceKey::parse(&self.service) {
            errors.push(FieldError::new("service", message));
        }
        self.selection.check(&mut errors);
        check_date("start", self.start, &mut errors);
        check_date("end", self.end, &mut errors);
        if errors.is_empty()
            && let Err(e) = self.cost().validate()
        {
            errors.extend(e.0);
        }
        result(errors)
    }
}

/// The service, its resources and its cost. Its serde form is the JSON contract of
/// `GET /services/{key}/report`.
#[derive(Debug, Serialize)]
pub struct ServiceReportOutcome {
    /// The registered service.
    pub service: Service,
    /// Its EC2 instances.
    pub ec2: Report<Ec2Row, Ec2Summary>,
    /// Its RDS DB instances.
    pub rds: Report<RdsRow, RdsSummary>,
    /// Its EBS volumes and snapshots.
    pub ebs: Report<EbsRow, EbsSummary>,
    /// Its Lambda functions.
    pub lambda: Report<LambdaRow, LambdaSummary>,
    /// The waste among its resources (the savings report narrowed to the service).
    pub savings: Report<Finding, SavingsSummary>,
    /// Its cost (Cost Explorer filtered on all of its tags).
    pub cost: Report<CostRow, CostSummary>,
}

impl ServiceReportOutcome {
    /// Complete when every report is, failed when every one failed, else partial.
    pub fn completeness(&self) -> Completeness {
        let parts = [
            self.ec2.completeness(),
            self.rds.completeness(),
            self.ebs.completeness(),
            self.lambda.completeness(),
            self.savings.completeness(),
            self.cost.completeness(),
        ];
        if parts.iter().all(|c| *c == Completeness::Complete) {
            Completeness::Complete
        } else if parts.iter().all(|c| *c == Completeness::Failed) {
            Completeness::Failed
        } else {
            Completeness::Partial
        }
    }
}

/// The service report.
pub struct ServiceReport;

impl Action for ServiceReport {
    const NAME: &'static str = "services.report";
    const SUMMARY: &'static str = "A registered service: its EC2, RDS, EBS and Lambda resources \
                                   (by its tags), the waste among them, and its cost for a period";
    const CHANGES: bool = false;
    type Params = ServiceReportParams;
    type Outcome = ServiceReportOutcome;

    async fn run(
        ctx: &Context,
        params: &ServiceReportParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        let service = registered::named(ctx, "service", &params.service).await?;
        let matcher = registered::matcher(ctx).await?;
        let aws = ctx.aws().await;
        let targets = params.selection.targets();
        let ec2_query = Ec2Query {
            targets: targets.clone(),
            service: Some((service.name.clone(), service.tags.clone())),
            ..Ec2Query::default()
        };
        let rds_query = RdsQuery {
            targets: targets.clone(),
            service: Some(service.name.clone()),
            ..RdsQuery::default()
        };
        let ebs_query = EbsQuery {
            targets: targets.clone(),
            service: Some(service.name.clone()),
            ..EbsQuery::default()
        };
        let lambda_query = LambdaQuery {
            targets: targets.clone(),
            service: Some(service.name.clone()),
            ..LambdaQuery::default()
        };
        let savings_query = SavingsQuery {
            targets,
            service: Some(service.name.clone()),
            thresholds: Thresholds::from(&ctx.settings.savings),
            ..SavingsQuery::default()
        };
        let prices = Prices::load(ctx.settings.aws.prices_file.as_deref())
            .map_err(|e| ActionError::NotConfigured(e.to_string()))?;
        let cost_query = ce::CeQuery {
            period: params.cost().period(OffsetDateTime::now_utc().date()),
            granularity: Granularity::Monthly,
            metric: DEFAULT_METRIC.into(),
            group_by: Some(GroupBy::RegisteredService),
            forecast: false,
        };
        let tagged = if service.tags.is_empty() {
            Vec::new()
        } else {
            vec![(service.name.clone(), service.tags.clone())]
        };
        // Each report is boxed: their futures together would not fit a worker thread's stack.
        let ec2 = Box::pin(ec2::instance_report(
            aws,
            &ec2_query,
            &matcher,
            env.progress,
        ))
        .await?;
        let rds = Box::pin(rds::instance_report(
            aws,
            &rds_query,
            &matcher,
            env.progress,
        ))
        .await?;
        let ebs = Box::pin(ebs::storage_report(
            aws,
            &ebs_query,
            &matcher,
            &prices,
            env.progress,
        ))
        .await?;
        let lambda = Box::pin(lambdas::function_report(
            aws,
            &lambda_query,
            &matcher,
            env.progress,
        ))
        .await?;
        let savings = Box::pin(savings::savings_report(
            aws,
            &savings_query,
            &matcher,
            &prices,
            env.progress,
        ))
        .await?;
        let cost = Box::pin(ce::cost_report(aws, &cost_query, &tagged, env.progress)).await?;
        Ok(ServiceReportOutcome {
            service,
            ec2,
            rds,
            ebs,
            lambda,
            savings,
            cost,
        })
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_completeness(outcome.completeness())
    }
}
