//! What every handler shares.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::stripe::StripeClient;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub stripe: StripeClient,
    pub config: Arc<Config>,
}
