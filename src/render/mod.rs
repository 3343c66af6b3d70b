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

use crate::report::{Chart, Figure, Headline, Report, Series, Tabular};

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
    /// JSON lines: one `{"row": …}` per row, streamed as parts finish where the report can,
    /// then one `{"report": …}` with everything but the rows.
    Jsonl,
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
            Self::Jsonl => "application/x-ndjson",
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
    (
        "layout.html.j2",
        include_str!("../../templates/layout.html.j2"),
    ),
    (
        "section.html.j2",
        include_str!("../../templates/section.html.j2"),
    ),
    (
        "dashboard.html.j2",
        include_str!("../../templates/dashboard.html.j2"),
    ),
    (
        "service.html.j2",
        include_str!("../../templates/service.html.j2"),
    ),
    (
        "login.html.j2",
        include_str!("../../templates/login.html.j2"),
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
        env.add_filter("cell", html_cell);
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

    /// Renders the template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: TemplateValue) -> Result<String, RenderError> {
        Ok(self.env.get_template(name)?.render(ctx)?)
    }
}

/// What a report page opens with: the row count, the counts by facet, the summary's own
/// figures, and a chart of the main dimension.
#[derive(Debug, Clone, Serialize)]
pub struct Lead {
    /// Headline figures, the row count first.
    pub figures: Vec<Figure>,
    /// Counts of rows by each facet, largest first: (facet, [(value, count)]).
    pub facets: Vec<(String, Vec<(String, usize)>)>,
    /// The chart, when there is something to draw.
    pub chart: Option<Chart>,
    /// The sentence shown instead of an empty table.
    pub empty: String,
    /// What the rows are, in the plural.
    pub noun: &'static str,
}

/// Most values a facet lists before the rest are counted together.
const FACET_VALUES: usize = 8;

impl Lead {
    /// The lead of `report`.
    pub fn of<R, S>(report: &Report<R, S>) -> Self
    where
        R: Tabular,
        S: Headline<R>,
    {
        let cells: Vec<Vec<String>> = report.rows.iter().map(Tabular::cells).collect();
        Self::with_cells(report, &cells)
    }

    /// The lead of `report`, whose rows' cells are `cells`.
    fn with_cells<R, S>(report: &Report<R, S>, cells: &[Vec<String>]) -> Self
    where
        R: Tabular,
        S: Headline<R>,
    {
        let columns = R::columns();
        let many = R::noun();
        let column = |name: &str| columns.iter().position(|c| *c == name);
        let counted = |index: usize| {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for row in cells {
                let value = row.get(index).map_or("", String::as_str);
                *counts
                    .entry(if value.is_empty() { "(none)" } else { value })
                    .or_default() += 1;
            }
            let mut counts: Vec<(String, usize)> =
                counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            counts
        };
        let mut figures = Vec::new();
        if R::counted() {
            figures.push(Figure::new(
                capitalise(many),
                chart::number(report.rows.len() as f64, 0),
            ));
        }
        figures.extend(report.summary.figures(&report.rows));
        let facets = R::facets()
            .into_iter()
            .filter_map(|facet| {
                let mut counts = counted(column(facet)?);
                if counts.len() > FACET_VALUES {
                    let rest: usize = counts[FACET_VALUES - 1..].iter().map(|(_, n)| n).sum();
                    let others = counts.len() - (FACET_VALUES - 1);
                    counts.truncate(FACET_VALUES - 1);
                    counts.push((format!("{others} others"), rest));
                }
                (!counts.is_empty()).then(|| (facet.to_owned(), counts))
            })
            .collect();
        let chart = report
            .summary
            .chart(&report.rows)
            .or_else(|| facet_chart::<R>(cells, many, &column));
        let empty = report
            .summary
            .empty()
            .unwrap_or_else(|| format!("No {many}."));
        Self {
            figures,
            facets,
            chart: chart.filter(|c| !c.categories.is_empty()),
            empty,
            noun: many,
        }
    }

    /// The figures and facet counts as `label: value` lines for a terminal or Markdown.
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut lines: Vec<(String, String)> = self
            .figures
            .iter()
            .map(|f| {
                let value = match &f.note {
                    Some(note) => format!("{} ({note})", f.value),
                    None => f.value.clone(),
                };
                (f.label.clone(), value)
            })
            .collect();
        for (facet, counts) in &self.facets {
            let text = counts
                .iter()
                .map(|(value, n)| format!("{value} {n}"))
                .collect::<Vec<_>>()
                .join(" · ");
            lines.push((format!("by {facet}"), text));
        }
        lines
    }
}

/// Rows counted by [`Tabular::chart_by`]: one bar per value of its main column (the most
/// common first, the rest as one bar), stacked by its second column.
fn facet_chart<R: Tabular>(
    cells: &[Vec<String>],
    plural: &str,
    column: &dyn Fn(&str) -> Option<usize>,
) -> Option<Chart> {
    const BARS: usize = 12;
    let (main, stack) = R::chart_by()?;
    let main_index = column(main)?;
    let stack_index = stack.and_then(column);
    let value = |row: &Vec<String>, i: usize| {
        let v = row.get(i).map_or("", String::as_str);
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.to_owned()
        }
    };
    let mut totals: std::collections::BTreeMap<String, usize> = Default::default();
    for row in cells {
        *totals.entry(value(row, main_index)).or_default() += 1;
    }
    let mut categories: Vec<(String, usize)> = totals.into_iter().collect();
    categories.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let other = categories.len() > BARS;
    let mut names: Vec<String> = categories
        .iter()
        .take(BARS - usize::from(other))
        .map(|c| c.0.clone())
        .collect();
    if other {
        names.push("other".into());
    }
    let slot = |category: &str| {
        names
            .iter()
            .position(|n| n == category)
            .unwrap_or(names.len() - 1)
    };
    let mut stacks: Vec<String> = match stack_index {
        Some(i) => cells.iter().map(|row| value(row, i)).collect(),
        None => vec![String::new()],
    };
    stacks.sort();
    stacks.dedup();
    let mut series: Vec<Series> = stacks
        .iter()
        .map(|name| Series {
            name: name.clone(),
            values: vec![0.0; names.len()],
        })
        .collect();
    for row in cells {
        let s = stack_index.map_or(0, |i| {
            let v = value(row, i);
            stacks.iter().position(|n| *n == v).unwrap_or(0)
        });
        series[s].values[slot(&value(row, main_index))] += 1.0;
    }
    Some(Chart {
        title: format!(
            "{} by {main}{}",
            capitalise(plural),
            stack.map(|s| format!(" and {s}")).unwrap_or_default()
        ),
        x_label: main.to_owned(),
        y_label: plural.to_owned(),
        decimals: 0,
        categories: names,
        series,
    })
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// How a table cell is laid out: numbers align right; ids, dates and other single words
/// never wrap; text with spaces may.
fn cell_class(cell: &str) -> &'static str {
    let identifier = cell.len() >= 10 && cell.bytes().all(|b| b.is_ascii_digit());
    let numeric = !identifier
        && !cell.is_empty()
        && cell
            .trim_start_matches(['-', '+', '$'])
            .replace(',', "")
            .parse::<f64>()
            .is_ok();
    if numeric {
        "num"
    } else if cell.contains(char::is_whitespace) || cell.chars().count() > 48 {
        "text"
    } else {
        "word"
    }
}

/// A table cell for HTML: a UTC timestamp (`2026-12-02T14:09:59Z`) is shown to the minute,
/// `2026-12-02 14:09`, in a `<time>` element that keeps the full value; anything else is
/// text, escaped by the template.
fn html_cell(cell: String) -> TemplateValue {
    let bytes = cell.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let timestamp = bytes.len() == 20
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && digits(11..13)
        && digits(14..16)
        && digits(17..19)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'Z';
    if timestamp {
        TemplateValue::from_safe_string(format!(
            r#"<time datetime="{cell}" title="{cell}">{} {}</time>"#,
            &cell[..10],
            &cell[11..16]
        ))
    } else {
        TemplateValue::from(cell)
    }
}

/// The few lines of plain JavaScript that sort a report's table by a clicked header.
pub const SORT_SCRIPT: &str = include_str!("../../templates/sort.js");

/// A report laid out for a page: its lead, its chart drawn, and its table with a layout class
/// per column (`num`, `word` or `text`, see [`cell_class`]).
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// The report's title.
    pub title: String,
    /// Headline figures, facet counts and the empty sentence.
    pub lead: Lead,
    /// The chart as inline SVG.
    pub chart_svg: Option<String>,
    /// Column headers.
    pub columns: Vec<&'static str>,
    /// Layout class of each column.
    pub classes: Vec<&'static str>,
    /// The cells.
    pub rows: Vec<Vec<String>>,
    /// Columns left out because no row has a value in them.
    pub hidden: Vec<&'static str>,
    /// The parts that could not be read, described.
    pub errors: Vec<String>,
}

impl Section {
    /// The section of `report`.
    pub fn of<R, S>(report: &Report<R, S>) -> Self
    where
        R: Tabular,
        S: Headline<R>,
    {
        let rows: Vec<Vec<String>> = report.rows.iter().map(Tabular::cells).collect();
        Self::with(report, Lead::with_cells(report, &rows), rows)
    }

    fn with<R, S>(report: &Report<R, S>, lead: Lead, mut rows: Vec<Vec<String>>) -> Self
    where
        R: Tabular,
        S: Headline<R>,
    {
        let mut columns = R::columns();
        let mut hidden = Vec::new();
        if !rows.is_empty() {
            let filled: Vec<bool> = (0..columns.len())
                .map(|i| rows.iter().any(|r| r.get(i).is_some_and(|c| !c.is_empty())))
                .collect();
            hidden = columns
                .iter()
                .zip(&filled)
                .filter(|(_, f)| !**f)
                .map(|(c, _)| *c)
                .collect();
            let keep = |i: usize| filled.get(i).copied().unwrap_or(true);
            columns = columns
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(_, c)| c)
                .collect();
            for row in &mut rows {
                *row = std::mem::take(row)
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| keep(*i))
                    .map(|(_, c)| c)
                    .collect();
            }
        }
        let classes = (0..columns.len())
            .map(|i| {
                let kinds: Vec<&str> = rows
                    .iter()
                    .filter_map(|r: &Vec<String>| r.get(i))
                    .filter(|c| !c.is_empty())
                    .map(|c| cell_class(c))
                    .collect();
                if kinds.contains(&"text") {
                    "text"
                } else if !kinds.is_empty() && kinds.iter().all(|k| *k == "num") {
                    "num"
                } else {
                    "word"
                }
            })
            .collect();
        Self {
            title: report.title.clone(),
            chart_svg: lead.chart.as_ref().map(chart::render),
            lead,
            columns,
            classes,
            rows,
            hidden,
            errors: report.errors.iter().map(describe_error).collect(),
        }
    }
}

/// One row as a JSON line: `{"row": …}` and a newline.
pub fn jsonl_row(row: Value) -> String {
    let mut line = serde_json::json!({ "row": row }).to_string();
    line.push('\n');
    line
}

/// The CSP source that allows one inline script: `sha256-<base64 of its SHA-256>`.
pub fn script_hash(script: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()))
    )
}

/// Renders `report` as `format`. The JSON formats are written from the rows themselves; the
/// others from each row's text cells.
pub fn render_report<R, S>(
    report: &Report<R, S>,
    format: ReportFormat,
    templates: &Templates,
) -> Result<String, RenderError>
where
    R: Tabular + Serialize,
    S: Serialize + Headline<R>,
{
    match format {
        ReportFormat::Json => Ok(serde_json::to_string_pretty(report)? + "\n"),
        ReportFormat::Jsonl => jsonl_report(report),
        ReportFormat::Csv => csv_report(report),
        ReportFormat::Table => table_report(report),
        ReportFormat::Markdown | ReportFormat::Html => templated_report(report, format, templates),
    }
}

/// Each row's text cells, in [`Tabular::columns`] order.
fn cells<R: Tabular>(rows: &[R]) -> Vec<Vec<String>> {
    rows.iter().map(Tabular::cells).collect()
}

fn jsonl_report<R: Serialize, S: Serialize>(report: &Report<R, S>) -> Result<String, RenderError> {
    let mut out = String::new();
    for row in &report.rows {
        out.push_str(&jsonl_row(serde_json::to_value(row)?));
    }
    let mut whole = serde_json::to_value(report)?;
    if let Some(fields) = whole.as_object_mut() {
        fields.remove("rows");
    }
    out.push_str(&serde_json::to_string(
        &serde_json::json!({ "report": whole }),
    )?);
    out.push('\n');
    Ok(out)
}

fn csv_report<R: Tabular, S>(report: &Report<R, S>) -> Result<String, RenderError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(R::columns())?;
    for row in &report.rows {
        writer.write_record(row.cells().iter().map(|cell| csv_cell(cell).into_owned()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn table_report<R, S>(report: &Report<R, S>) -> Result<String, RenderError>
where
    R: Tabular + Serialize,
    S: Serialize + Headline<R>,
{
    let columns = R::columns();
    let rows = cells(&report.rows);
    let summary = flatten(&serde_json::to_value(&report.summary)?);
    let lead = Lead::with_cells(report, &rows);
    let mut out = Vec::new();
    writeln!(out, "{} — {}", report.title, rfc3339(report.generated_at))
        .map_err(csv::Error::from)?;
    write_fields(&mut out, &lead.lines()).map_err(csv::Error::from)?;
    if rows.is_empty() {
        writeln!(out, "{}", lead.empty).map_err(csv::Error::from)?;
    } else {
        write_table(&mut out, &columns, rows).map_err(csv::Error::from)?;
    }
    if !summary.is_empty() {
        write_fields(&mut out, &summary).map_err(csv::Error::from)?;
    }
    for e in &report.errors {
        writeln!(out, "error: {}", terminal_text(&describe_error(e))).map_err(csv::Error::from)?;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn templated_report<R, S>(
    report: &Report<R, S>,
    format: ReportFormat,
    templates: &Templates,
) -> Result<String, RenderError>
where
    R: Tabular + Serialize,
    S: Serialize + Headline<R>,
{
    let rows = cells(&report.rows);
    let summary = flatten(&serde_json::to_value(&report.summary)?);
    let lead = Lead::with_cells(report, &rows);
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
    let section = Section::with(report, lead, rows);
    templates.render(
        name,
        context! {
            title => report.title,
            kind => report.kind,
            generated_at => rfc3339(report.generated_at),
            scope => TemplateValue::from_serialize(&report.scope),
            filters => filters,
            columns => section.columns,
            classes => section.classes,
            rows => section.rows,
            hidden => section.hidden,
            lead => TemplateValue::from_serialize(&section.lead),
            lead_lines => section.lead.lines(),
            chart_svg => section.chart_svg,
            sort_script => SORT_SCRIPT,
            summary => summary,
            errors => TemplateValue::from_serialize(&report.errors),
        },
    )
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    crate::report::timestamp(t)
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
pub fn write_fields<K: AsRef<str>>(out: &mut dyn Write, fields: &[(K, String)]) -> io::Result<()> {
    let width = fields
        .iter()
        .map(|(k, _)| k.as_ref().len())
        .max()
        .unwrap_or(0);
    for (key, value) in fields {
        let key = terminal_text(key.as_ref());
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
        render_report(&sample(), format, &templates).unwrap_or_else(|e| panic!("{e}"))
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
        assert!(!html.contains("<script>x"));
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the sorting script"
        );
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

    #[derive(Serialize)]
    struct Instance {
        id: String,
        account: String,
        state: String,
        region: String,
        note: String,
        cpus: String,
    }

    impl Tabular for Instance {
        fn columns() -> Vec<&'static str> {
            vec!["id", "account", "state", "region", "note", "cpus"]
        }
        fn cells(&self) -> Vec<String> {
            vec![
                self.id.clone(),
                self.account.clone(),
                self.state.clone(),
                self.region.clone(),
                self.note.clone(),
                self.cpus.clone(),
            ]
        }
        fn noun() -> &'static str {
            "instances"
        }
        fn facets() -> Vec<&'static str> {
            vec!["state", "region"]
        }
        fn chart_by() -> Option<(&'static str, Option<&'static str>)> {
            Some(("region", Some("state")))
        }
    }

    fn instances(rows: &[(&str, &str, &str)]) -> Report<Instance> {
        Report {
            kind: "test.instances".into(),
            title: "Instances".into(),
            scope: Scope::default(),
            generated_at: time::macros::datetime!(2026-11-01 12:00:00.123456 UTC),
            rows: rows
                .iter()
                .map(|(id, state, region)| Instance {
                    id: (*id).into(),
                    account: "123456789012".into(),
                    state: (*state).into(),
                    region: (*region).into(),
                    note: String::new(),
                    cpus: "2".into(),
                })
                .collect(),
            summary: Value::Null,
            errors: Vec::new(),
            attempted: 1,
        }
    }

    fn render_instances(report: &Report<Instance>, format: ReportFormat) -> String {
        let templates = Templates::new(None).unwrap_or_else(|e| panic!("{e}"));
        render_report(report, format, &templates).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_format_for_people_leads_with_the_counts() {
        let report = instances(&[
            ("i-1", "running", "eu-west-1"),
            ("i-2", "running", "us-east-1"),
            ("i-3", "stopped", "eu-west-1"),
        ]);
        let lead = Lead::of(&report);
        assert_eq!(lead.figures[0], Figure::new("Instances", "3"));
        assert_eq!(
            lead.facets[0],
            (
                "state".to_owned(),
                vec![("running".to_owned(), 2), ("stopped".to_owned(), 1)]
            )
        );
        let chart = lead.chart.as_ref().unwrap_or_else(|| panic!("a chart"));
        assert_eq!(chart.categories, ["eu-west-1", "us-east-1"]);
        assert_eq!(chart.series.len(), 2, "stacked by state");
        assert_eq!(chart.series[0].values, [1.0, 1.0]);
        assert_eq!(chart.series[1].values, [1.0, 0.0]);

        let html = render_instances(&report, ReportFormat::Html);
        let figures = html.find("class=\"figures\"").unwrap_or(usize::MAX);
        let table = html.find("<table").unwrap_or(0);
        assert!(figures < table, "the figures come before the table");
        assert!(html.contains("<dt>Instances</dt><dd>3"), "{html}");
        assert!(html.contains("running 2 · stopped 1"));
        assert!(html.contains("class=\"axis axis-y\""));
        assert!(html.contains("2026-11-01T12:00:00Z"), "to the second");
        assert!(
            html.contains("<td class=\"num\">2</td>"),
            "numbers align right"
        );
        assert!(
            html.contains("<td class=\"word\">123456789012</td>"),
            "account ids are not numbers"
        );
        assert!(
            html.contains("left out: note") && !html.contains(">note</button>"),
            "empty columns are left out"
        );
        let md = render_instances(&report, ReportFormat::Markdown);
        assert!(md.contains("- **Instances**: 3"), "{md}");
        assert!(
            md.contains("- **by region**: eu-west-1 2 · us-east-1 1"),
            "{md}"
        );
        assert!(
            md.contains("---: |"),
            "numbers align right in Markdown too: {md}"
        );
        let table = render_instances(&report, ReportFormat::Table);
        assert!(table.contains("by state") && table.contains("running 2 · stopped 1"));
        let csv = render_instances(&report, ReportFormat::Csv);
        assert!(
            csv.starts_with("id,account,state,region,note,cpus\n"),
            "CSV keeps every column"
        );
    }

    #[test]
    fn timestamps_show_to_the_minute_and_keep_their_value() {
        assert_eq!(
            html_cell("2026-12-02T14:09:59Z".into()).to_string(),
            r#"<time datetime="2026-12-02T14:09:59Z" title="2026-12-02T14:09:59Z">2026-12-02 14:09</time>"#
        );
        assert!(!html_cell("<b>2026-12-02T14:09:59Z</b>".into()).is_safe());
        assert!(!html_cell("2026-12-02T14:09:59+01".into()).is_safe());
    }

    #[test]
    fn jsonl_is_a_line_per_row_then_the_report_without_them() {
        let report = instances(&[
            ("i-1", "running", "eu-west-1"),
            ("i-2", "stopped", "us-east-1"),
        ]);
        let text = render_instances(&report, ReportFormat::Jsonl);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["row"]["id"], "i-1");
        assert_eq!(lines[1]["row"]["state"], "stopped");
        assert_eq!(lines[2]["report"]["kind"], "test.instances");
        assert!(lines[2]["report"].get("rows").is_none());
        assert!(
            ReportFormat::negotiate(Some("jsonl"), None).is_err(),
            "not over HTTP"
        );
    }

    #[test]
    fn an_empty_report_says_so_in_words() {
        let report = instances(&[]);
        let html = render_instances(&report, ReportFormat::Html);
        assert!(
            html.contains("<p class=\"empty\">No instances.</p>"),
            "{html}"
        );
        assert!(!html.contains("<table class=\"sortable\""));
        assert!(!html.contains("<svg"), "no empty frame");
        assert!(render_instances(&report, ReportFormat::Markdown).contains("_No instances._"));
        assert!(render_instances(&report, ReportFormat::Table).contains("No instances."));
    }

    #[test]
    fn the_sorting_script_is_allowed_by_its_hash_only() {
        let html = render_instances(
            &instances(&[("i-1", "running", "eu-west-1")]),
            ReportFormat::Html,
        );
        let script = html
            .split("<script>")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .unwrap_or_default();
        assert_eq!(
            script, SORT_SCRIPT,
            "the page's script is the hashed one, byte for byte"
        );
        assert!(script_hash(script).starts_with("sha256-"));
    }

    #[test]
    fn a_templates_dir_overrides_by_file_name() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("report.md.j2"), "custom {{ title }}")?;
        let templates = Templates::new(Some(dir.path()))?;
        let md = render_report(&sample(), ReportFormat::Markdown, &templates)?;
        assert_eq!(md, "custom Test <rows>");
        Ok(())
    }
}
