//! `cargo bench --bench throughput`: checkout requests/s and verified webhook events/s, with
//! p50/p99 latency, against the real router over real HTTP and the stand-in, on a fresh
//! database. The webhook figures stand next to raw ceilings measured in the same run, bare sqlx
//! loops, one transaction per event: every row a delivery writes (event claim, donor, gift, and
//! the kept figures' rows the reports read, which the recording transaction must write), and
//! the ledger rows only (event claim, donor, gift).
//!
//! Everything runs in one process on this machine, so the load generator competes with the
//! service for the same cores; the figures are for comparing runs, not a capacity promise.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chipin::config::Config;
use chipin::reports::aggregates::{Bands, add_difference};
use chipin::reports::contributions::{Contributions, PaidGift, Rows};
use chipin::startup::Application;
use chipin::stripe::signature;
use chipin::stripe::standin::{self, StandIn, objects};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use tokio::sync::Semaphore;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Turns the webhook loads take at each concurrency.
const ROUNDS: usize = 4;

struct Figures {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

/// Latencies of jobs and the wall time they took, added up over rounds.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Sample {
    fn add(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
    }

    fn figures(mut self) -> Figures {
        self.latencies.sort();
        let at =
            |q: f64| self.latencies[((self.latencies.len() as f64 - 1.0) * q).round() as usize];
        Figures {
            per_sec: self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

/// Runs the jobs numbered `jobs` with at most `concurrency` in flight.
async fn load<F, Fut>(jobs: Range<usize>, concurrency: usize, job: F) -> Sample
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(jobs.len());
    for i in jobs {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let job = job.clone();
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            job(i).await;
            drop(permit);
            t.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(handles.len());
    for h in handles {
        latencies.push(h.await.unwrap());
    }
    Sample {
        latencies,
        elapsed: started.elapsed(),
    }
}

async fn fresh_database(name: &str) -> String {
    let admin = PgPool::connect(ADMIN_URL)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await
        .unwrap();
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

fn session_event(i: usize, run: &str) -> Value {
    let id = format!("cs_bench_{run}_{i}");
    let mut session = objects::checkout_session(&objects::SessionSpec {
        id: &id,
        mode: "payment",
        amount: 2500,
        currency: "usd",
        customer_email: None,
        client_reference_id: None,
        metadata: json!({}),
        success_url: None,
        cancel_url: None,
        url: "",
        submit_type: Some("donate"),
        created: chrono::Utc::now().timestamp(),
    });
    // Each gift from a reader of its own, as most are.
    session["customer_details"] =
        json!({"email": format!("reader-{run}-{i}@example.org"), "name": null, "address": null});
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["payment_intent"] = json!(format!("pi_bench_{run}_{i}"));
    objects::event(
        &format!("evt_bench_{run}_{i}"),
        "checkout.session.completed",
        session,
        None,
        chrono::Utc::now().timestamp(),
        chipin::stripe::api_version(),
    )
}

/// The kept figures' rows a new reader's one-time gift adds, as the service computes them.
fn new_readers_gift(day: chrono::NaiveDate, bands: &Bands) -> Contributions {
    Contributions::of(
        Rows::first_gift(
            PaidGift {
                day,
                currency: "usd".into(),
                campaign: String::new(),
                once: true,
                amount: 2500,
                fee: 0,
                fee_currency: "usd".into(),
            },
            Some(uuid::Uuid::nil()),
        ),
        bands,
    )
}

/// What a raw ceiling writes per event.
#[derive(Clone)]
enum Writes {
    /// The ledger rows: event claim (then marked processed), donor, gift.
    Ledger,
    /// Every row a delivery writes: the claim (processed as it is stored, as the service's
    /// is), donor, gift, and the kept figures' rows, written by the service's own
    /// `add_difference` (for the day and bands given).
    Everything(chrono::NaiveDate, Bands),
}

/// The writes of `writes`, one transaction per event, without HTTP, verification,
/// interpretation, locks or reads.
async fn raw_ceiling(
    db: PgPool,
    events: Arc<Vec<Value>>,
    jobs: Range<usize>,
    concurrency: usize,
    writes: Writes,
) -> Sample {
    load(jobs, concurrency, move |i| {
        let db = db.clone();
        let events = events.clone();
        let writes = writes.clone();
        async move {
            let e = &events[i];
            let processed_now = matches!(writes, Writes::Everything(..));
            let mut tx = db.begin().await.unwrap();
            sqlx::query(
                "insert into stripe_events (event_id, type, api_version, created, livemode, payload, processed_at)
                 values ($1, $2, $3, now(), false, $4, case when $5 then now() end)
                 on conflict (event_id) do nothing",
            )
            .bind(e["id"].as_str())
            .bind(e["type"].as_str())
            .bind(e["api_version"].as_str())
            .bind(e)
            .bind(processed_now)
            .execute(&mut *tx)
            .await
            .unwrap();
            let donor: uuid::Uuid = sqlx::query_scalar(
                "insert into donors (id, email) values ($1, $2)
                 on conflict (email) do update set name = coalesce(excluded.name, donors.name) returning id",
            )
            .bind(uuid::Uuid::new_v4())
            .bind(format!("raw-{}", e["data"]["object"]["customer_details"]["email"].as_str().unwrap()))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "insert into gifts (id, state, amount, currency, frequency, origin, checkout_session_id, payment_intent_id, paid_at, donor_id)
                 values ($1, 'paid', 2500, 'usd', 'once', 'stripe', $2, $3, now(), $4) on conflict (payment_intent_id) do nothing",
            )
            .bind(uuid::Uuid::new_v4())
            .bind(e["data"]["object"]["id"].as_str())
            .bind(e["data"]["object"]["payment_intent"].as_str())
            .bind(donor)
            .execute(&mut *tx)
            .await
            .unwrap();
            match &writes {
                Writes::Ledger => {
                    sqlx::query("update stripe_events set processed_at = now() where event_id = $1")
                        .bind(e["id"].as_str())
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                Writes::Everything(day, bands) => {
                    let added = new_readers_gift(*day, bands);
                    add_difference(&mut tx, Contributions::default(), added)
                        .await
                        .unwrap();
                }
            }
            tx.commit().await.unwrap();
        }
    })
    .await
}

fn print(label: &str, f: &Figures) {
    println!(
        "{label:<44} {:>8.0}/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        f.per_sec,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let url = fresh_database("chipin_bench").await;
    let sim = StandIn::start(standin::Options::default()).await.unwrap();
    let config = Config::from_vars([
        ("DATABASE_URL".to_string(), url.clone()),
        ("LISTEN_ADDR".into(), "127.0.0.1:0".into()),
        ("STRIPE_SECRET_KEY".into(), standin::SECRET_KEY.into()),
        ("STRIPE_API_BASE".into(), sim.base_url()),
        ("STRIPE_WEBHOOK_SECRET".into(), sim.secret().into()),
        ("CHECKOUT_LIMIT_PER_IP".into(), "1000000/1m".into()),
    ])
    .unwrap();
    let app_config = config.clone();
    let app = Application::build(config).await.unwrap();
    let address = app.address();
    let db = app.state.db.clone();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();

    println!(
        "chipin throughput (release build, this machine: {} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    // What HTTP alone costs here, client and server in one process: the floor under every
    // figure below.
    let floor = {
        let http = http.clone();
        let address = address.clone();
        load(0..500, 1, move |_| {
            let http = http.clone();
            let address = address.clone();
            async move {
                let res = http.get(format!("{address}/healthz")).send().await.unwrap();
                assert_eq!(res.status(), 200);
            }
        })
        .await
        .figures()
    };
    print("\nHTTP floor: GET /healthz, 1 client, 500 requests", &floor);
    println!("\ncheckout: POST /api/checkout -> pending gift + Checkout Session at the stand-in");
    for (concurrency, total) in [(1usize, 500usize), (32, 2000)] {
        let http = http.clone();
        let address = address.clone();
        let f = load(0..total, concurrency, move |i| {
            let http = http.clone();
            let address = address.clone();
            async move {
                let res = http
                    .post(format!("{address}/api/checkout"))
                    .json(&json!({"amount": 1000 + i as i64, "frequency": if i % 3 == 0 { "monthly" } else { "once" }}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            }
        })
        .await
        .figures();
        print(
            &format!("  {concurrency:>2} concurrent client(s), {total} requests"),
            &f,
        );
    }

    // Webhooks land in a ledger that already holds a newsroom's history, with statistics as
    // autovacuum keeps them: an empty database would measure plans no service runs for long.
    let history: i64 = std::env::var("BENCH_HISTORY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seeded = chipin::dev::seed(
        &db,
        history,
        &chipin::reports::aggregates::Bands::from_config(&app_config),
        &app_config.report_time_zone,
    )
    .await
    .unwrap();
    println!(
        "\nledger before the webhook runs: {} gifts of {} donors (chipin dev seed), analyzed",
        seeded.gifts, seeded.donors
    );
    println!("\nwebhooks: signed checkout.session.completed, verified, stored once, gift recorded");
    let today: chrono::NaiveDate = sqlx::query_scalar("select (now() at time zone $1)::date")
        .bind(&app_config.report_time_zone)
        .fetch_one(&db)
        .await
        .unwrap();
    let everything = Writes::Everything(today, Bands::from_config(&app_config));
    // The raw loops' own pool, as large as the service's, with each statement's plan made once
    // per connection (the service's recording transaction asks the same of its own): a bare
    // loop at its best.
    let bare = PgPoolOptions::new()
        .max_connections(20)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("set plan_cache_mode = force_generic_plan")
                    .await
                    .map(|_| ())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    let secret = sim.secret().to_string();
    // The first load only warms up: it fills both pools with connections that have made their
    // plans (a pool opens a connection when none is idle, so even one delivery at a time opens
    // all twenty, each planning its statements afresh), as a service that has run a while has.
    let loads = [(20usize, 400usize), (1, 500), (16, 2000), (64, 2000)];
    for (n, (concurrency, total)) in loads.into_iter().enumerate() {
        let events = |prefix: &str| -> Arc<Vec<Value>> {
            Arc::new(
                (0..total)
                    .map(|i| session_event(i, &format!("{prefix}{n}")))
                    .collect(),
            )
        };
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
            events("w")
                .iter()
                .map(|e| serde_json::to_vec(e).unwrap())
                .collect(),
        );
        let (raw_events, same_events) = (events("raw"), events("same"));
        // The three loads take turns, a quarter of the events each time, so that the
        // machine's drift (its disk's flush time above all) falls on all three alike.
        let (mut f, mut raw, mut same) = (Sample::default(), Sample::default(), Sample::default());
        for round in 0..ROUNDS {
            let jobs = round * total / ROUNDS..(round + 1) * total / ROUNDS;
            let (http, address, secret) = (http.clone(), address.clone(), secret.clone());
            let bodies = bodies.clone();
            f.add(
                load(jobs.clone(), concurrency, move |i| {
                    let http = http.clone();
                    let address = address.clone();
                    let body = bodies[i].clone();
                    let header = signature::sign(&[&secret], chrono::Utc::now().timestamp(), &body);
                    async move {
                        let res = http
                            .post(format!("{address}/webhooks/stripe"))
                            .header("content-type", "application/json")
                            .header("stripe-signature", header)
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(res.status(), 200);
                    }
                })
                .await,
            );
            same.add(
                raw_ceiling(
                    bare.clone(),
                    same_events.clone(),
                    jobs.clone(),
                    concurrency,
                    everything.clone(),
                )
                .await,
            );
            raw.add(
                raw_ceiling(
                    bare.clone(),
                    raw_events.clone(),
                    jobs,
                    concurrency,
                    Writes::Ledger,
                )
                .await,
            );
        }
        if n == 0 {
            continue;
        }
        let (f, same, raw) = (f.figures(), same.figures(), raw.figures());
        print(
            &format!("  {concurrency:>2} concurrent deliveries, {total} events"),
            &f,
        );
        print(
            &format!("  {concurrency:>2} raw ceiling, every row a delivery writes"),
            &same,
        );
        println!("     ratio verified/raw: {:.2}", f.per_sec / same.per_sec);
        print(
            &format!("  {concurrency:>2} raw ceiling, ledger rows only"),
            &raw,
        );
        println!(
            "     ratio verified/raw (ledger rows only): {:.2}",
            f.per_sec / raw.per_sec
        );
    }
    let recorded: i64 = sqlx::query_scalar("select count(*) from gifts where state = 'paid'")
        .fetch_one(&db)
        .await
        .unwrap();
    println!("\npaid gifts recorded in the bench database: {recorded}");
}
