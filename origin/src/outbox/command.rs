//! `breakwater-origin dead-letters list | replay`: what an operator runs against the database
//! (`--database-url`), with or without a server running on it.

use std::io::{self, Write};

use clap::{Args, Subcommand};

use super::dead_letter::{self, DeadLetter, Selection};
use crate::db::{self, Db};
use crate::order::rfc3339;

/// The `dead-letters` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum DeadLettersCommand {
    /// One line per dead letter waiting for a replay, oldest first: id, order, topic, attempts,
    /// last error, when it died.
    List {
        /// Also show dead letters already replayed (with when).
        #[arg(long)]
        include_replayed: bool,
    },
    /// Put dead letters back in the outbox: attempts from zero, due at once. Prints how many.
    Replay(ReplayArgs),
}

/// Which dead letters to replay: `--id N` (repeatable) or `--all`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[group(required = true, multiple = false)]
pub struct ReplayArgs {
    /// A dead letter's id (the first column of `list`); repeat for several.
    #[arg(long = "id", value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    pub ids: Vec<i64>,
    /// Every dead letter not replayed yet.
    #[arg(long)]
    pub all: bool,
}

impl ReplayArgs {
    pub fn selection(&self) -> Selection {
        if self.all {
            Selection::All
        } else {
            Selection::Ids(self.ids.clone())
        }
    }
}

/// Why a `dead-letters` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Connect(#[from] db::ConnectError),
    #[error("cannot apply database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("cannot write the output")]
    Output(#[from] io::Error),
    #[error("not replayed (no such dead letter, or already replayed): {}", ids(.0))]
    NotReplayed(Vec<i64>),
}

/// Connects to `database_url` (migrating it, as the server would), runs `command` at `now_ms`
/// and writes its lines to `out`. Asking to replay an id that is unknown or already replayed is
/// an error, after the others have been replayed and counted.
pub async fn run(
    command: &DeadLettersCommand,
    database_url: &str,
    now_ms: i64,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let db = Db::connect(database_url).await?;
    let result = execute(&db, command, now_ms, out).await;
    db.close().await;
    result
}

async fn execute(
    db: &Db,
    command: &DeadLettersCommand,
    now_ms: i64,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    db.migrate().await?;
    match command {
        DeadLettersCommand::List { include_replayed } => {
            for letter in dead_letter::list(db, *include_replayed).await? {
                writeln!(out, "{}", line(&letter))?;
            }
        }
        DeadLettersCommand::Replay(args) => {
            let selection = args.selection();
            let replayed = dead_letter::replay(db, &selection, now_ms).await?;
            let plural = if replayed.len() == 1 { "" } else { "s" };
            writeln!(
                out,
                "replayed {} dead letter{plural}{}",
                replayed.len(),
                if replayed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", ids(&replayed))
                }
            )?;
            let missed: Vec<i64> = args
                .ids
                .iter()
                .copied()
                .filter(|id| !replayed.contains(id))
                .collect();
            if !missed.is_empty() {
                return Err(CommandError::NotReplayed(missed));
            }
        }
    }
    Ok(())
}

/// `id=3 order=42 topic=confirmation attempts=8 error="…" dead_at=2025-…Z`, the error quoted
/// and escaped so that each dead letter stays on one line.
pub fn line(letter: &DeadLetter) -> String {
    let mut line = format!(
        "id={} order={} topic={} attempts={} error={:?} dead_at={}",
        letter.id,
        letter.order_id,
        letter.topic,
        letter.attempts,
        letter.last_error,
        rfc3339(letter.dead_at)
    );
    if let Some(replayed_at) = letter.replayed_at {
        line.push_str(&format!(" replayed_at={}", rfc3339(replayed_at)));
    }
    line
}

fn ids(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_is_one_line_whatever_its_error() {
        let letter = DeadLetter {
            id: 3,
            outbox_id: 9,
            order_id: 42,
            topic: "confirmation".into(),
            attempts: 8,
            last_error: "disk full\n\"again\"".into(),
            dead_at: 0,
            replayed_at: None,
        };
        assert_eq!(
            line(&letter),
            "id=3 order=42 topic=confirmation attempts=8 error=\"disk full\\n\\\"again\\\"\" \
             dead_at=1970-01-01T00:00:00.000Z"
        );
        let replayed = DeadLetter {
            replayed_at: Some(1_000),
            ..letter
        };
        assert!(line(&replayed).ends_with(" replayed_at=1970-01-01T00:00:01.000Z"));
    }
}
