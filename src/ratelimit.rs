//! Fixed-window rate limits counted in Postgres, so every instance behind the load balancer
//! shares one count. A bucket is a string such as `checkout-ip:203.0.113.9`.

use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::config::RateLimit;

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; retry after this many seconds.
    Limited {
        retry_after: u64,
    },
}

/// Counts one hit in `bucket` and says whether it is within `limit`.
pub async fn hit(db: &PgPool, bucket: &str, limit: RateLimit) -> Result<Decision, sqlx::Error> {
    let window = limit.window.as_secs() as f64;
    let row = sqlx::query!(
        r#"
        insert into rate_limit_hits (bucket, window_start, hits)
        values ($1, to_timestamp(floor(extract(epoch from now())::float8 / $2::float8) * $2::float8), 1)
        on conflict (bucket, window_start) do update set hits = rate_limit_hits.hits + 1
        returning hits,
            ceil(extract(epoch from window_start)::float8 + $2::float8 - extract(epoch from now())::float8)::int8 as "retry_after!"
        "#,
        bucket,
        window,
    )
    .fetch_one(db)
    .await?;
    if row.hits as u32 > limit.max {
        Ok(Decision::Limited {
            retry_after: row.retry_after.max(1) as u64,
        })
    } else {
        Ok(Decision::Allowed)
    }
}

/// Forgets windows that ended more than a day ago.
pub async fn prune(db: &PgPool) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query!("delete from rate_limit_hits where window_start < now() - interval '1 day'")
            .execute(db)
            .await?;
    Ok(done.rows_affected())
}

/// Personal data such as an email never sits in a bucket name in the clear.
pub fn hashed(prefix: &str, value: &str) -> String {
    format!("{prefix}:{}", hex::encode(Sha256::digest(value.as_bytes())))
}
