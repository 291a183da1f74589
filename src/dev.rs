//! `chipin dev seed --gifts N`: a realistic ledger for benchmarks and demos, written in bulk
//! by SQL (the webhook path would take hours for millions), then the kept aggregates rebuilt
//! from it by the same functions the recording path uses, so every invariant holds.
//!
//! Shape: donors about a thirtieth of the gifts (at most 300k), three years up to today,
//! 70% one-time in whole dollars, the rest installments of monthly plans, log-normal amounts
//! with a median near $25, about 1% refunded in part or whole and 0.1% disputed (half of
//! them lost), a few currencies and campaigns, a fee of 2.9% + 30 on every charge.
//!
//! Speed (ten million gifts in minutes, not hours): rows go in in the order of their keys
//! (ids made from a counter under a per-run random prefix), so every unique index grows at
//! its right edge; the other indexes of the ledger tables are dropped for the load and built
//! again after it, sorted once; the rebuilds get memory to sort in. All in one transaction:
//! a failed seed leaves the database as it was.

use std::time::Instant;

use sqlx::{PgPool, Postgres, Transaction};

use crate::reports::aggregates::{self, Bands};
use crate::reports::kept;

#[derive(Debug, Default)]
pub struct Seeded {
    pub donors: i64,
    pub gifts: i64,
    pub refunds: i64,
    pub disputes: i64,
    /// Each step and its seconds, for whoever wants to know where a seed's time goes.
    pub steps: Vec<(&'static str, f64)>,
}

/// The tables the load writes millions of rows to.
const LEDGER_TABLES: [&str; 4] = ["gifts", "charges", "refunds", "disputes"];

struct Steps(Vec<(&'static str, f64)>, Instant);

impl Steps {
    fn done(&mut self, name: &'static str) {
        self.0.push((name, self.1.elapsed().as_secs_f64()));
        self.1 = Instant::now();
    }
}

async fn run(
    tx: &mut Transaction<'_, Postgres>,
    sql: &str,
    binds: &[i64],
) -> Result<u64, sqlx::Error> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

pub async fn seed(db: &PgPool, gifts: i64, bands: &Bands, tz: &str) -> Result<Seeded, sqlx::Error> {
    let donors = (gifts / 30).clamp(10, 300_000);
    let plans = (gifts * 3 / 10 / 15).clamp(1, donors);
    let recurring = gifts * 3 / 10;
    let one_time = gifts - recurring;
    // Keys of this run: seeding again adds to the ledger instead of colliding with it.
    let tag = format!("{:08x}", rand::random::<u32>());
    let mut steps = Steps(Vec::new(), Instant::now());
    let mut tx = db.begin().await?;
    // Runtime SQL on purpose: bulk generation, run by a developer, not by the service.
    for setting in [
        "set local synchronous_commit = off",
        "set local work_mem = '256MB'",
        "set local maintenance_work_mem = '1GB'",
    ] {
        run(&mut tx, setting, &[]).await?;
    }
    // Secondary indexes (not those behind a primary key or unique constraint): dropped for
    // the load, their definitions kept to build them again.
    let secondary: Vec<(String, String)> = sqlx::query_as(
        "select format('%I', ci.relname), pg_get_indexdef(i.indexrelid)
         from pg_index i
         join pg_class ci on ci.oid = i.indexrelid
         join pg_class t on t.oid = i.indrelid
         where t.relname = any($1) and t.relnamespace = to_regnamespace(current_schema())
           and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)",
    )
    .bind(&LEDGER_TABLES[..])
    .fetch_all(&mut *tx)
    .await?;
    for (name, _) in &secondary {
        run(&mut tx, &format!("drop index {name}"), &[]).await?;
    }
    run(
        &mut tx,
        &format!(
            "create temporary table seed_donors on commit drop as
             select n, gen_random_uuid() as donor_id, 'cus_seed_{tag}_' || n as customer_id
             from generate_series(1, $1::int8) n"
        ),
        &[donors],
    )
    .await?;
    run(
        &mut tx,
        &format!(
            "insert into donors (id, email, name, country)
             select donor_id, 'seed-{tag}-' || n || '@example.org', 'Seed Donor ' || n,
                    (array['US','US','US','CA','GB','DE'])[1 + n % 6]
             from seed_donors"
        ),
        &[],
    )
    .await?;
    run(
        &mut tx,
        "insert into donor_customers (customer_id, donor_id) select customer_id, donor_id from seed_donors",
        &[],
    )
    .await?;
    run(&mut tx, "create index on seed_donors (n)", &[]).await?;
    run(&mut tx, "analyze seed_donors", &[]).await?;
    // Plans: monthly, started at a random day of the three years; a quarter cancelled.
    run(
        &mut tx,
        &format!(
            "insert into plans (id, subscription_id, donor_id, customer_id, amount, currency, interval, status,
                                status_at, started_at, canceled_at, cancel_reason, campaign, origin)
             select gen_random_uuid(), 'sub_seed_{tag}_' || lpad(i::text, 9, '0'), d.donor_id, d.customer_id,
                    (array[500, 1000, 1500, 2500, 5000])[1 + i % 5], 'usd', 'month',
                    case when i % 4 = 0 then 'canceled' else 'active' end, now(),
                    now() - (random() * interval '1095 days'),
                    null, null, (array['spring', 'investigations', null])[1 + i % 3], 'checkout'
             from generate_series(1, $1::int8) i
             join seed_donors d on d.n = 1 + (i * 7919) % $2"
        ),
        &[plans, donors],
    )
    .await?;
    run(
        &mut tx,
        &format!(
            "update plans set canceled_at = started_at + (now() - started_at) * random(),
                              cancel_reason = 'cancellation_requested'
             where status = 'canceled' and subscription_id like 'sub_seed_{tag}_%'"
        ),
        &[],
    )
    .await?;
    steps.done("donors and plans");
    // Gift ids: this run's prefix and a counter, so that they ascend like the other keys.
    let id_prefix = format!(
        "{tag}-{:04x}-4{:03x}-8{:03x}-",
        rand::random::<u16>(),
        rand::random::<u16>() & 0xfff,
        rand::random::<u16>() & 0xfff
    );
    let id = |counter: &str| format!("('{id_prefix}' || lpad(to_hex({counter}), 12, '0'))::uuid");
    // One-time gifts: whole dollars as the donation form takes them, log-normal (median $25,
    // sigma 0.9), random donors and days.
    run(
        &mut tx,
        &format!(
            "insert into gifts (id, state, amount, currency, frequency, origin, campaign, checkout_session_id,
                                payment_intent_id, donor_id, customer_id, paid_at)
             select {}, 'paid',
                    100 * least(25000, greatest(5, round(exp(ln(25) + 0.9 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))))::int8,
                    (array['usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','eur','eur','gbp'])[1 + i % 20],
                    'once', 'checkout', (array['spring', 'investigations', 'local', null, null])[1 + i % 5],
                    'cs_seed_{tag}_' || lpad(i::text, 10, '0'), 'pi_seed_{tag}_' || lpad(i::text, 10, '0'),
                    d.donor_id, d.customer_id, now() - (random() * interval '1095 days')
             from generate_series(1, $1::int8) i
             join seed_donors d on d.n = 1 + (i * 104729) % $2
             order by i",
            id("i")
        ),
        &[one_time, donors],
    )
    .await?;
    steps.done("one-time gifts");
    // Installments: each plan pays monthly from its start until cancelled or today.
    run(
        &mut tx,
        &format!(
            "insert into gifts (id, state, amount, currency, frequency, origin, campaign, invoice_id, payment_intent_id,
                                plan_id, donor_id, customer_id, paid_at)
             select {}, 'paid', amount, currency, 'monthly', 'checkout', campaign,
                    'in_seed_{tag}_' || suffix, 'pi_seed_{tag}_' || suffix, plan_id, donor_id, customer_id, paid_at
             from (select p.amount, p.currency, p.campaign, p.id as plan_id, p.donor_id, p.customer_id,
                          p.subscription_id || '_' || lpad(k::text, 2, '0') as suffix,
                          p.started_at + k * interval '1 month' as paid_at
                   from plans p
                   cross join lateral generate_series(0, 36) k
                   where p.subscription_id like 'sub_seed_{tag}_%'
                     and p.started_at + k * interval '1 month' < coalesce(p.canceled_at, now())
                   order by p.subscription_id, k
                   limit $1) s",
            id("$2 + row_number() over ()")
        ),
        &[recurring, one_time],
    )
    .await?;
    steps.done("installments");
    run(
        &mut tx,
        &format!(
            "insert into charges (charge_id, payment_intent_id, amount, currency, balance_transaction_id, fee, net, created)
             select 'ch_' || substr(payment_intent_id, 4), payment_intent_id, amount, currency,
                    'txn_' || substr(payment_intent_id, 4), round(amount * 0.029) + 30,
                    amount - (round(amount * 0.029) + 30), paid_at
             from gifts where payment_intent_id like 'pi_seed_{tag}_%'
             order by payment_intent_id"
        ),
        &[],
    )
    .await?;
    run(
        &mut tx,
        &format!(
            "insert into refunds (refund_id, charge_id, payment_intent_id, amount, currency, status, created)
             select 're_' || substr(payment_intent_id, 4), 'ch_' || substr(payment_intent_id, 4), payment_intent_id,
                    case when random() < 0.5 then amount else amount / 2 end, currency, 'succeeded',
                    least(now(), paid_at + random() * interval '60 days')
             from gifts where payment_intent_id like 'pi_seed_{tag}_%' and random() < 0.01
             order by payment_intent_id"
        ),
        &[],
    )
    .await?;
    run(
        &mut tx,
        &format!(
            "insert into disputes (dispute_id, charge_id, payment_intent_id, amount, currency, status, reason, created, status_at)
             select 'dp_' || substr(g.payment_intent_id, 4), 'ch_' || substr(g.payment_intent_id, 4), g.payment_intent_id,
                    g.amount, g.currency, case when random() < 0.5 then 'lost' else 'won' end, 'fraudulent', t, t + interval '30 days'
             from gifts g
             cross join lateral (select least(now() - interval '30 days', g.paid_at + interval '20 days') as t) x
             where g.payment_intent_id like 'pi_seed_{tag}_%' and random() < 0.001
               and not exists (select 1 from refunds r where r.payment_intent_id = g.payment_intent_id)
             order by g.payment_intent_id"
        ),
        &[],
    )
    .await?;
    steps.done("charges, refunds, disputes");
    for (_, definition) in &secondary {
        run(&mut tx, definition, &[]).await?;
    }
    for table in LEDGER_TABLES {
        run(&mut tx, &format!("analyze {table}"), &[]).await?;
    }
    steps.done("indexes");
    aggregates::rebuild_all(&mut tx, tz).await?;
    steps.done("daily totals");
    aggregates::rebuild_donor_figures(&mut tx, bands, tz).await?;
    steps.done("donor figures");
    kept::rebuild(&mut tx, tz).await?;
    steps.done("amounts, plan days, donor gaps");
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from donors), (select count(*) from gifts), (select count(*) from refunds),
                (select count(*) from disputes)",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    steps.done("commit");
    // As autovacuum would after a bulk load: statistics, and the visibility map that lets the
    // summary count donor gaps from the index alone.
    sqlx::query("vacuum analyze").execute(db).await?;
    steps.done("vacuum analyze");
    Ok(Seeded {
        donors: counts.0,
        gifts: counts.1,
        refunds: counts.2,
        disputes: counts.3,
        steps: steps.0,
    })
}
