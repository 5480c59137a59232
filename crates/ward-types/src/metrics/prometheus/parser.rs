//! The text parser: Go's state machine (`expfmt/text_parse.go`) rewritten as a loop over
//! states, with the same reading of every byte, the same errors and the same partial result
//! when it stops.

use super::{family_of, Aggregate, Family, Kind, Metric, Series};
use crate::metrics::{gonum, LineError};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the parser read.
pub(super) struct Read {
    pub(super) families: Vec<Family>,
    pub(super) error: Option<LineError>,
    /// The line the parser ended on.
    pub(super) lines: usize,
}

/// The parser's states (Go's state functions).
#[derive(Debug, Clone, Copy)]
enum State {
    StartOfLine,
    Comment,
    MetricName,
    Labels,
    LabelName,
    LabelValue,
    Value,
    Timestamp,
    Help,
    Type,
}

#[derive(Default)]
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// The byte last read; meaningless once `eof`.
    byte: u8,
    eof: bool,
    error: Option<&'static str>,
    line: usize,
    token: Vec<u8>,
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
    family: usize,
    series: Series,
    /// The metric of the line being read, until its value decides where it goes.
    pending: Metric,
    pending_names: HashSet<String>,
    /// Whether the label being read is kept on the metric (not `quantile`/`le`).
    label_kept: bool,
    label_name: String,
    /// A summary's or histogram's labels on this line (for finding its metric).
    aggregate_labels: BTreeMap<String, String>,
    /// `quantile` or `le` on this line; NaN when absent.
    bound: f64,
    /// Where the line's value went: (family, metric).
    current: Option<(usize, usize)>,
}

/// Reads the text as `TextParser.TextToMetricFamilies` does: the families in the order
/// first named, and the error that stopped the parse, if any.
pub(super) fn read(output: &str) -> Read {
    let mut p = Parser {
        input: output.as_bytes(),
        ..Parser::default()
    };
    let mut state = Some(State::StartOfLine);
    while let Some(s) = state {
        state = p.step(s);
    }
    if p.eof && p.error.is_none() {
        p.error = Some("unexpected end of input stream");
    }
    Read {
        error: p.error.map(|reason| LineError {
            line: p.line,
            reason,
        }),
        families: p.families,
        lines: p.line,
    }
}

impl Parser<'_> {
    /// Reads the next byte; false at the end of the input.
    fn read(&mut self) -> bool {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.byte = b;
                self.pos += 1;
                true
            }
            None => {
                self.eof = true;
                false
            }
        }
    }

    fn fail(&mut self, reason: &'static str) -> Option<State> {
        self.error = Some(reason);
        None
    }

    fn blank(&self) -> bool {
        self.byte == b' ' || self.byte == b'\t'
    }

    /// Reads past blanks and tabs; false at the end of the input.
    fn skip_blanks(&mut self) -> bool {
        while self.read() {
            if !self.blank() {
                return true;
            }
        }
        false
    }

    fn kind(&self) -> Option<Kind> {
        self.families.get(self.family).and_then(|f| f.kind)
    }

    fn step(&mut self, state: State) -> Option<State> {
        match state {
            State::StartOfLine => {
                self.line += 1;
                if !self.skip_blanks() {
                    self.eof = false; // the one place the end is expected
                    return None;
                }
                Some(match self.byte {
                    b'#' => State::Comment,
                    b'\n' => State::StartOfLine,
                    _ => State::MetricName,
                })
            }
            State::Comment => self.comment(),
            State::MetricName => {
                if !self.read_name(false) {
                    return None;
                }
                if self.token.is_empty() {
                    return self.fail("invalid metric name");
                }
                self.enter_family();
                let family = self.families.get_mut(self.family)?;
                family.kind.get_or_insert(Kind::Untyped);
                self.pending = Metric::default();
                self.pending_names.clear();
                self.current = None;
                if self.blank() && !self.skip_blanks() {
                    return None;
                }
                Some(State::Labels)
            }
            State::Labels => {
                if matches!(self.kind(), Some(Kind::Summary | Kind::Histogram)) {
                    self.aggregate_labels.clear();
                    self.bound = f64::NAN;
                }
                Some(if self.byte == b'{' {
                    State::LabelName
                } else {
                    State::Value
                })
            }
            State::LabelName => self.label_name(),
            State::LabelValue => self.label_value(),
            State::Value => self.value(),
            State::Timestamp => self.timestamp(),
            State::Help => {
                if self.families.get(self.family)?.help.is_some() {
                    return self.fail("second HELP line for a metric name");
                }
                if !self.read_to_newline(true) {
                    return None;
                }
                let help = String::from_utf8_lossy(&self.token).into_owned();
                self.families.get_mut(self.family)?.help = Some(help);
                Some(State::StartOfLine)
            }
            State::Type => {
                if self.families.get(self.family)?.kind.is_some() {
                    return self.fail(
                        "second TYPE line for a metric name, or TYPE reported after samples",
                    );
                }
                if !self.read_to_newline(false) {
                    return None;
                }
                let Some(kind) = std::str::from_utf8(&self.token)
                    .ok()
                    .and_then(Kind::from_word)
                else {
                    return self.fail("unknown metric type");
                };
                self.families.get_mut(self.family)?.kind = Some(kind);
                Some(State::StartOfLine)
            }
        }
    }

    /// After `#`: a `HELP` or `TYPE` line, or a comment to skip.
    fn comment(&mut self) -> Option<State> {
        if !self.skip_blanks() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        if !self.read_word() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        let next = match self.token.as_slice() {
            b"HELP" => State::Help,
            b"TYPE" => State::Type,
            _ => {
                while self.byte != b'\n' {
                    if !self.read() {
                        return None;
                    }
                }
                return Some(State::StartOfLine);
            }
        };
        if !self.skip_blanks() || !self.read_name(false) {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        if !self.blank() {
            return self.fail("invalid metric name in comment");
        }
        self.enter_family();
        if !self.skip_blanks() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        Some(next)
    }

    /// Inside `{…}`, before a label name.
    fn label_name(&mut self) -> Option<State> {
        if !self.skip_blanks() {
            return None;
        }
        if self.byte == b'}' {
            return self.skip_blanks().then_some(State::Value);
        }
        if !self.read_name(true) {
            return None;
        }
        if self.token.is_empty() {
            return self.fail("invalid label name");
        }
        let name = String::from_utf8_lossy(&self.token).into_owned();
        if name == "__name__" {
            return self.fail("label name \"__name__\" is reserved");
        }
        let kind = self.kind();
        self.label_kept = !(kind == Some(Kind::Summary) && name == "quantile"
            || kind == Some(Kind::Histogram) && name == "le");
        if self.label_kept {
            self.pending.labels.push((name.clone(), String::new()));
        }
        if self.blank() && !self.skip_blanks() {
            return None;
        }
        if self.byte != b'=' {
            return self.fail("expected '=' after a label name");
        }
        if self.label_kept && !self.pending_names.insert(name.clone()) {
            return self.fail("duplicate label names for a metric");
        }
        self.label_name = name;
        Some(State::LabelValue)
    }

    /// After `name=`: a quoted label value, then `,` or `}`.
    fn label_value(&mut self) -> Option<State> {
        if !self.skip_blanks() {
            return None;
        }
        if self.byte != b'"' {
            return self.fail("expected '\"' at the start of a label value");
        }
        if !self.read_quoted() {
            return None;
        }
        let Ok(value) = String::from_utf8(std::mem::take(&mut self.token)) else {
            return self.fail("invalid label value");
        };
        let kind = self.kind();
        if matches!(kind, Some(Kind::Summary | Kind::Histogram)) {
            let bound_name = if kind == Some(Kind::Summary) {
                "quantile"
            } else {
                "le"
            };
            if self.label_name == bound_name {
                match prom_float(&value) {
                    Some(v) => self.bound = v,
                    None if kind == Some(Kind::Summary) => {
                        return self.fail("expected a float as the value of the 'quantile' label")
                    }
                    None => return self.fail("expected a float as the value of the 'le' label"),
                }
            } else {
                self.aggregate_labels
                    .insert(self.label_name.clone(), value.clone());
            }
        }
        if self.label_kept {
            if let Some(last) = self.pending.labels.last_mut() {
                last.1 = value;
            }
        }
        if !self.skip_blanks() {
            return None;
        }
        match self.byte {
            b',' => Some(State::LabelName),
            b'}' => self.skip_blanks().then_some(State::Value),
            _ => self.fail("unexpected end of a label value"),
        }
    }

    /// The sample value; the metric joins its family first, even if the value is bad.
    fn value(&mut self) -> Option<State> {
        let kind = self.kind();
        let family = self.families.get_mut(self.family)?;
        let index = if matches!(kind, Some(Kind::Summary | Kind::Histogram)) {
            let key: Vec<(String, String)> = self
                .aggregate_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            match family.by_labels.get(&key) {
                Some(&i) => i,
                None => {
                    family.metrics.push(std::mem::take(&mut self.pending));
                    family.by_labels.insert(key, family.metrics.len() - 1);
                    family.metrics.len() - 1
                }
            }
        } else {
            family.metrics.push(std::mem::take(&mut self.pending));
            family.metrics.len() - 1
        };
        self.current = Some((self.family, index));
        if !self.read_word() {
            return None;
        }
        let Some(value) = std::str::from_utf8(&self.token).ok().and_then(prom_float) else {
            return self.fail("expected a float as the sample value");
        };
        let (series, bound) = (self.series, self.bound);
        let metric = self.families.get_mut(self.family)?.metrics.get_mut(index)?;
        match kind {
            Some(Kind::Counter | Kind::Gauge | Kind::Untyped) | None => metric.value = Some(value),
            Some(Kind::Summary | Kind::Histogram) => {
                let aggregate = metric.aggregate.get_or_insert_with(Aggregate::default);
                match series {
                    // Go's float-to-uint64 conversion; see the module notes.
                    Series::Count => aggregate.count = value as u64,
                    Series::Sum => aggregate.sum = value,
                    Series::Plain if bound.is_nan() => {}
                    Series::Plain if kind == Some(Kind::Histogram) => {
                        aggregate.entries.push((bound, (value as u64) as f64))
                    }
                    Series::Plain => aggregate.entries.push((bound, value)),
                }
            }
            // Go records an error here that the next read overwrites: no sample, no stop.
            Some(Kind::GaugeHistogram) => {}
        }
        Some(if self.byte == b'\n' {
            State::StartOfLine
        } else {
            State::Timestamp
        })
    }

    /// After the value: an optional timestamp (milliseconds), then the end of the line.
    fn timestamp(&mut self) -> Option<State> {
        if !self.skip_blanks() || !self.read_word() {
            return None;
        }
        let Some(ms) = std::str::from_utf8(&self.token)
            .ok()
            .and_then(gonum::parse_int)
        else {
            return self.fail("expected an integer as the timestamp");
        };
        let (family, index) = self.current?;
        self.families
            .get_mut(family)?
            .metrics
            .get_mut(index)?
            .timestamp_ms = Some(ms);
        if !self.read_to_newline(false) {
            return None;
        }
        if !self.token.is_empty() {
            return self.fail("spurious string after the timestamp");
        }
        Some(State::StartOfLine)
    }

    /// Makes the family the token names (or the one it is a series of) current.
    fn enter_family(&mut self) {
        let name = String::from_utf8_lossy(&self.token).into_owned();
        (self.family, self.series) = family_of(&mut self.families, &mut self.by_name, name);
    }

    /// A metric name (`label` false) or label name from the current byte on; the first
    /// byte after it stays current. False at the end of the input.
    fn read_name(&mut self, label: bool) -> bool {
        self.token.clear();
        let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || (!label && b == b':');
        if !start(self.byte) {
            return true;
        }
        loop {
            self.token.push(self.byte);
            if !self.read() {
                return false;
            }
            if !(start(self.byte) || self.byte.is_ascii_digit()) {
                return true;
            }
        }
    }

    /// Bytes up to a blank, tab or newline, from the current byte on.
    fn read_word(&mut self) -> bool {
        self.token.clear();
        while !self.blank() && self.byte != b'\n' {
            self.token.push(self.byte);
            if !self.read() {
                return false;
            }
        }
        true
    }

    /// The rest of the line from the current byte on. With `escapes`, `\\` and `\n` are
    /// read as escapes (any other is an error); without, a backslash is simply dropped.
    fn read_to_newline(&mut self, escapes: bool) -> bool {
        self.token.clear();
        let mut escaped = false;
        loop {
            if escapes && escaped {
                match self.byte {
                    b'\\' => self.token.push(b'\\'),
                    b'n' => self.token.push(b'\n'),
                    _ => {
                        self.error = Some("invalid escape sequence");
                        return false;
                    }
                }
                escaped = false;
            } else {
                match self.byte {
                    b'\n' => return true,
                    b'\\' => escaped = true,
                    b => self.token.push(b),
                }
            }
            if !self.read() {
                return false;
            }
        }
    }

    /// A label value after its opening quote, with `\"`, `\\` and `\n` escapes.
    fn read_quoted(&mut self) -> bool {
        self.token.clear();
        let mut escaped = false;
        while self.read() {
            if escaped {
                match self.byte {
                    b'"' | b'\\' => self.token.push(self.byte),
                    b'n' => self.token.push(b'\n'),
                    _ => {
                        self.error = Some("invalid escape sequence");
                        return false;
                    }
                }
                escaped = false;
                continue;
            }
            match self.byte {
                b'"' => return true,
                b'\n' => {
                    self.error = Some("label value contains an unescaped new-line");
                    return false;
                }
                b'\\' => escaped = true,
                b => self.token.push(b),
            }
        }
        false
    }
}

/// The parser's floats: Go's, without hex floats or `_`.
fn prom_float(s: &str) -> Option<f64> {
    if s.contains(['p', 'P', '_']) {
        return None;
    }
    gonum::parse_float(s)
}
