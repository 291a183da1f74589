//! Staff API tokens: shown once at creation, stored only as a SHA-256 hash. Roles nest:
//! `viewer` sees aggregates, `finance` also donors' personal data, `admin` also manages staff.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Finance,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "finance" => Some(Self::Finance),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Finance => "finance",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Staff {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("a staff member named {0:?} already exists")]
    Exists(String),
    #[error("no active staff member named {0:?}")]
    Unknown(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a staff member and returns their token, which is never stored.
pub async fn add(db: &PgPool, name: &str, role: Role) -> Result<String, StaffError> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("chipin_{}", hex::encode(bytes));
    let inserted = sqlx::query!(
        "insert into staff (name, role, token_hash) values ($1, $2, $3) on conflict (name) do nothing",
        name,
        role.as_str(),
        hash_token(&token)
    )
    .execute(db)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StaffError::Exists(name.into()));
    }
    Ok(token)
}

pub async fn revoke(db: &PgPool, name: &str) -> Result<(), StaffError> {
    let done = sqlx::query!(
        "update staff set revoked_at = now() where name = $1 and revoked_at is null",
        name
    )
    .execute(db)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(StaffError::Unknown(name.into()));
    }
    Ok(())
}

/// (name, role, created, revoked) for everyone, active or not.
pub async fn list(
    db: &PgPool,
) -> Result<Vec<(String, String, String, Option<String>)>, StaffError> {
    let rows = sqlx::query!("select name, role, created_at, revoked_at from staff order by name")
        .fetch_all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.name,
                r.role,
                r.created_at.to_rfc3339(),
                r.revoked_at.map(|t| t.to_rfc3339()),
            )
        })
        .collect())
}

/// The active staff member a token belongs to.
pub async fn authenticate(db: &PgPool, token: &str) -> Result<Option<Staff>, sqlx::Error> {
    let row = sqlx::query!(
        "select name, role from staff where token_hash = $1 and revoked_at is null",
        hash_token(token)
    )
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|r| Role::parse(&r.role).map(|role| Staff { name: r.name, role })))
}

/// Writes who looked at whose personal data.
pub async fn audit(
    db: &PgPool,
    staff: &Staff,
    action: &str,
    subject: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into audit_log (staff_name, action, subject) values ($1, $2, $3)",
        staff.name,
        action,
        subject
    )
    .execute(db)
    .await?;
    Ok(())
}
