//! `cargo bench --bench reports`: the finance summary's latency (one year by month, p50 and
//! p99 over repeated requests through the real router) on a seeded database, and the
//! gift ledger export's rows/s when the ledger route is present.
//!
//! `BENCH_GIFTS` (default 1000000) gifts are seeded into `chipin_bench_reports_<N>` by
//! `chipin dev seed`'s code unless that database already holds them (`BENCH_RESEED=1` to
//! start over). `BENCH_RUNS` summaries are timed (default 100); `BENCH_SKIP_LEDGER=1` stops
//! before the ledger export.

use std::time::{Duration, Instant};

use chipin::config::Config;
use chipin::reports::aggregates::Bands;
use chipin::reports::staff::{self, Role};
use chipin::startup::Application;
use sqlx::PgPool;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let gifts: i64 = std::env::var("BENCH_GIFTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let name = format!("chipin_bench_reports_{gifts}");
    let admin = PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    if std::env::var_os("BENCH_RESEED").is_some() {
        sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&admin)
            .await
            .unwrap();
    }
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let config = Config::from_vars([
        ("DATABASE_URL".to_string(), url.clone()),
        ("LISTEN_ADDR".into(), "127.0.0.1:0".into()),
    ])
    .unwrap();
    let bands = Bands::from_config(&config);
    let tz = config.report_time_zone.clone();
    let app = Application::build(config).await.unwrap();
    let db = app.state.db.clone();
    let have: i64 = sqlx::query_scalar("select count(*) from gifts")
        .fetch_one(&db)
        .await
        .unwrap();
    if have < gifts {
        let started = Instant::now();
        let s = chipin::dev::seed(&db, gifts - have, &bands, &tz)
            .await
            .unwrap();
        println!(
            "seeded {} gifts ({} donors, {} refunds, {} disputes) in {:.1} s",
            s.gifts,
            s.donors,
            s.refunds,
            s.disputes,
            started.elapsed().as_secs_f64()
        );
        for (step, secs) in &s.steps {
            println!("  {step}: {secs:.1} s");
        }
    }
    let total: i64 = sqlx::query_scalar("select count(*) from gifts")
        .fetch_one(&db)
        .await
        .unwrap();
    let address = app.address();
    tokio::spawn(app.run_until_stopped());
    let _ = staff::revoke(&db, "bench").await;
    sqlx::query("delete from staff where name = 'bench'")
        .execute(&db)
        .await
        .unwrap();
    let token = staff::add(&db, "bench", Role::Finance).await.unwrap();
    let http = reqwest::Client::new();
    let year = chrono::Utc::now()
        .date_naive()
        .format("%Y")
        .to_string()
        .parse::<i32>()
        .unwrap()
        - 1;

    println!(
        "reports on {total} gifts (release build, this 2-core machine, service in the same process)"
    );
    let url_summary = format!(
        "{address}/api/reports/summary?from={year}-01-01&to={year}-12-31&interval=month&currency=usd"
    );
    // A first request warms the caches; then measured runs.
    let warm = http
        .get(&url_summary)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200, "{}", warm.text().await.unwrap());
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut latencies = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let res = http
            .get(&url_summary)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "  summary, {year} by month, usd ({runs} runs): p50 {:.1} ms, p99 {:.1} ms, slowest {:.1} ms",
        quantile(&latencies, 0.5).as_secs_f64() * 1e3,
        quantile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
    if std::env::var_os("BENCH_SKIP_LEDGER").is_some() {
        return;
    }

    let url_ledger =
        format!("{address}/api/reports/gifts?from={year}-01-01&to={year}-12-31&format=csv");
    let t = Instant::now();
    let res = http
        .get(&url_ledger)
        .bearer_auth(&token)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    if res.status() == 404 {
        println!("  ledger export: route not present");
        return;
    }
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    let rows = body
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        .saturating_sub(1);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  ledger export, {year}: {rows} rows in {secs:.2} s = {:.0} rows/s",
        rows as f64 / secs
    );
}
