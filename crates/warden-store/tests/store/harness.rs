//! Opening a fresh, isolated database per test, on either backend, and cleaning it up.

use std::future::Future;
use std::sync::Arc;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use warden_store::{StoreOptions, WardenStore, open_warden_store};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A database under test: the store opened on it, and how to open it again.
#[derive(Clone)]
pub struct Db {
    pub url: String,
    pub store: Arc<dyn WardenStore>,
}

impl Db {
    /// Another store (another writer) on the same database.
    pub async fn open_another(&self) -> Arc<dyn WardenStore> {
        open_warden_store(&self.url, StoreOptions::default())
            .await
            .expect("reopening the test database")
    }
}

/// What to remove when the test ends.
enum Scratch {
    Dir { _dir: tempfile::TempDir },
    Schema { admin_url: String, schema: String },
}

fn postgres_url() -> String {
    std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

async fn admin_connection(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required by the warden-store tests and is unreachable at {}: {e}. \
             Start it (trust auth, database `test`) or set WARDEN_TEST_POSTGRES_URL.",
            redacted(url)
        )
    })
}

async fn fresh(kind: Kind, options: StoreOptions) -> (Db, Scratch) {
    let (url, scratch) = match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("creating a temp dir");
            let url = format!("sqlite://{}", dir.path().join("warden.db").display());
            (url, Scratch::Dir { _dir: dir })
        }
        Kind::Postgres => {
            let admin_url = postgres_url();
            let schema = format!("warden_t_{}", uuid::Uuid::new_v4().simple());
            let mut admin = admin_connection(&admin_url).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut admin)
                .await
                .expect("creating the test schema");
            let _ = admin.close().await;
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            let url = format!("{admin_url}{sep}options[search_path]={schema}");
            (url, Scratch::Schema { admin_url, schema })
        }
    };
    let store = open_warden_store(&url, options)
        .await
        .expect("opening the test store");
    (Db { url, store }, scratch)
}

async fn clean(scratch: Scratch) {
    if let Scratch::Schema { admin_url, schema } = scratch {
        let mut admin = admin_connection(&admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
            .expect("dropping the test schema");
        let _ = admin.close().await;
    }
}

/// Run `scenario` on a fresh database of `kind`, then drop the database even if it panicked.
pub async fn run<F, Fut>(kind: Kind, options: StoreOptions, scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (db, scratch) = fresh(kind, options).await;
    let store = db.store.clone();
    let outcome = tokio::spawn(scenario(db)).await;
    store.close().await;
    clean(scratch).await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("scenario task failed: {e}"),
        }
    }
}
