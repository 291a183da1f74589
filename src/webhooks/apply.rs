//! Applying facts inside the event's transaction. Every statement is a merge keyed by a
//! Stripe id (session, payment intent, invoice, subscription, charge, refund, dispute), so
//! the same fact told twice, or facts told in any order, end in the same rows.

use sqlx::{Postgres, Transaction};

use crate::reports::aggregates::{self, Bands, Known, Touched};
use crate::reports::contributions::{Contributions, PaidGift, Rows};
use uuid::Uuid;

use super::facts::PayoutFact;
use super::facts::{
    ChargeFact, DisputeFact, DonorFact, Fact, GiftState, InstallmentFact, PaymentFact, PlanFact,
    RefundFact,
};

type Tx<'a> = Transaction<'a, Postgres>;

/// Applies an event's facts and keeps the daily totals and donor figures: the payments and
/// donor links they touch are locked, what those contribute to the totals is read before and
/// after, and the difference is added.
pub async fn apply_all(
    tx: &mut Tx<'_>,
    facts: &[Fact],
    tz: &str,
    bands: &Bands,
) -> Result<(), sqlx::Error> {
    let touched = touched(facts);
    let known = aggregates::lock(tx, &touched).await?;
    apply_locked(tx, facts, &touched, known, tz, bands).await
}

/// `apply_all` once `touched` is locked (`known`: what was known about it before).
pub async fn apply_locked(
    tx: &mut Tx<'_>,
    facts: &[Fact],
    touched: &Touched,
    known: Known,
    tz: &str,
    bands: &Bands,
) -> Result<(), sqlx::Error> {
    let before = if known == Known::Figures {
        aggregates::contributions(tx, touched, bands, tz).await?
    } else {
        aggregates::Contributions::default()
    };
    // A one-time payment often has no Stripe customer (Checkout creates one only when asked):
    // its gift joins the donor the same event names by email, and such a donor, known by
    // email alone, is written by the payment's own statement (one round trip fewer for the
    // commonest event).
    let donor_email = touched.emails.first().map(String::as_str);
    let by_email = facts.iter().find_map(|f| match f {
        Fact::Donor(d) if d.customer_id.is_none() => Some(d),
        _ => None,
    });
    let rides = by_email.filter(|_| facts.iter().any(|f| matches!(f, Fact::OneTime(_))));
    let mut written = None;
    for fact in facts {
        match fact {
            Fact::Donor(d) if rides.is_some_and(|r| std::ptr::eq(r, d)) => {}
            Fact::Donor(d) => record_donor(tx, d).await?,
            Fact::OneTime(p) => written = record_payment(tx, p, donor_email, rides, tz).await?,
            Fact::Plan(p) => record_plan(tx, p).await?,
            Fact::Installment(i) => record_installment(tx, i, donor_email).await?,
            Fact::Charge(c) => record_charge(tx, c).await?,
            Fact::Refund(r) => record_refund(tx, r).await?,
            Fact::Dispute(d) => record_dispute(tx, d).await?,
            Fact::Payout(p) => record_payout(tx, p).await?,
        }
    }
    // Nothing known before and nothing written but the payment (and its donor): the figures
    // after are those of the gift row the payment's statement returned, a first gift with no
    // fee or refund yet (`lock_touched` checked there are none), so they are not read back.
    let only_the_payment = facts.iter().all(|f| match f {
        Fact::OneTime(_) => true,
        Fact::Donor(d) => rides.is_some_and(|r| std::ptr::eq(r, d)),
        _ => false,
    }) && facts
        .iter()
        .filter(|f| matches!(f, Fact::OneTime(_)))
        .count()
        == 1;
    // (A gift whose payment intent the event did not name may have rows of it that
    // `lock_touched` did not look for: it is read back.)
    let after = match written {
        Some(gift)
            if known == Known::Nothing
                && only_the_payment
                && gift
                    .payment_intent
                    .as_ref()
                    .is_none_or(|pi| touched.payment_intents.contains(pi)) =>
        {
            gift.contributions(bands)
        }
        _ => aggregates::contributions(tx, touched, bands, tz).await?,
    };
    aggregates::add_difference(tx, before, after).await
}

pub fn touched(facts: &[Fact]) -> Touched {
    let mut t = Touched::default();
    let mut pi = |id: &Option<String>| {
        if let Some(id) = id {
            t.payment_intents.push(id.clone());
        }
    };
    for fact in facts {
        match fact {
            Fact::OneTime(p) => pi(&p.payment_intent_id),
            Fact::Installment(i) => pi(&i.payment_intent_id),
            Fact::Charge(c) => pi(&c.payment_intent_id),
            Fact::Refund(r) => pi(&r.payment_intent_id),
            Fact::Dispute(d) => pi(&d.payment_intent_id),
            Fact::Plan(p) => t.subscriptions.push(p.subscription_id.clone()),
            Fact::Donor(_) => {}
            Fact::Payout(_) => {}
        }
    }
    for fact in facts {
        match fact {
            Fact::OneTime(p) => {
                t.sessions.extend(p.session_id.clone());
                t.gift_ids.extend(p.gift_id);
                t.customers.extend(p.customer_id.clone());
            }
            Fact::Installment(i) => {
                t.invoices.push(i.invoice_id.clone());
                t.sessions.extend(i.session_id.clone());
                t.gift_ids.extend(i.gift_id);
                t.customers.extend(i.customer_id.clone());
            }
            Fact::Donor(d) => {
                t.customers.extend(d.customer_id.clone());
                t.emails.extend(
                    d.email
                        .as_deref()
                        .and_then(|e| crate::gifts::Email::parse(e).ok())
                        .map(|e| e.as_str().to_string()),
                );
            }
            _ => {}
        }
    }
    t
}

/// One donor per normalized email, linked to every Stripe customer seen for it.
async fn record_donor(tx: &mut Tx<'_>, d: &DonorFact) -> Result<(), sqlx::Error> {
    // A customer of an erased donor (`chipin donor erase`): its events never bring personal
    // data back, nor make a new donor of it.
    if let Some(customer) = &d.customer_id
        && sqlx::query_scalar!(
            r#"select exists (select 1 from donor_customers c join donors d on d.id = c.donor_id
                where c.customer_id = $1 and d.erased_at is not null) as "erased!""#,
            customer
        )
        .fetch_one(&mut **tx)
        .await?
    {
        return Ok(());
    }
    let email = d
        .email
        .as_deref()
        .and_then(|e| crate::gifts::Email::parse(e).ok());
    let donor_id: Option<Uuid> = match &email {
        Some(email) => Some(
            sqlx::query_scalar!(
                "insert into donors (id, email, name, country) values ($1, $2, $3, $4)
                 on conflict (email) do update set
                     name = coalesce(excluded.name, donors.name),
                     country = coalesce(excluded.country, donors.country)
                 returning id",
                Uuid::new_v4(),
                email.as_str(),
                d.name,
                d.country
            )
            .fetch_one(&mut **tx)
            .await?,
        ),
        None => None,
    };
    let (Some(customer), Some(donor_id)) = (&d.customer_id, donor_id) else {
        return Ok(());
    };
    sqlx::query!(
        "insert into donor_customers (customer_id, donor_id) values ($1, $2) on conflict (customer_id) do nothing",
        customer,
        donor_id
    )
    .execute(&mut **tx)
    .await?;
    // Gifts and plans told before their donor was known join the donor now.
    sqlx::query!(
        "update gifts set donor_id = d.donor_id
         from donor_customers d
         where d.customer_id = $1 and gifts.customer_id = $1 and gifts.donor_id is null",
        customer
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "update plans set donor_id = d.donor_id
         from donor_customers d
         where d.customer_id = $1 and plans.customer_id = $1 and plans.donor_id is null",
        customer
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_plan(tx: &mut Tx<'_>, p: &PlanFact) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        insert into plans (id, subscription_id, customer_id, donor_id, amount, currency, interval, status,
                           status_at, canceled_at, cancel_reason, campaign, origin, started_at)
        values ($1, $2, $3, (select donor_id from donor_customers where customer_id = $3), $4, $5, $6, $7,
                $8, $9, $10, $11, $12, $13)
        on conflict (subscription_id) do update set
            status = case
                when plans.status = 'canceled' then plans.status
                when excluded.status = 'canceled' then excluded.status
                when excluded.status_at > plans.status_at
                  or (excluded.status_at = plans.status_at
                      and plan_status_rank(excluded.status) >= plan_status_rank(plans.status))
                    then excluded.status
                else plans.status end,
            amount = case when excluded.status_at >= plans.status_at then excluded.amount else plans.amount end,
            interval = case when excluded.status_at >= plans.status_at then excluded.interval else plans.interval end,
            status_at = greatest(plans.status_at, excluded.status_at),
            canceled_at = coalesce(plans.canceled_at, excluded.canceled_at),
            started_at = least(plans.started_at, excluded.started_at),
            cancel_reason = coalesce(plans.cancel_reason, excluded.cancel_reason),
            customer_id = coalesce(plans.customer_id, excluded.customer_id),
            donor_id = coalesce(plans.donor_id, excluded.donor_id),
            campaign = coalesce(plans.campaign, excluded.campaign),
            origin = case when excluded.origin = 'checkout' then 'checkout' else plans.origin end,
            updated_at = now()
        "#,
        Uuid::new_v4(),
        p.subscription_id,
        p.customer_id,
        p.amount,
        p.currency,
        p.interval,
        p.status,
        p.at,
        p.canceled_at,
        p.cancel_reason,
        p.campaign,
        if p.from_checkout { "checkout" } else { "stripe" },
        p.started_at,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Merges a one-time payment into the gift it belongs to (by gift id, session or payment
/// intent), or, when there is none, records it as a gift of its own: it began outside our
/// checkout (or our row is gone). Nothing is kept of a session that expired or is still unpaid
/// without a payment. One statement: the found gift is locked, updated or else inserted; with
/// it, the donor the event names by email alone (`by_email`), as `record_donor` would write it.
async fn record_payment(
    tx: &mut Tx<'_>,
    p: &PaymentFact,
    donor_email: Option<&str>,
    by_email: Option<&DonorFact>,
    tz: &str,
) -> Result<Option<WrittenGift>, sqlx::Error> {
    let paid = p.state == GiftState::Paid;
    let insertable = p.payment_intent_id.is_some()
        && matches!(
            p.state,
            GiftState::Paid | GiftState::Pending | GiftState::Failed
        );
    let row = sqlx::query!(
        r#"with upserted as (
             insert into donors (id, email, name, country)
             select $15::uuid, $11::text, $16::text, $17::text where $18::bool and $11 is not null
             on conflict (email) do update set
                 name = coalesce(excluded.name, donors.name),
                 country = coalesce(excluded.country, donors.country)
             returning id
         ),
         existing as (
             select id from gifts
             where id = $1 or checkout_session_id = $2 or payment_intent_id = $3
             order by coalesce(id = $1, false) desc
             limit 1
             for update
         ),
         donor as (
             select coalesce((select donor_id from donor_customers where customer_id = $8),
                             (select id from upserted),
                             (select id from donors where email = $11)) as id
         ),
         updated as (
             update gifts set
                 checkout_session_id = coalesce(checkout_session_id, $2),
                 payment_intent_id = coalesce(payment_intent_id, $3),
                 state = case when gift_state_rank($4) > gift_state_rank(state) then $4 else state end,
                 amount = case when $5 then $6 else amount end,
                 currency = case when $5 then $7 else currency end,
                 customer_id = coalesce(customer_id, $8),
                 donor_id = coalesce(gifts.donor_id, (select id from donor)),
                 paid_at = case when $5 then least(paid_at, $9) else paid_at end,
                 campaign = coalesce(campaign, $10),
                 updated_at = now()
             from existing where gifts.id = existing.id
             returning gifts.state, gifts.donor_id, gifts.paid_at, gifts.currency, gifts.campaign,
                       gifts.frequency, gifts.amount, gifts.payment_intent_id
         ),
         inserted as (
             insert into gifts (id, state, amount, currency, frequency, origin, campaign, checkout_session_id,
                                payment_intent_id, customer_id, donor_id, paid_at)
             select coalesce($1, $12), $4, $6, $7, 'once', $13, $10, $2, $3, $8, (select id from donor),
                    case when $5 then $9 end
             where $14 and not exists (select 1 from existing)
             on conflict (payment_intent_id) do update set
                 checkout_session_id = coalesce(gifts.checkout_session_id, excluded.checkout_session_id),
                 donor_id = coalesce(gifts.donor_id, excluded.donor_id),
                 state = case when gift_state_rank(excluded.state) > gift_state_rank(gifts.state)
                              then excluded.state else gifts.state end,
                 paid_at = least(gifts.paid_at, excluded.paid_at),
                 updated_at = now()
             returning state, donor_id, paid_at, currency, campaign, frequency, amount, payment_intent_id
         )
         select state = 'paid' as "paid!", donor_id, (paid_at at time zone $19)::date as day,
                currency as "currency!", coalesce(campaign, '') as "campaign!",
                frequency = 'once' as "once!", amount as "amount!", payment_intent_id
         from (select * from updated union all select * from inserted) written"#,
        p.gift_id,
        p.session_id,
        p.payment_intent_id,
        p.state.as_str(),
        paid,
        p.amount,
        p.currency,
        p.customer_id,
        p.at,
        p.campaign,
        donor_email,
        Uuid::new_v4(),
        if p.gift_id.is_some() { "checkout" } else { "stripe" },
        insertable,
        Uuid::new_v4(),
        by_email.and_then(|d| d.name.clone()),
        by_email.and_then(|d| d.country.clone()),
        by_email.is_some(),
        tz,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| WrittenGift {
        paid: r.paid,
        day: r.day,
        donor: r.donor_id,
        currency: r.currency,
        campaign: r.campaign,
        once: r.once,
        amount: r.amount,
        payment_intent: r.payment_intent_id,
    }))
}

/// The gift row a payment's statement left, as the kept figures read it.
struct WrittenGift {
    paid: bool,
    /// Its paid day in the reporting time zone (none unless paid).
    day: Option<chrono::NaiveDate>,
    donor: Option<Uuid>,
    currency: String,
    campaign: String,
    once: bool,
    amount: i64,
    payment_intent: Option<String>,
}

impl WrittenGift {
    /// What it contributes as a first gift (no fee, refund or dispute, a donor who has given
    /// nothing else); nothing unless paid.
    fn contributions(self, bands: &Bands) -> Contributions {
        let Some(day) = self.day.filter(|_| self.paid) else {
            return Contributions::default();
        };
        let gift = PaidGift {
            day,
            fee_currency: self.currency.clone(),
            currency: self.currency,
            campaign: self.campaign,
            once: self.once,
            amount: self.amount,
            fee: 0,
        };
        Contributions::of(Rows::first_gift(gift, self.donor), bands)
    }
}

async fn record_installment(
    tx: &mut Tx<'_>,
    i: &InstallmentFact,
    donor_email: Option<&str>,
) -> Result<(), sqlx::Error> {
    let existing: Option<Uuid> = sqlx::query_scalar!(
        "select id from gifts
         where id = $1 or invoice_id = $2
         order by coalesce(id = $1, false) desc
         limit 1
         for update",
        i.gift_id,
        i.invoice_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    match existing {
        Some(id) => {
            sqlx::query!(
                "update gifts set
                     invoice_id = coalesce(invoice_id, $2),
                     payment_intent_id = coalesce(payment_intent_id, $3),
                     checkout_session_id = coalesce(checkout_session_id, $4),
                     state = 'paid',
                     amount = $5,
                     currency = $6,
                     plan_id = coalesce(plan_id, (select id from plans where subscription_id = $7)),
                     customer_id = coalesce(customer_id, $8),
                     donor_id = coalesce(donor_id, (select donor_id from donor_customers where customer_id = $8),
                                         (select id from donors where email = $10)),
                     paid_at = least(paid_at, $9),
                     updated_at = now()
                 where id = $1",
                id,
                i.invoice_id,
                i.payment_intent_id,
                i.session_id,
                i.amount,
                i.currency,
                i.subscription_id,
                i.customer_id,
                i.at,
                donor_email,
            )
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query!(
                "insert into gifts (id, state, amount, currency, frequency, origin, campaign, invoice_id,
                                    payment_intent_id, checkout_session_id, plan_id, customer_id, donor_id, paid_at)
                 select $1, 'paid', $2, $3,
                        coalesce((select case interval when 'year' then 'yearly' else 'monthly' end
                                  from plans where subscription_id = $4), 'monthly'),
                        coalesce((select origin from plans where subscription_id = $4), 'stripe'),
                        (select campaign from plans where subscription_id = $4),
                        $5, $6, $7, (select id from plans where subscription_id = $4), $8,
                        coalesce((select donor_id from donor_customers where customer_id = $8),
                                 (select id from donors where email = $10)), $9
                 on conflict (invoice_id) do update set
                     payment_intent_id = coalesce(gifts.payment_intent_id, excluded.payment_intent_id),
                     donor_id = coalesce(gifts.donor_id, excluded.donor_id),
                     checkout_session_id = coalesce(gifts.checkout_session_id, excluded.checkout_session_id),
                     updated_at = now()",
                i.gift_id.unwrap_or_else(Uuid::new_v4),
                i.amount,
                i.currency,
                i.subscription_id,
                i.invoice_id,
                i.payment_intent_id,
                i.session_id,
                i.customer_id,
                i.at,
                donor_email,
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn record_charge(tx: &mut Tx<'_>, c: &ChargeFact) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into charges (charge_id, payment_intent_id, amount, currency, balance_transaction_id, fee, net, created,
                              fee_currency)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (charge_id) do update set
             payment_intent_id = coalesce(charges.payment_intent_id, excluded.payment_intent_id),
             balance_transaction_id = coalesce(excluded.balance_transaction_id, charges.balance_transaction_id),
             fee = coalesce(excluded.fee, charges.fee),
             net = coalesce(excluded.net, charges.net),
             fee_currency = coalesce(excluded.fee_currency, charges.fee_currency),
             updated_at = now()",
        c.charge_id,
        c.payment_intent_id,
        c.amount,
        c.currency,
        c.balance_transaction_id,
        c.fee,
        c.net,
        c.created,
        c.fee_currency
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_refund(tx: &mut Tx<'_>, r: &RefundFact) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into refunds (refund_id, charge_id, payment_intent_id, amount, currency, status, created)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (refund_id) do update set
             status = case when refund_status_rank(excluded.status) >= refund_status_rank(refunds.status)
                           then excluded.status else refunds.status end,
             charge_id = coalesce(refunds.charge_id, excluded.charge_id),
             payment_intent_id = coalesce(refunds.payment_intent_id, excluded.payment_intent_id),
             updated_at = now()",
        r.refund_id,
        r.charge_id,
        r.payment_intent_id,
        r.amount,
        r.currency,
        r.status,
        r.created
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_dispute(tx: &mut Tx<'_>, d: &DisputeFact) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into disputes (dispute_id, charge_id, payment_intent_id, amount, currency, status, reason, created, status_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (dispute_id) do update set
             status = case
                 when dispute_status_rank(disputes.status) = 2 then disputes.status
                 when dispute_status_rank(excluded.status) = 2 then excluded.status
                 when excluded.status_at >= disputes.status_at then excluded.status
                 else disputes.status end,
             -- A dispute's day is when it became final (the earliest final event, so any
             -- order ends alike); later events about a closed dispute do not move it.
             status_at = case
                 when dispute_status_rank(disputes.status) = 2 and dispute_status_rank(excluded.status) = 2
                     then least(disputes.status_at, excluded.status_at)
                 when dispute_status_rank(disputes.status) = 2 then disputes.status_at
                 when dispute_status_rank(excluded.status) = 2 then excluded.status_at
                 else greatest(disputes.status_at, excluded.status_at) end,
             payment_intent_id = coalesce(disputes.payment_intent_id, excluded.payment_intent_id),
             amount = excluded.amount,
             updated_at = now()",
        d.dispute_id,
        d.charge_id,
        d.payment_intent_id,
        d.amount,
        d.currency,
        d.status,
        d.reason,
        d.created,
        d.at
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A payout and its items. Its status merges like a dispute's: failed and canceled are final,
/// otherwise the later word wins. Each item is linked to our gift, refund or dispute row by
/// Stripe ids, or marked unmatched.
async fn record_payout(tx: &mut Tx<'_>, p: &PayoutFact) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into payouts (payout_id, amount, currency, arrival_date, status, status_at, failure_code, created)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (payout_id) do update set
             status = case
                 when payout_status_rank(payouts.status) = 3 then payouts.status
                 when payout_status_rank(excluded.status) = 3 then excluded.status
                 when excluded.status_at > payouts.status_at
                   or (excluded.status_at = payouts.status_at
                       and payout_status_rank(excluded.status) >= payout_status_rank(payouts.status))
                     then excluded.status
                 else payouts.status end,
             status_at = greatest(payouts.status_at, excluded.status_at),
             amount = excluded.amount,
             arrival_date = case when excluded.status_at >= payouts.status_at
                                 then excluded.arrival_date else payouts.arrival_date end,
             failure_code = coalesce(excluded.failure_code, payouts.failure_code),
             updated_at = now()",
    )
    .bind(&p.payout_id)
    .bind(p.amount)
    .bind(&p.currency)
    .bind(p.arrival_date)
    .bind(&p.status)
    .bind(p.at)
    .bind(&p.failure_code)
    .bind(p.created)
    .execute(&mut **tx)
    .await?;
    for i in &p.items {
        sqlx::query(
            "with c as (select charge_id, payment_intent_id from charges
                        where charge_id = $8 or balance_transaction_id = $1
                        order by (charge_id = $8) desc limit 1),
                  r as (select refund_id, payment_intent_id from refunds where refund_id = $8),
                  d as (select dispute_id, payment_intent_id from disputes where dispute_id = $8),
                  g as (select id from gifts where payment_intent_id = coalesce(
                            (select payment_intent_id from c), (select payment_intent_id from r),
                            (select payment_intent_id from d)) limit 1)
             insert into payout_items (balance_transaction_id, payout_id, type, reporting_category, amount,
                                       fee, net, currency, source_id, created, link, gift_id, charge_id,
                                       refund_id, dispute_id)
             select $1, $2, $3, $4, $5, $6, $7, $9, $8, $10,
                    case when exists (select 1 from r) then 'refund'
                         when exists (select 1 from d) then 'dispute'
                         when exists (select 1 from g) then 'gift'
                         else 'unmatched' end,
                    (select id from g), (select charge_id from c),
                    (select refund_id from r), (select dispute_id from d)
             on conflict (balance_transaction_id) do update set
                 payout_id = excluded.payout_id,
                 link = case when excluded.link = 'unmatched' then payout_items.link else excluded.link end,
                 gift_id = coalesce(excluded.gift_id, payout_items.gift_id),
                 charge_id = coalesce(excluded.charge_id, payout_items.charge_id),
                 refund_id = coalesce(excluded.refund_id, payout_items.refund_id),
                 dispute_id = coalesce(excluded.dispute_id, payout_items.dispute_id),
                 updated_at = now()",
        )
        .bind(&i.balance_transaction_id)
        .bind(&p.payout_id)
        .bind(&i.kind)
        .bind(&i.reporting_category)
        .bind(i.amount)
        .bind(i.fee)
        .bind(i.net)
        .bind(&i.source_id)
        .bind(&i.currency)
        .bind(i.created)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
