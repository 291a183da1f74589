//! Connecting to Postgres, creating the database when it is missing, and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates the database named in `url` if it does not exist (a fresh machine has only the
/// server), connecting to the `postgres` maintenance database to do so.
pub async fn create_if_missing(url: &str) -> Result<(), sqlx::Error> {
    let opts = PgConnectOptions::from_str(url)?;
    let Some(name) = opts.get_database().map(str::to_string) else {
        return Ok(());
    };
    // Postgres silently cuts longer names, which would point us at another database.
    if name.len() > 63 {
        return Err(sqlx::Error::Configuration(
            format!("database name {name:?} is longer than Postgres' 63 bytes").into(),
        ));
    }
    if opts.clone().connect().await.is_ok() {
        return Ok(());
    }
    let mut admin = opts.database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it the way Postgres does.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("create database {quoted}"))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created the database"),
            // Another instance created it at the same moment.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    admin.close().await?;
    Ok(())
}

pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(PgConnectOptions::from_str(url)?)
        .await
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
