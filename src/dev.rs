//! `chipin dev seed --gifts N`: a realistic ledger for benchmarks and demos, written in bulk
//! by SQL (the webhook path would take hours for millions), then the kept aggregates rebuilt
//! from it by the same functions the recording path uses, so every invariant holds.
//!
//! Shape: donors about a thirtieth of the gifts (at most 300k), three years up to today,
//! 70% one-time in whole dollars, the rest installments of monthly plans, log-normal amounts
//! with a median near $25, about 1% refunded in part or whole and 0.1% disputed (half of
//! them lost), a few currencies and campaigns, a fee of 2.9% + 30 on every charge.

use sqlx::PgPool;

use crate::reports::aggregates::{self, Bands};
use crate::reports::kept;

#[derive(Debug, Default)]
pub struct Seeded {
    pub donors: i64,
    pub gifts: i64,
    pub refunds: i64,
    pub disputes: i64,
}

pub async fn seed(db: &PgPool, gifts: i64, bands: &Bands, tz: &str) -> Result<Seeded, sqlx::Error> {
    let donors = (gifts / 30).clamp(10, 300_000);
    let plans = (gifts * 3 / 10 / 15).clamp(1, donors);
    let recurring = gifts * 3 / 10;
    let one_time = gifts - recurring;
    let mut tx = db.begin().await?;
    // Runtime SQL on purpose: bulk generation, run by a developer, not by the service.
    sqlx::query("set local synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into donors (id, email, name, country)
         select gen_random_uuid(), 'seed-' || n || '@example.org', 'Seed Donor ' || n,
                (array['US','US','US','CA','GB','DE'])[1 + n % 6]
         from generate_series(1, $1::int8) n",
    )
    .bind(donors)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into donor_customers (customer_id, donor_id)
         select 'cus_seed_' || substr(email, 6, length(email) - 17), id from donors where email like 'seed-%'",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "create temporary table seed_donors on commit drop as
         select row_number() over (order by customer_id) as n, donor_id, customer_id
         from donor_customers where customer_id like 'cus_seed_%'",
    )
    .execute(&mut *tx)
    .await?;
    // Plans: monthly, started at a random day of the three years; a quarter cancelled.
    sqlx::query(
        "insert into plans (id, subscription_id, donor_id, customer_id, amount, currency, interval, status,
                            status_at, started_at, canceled_at, cancel_reason, campaign, origin)
         select gen_random_uuid(), 'sub_seed_' || i, d.donor_id, d.customer_id,
                (array[500, 1000, 1500, 2500, 5000])[1 + i % 5], 'usd', 'month',
                case when i % 4 = 0 then 'canceled' else 'active' end, now(),
                now() - (random() * interval '1095 days'),
                null, null, (array['spring', 'investigations', null])[1 + i % 3], 'checkout'
         from generate_series(1, $1::int8) i
         join seed_donors d on d.n = 1 + (i * 7919) % $2",
    )
    .bind(plans)
    .bind(donors)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update plans set canceled_at = started_at + (now() - started_at) * random(), cancel_reason = 'cancellation_requested'
         where status = 'canceled' and subscription_id like 'sub_seed_%'",
    )
    .execute(&mut *tx)
    .await?;
    // One-time gifts: whole dollars as the donation form takes them, log-normal (median $25,
    // sigma 0.9), random donors and days.
    sqlx::query(
        "insert into gifts (id, state, amount, currency, frequency, origin, campaign, checkout_session_id,
                            payment_intent_id, donor_id, customer_id, paid_at)
         select gen_random_uuid(), 'paid',
                100 * least(25000, greatest(5, round(exp(ln(25) + 0.9 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))))::int8,
                (array['usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','usd','eur','eur','gbp'])[1 + i % 20],
                'once', 'checkout', (array['spring', 'investigations', 'local', null, null])[1 + i % 5],
                'cs_seed_' || i, 'pi_seed_' || i, d.donor_id, d.customer_id,
                now() - (random() * interval '1095 days')
         from generate_series(1, $1::int8) i
         join seed_donors d on d.n = 1 + (i * 104729) % $2",
    )
    .bind(one_time)
    .bind(donors)
    .execute(&mut *tx)
    .await?;
    // Installments: each plan pays monthly from its start until cancelled or today.
    sqlx::query(
        "insert into gifts (id, state, amount, currency, frequency, origin, campaign, invoice_id, payment_intent_id,
                            plan_id, donor_id, customer_id, paid_at)
         select gen_random_uuid(), 'paid', p.amount, p.currency, 'monthly', 'checkout', p.campaign,
                'in_seed_' || p.subscription_id || '_' || k, 'pi_seed_' || p.subscription_id || '_' || k,
                p.id, p.donor_id, p.customer_id, p.started_at + k * interval '1 month'
         from plans p
         cross join lateral generate_series(0, 36) k
         where p.subscription_id like 'sub_seed_%'
           and p.started_at + k * interval '1 month' < coalesce(p.canceled_at, now())
         limit $1",
    )
    .bind(recurring)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into charges (charge_id, payment_intent_id, amount, currency, balance_transaction_id, fee, net, created)
         select 'ch_' || substr(payment_intent_id, 4), payment_intent_id, amount, currency,
                'txn_' || substr(payment_intent_id, 4), round(amount * 0.029) + 30, amount - (round(amount * 0.029) + 30), paid_at
         from gifts where payment_intent_id like 'pi_seed_%'",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into refunds (refund_id, charge_id, payment_intent_id, amount, currency, status, created)
         select 're_' || substr(payment_intent_id, 4), 'ch_' || substr(payment_intent_id, 4), payment_intent_id,
                case when random() < 0.5 then amount else amount / 2 end, currency, 'succeeded',
                least(now(), paid_at + random() * interval '60 days')
         from gifts where payment_intent_id like 'pi_seed_%' and random() < 0.01",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into disputes (dispute_id, charge_id, payment_intent_id, amount, currency, status, reason, created, status_at)
         select 'dp_' || substr(g.payment_intent_id, 4), 'ch_' || substr(g.payment_intent_id, 4), g.payment_intent_id,
                g.amount, g.currency, case when random() < 0.5 then 'lost' else 'won' end, 'fraudulent', t, t + interval '30 days'
         from gifts g
         cross join lateral (select least(now() - interval '30 days', g.paid_at + interval '20 days') as t) x
         where g.payment_intent_id like 'pi_seed_%' and random() < 0.001
           and not exists (select 1 from refunds r where r.payment_intent_id = g.payment_intent_id)",
    )
    .execute(&mut *tx)
    .await?;
    aggregates::rebuild_all(&mut tx, tz).await?;
    aggregates::rebuild_donor_figures(&mut tx, bands, tz).await?;
    kept::rebuild(&mut tx, tz).await?;
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from donors), (select count(*) from gifts), (select count(*) from refunds),
                (select count(*) from disputes)",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    // As autovacuum would after a bulk load: statistics, and the visibility map that lets the
    // summary count donor gaps from the index alone.
    sqlx::query("vacuum analyze").execute(db).await?;
    Ok(Seeded {
        donors: counts.0,
        gifts: counts.1,
        refunds: counts.2,
        disputes: counts.3,
    })
}
