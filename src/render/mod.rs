//! Rendering typed results for people and programs: any [`Report`] to a table that fits the
//! terminal, JSON (its serde form), CSV (RFC 4180), Markdown or a self-contained HTML page.
//! Markdown and HTML come from minijinja templates embedded in the binary, which a
//! `templates_dir` setting may override file by file.

pub mod chart;

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use minijinja::{Environment, Value as TemplateValue, context};
use serde::Serialize;
use serde_json::Value;

use crate::report::{Report, Tabular};

/// Output formats of list and show commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// Pretty-printed JSON, the serde form of the value (a stable contract).
    Json,
}

/// Output formats of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// A table sized to the terminal.
    Table,
    /// The report's serde form.
    Json,
    /// The rows, RFC 4180.
    Csv,
    /// A Markdown document.
    Markdown,
    /// A self-contained HTML page.
    Html,
}

impl ReportFormat {
    /// Table on a terminal, JSON otherwise.
    pub fn for_stdout() -> Self {
        if io::stdout().is_terminal() {
            Self::Table
        } else {
            Self::Json
        }
    }

    /// The media type of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Table => "text/plain; charset=utf-8",
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
        }
    }

    /// Picks a format from a `format=` parameter or else an `Accept` header (JSON by default).
    pub fn negotiate(format: Option<&str>, accept: Option<&str>) -> Result<Self, String> {
        if let Some(format) = format {
            return match format {
                "json" => Ok(Self::Json),
                "csv" => Ok(Self::Csv),
                "markdown" | "md" => Ok(Self::Markdown),
                "html" => Ok(Self::Html),
                "table" | "text" => Ok(Self::Table),
                other => Err(format!(
                    "unknown format {other:?}; expected json, csv, markdown, html or table"
                )),
            };
        }
        let accept = accept.unwrap_or_default();
        for media in accept.split(',') {
            let essence = media.split(';').next().unwrap_or_default().trim();
            match essence {
                "application/json" | "*/*" | "application/*" => return Ok(Self::Json),
                "text/csv" => return Ok(Self::Csv),
                "text/markdown" => return Ok(Self::Markdown),
                "text/html" => return Ok(Self::Html),
                "text/plain" => return Ok(Self::Table),
                _ => {}
            }
        }
        Ok(Self::Json)
    }
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed to parse or render.
    #[error("template error: {0}")]
    Template(#[from] minijinja::Error),
    /// A template override could not be read.
    #[error("cannot read template {path}: {source}")]
    Override {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// Serialization failed.
    #[error("cannot serialize the report: {0}")]
    Json(#[from] serde_json::Error),
    /// CSV writing failed.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
}

const EMBEDDED: &[(&str, &str)] = &[
    ("report.md.j2", include_str!("../../templates/report.md.j2")),
    (
        "report.html.j2",
        include_str!("../../templates/report.html.j2"),
    ),
];

/// The template environment, built once.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The embedded templates, each replaced by a file of the same name in `dir` if present.
    pub fn new(dir: Option<&Path>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.add_filter("mdcell", |s: String| {
            s.replace('|', "\\|").replace('\n', " ")
        });
        for (name, source) in EMBEDDED {
            let over = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            match over {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| RenderError::Override {
                            path: path.display().to_string(),
                            source,
                        })?;
                    env.add_template_owned(*name, text)?;
                }
                None => env.add_template(name, source)?,
            }
        }
        Ok(Self { env })
    }

    fn render(&self, name: &str, ctx: TemplateValue) -> Result<String, RenderError> {
        Ok(self.env.get_template(name)?.render(ctx)?)
    }
}

/// Extra content for a report page, such as a chart.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// An inline SVG drawn above the table in HTML.
    pub chart_svg: Option<String>,
}

/// Renders `report` as `format`.
pub fn render_report<R, S>(
    report: &Report<R, S>,
    format: ReportFormat,
    templates: &Templates,
    extras: &Extras,
) -> Result<String, RenderError>
where
    R: Tabular + Serialize,
    S: Serialize,
{
    let columns = R::columns();
    let rows: Vec<Vec<String>> = report.rows.iter().map(Tabular::cells).collect();
    let summary = flatten(&serde_json::to_value(&report.summary)?);
    match format {
        ReportFormat::Json => Ok(serde_json::to_string_pretty(report)? + "\n"),
        ReportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(&columns)?;
            for row in &rows {
                writer.write_record(row.iter().map(|cell| csv_cell(cell).into_owned()))?;
            }
            let bytes = writer
                .into_inner()
                .map_err(|e| csv::Error::from(e.into_error()))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        ReportFormat::Table => {
            let mut out = Vec::new();
            writeln!(out, "{} — {}", report.title, rfc3339(report.generated_at))
                .map_err(csv::Error::from)?;
            write_table(&mut out, &columns, rows).map_err(csv::Error::from)?;
            if !summary.is_empty() {
                write_fields(
                    &mut out,
                    &summary
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.clone()))
                        .collect::<Vec<_>>(),
                )
                .map_err(csv::Error::from)?;
            }
            for e in &report.errors {
                writeln!(out, "error: {}", terminal_text(&describe_error(e)))
                    .map_err(csv::Error::from)?;
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        ReportFormat::Markdown | ReportFormat::Html => {
            let name = if format == ReportFormat::Html {
                "report.html.j2"
            } else {
                "report.md.j2"
            };
            let filters: Vec<(String, String)> = report
                .scope
                .filters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            templates.render(
                name,
                context! {
                    title => report.title,
                    kind => report.kind,
                    generated_at => rfc3339(report.generated_at),
                    scope => TemplateValue::from_serialize(&report.scope),
                    filters => filters,
                    columns => columns,
                    rows => rows,
                    summary => summary,
                    errors => TemplateValue::from_serialize(&report.errors),
                    chart_svg => extras.chart_svg,
                },
            )
        }
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A one-line description of a report error.
pub fn describe_error(e: &crate::report::ReportError) -> String {
    let mut parts = Vec::new();
    if let Some(a) = &e.account {
        parts.push(format!("account {a}"));
    }
    if let Some(r) = &e.region {
        parts.push(format!("region {r}"));
    }
    if let Some(g) = &e.group {
        parts.push(format!("group {g}"));
    }
    format!("{}: {}", parts.join(" "), e.reason)
}

/// Flattens a JSON summary into `(dotted.path, text)` pairs.
pub fn flatten(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Null => {}
            Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// Writes `value` as pretty JSON and a newline.
pub fn write_json<T: Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// A CSV cell a spreadsheet will show as text: a cell starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return would be run as a formula (CSV injection), so it gets a leading
/// `'`, as OWASP recommends. Negative numbers stay numbers.
pub fn csv_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '@', '\t', '\r'])
        || (cell.starts_with('-') && cell.parse::<f64>().is_err());
    if risky {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Text from remote data made safe for a terminal: control characters (escape sequences
/// that could rewrite the screen or the title, bells, backspaces) are shown escaped,
/// `\u{1b}` and the like; newlines and tabs too, so a cell stays on its row.
pub fn terminal_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        std::borrow::Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Writes rows as a table with a header line, sized to the terminal when there is one.
/// Control characters in cells are escaped ([`terminal_text`]).
pub fn write_table(out: &mut dyn Write, header: &[&str], rows: Vec<Vec<String>>) -> io::Result<()> {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row.iter().map(|cell| terminal_text(cell).into_owned()));
    }
    writeln!(out, "{table}")
}

/// Writes `key: value` lines, aligned, with control characters escaped.
pub fn write_fields(out: &mut dyn Write, fields: &[(&str, String)]) -> io::Result<()> {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        let key = terminal_text(key);
        writeln!(out, "{key:<width$}  {}", terminal_text(value))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ReportError, Scope};

    #[derive(Serialize)]
    struct Row {
        name: String,
        cost: String,
    }

    impl Tabular for Row {
        fn columns() -> Vec<&'static str> {
            vec!["name", "cost"]
        }
        fn cells(&self) -> Vec<String> {
            vec![self.name.clone(), self.cost.clone()]
        }
    }

    fn sample() -> Report<Row> {
        Report {
            kind: "test.rows".into(),
            title: "Test <rows>".into(),
            scope: Scope {
                regions: vec!["eu-west-1".into()],
                ..Scope::default()
            },
            generated_at: time::macros::datetime!(2026-11-01 12:00 UTC),
            rows: vec![
                Row {
                    name: "a, \"quoted\"".into(),
                    cost: "1.50".into(),
                },
                Row {
                    name: "<script>x</script>|pipe".into(),
                    cost: "2".into(),
                },
            ],
            summary: serde_json::json!({"total": "3.50", "by": {"eu": 2}}),
            errors: vec![ReportError {
                account: Some("111".into()),
                region: Some("us-east-1".into()),
                group: None,
                reason: "AccessDenied".into(),
            }],
            attempted: 2,
        }
    }

    fn render(format: ReportFormat) -> String {
        let templates = Templates::new(None).unwrap_or_else(|e| panic!("{e}"));
        render_report(&sample(), format, &templates, &Extras::default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(csv_cell("+1+2"), "'+1+2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("\tcmd"), "'\tcmd");
        assert_eq!(csv_cell("-12.5"), "-12.5");
        assert_eq!(csv_cell("i-0abc"), "i-0abc");
    }

    #[test]
    fn control_characters_are_escaped_for_terminals() {
        assert_eq!(
            terminal_text("web\u{1b}]0;pwned\u{7}"),
            "web\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(terminal_text("a\nb"), "a\\nb");
        assert_eq!(terminal_text("plain é"), "plain é");
        let mut out = Vec::new();
        write_table(&mut out, &["name"], vec![vec!["x\u{1b}[2J".into()]]).expect("write");
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let text = render(ReportFormat::Csv);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().filter_map(Result::ok).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][0], "a, \"quoted\"");
        assert!(text.starts_with("name,cost\n"));
    }

    #[test]
    fn html_escapes_and_is_self_contained() {
        let html = render(ReportFormat::Html);
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(html.contains("AccessDenied") && html.contains("by.eu"));
    }

    #[test]
    fn markdown_escapes_pipes() {
        let md = render(ReportFormat::Markdown);
        assert!(md.contains("\\|pipe"), "{md}");
        assert!(md.contains("| name | cost |"));
    }

    #[test]
    fn json_is_the_serde_form() {
        let json: Value = serde_json::from_str(&render(ReportFormat::Json)).unwrap_or_default();
        assert_eq!(json["kind"], "test.rows");
        assert_eq!(json["errors"][0]["region"], "us-east-1");
    }

    #[test]
    fn negotiation_prefers_the_parameter_then_accept() {
        assert_eq!(
            ReportFormat::negotiate(Some("csv"), Some("text/html")),
            Ok(ReportFormat::Csv)
        );
        assert_eq!(
            ReportFormat::negotiate(None, Some("text/html,*/*")),
            Ok(ReportFormat::Html)
        );
        assert_eq!(ReportFormat::negotiate(None, None), Ok(ReportFormat::Json));
        assert!(ReportFormat::negotiate(Some("pdf"), None).is_err());
    }

    #[test]
    fn a_templates_dir_overrides_by_file_name() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("report.md.j2"), "custom {{ title }}")?;
        let templates = Templates::new(Some(dir.path()))?;
        let md = render_report(
            &sample(),
            ReportFormat::Markdown,
            &templates,
            &Extras::default(),
        )?;
        assert_eq!(md, "custom Test <rows>");
        Ok(())
    }
}
