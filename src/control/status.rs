//! `--status` rendered: the supervisor's [`Status`] as a table for people, or as one
//! JSON object for programs.

use std::fmt::Write as _;
use std::time::Duration;

use super::wire;
use crate::duration::Rounded;
use crate::events::{Answer, Outcome, Reply, Status};

/// The reply as the client gets it.
pub fn render(reply: Reply) -> Answer {
    match reply {
        Reply::Said(answer) => answer,
        Reply::Status { status, json: false } => Answer { outcome: Outcome::Ok, body: status_text(&status) },
        Reply::Status { status, json: true } => Answer { outcome: Outcome::Ok, body: status_json(&status) },
    }
}

fn status_text(status: &Status) -> String {
    let rows = &status.processes;
    let mut text = format!("exeunt: {} for {}\n", status.phase, Rounded(status.phase_for));
    let header = ["NAME", "ROLE", "PID", "STATE", "RESTARTS", "FOR"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            let mut state = row.state_and_probe();
            if let Some(live) = row.live.as_ref().filter(|l| *l != "passed") {
                let _ = write!(state, ", liveness probe {live}");
            }
            if let Some(says) = &row.says {
                let _ = write!(state, ", says {says:?}");
            }
            let pid = row.pid.map_or("-".to_string(), |pid| pid.to_string());
            [
                row.name.clone(),
                row.role.to_string(),
                pid,
                state,
                row.restarts.to_string(),
                Rounded(row.held).to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let lines = std::iter::once(header.map(String::from)).chain(cells);
    for line in lines {
        let last = line.len() - 1;
        for (column, cell) in line.iter().enumerate() {
            if column == last {
                text += cell;
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[column]);
            }
        }
        text.push('\n');
    }
    text
}

fn status_json(status: &Status) -> String {
    let rows = &status.processes;
    let mut out = format!(
        "{{\"version\":{},\"phase\":\"{}\",\"phase_seconds\":{},\"ready\":{},\"processes\":[",
        wire::VERSION,
        status.phase,
        Seconds(status.phase_for),
        status.ready,
    );
    for (i, row) in rows.iter().enumerate() {
        let pid = row.pid.map_or("null".to_string(), |pid| pid.to_string());
        let _ = write!(
            out,
            "{}{{\"name\":{},\"role\":\"{}\",\"pid\":{pid},\"state\":\"{}\",\"ready\":{},\"restarts\":{},\"state_seconds\":{}",
            if i > 0 { "," } else { "" },
            JsonString(&row.name),
            row.role,
            row.word,
            row.ready,
            row.restarts,
            Seconds(row.held)
        );
        if let Some(left) = row.restart_in {
            let _ = write!(out, ",\"restart_in_seconds\":{}", Seconds(left));
        }
        if let Some(code) = row.exit_code {
            let _ = write!(out, ",\"exit_code\":{code}");
        }
        let extra = [("probe", &row.probe), ("live", &row.live), ("says", &row.says)];
        for (key, value) in extra.iter().filter_map(|(key, value)| value.as_ref().map(|v| (key, v))) {
            let _ = write!(out, ",\"{key}\":{}", JsonString(value));
        }
        out.push('}');
    }
    out += "]}\n";
    out
}

/// Text as a JSON string.
struct JsonString<'a>(&'a str);

impl std::fmt::Display for JsonString<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::with_capacity(self.0.len() + 2);
        crate::json::push_string(&mut out, self.0.as_bytes());
        // Escaped UTF-8 is UTF-8.
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Seconds with milliseconds, for JSON.
struct Seconds(Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0.as_secs(), self.0.subsec_millis())
    }
}
