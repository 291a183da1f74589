//! Streaming exports: rows read from the database one by one are written as CSV or JSON
//! lines into the response body as they come, in chunks, never held in memory as a whole.
//! A task owns the query; a bounded channel carries the chunks, so a slow client slows the
//! query down instead of filling memory, and a client that goes away ends the query.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// Bytes gathered before a chunk is handed to the body.
const CHUNK: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// `format=csv|ndjson|jsonl|json`, else the Accept header, else `default`.
    pub fn choose(
        headers: &HeaderMap,
        format: Option<&str>,
        default: Format,
    ) -> Result<Self, ApiError> {
        match format.map(str::trim) {
            Some("csv") => return Ok(Self::Csv),
            Some("ndjson" | "jsonl" | "json") => return Ok(Self::JsonLines),
            Some(_) => {
                return Err(ApiError {
                    field: Some("format".into()),
                    ..ApiError::bad_request(
                        "invalid_parameter",
                        "format must be csv or ndjson (JSON lines)",
                    )
                });
            }
            None => {}
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Ok(if accept.contains("text/csv") {
            Self::Csv
        } else if accept.contains("application/x-ndjson") || accept.contains("application/jsonl") {
            Self::JsonLines
        } else {
            default
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::JsonLines => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "ndjson",
        }
    }
}

/// One CSV field: quoted when it holds a separator, quote or line break. Text that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is prefixed with
/// `'`; numbers are written as they are.
pub fn csv_field(v: &Value) -> String {
    let text = match v {
        Value::Null => return String::new(),
        Value::Bool(b) => return b.to_string(),
        Value::Number(n) => return n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub fn csv_line(cells: &[Value]) -> String {
    let mut line = cells.iter().map(csv_field).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// Turns one row (as JSON) into its CSV cells, in the header's order.
pub type Cells = Box<dyn Fn(&Value) -> Vec<Value> + Send + Sync>;

/// The cells of a flat row: each header name looked up in the object.
pub fn by_name(header: &[String]) -> Cells {
    let names = header.to_vec();
    Box::new(move |v| {
        names
            .iter()
            .map(|n| v.get(n).cloned().unwrap_or(Value::Null))
            .collect()
    })
}

/// Why a producer stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The client went away: nothing more to do.
    Closed,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

/// Where a producer writes its rows.
pub struct Sink {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    format: Format,
    cells: Cells,
}

impl Sink {
    pub async fn row<T: serde::Serialize>(&mut self, row: &T) -> Result<(), Stop> {
        match self.format {
            Format::JsonLines => {
                serde_json::to_writer(&mut self.buf, row)
                    .map_err(|e| Stop::Db(sqlx::Error::Decode(Box::new(e))))?;
                self.buf.push(b'\n');
            }
            Format::Csv => {
                let v = serde_json::to_value(row)
                    .map_err(|e| Stop::Db(sqlx::Error::Decode(Box::new(e))))?;
                self.buf
                    .extend_from_slice(csv_line(&(self.cells)(&v)).as_bytes());
            }
        }
        if self.buf.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK + 1024),
        ));
        self.tx.send(Ok(chunk)).await.map_err(|_| Stop::Closed)
    }
}

/// A streamed answer: the header row (CSV) first, then whatever `produce` writes into the
/// sink. A database error midway ends the body abruptly, so the client sees a broken
/// transfer rather than a short file that looks complete.
pub fn stream<F, Fut>(
    format: Format,
    header: Vec<String>,
    cells: Cells,
    filename: &str,
    produce: F,
) -> Response
where
    F: FnOnce(Sink) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Sink, Stop>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let mut buf = Vec::with_capacity(CHUNK + 1024);
    if format == Format::Csv {
        let names: Vec<Value> = header.iter().map(|h| Value::String(h.clone())).collect();
        buf.extend_from_slice(csv_line(&names).as_bytes());
    }
    let sink = Sink {
        tx: tx.clone(),
        buf,
        format,
        cells,
    };
    tokio::spawn(async move {
        match produce(sink).await {
            Ok(mut sink) => {
                let _ = sink.flush().await;
            }
            Err(Stop::Closed) => {}
            Err(Stop::Db(e)) => {
                tracing::error!(error = %e, "report export failed midway");
                let _ = tx
                    .send(Err(std::io::Error::other("the export failed midway")))
                    .await;
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut res = (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    let disposition = format!(
        "attachment; filename=\"{}.{}\"",
        filename.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
        format.extension()
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field(&json!(null)), "");
        assert_eq!(csv_field(&json!(-1000)), "-1000");
        assert_eq!(csv_field(&json!("plain")), "plain");
        assert_eq!(csv_field(&json!("a,b")), "\"a,b\"");
        assert_eq!(csv_field(&json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(&json!("=HYPERLINK(1)")), "'=HYPERLINK(1)");
        assert_eq!(csv_field(&json!("line\nbreak")), "\"line\nbreak\"");
    }
}
