//! [`ControlStore`] on SQLite. Decisions that read before they write (votes, switch changes) run
//! under `BEGIN IMMEDIATE`, which takes the database write lock up front, so two processes on
//! one file decide one after the other; the rest are single statements, atomic on their own.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, Sqlite, Transaction};
use warden_core::store::{
    Approval, ApprovalStatus, CancelScope, ControlStore, StoreError, Switch, Usage, Vote,
    VoteOutcome,
};

use super::SqliteStore;
use crate::codec::{parse_opt_time, parse_time, time_text};
use crate::control::{
    Before, SWITCHES_VERSION, ScopeFilter, after_vote, args_from_db, args_text, before_vote,
    check_amount, check_transition, kind_from_db, required_count_from_db, status_from_db,
    vote_count_from_db,
};
use crate::error::{corrupt, db_error};

const APPROVAL_COLUMNS: &str = "id, kind, event_id, agent, \"user\", task, session, tool, \
     args_hash, args, required_role, required_count, policies, status, requested_at, expires_at, \
     decided_at, result_event_id";

type SwitchRow = (String, bool, Option<String>, String, String);
type VoteRow = (String, String, bool, Option<String>, String);

fn switch(row: SwitchRow) -> Result<Switch, StoreError> {
    let (scope, paused, reason, by, at) = row;
    Ok(Switch {
        at: parse_time(&at, "switch set_at")?,
        scope,
        paused,
        reason,
        by,
    })
}

fn vote(row: VoteRow) -> Result<Vote, StoreError> {
    let (approval_id, approver, approve, reason, at) = row;
    Ok(Vote {
        at: parse_time(&at, "vote voted_at")?,
        approval_id,
        approver,
        approve,
        reason,
    })
}

/// One column of an `approvals` row.
fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name)
        .map_err(|e| corrupt(format_args!("approvals.{name}"), e))
}

fn approval(row: &SqliteRow) -> Result<Approval, StoreError> {
    let id: String = column(row, "id")?;
    let policies: String = column(row, "policies")?;
    Ok(Approval {
        kind: kind_from_db(&id, &column::<String>(row, "kind")?)?,
        event_id: column(row, "event_id")?,
        agent: column(row, "agent")?,
        user: column(row, "user")?,
        task: column(row, "task")?,
        session: column(row, "session")?,
        tool: column(row, "tool")?,
        args_hash: column(row, "args_hash")?,
        args: args_from_db(&id, &column::<String>(row, "args")?)?,
        required_role: column(row, "required_role")?,
        required_count: required_count_from_db(&id, column(row, "required_count")?)?,
        policies: serde_json::from_str(&policies)
            .map_err(|e| corrupt(format_args!("policies of approval {id}"), e))?,
        status: status_from_db(&id, &column::<String>(row, "status")?)?,
        requested_at: parse_time(&column::<String>(row, "requested_at")?, "requested_at")?,
        expires_at: parse_time(&column::<String>(row, "expires_at")?, "expires_at")?,
        decided_at: parse_opt_time(
            column::<Option<String>>(row, "decided_at")?.as_deref(),
            "decided_at",
        )?,
        result_event_id: column(row, "result_event_id")?,
        id,
    })
}

impl SqliteStore {
    /// A transaction holding the database write lock from its first statement.
    async fn begin_immediate(
        &self,
        what: &str,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(e, format_args!("starting a transaction for {what}")))
    }
}

async fn set_status(
    tx: &mut Transaction<'static, Sqlite>,
    id: &str,
    status: ApprovalStatus,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE approvals SET status = ?, decided_at = ? WHERE id = ?")
        .bind(status.as_str())
        .bind(time_text(at))
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(|e| db_error(e, format_args!("marking approval {id} {status}")))?;
    Ok(())
}

/// End a vote that changed nothing, releasing the lock now rather than when the connection is
/// next used.
async fn rollback(tx: Transaction<'static, Sqlite>, id: &str) -> Result<(), StoreError> {
    tx.rollback()
        .await
        .map_err(|e| db_error(e, format_args!("ending a vote on approval {id}")))
}

#[async_trait]
impl ControlStore for SqliteStore {
    async fn set_switch(&self, switch: &Switch) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate("a switch change").await?;
        sqlx::query(
            "INSERT INTO switches (scope, paused, reason, set_by, set_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (scope) DO UPDATE SET paused = excluded.paused, \
             reason = excluded.reason, set_by = excluded.set_by, set_at = excluded.set_at",
        )
        .bind(switch.scope.as_str())
        .bind(switch.paused)
        .bind(switch.reason.as_deref())
        .bind(switch.by.as_str())
        .bind(time_text(switch.at))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(e, format_args!("setting switch {}", switch.scope)))?;
        let bumped =
            sqlx::query("UPDATE control_versions SET version = version + 1 WHERE name = ?")
                .bind(SWITCHES_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error(e, "bumping the switch version"))?;
        if bumped.rows_affected() != 1 {
            return Err(StoreError::Corrupt(
                "the switch version row is missing".into(),
            ));
        }
        tx.commit()
            .await
            .map_err(|e| db_error(e, format_args!("committing switch {}", switch.scope)))
    }

    async fn switches(&self) -> Result<Vec<Switch>, StoreError> {
        let rows = sqlx::query_as::<_, SwitchRow>(
            "SELECT scope, paused, reason, set_by, set_at FROM switches ORDER BY scope",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "listing switches"))?;
        rows.into_iter().map(switch).collect()
    }

    async fn switch_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT version FROM control_versions WHERE name = ?")
            .bind(SWITCHES_VERSION)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, "reading the switch version"))?
            .ok_or_else(|| StoreError::Corrupt("the switch version row is missing".into()))
    }

    async fn insert_approval(&self, a: &Approval) -> Result<(), StoreError> {
        let policies = serde_json::to_string(&a.policies).map_err(|e| {
            StoreError::Database(format!("encoding the policies of approval {}: {e}", a.id))
        })?;
        let sql = format!(
            "INSERT INTO approvals ({APPROVAL_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(a.id.as_str())
            .bind(a.kind.as_str())
            .bind(a.event_id.as_str())
            .bind(a.agent.as_str())
            .bind(a.user.as_deref())
            .bind(a.task.as_deref())
            .bind(a.session.as_deref())
            .bind(a.tool.as_str())
            .bind(a.args_hash.as_str())
            .bind(args_text(&a.id, &a.args)?)
            .bind(a.required_role.as_deref())
            .bind(i64::from(a.required_count))
            .bind(policies)
            .bind(a.status.as_str())
            .bind(time_text(a.requested_at))
            .bind(time_text(a.expires_at))
            .bind(a.decided_at.map(time_text))
            .bind(a.result_event_id.as_deref())
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, format_args!("inserting approval {}", a.id)))?;
        Ok(())
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, format_args!("reading approval {id}")))?;
        row.as_ref().map(approval).transpose()
    }

    async fn approvals(&self, status: Option<ApprovalStatus>) -> Result<Vec<Approval>, StoreError> {
        let filter = if status.is_some() {
            "WHERE status = ?"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals {filter} \
             ORDER BY requested_at DESC, id DESC"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "listing approvals"))?;
        rows.iter().map(approval).collect()
    }

    async fn votes(&self, approval_id: &str) -> Result<Vec<Vote>, StoreError> {
        let rows = sqlx::query_as::<_, VoteRow>(
            "SELECT approval_id, approver, approve, reason, voted_at FROM approval_votes \
             WHERE approval_id = ? ORDER BY voted_at, approver",
        )
        .bind(approval_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            db_error(
                e,
                format_args!("reading the votes on approval {approval_id}"),
            )
        })?;
        rows.into_iter().map(vote).collect()
    }

    async fn cast_vote(&self, v: &Vote, required_count: u32) -> Result<VoteOutcome, StoreError> {
        let id = v.approval_id.as_str();
        let mut tx = self.begin_immediate("a vote").await?;
        let row = sqlx::query_as::<_, (String, String)>(
            "SELECT status, expires_at FROM approvals WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_error(e, format_args!("reading approval {id}")))?;
        let Some((status, expires_at)) = row else {
            rollback(tx, id).await?;
            return Err(StoreError::NotFound(format!("approval {id}")));
        };
        let status = status_from_db(id, &status)?;
        let expires_at = parse_time(&expires_at, "approval expires_at")?;
        let voted = sqlx::query_scalar::<_, i64>(
            "SELECT 1 FROM approval_votes WHERE approval_id = ? AND approver = ?",
        )
        .bind(id)
        .bind(v.approver.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_error(e, format_args!("reading the votes on approval {id}")))?;
        match before_vote(status, expires_at, v.at, voted.is_some()) {
            Before::Refuse(outcome) => {
                rollback(tx, id).await?;
                return Ok(outcome);
            }
            Before::Expire => {
                set_status(&mut tx, id, ApprovalStatus::Expired, v.at).await?;
                tx.commit()
                    .await
                    .map_err(|e| db_error(e, format_args!("expiring approval {id}")))?;
                return Ok(VoteOutcome::NotPending(ApprovalStatus::Expired));
            }
            Before::Record => {}
        }
        sqlx::query(
            "INSERT INTO approval_votes (approval_id, approver, approve, reason, voted_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(v.approver.as_str())
        .bind(v.approve)
        .bind(v.reason.as_deref())
        .bind(time_text(v.at))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(e, format_args!("recording a vote on approval {id}")))?;
        let approvals = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM approval_votes WHERE approval_id = ? AND approve = 1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error(e, format_args!("counting the votes on approval {id}")))?;
        let (outcome, next) = after_vote(
            v.approve,
            vote_count_from_db(id, approvals)?,
            required_count,
        );
        if let Some(next) = next {
            set_status(&mut tx, id, next, v.at).await?;
        }
        tx.commit()
            .await
            .map_err(|e| db_error(e, format_args!("committing a vote on approval {id}")))?;
        Ok(outcome)
    }

    async fn transition_approval(
        &self,
        id: &str,
        from: ApprovalStatus,
        to: ApprovalStatus,
        result_event_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        check_transition(id, from, to)?;
        let done = sqlx::query(
            "UPDATE approvals SET status = ?, decided_at = coalesce(decided_at, ?), \
             result_event_id = coalesce(?, result_event_id) WHERE id = ? AND status = ?",
        )
        .bind(to.as_str())
        .bind(time_text(Utc::now()))
        .bind(result_event_id)
        .bind(id)
        .bind(from.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("moving approval {id} from {from} to {to}")))?;
        Ok(done.rows_affected() == 1)
    }

    async fn cancel_pending_approvals(&self, scope: CancelScope) -> Result<u64, StoreError> {
        const SET: &str =
            "UPDATE approvals SET status = 'cancelled', decided_at = ? WHERE status = 'pending'";
        let now = time_text(Utc::now());
        let filter = ScopeFilter::of(scope);
        let query = match &filter {
            ScopeFilter::All => sqlx::query(SET).bind(now),
            ScopeFilter::Agent(agent) => {
                let sql = format!("{SET} AND agent = ?");
                sqlx::query(AssertSqlSafe(sql))
                    .bind(now)
                    .bind(agent.as_str())
            }
            ScopeFilter::ToolPrefix(prefix) => {
                let sql = format!("{SET} AND substr(tool, 1, length(?)) = ?");
                sqlx::query(AssertSqlSafe(sql))
                    .bind(now)
                    .bind(prefix.as_str())
                    .bind(prefix.as_str())
            }
        };
        let done = query
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, "cancelling pending approvals"))?;
        Ok(done.rows_affected())
    }

    async fn claim_undo(&self, original_event: &str, undo_event: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO undo_links (original_event, undo_event, claimed_at) VALUES (?, ?, ?) \
             ON CONFLICT (original_event) DO NOTHING",
        )
        .bind(original_event)
        .bind(undo_event)
        .bind(time_text(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            db_error(
                e,
                format_args!("claiming the undo of event {original_event}"),
            )
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn reclaim_undo(
        &self,
        original_event: &str,
        stale_undo: &str,
        undo_event: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE undo_links SET undo_event = ?, claimed_at = ? WHERE original_event = ? AND undo_event = ?",
        )
        .bind(undo_event)
        .bind(time_text(Utc::now()))
        .bind(original_event)
        .bind(stale_undo)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            db_error(
                e,
                format_args!("taking over the undo of event {original_event}"),
            )
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn undo_of(&self, original_event: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT undo_event FROM undo_links WHERE original_event = ?")
            .bind(original_event)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| {
                db_error(
                    e,
                    format_args!("reading the undo of event {original_event}"),
                )
            })
    }

    async fn add_usage(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        count: i64,
        amount: f64,
    ) -> Result<Usage, StoreError> {
        check_amount(key, amount)?;
        let (count, amount) = sqlx::query_as::<_, (i64, f64)>(
            "INSERT INTO usage_counters (usage_key, window_start, count, amount) \
             VALUES (?, ?, ?, ?) ON CONFLICT (usage_key, window_start) DO UPDATE SET \
             count = usage_counters.count + excluded.count, \
             amount = usage_counters.amount + excluded.amount \
             RETURNING count, amount",
        )
        .bind(key)
        .bind(time_text(window_start))
        .bind(count)
        .bind(amount)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("adding usage to `{key}`")))?;
        Ok(Usage { count, amount })
    }

    async fn usage(&self, key: &str, window_start: DateTime<Utc>) -> Result<Usage, StoreError> {
        let row = sqlx::query_as::<_, (i64, f64)>(
            "SELECT count, amount FROM usage_counters WHERE usage_key = ? AND window_start = ?",
        )
        .bind(key)
        .bind(time_text(window_start))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading the usage of `{key}`")))?;
        Ok(row.map_or_else(Usage::default, |(count, amount)| Usage { count, amount }))
    }

    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM usage_counters WHERE window_start < ?")
            .bind(time_text(before))
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, "pruning usage counters"))?;
        Ok(done.rows_affected())
    }
}
