//! Reading the ledger back: a gift with its fee, net, refunds and disputes.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// One gift as finance sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct GiftView {
    pub id: Uuid,
    pub state: String,
    pub amount: i64,
    pub currency: String,
    pub frequency: String,
    pub origin: String,
    pub checkout_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub invoice_id: Option<String>,
    pub subscription_id: Option<String>,
    pub donor_email: Option<String>,
    pub fee: Option<i64>,
    pub net: Option<i64>,
    pub refunded: i64,
    pub disputed_lost: i64,
}

pub async fn gift_by_session(
    db: &PgPool,
    session_id: &str,
) -> Result<Option<GiftView>, sqlx::Error> {
    sqlx::query_as!(
        GiftView,
        r#"select g.id, g.state, g.amount, g.currency, g.frequency, g.origin, g.checkout_session_id,
                  g.payment_intent_id, g.invoice_id, p.subscription_id as "subscription_id?",
                  d.email as "donor_email?", c.fee as "fee?", c.net as "net?",
                  coalesce((select sum(r.amount) from refunds r
                            where r.payment_intent_id = g.payment_intent_id and r.status = 'succeeded'), 0)::int8 as "refunded!",
                  coalesce((select sum(x.amount) from disputes x
                            where x.payment_intent_id = g.payment_intent_id and x.status = 'lost'), 0)::int8 as "disputed_lost!"
           from gifts g
           left join plans p on p.id = g.plan_id
           left join donors d on d.id = g.donor_id
           left join lateral (select fee, net from charges where payment_intent_id = g.payment_intent_id
                              order by created limit 1) c on true
           where g.checkout_session_id = $1"#,
        session_id
    )
    .fetch_optional(db)
    .await
}
