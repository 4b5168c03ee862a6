//! `warden audit verify | export | checkpoint | prove` (and `tail`, in `admin.rs`): the
//! tamper-evident log.
//!
//! `verify` and `export` work offline: they open the database directly (read-only where
//! possible) or read a bundle, and trust nothing but the verifier key. `checkpoint` and `prove`
//! ask the running server, then check what it answered against the verifier key.
//!
//! Exit codes of `verify`: 0 when everything verifies, 1 when the log or a checkpoint was
//! tampered with (the first bad index is named), 2 when it could not be checked at all (bad
//! arguments, unreadable database, no verifier key).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_audit::canonical::{canonical_bytes, differing_fields};
use warden_audit::merkle::{CompactRange, Hash, NodeId, leaf_hash, verify_inclusion};
use warden_audit::{LogVerifier, Record, VerifierKey, VerifyError, checkpoint};
use warden_core::{AuditEvent, Config};
use warden_server::checkpointer::verifier_key_path;
use warden_store::{LeafScan, LogReader, RawCheckpoint, RawRecord, ScannedLeaf};

use crate::admin::Api;
use crate::{ConfigArg, ServerArgs};

/// Exit code: the log or a checkpoint does not verify.
const EXIT_TAMPERED: u8 = 1;
/// Exit code: the log could not be checked (usage, IO, no key).
const EXIT_USAGE: u8 = 2;
/// Event rows read per query.
const CHUNK: u32 = 4096;
/// The first line's `format` of a bundle.
const BUNDLE_FORMAT: &str = "warden-audit-bundle/1";

#[derive(Subcommand)]
pub enum AuditCommand {
    #[command(flatten)]
    Api(crate::admin::AuditCommand),
    /// Check the whole log offline: recompute every leaf hash and the tree, check every stored
    /// checkpoint's signature, size and root. Exit 0 if all verifies, 1 naming the first bad
    /// event, 2 if it cannot be checked.
    Verify(VerifyArgs),
    /// Write a self-contained bundle (JSON lines) that `verify --bundle` checks.
    Export(ExportArgs),
    /// Show the latest signed checkpoint (checked with the verifier key), or the verifier key.
    Checkpoint(CheckpointArgs),
    /// Show and check the inclusion proof of one event against the latest checkpoint.
    Prove(ProveArgs),
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The database (default: the config's `database`), e.g. sqlite://warden.db.
    #[arg(long, conflicts_with = "bundle")]
    pub db: Option<String>,
    /// A bundle written by `warden audit export` instead of a database.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// The verifier key file (default: checkpoint.pub beside the config's signing key).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A saved signed checkpoint (say, one published earlier) to check the log against as
    /// well; repeatable.
    #[arg(long = "checkpoint", value_name = "NOTE_FILE")]
    pub checkpoints: Vec<PathBuf>,
    /// Check hashes and signatures only: skip the strict decoding of each record and the
    /// comparison of the stored columns with it (several times faster).
    #[arg(long)]
    pub quick: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Start at this seq (rounded down to the checkpoint at or below it, so the bundle starts
    /// at a signed point).
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// The database (default: the config's `database`).
    #[arg(long)]
    pub db: Option<String>,
    /// The verifier key file to put in the header (default: the config's checkpoint.pub).
    #[arg(long)]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args)]
pub struct CheckpointArgs {
    /// Print the verifier key (from checkpoint.pub; no server needed) instead.
    #[arg(long)]
    pub key: bool,
    /// The verifier key file to check the checkpoint with (default: the config's).
    #[arg(long, value_name = "FILE")]
    pub verifier: Option<PathBuf>,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(clap::Args)]
pub struct ProveArgs {
    /// The event id.
    pub event: String,
    /// The verifier key file to check the checkpoint with (default: the config's).
    #[arg(long, value_name = "FILE")]
    pub verifier: Option<PathBuf>,
    /// Print the server's answer as JSON (after checking it).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(cmd: AuditCommand) -> ExitCode {
    let result = match cmd {
        AuditCommand::Api(cmd) => crate::admin::audit(cmd).await,
        AuditCommand::Verify(args) => return verify(args).await,
        AuditCommand::Export(args) => export(args).await,
        AuditCommand::Checkpoint(args) => show_checkpoint(args).await,
        AuditCommand::Prove(args) => prove(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The config, if `-c` names a readable one.
fn load_config(arg: &ConfigArg) -> Option<Config> {
    Config::load(&arg.config).ok()
}

/// The verifier key from `--key`, else the config's checkpoint.pub.
fn verifier_key(explicit: Option<&Path>, config: Option<&Config>) -> anyhow::Result<VerifierKey> {
    let path = match (explicit, config) {
        (Some(p), _) => p.to_owned(),
        (None, Some(c)) => verifier_key_path(c),
        (None, None) => bail!("no verifier key: pass --key FILE or -c with a readable config"),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the verifier key {}", path.display()))?;
    VerifierKey::parse(&text).with_context(|| format!("{} is not a verifier key", path.display()))
}

fn database_url(explicit: Option<String>, config: Option<&Config>) -> anyhow::Result<String> {
    match (explicit, config) {
        (Some(url), _) => Ok(url),
        (None, Some(c)) => Ok(c.database_url()),
        (None, None) => bail!("no database: pass --db URL or -c with a readable config"),
    }
}

/// The first problem found, with the leaf index it points at.
#[derive(Debug)]
struct Failure {
    index: u64,
    message: String,
    /// For a root mismatch, the size of the checkpoint that did not match.
    mismatched_checkpoint: Option<u64>,
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Self {
        Self {
            index: e.index(),
            message: e.to_string(),
            mismatched_checkpoint: match e {
                VerifyError::RootMismatch { size, .. } => Some(size),
                _ => None,
            },
        }
    }
}

impl Failure {
    fn at(index: u64, message: String) -> Self {
        Self {
            index,
            message,
            mismatched_checkpoint: None,
        }
    }
}

/// What a verification established.
#[derive(Debug, Default)]
struct Outcome {
    events: u64,
    checkpoints: u64,
    covered: u64,
    root: Hash,
    origin: Option<String>,
    failure: Option<Failure>,
    notes: Vec<String>,
}

impl Outcome {
    fn fail(&mut self, failure: Failure) {
        match &self.failure {
            Some(f) if f.index <= failure.index => {}
            _ => self.failure = Some(failure),
        }
    }
}

async fn verify(args: VerifyArgs) -> ExitCode {
    let config = load_config(&args.config);
    let outcome = match &args.bundle {
        Some(path) => verify_bundle(&args, path, config.as_ref()).await,
        None => verify_database(&args, config.as_ref()).await,
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if args.json {
                println!("{}", json!({ "ok": false, "error": format!("{e:#}") }));
            }
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    report(&outcome, args.json);
    if outcome.failure.is_some() {
        ExitCode::from(EXIT_TAMPERED)
    } else {
        ExitCode::SUCCESS
    }
}

fn report(o: &Outcome, as_json: bool) {
    if as_json {
        let out = json!({
            "ok": o.failure.is_none(),
            "events_verified": o.events,
            "checkpoints_verified": o.checkpoints,
            "covered": o.covered,
            "root": STANDARD.encode(o.root),
            "origin": o.origin,
            "first_bad_index": o.failure.as_ref().map(|f| f.index),
            "error": o.failure.as_ref().map(|f| f.message.clone()),
            "notes": o.notes,
        });
        println!("{out}");
        return;
    }
    for note in &o.notes {
        eprintln!("note: {note}");
    }
    match &o.failure {
        None => {
            println!(
                "OK: {} events and {} checkpoints verified{}",
                o.events,
                o.checkpoints,
                o.origin
                    .as_ref()
                    .map(|s| format!(" (log {s})"))
                    .unwrap_or_default()
            );
            println!("root at size {}: {}", o.events, STANDARD.encode(o.root));
            if o.covered < o.events {
                println!(
                    "events [{}, {}) are vouched for only by their stored hashes until the next \
                     checkpoint signs them",
                    o.covered, o.events
                );
            }
        }
        Some(f) => {
            println!("TAMPERED: first bad index: {}", f.index);
            println!("reason: {}", f.message);
            println!(
                "before it: {} checkpoints verified; events below {} are vouched for by a \
                 signature",
                o.checkpoints,
                o.covered.min(f.index)
            );
        }
    }
}

/// A checkpoint row whose columns disagree with its signed note, or whose stored compact
/// range does not fold to the signed root. `None` if the row is consistent or its note does
/// not verify (the log verifier reports that).
fn check_checkpoint_row(cp: &RawCheckpoint, key: &VerifierKey) -> Option<Failure> {
    let signed = checkpoint::verify(&cp.note, key).ok()?;
    let at = u64::try_from(cp.size).unwrap_or(0);
    let fail = |message: String| Some(Failure::at(signed.size.min(at), message));
    if i64::try_from(signed.size).ok() != Some(cp.size) {
        return fail(format!(
            "the checkpoint row with size {} holds a note signed for size {}",
            cp.size, signed.size
        ));
    }
    if cp.root.as_slice() != signed.root.as_slice() {
        return fail(format!(
            "the checkpoint at size {}: its stored root {} differs from the signed root {}",
            cp.size,
            STANDARD.encode(&cp.root),
            STANDARD.encode(signed.root)
        ));
    }
    let nodes: Option<Vec<Hash>> = cp
        .nodes
        .len()
        .is_multiple_of(32)
        .then(|| {
            cp.nodes
                .chunks_exact(32)
                .map(|c| <Hash>::try_from(c).ok())
                .collect()
        })
        .flatten();
    let folds = nodes
        .and_then(|n| CompactRange::from_parts(signed.size, n).ok())
        .is_some_and(|r| r.root() == signed.root);
    if !folds {
        return fail(format!(
            "the checkpoint at size {}: its stored compact range does not fold to its signed root",
            cp.size
        ));
    }
    None
}

/// Read saved notes given with `--checkpoint`.
fn extra_notes(paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read checkpoint {}", p.display()))
        })
        .collect()
}

/// Present every note to the verifier, smallest claimed size first.
fn present(verifier: &mut LogVerifier, notes: &[String], key: &VerifierKey) {
    let mut sorted: Vec<(u64, &String)> = notes
        .iter()
        .map(|n| (claimed_size(n).unwrap_or(0), n))
        .collect();
    sorted.sort_by_key(|(size, _)| *size);
    for (_, note) in sorted {
        // The error is kept inside the verifier; `finish` reports it.
        let _ = verifier.check_checkpoint(note, key);
    }
}

/// The size line of a note, unverified (for ordering only).
fn claimed_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.parse().ok()
}

/// What the verifier cannot express about a stored row: a negative seq or, for the row the
/// verifier expects next, no canonical bytes or a stored leaf hash that is missing or not 32
/// bytes. Returns the row's seq and the stored hash to push (`None` for a malformed one out of
/// place, where the verifier reports the seq).
fn row_shape(
    verifier: &LogVerifier,
    seq: i64,
    has_canonical: bool,
    leaf_hash: Option<&[u8]>,
) -> Result<(u64, Option<Hash>), Failure> {
    let Ok(seq) = u64::try_from(seq) else {
        return Err(Failure::at(
            verifier.size(),
            format!("a row has the negative seq {seq}"),
        ));
    };
    let at_place = seq == verifier.size();
    let fail = |message: String| Err(Failure::at(seq, message));
    let stored = leaf_hash.map(|h| Hash::try_from(h).map_err(|_| h.len()));
    match (has_canonical, stored, at_place) {
        (false, _, true) => fail(format!("event {seq} has no canonical bytes")),
        (_, None, true) => fail(format!("event {seq} has no stored leaf hash")),
        (_, Some(Err(len)), true) => fail(format!(
            "event {seq}'s stored leaf hash is {len} bytes, not 32"
        )),
        (_, Some(Ok(stored)), _) => Ok((seq, Some(stored))),
        (_, _, false) => Ok((seq, None)),
    }
}

/// Feed one row's Merkle leaf (no columns) to the verifier.
fn push_leaf(
    verifier: &mut LogVerifier,
    seq: i64,
    canonical: Option<&[u8]>,
    leaf_hash: Option<&[u8]>,
) -> Result<(), Failure> {
    let (seq, stored) = row_shape(verifier, seq, canonical.is_some(), leaf_hash)?;
    verifier
        .push(seq, canonical.unwrap_or_default(), stored)
        .map_err(Failure::from)
}

/// Feed one scanned row (already hashed, see [`LogReader::scan_leaves`]) to the verifier.
fn push_scanned_leaf(verifier: &mut LogVerifier, row: ScannedLeaf<'_>) -> Result<(), Failure> {
    let (seq, stored) = row_shape(verifier, row.seq, row.leaf.is_some(), row.stored_leaf_hash)?;
    // A row without canonical bytes is only pushed out of place, where its seq is reported.
    let leaf = row.leaf.unwrap_or_else(|| leaf_hash(&[]));
    // The quick check does not decode events, so the bytes themselves are not needed.
    verifier
        .push_hashed(seq, &[], leaf, stored)
        .map_err(Failure::from)
}

/// Feed one stored row to the verifier; a problem the verifier cannot express (see
/// [`row_shape`], unreadable columns) is returned as a failure at the row.
fn push_row(verifier: &mut LogVerifier, row: &RawRecord) -> Result<(), Failure> {
    let (seq, stored) = row_shape(
        verifier,
        row.seq,
        row.canonical.is_some(),
        row.leaf_hash.as_deref(),
    )?;
    let at_place = seq == verifier.size();
    let fail = |message: String| Err(Failure::at(seq, message));
    let canonical: &[u8] = row.canonical.as_deref().unwrap_or_default();
    let columns: Option<&AuditEvent> = match &row.columns {
        Ok(event) => event.as_ref(),
        Err(e) if at_place => {
            return fail(format!(
                "event {seq}'s stored columns are not an event: {e}"
            ));
        }
        Err(_) => None,
    };
    verifier
        .push_record(Record {
            seq,
            canonical,
            leaf_hash: stored,
            columns,
        })
        .map_err(Failure::from)?;
    // A JSON copy (kept by rows written before events stopped keeping one) must tell the same
    // event.
    match &row.body {
        None => Ok(()),
        Some(Ok(body)) if canonical_bytes(body) == canonical => Ok(()),
        Some(Ok(body)) => {
            let fields = differing_fields(&canonical_bytes(body), canonical);
            fail(format!(
                "event {seq}'s JSON body disagrees with its canonical record in: {}",
                fields.join(", ")
            ))
        }
        Some(Err(e)) => fail(format!("event {seq}'s JSON body is not an event: {e}")),
    }
}

async fn verify_database(args: &VerifyArgs, config: Option<&Config>) -> anyhow::Result<Outcome> {
    let key = verifier_key(args.key.as_deref(), config)?;
    let url = database_url(args.db.clone(), config)?;
    let reader = LogReader::open(&url)
        .await
        .context("cannot open the database")?;
    let result = verify_reader(&reader, args, &key).await;
    reader.close().await;
    let mut outcome = result?;
    if !reader.read_only() {
        outcome
            .notes
            .push("the database could not be opened read-only; it was opened read-write (nothing was written)".into());
    }
    Ok(outcome)
}

/// Read the log in chunks of [`CHUNK`] rows, in order, until `end` or a short read, and send
/// them (or the error that stopped the reading) to `chunks`; stops when nobody listens.
async fn read_chunks(
    reader: LogReader,
    end: u64,
    chunks: tokio::sync::mpsc::Sender<anyhow::Result<Vec<RawRecord>>>,
) {
    let mut from = 0u64;
    while from < end {
        let records = reader
            .records(from, CHUNK)
            .await
            .context("cannot read events");
        let next = match &records {
            Ok(rows) => rows
                .last()
                .map(|last| u64::try_from(last.seq).unwrap_or(0).saturating_add(1)),
            Err(_) => None,
        };
        if chunks.send(records).await.is_err() {
            return;
        }
        match next {
            Some(next) => from = next,
            None => return,
        }
    }
}

/// Feed every row below `end` to the verifier, read whole in chunks (the database reads the
/// next chunk while this task checks the last one); stops at the first failing row.
async fn push_rows(
    reader: &LogReader,
    end: u64,
    verifier: &mut LogVerifier,
) -> anyhow::Result<Option<Failure>> {
    let (chunks, mut read) = tokio::sync::mpsc::channel(2);
    let reading = tokio::spawn(read_chunks(reader.clone(), end, chunks));
    let checked = async {
        while let Some(records) = read.recv().await {
            for row in &records? {
                if u64::try_from(row.seq).is_ok_and(|s| s >= end) {
                    return Ok(None);
                }
                if let Err(f) = push_row(verifier, row) {
                    return Ok(Some(f));
                }
            }
        }
        anyhow::Ok(None)
    }
    .await;
    drop(read);
    reading.abort();
    // Cancelled or finished, the reader task is done with the pool before it is closed.
    let _ = reading.await;
    checked
}

/// Feed the rows of a scan of `[0, end)` (see [`LogReader::scan_leaves`]) to the verifier
/// until the scan ends or a row fails.
async fn push_scanned_leaves(
    mut scan: LeafScan,
    end: u64,
    verifier: &mut LogVerifier,
) -> anyhow::Result<Option<Failure>> {
    while let Some(chunk) = scan.next().await {
        for row in chunk.context("cannot read events")?.rows() {
            if let Err(f) = push_scanned_leaf(verifier, row) {
                return Ok(Some(f));
            }
        }
    }
    // Every row up to the last seq passed, so the scan reached it, unless a reader stopped
    // without saying why (it died): then the tail was never checked.
    if verifier.size() < end {
        bail!(
            "the scan of the log stopped after {} of {end} events without an error",
            verifier.size()
        );
    }
    Ok(None)
}

async fn verify_reader(
    reader: &LogReader,
    args: &VerifyArgs,
    key: &VerifierKey,
) -> anyhow::Result<Outcome> {
    let rows = reader
        .checkpoints()
        .await
        .context("cannot read checkpoints")?;
    let end = reader.log_end().await.context("cannot read the log")?;
    let mut outcome = Outcome::default();
    for cp in &rows {
        if let Some(f) = check_checkpoint_row(cp, key) {
            outcome.fail(f);
        }
    }
    let mut notes: Vec<String> = rows.iter().map(|c| c.note.clone()).collect();
    notes.extend(extra_notes(&args.checkpoints)?);
    let mut verifier = LogVerifier::new().decode_events(!args.quick);
    present(&mut verifier, &notes, key);
    let failure = if args.quick {
        // Only what the Merkle log covers is read, on a thread of its own.
        push_scanned_leaves(reader.scan_leaves(0, end), end, &mut verifier).await?
    } else {
        push_rows(reader, end, &mut verifier).await?
    };
    if let Some(f) = failure {
        outcome.fail(f);
    }
    let mut outcome = finish(verifier, outcome, &notes, key)?;
    if let Some(failure) = &mut outcome.failure
        && let Some(size) = failure.mismatched_checkpoint
        && let Some(row) = rows
            .iter()
            .find(|c| c.size == i64::try_from(size).unwrap_or(-1))
        && let Some((start, end)) = localize(reader, key, row).await
    {
        failure.index = failure.index.max(start);
        failure.message = format!(
            "{}; the stored subtree hashes under that checkpoint place the first difference \
             in events [{start}, {end})",
            failure.message
        );
    }
    Ok(outcome)
}

/// After a root mismatch at checkpoint `row`: narrow down
/// where the events first differ from what was signed, using only hashes authenticated by the
/// signed root — the checkpoint's compact range (which must fold to it), then the stored
/// subtree hashes below the first differing node (each level must fold to its authenticated
/// parent). Returns the leaf range of the smallest differing node found, or `None` if nothing
/// stored can be authenticated.
async fn localize(
    reader: &LogReader,
    key: &VerifierKey,
    row: &RawCheckpoint,
) -> Option<(u64, u64)> {
    const STRIDE: u32 = warden_server::checkpointer::STRIDE;
    let signed = checkpoint::verify(&row.note, key).ok()?;
    let nodes: Vec<Hash> = row
        .nodes
        .chunks_exact(32)
        .map(|c| <Hash>::try_from(c).ok())
        .collect::<Option<_>>()?;
    let range = CompactRange::from_parts(signed.size, nodes.clone()).ok()?;
    if range.root() != signed.root {
        return None;
    }
    // Recompute the tree of the first `size` events, keeping subtrees at the stored levels.
    let mut tree = CompactRange::new();
    let mut recomputed: HashMap<NodeId, Hash> = HashMap::new();
    while tree.size() < signed.size {
        let records = reader.leaf_records(tree.size(), CHUNK).await.ok()?;
        if records.is_empty() {
            return None;
        }
        for r in records {
            if tree.size() >= signed.size {
                break;
            }
            if u64::try_from(r.seq).ok()? != tree.size() {
                return None;
            }
            let leaf = leaf_hash(r.canonical.as_deref()?);
            tree.push_with(leaf, |id, hash| {
                if id.level > 0 && id.level.is_multiple_of(STRIDE) {
                    recomputed.insert(id, *hash);
                }
            });
        }
    }
    // The first node of the compact range that differs.
    let mut start = 0u64;
    let mut current = None;
    for (level, (ours, signed_node)) in (0..64u32)
        .rev()
        .filter(|l| signed.size & (1 << l) != 0)
        .zip(tree.nodes().iter().zip(&nodes))
    {
        if ours != signed_node {
            current = Some((NodeId::new(level, start >> level), *signed_node));
            break;
        }
        start += 1 << level;
    }
    let (mut id, mut hash) = current?;
    // Down through the stored levels while they authenticate.
    while id.level > STRIDE {
        let base = (id.level - 1) / STRIDE * STRIDE;
        if base == 0 {
            break;
        }
        let span = id.level - base;
        let first = id.index << span;
        let count = 1u64 << span;
        let children = reader
            .subtree_hashes(base, first, first + count)
            .await
            .ok()?;
        let children: Vec<Hash> = children
            .into_iter()
            .map(|(_, h)| <Hash>::try_from(h.as_slice()).ok())
            .collect::<Option<_>>()?;
        if children.len() as u64 != count || warden_audit::merkle::root(&children) != hash {
            break;
        }
        let Some((j, child)) = children.iter().enumerate().find(|(j, child)| {
            recomputed.get(&NodeId::new(base, first + *j as u64)) != Some(*child)
        }) else {
            break;
        };
        id = NodeId::new(base, first + j as u64);
        hash = *child;
    }
    id.leaf_range().map(|r| (r.start, r.end.min(signed.size)))
}

/// Fold the verifier's report into the outcome.
fn finish(
    verifier: LogVerifier,
    mut outcome: Outcome,
    notes: &[String],
    key: &VerifierKey,
) -> anyhow::Result<Outcome> {
    let report = verifier.finish();
    outcome.events = report.events_verified;
    outcome.checkpoints = report.checkpoints_verified;
    outcome.covered = report.covered;
    outcome.root = report.root;
    outcome.origin = notes
        .iter()
        .find_map(|n| checkpoint::verify(n, key).ok())
        .map(|c| c.origin);
    if let Some((_, e)) = report.first_bad {
        outcome.fail(Failure::from(e));
    }
    if outcome.checkpoints == 0 && outcome.failure.is_none() && outcome.events > 0 {
        outcome
            .notes
            .push("no checkpoint covers the log: only the stored hashes vouch for it".to_owned());
    }
    Ok(outcome)
}

/// One line of a bundle.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BundleLine {
    Header {
        format: String,
        origin: Option<String>,
        /// The verifier key text.
        key: String,
        /// The signed point the bundle starts from (absent: from seq 0).
        start: Option<BundleStart>,
        exported_at: chrono::DateTime<chrono::Utc>,
    },
    Event {
        seq: u64,
        /// Standard base64 of the canonical bytes.
        canonical: String,
        /// Standard base64 of the stored leaf hash.
        leaf_hash: Option<String>,
    },
    Checkpoint {
        size: u64,
        note: String,
    },
}

#[derive(Serialize, Deserialize)]
struct BundleStart {
    size: u64,
    /// The signed checkpoint at `size`.
    checkpoint: String,
    /// Its compact range, standard base64, largest subtree first.
    nodes: Vec<String>,
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config);
    let key = verifier_key(args.key.as_deref(), config.as_ref())?;
    let url = database_url(args.db.clone(), config.as_ref())?;
    let reader = LogReader::open(&url)
        .await
        .context("cannot open the database")?;
    let result = write_bundle(&reader, &args, &key, config.as_ref()).await;
    reader.close().await;
    result
}

async fn write_bundle(
    reader: &LogReader,
    args: &ExportArgs,
    key: &VerifierKey,
    config: Option<&Config>,
) -> anyhow::Result<()> {
    let checkpoints = reader
        .checkpoints()
        .await
        .context("cannot read checkpoints")?;
    let end = reader.log_end().await.context("cannot read the log")?;
    // Start at the newest checkpoint at or below --since (one that verifies, with its nodes).
    let start = (args.since > 0)
        .then(|| {
            checkpoints.iter().rev().find(|c| {
                u64::try_from(c.size).is_ok_and(|s| s > 0 && s <= args.since)
                    && check_checkpoint_row(c, key).is_none()
                    && checkpoint::verify(&c.note, key).is_ok()
            })
        })
        .flatten();
    let from = start.map_or(0, |c| u64::try_from(c.size).unwrap_or(0));
    let origin = checkpoints
        .last()
        .and_then(|c| c.note.lines().next().map(str::to_owned))
        .or_else(|| config.map(|c| c.audit.origin.clone()));
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut line = |value: &BundleLine| write_line(&mut out, value);
    line(&BundleLine::Header {
        format: BUNDLE_FORMAT.to_owned(),
        origin,
        key: key.to_string(),
        start: start.map(|c| BundleStart {
            size: from,
            checkpoint: c.note.clone(),
            nodes: c.nodes.chunks(32).map(|n| STANDARD.encode(n)).collect(),
        }),
        exported_at: chrono::Utc::now(),
    })?;
    let mut next = from;
    let mut events = 0u64;
    'read: while next < end {
        let records = reader
            .leaf_records(next, CHUNK)
            .await
            .context("cannot read events")?;
        let Some(last) = records.last() else { break };
        next = u64::try_from(last.seq).unwrap_or(0).saturating_add(1);
        for row in records {
            let Ok(seq) = u64::try_from(row.seq) else {
                continue;
            };
            if seq >= end {
                break 'read;
            }
            line(&BundleLine::Event {
                seq,
                canonical: STANDARD.encode(row.canonical.unwrap_or_default()),
                leaf_hash: row.leaf_hash.map(|h| STANDARD.encode(h)),
            })?;
            events += 1;
        }
    }
    let mut notes = 0u64;
    for cp in &checkpoints {
        let Ok(size) = u64::try_from(cp.size) else {
            continue;
        };
        if size > from {
            line(&BundleLine::Checkpoint {
                size,
                note: cp.note.clone(),
            })?;
            notes += 1;
        }
    }
    out.flush()?;
    eprintln!("exported {events} events from seq {from} and {notes} checkpoints");
    Ok(())
}

/// One JSON line of a bundle.
fn write_line(out: &mut impl Write, value: &BundleLine) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

async fn verify_bundle(
    args: &VerifyArgs,
    path: &Path,
    config: Option<&Config>,
) -> anyhow::Result<Outcome> {
    let open = || -> anyhow::Result<BufReader<std::fs::File>> {
        Ok(BufReader::new(std::fs::File::open(path).with_context(
            || format!("cannot open the bundle {}", path.display()),
        )?))
    };
    // First pass: the header and the checkpoints (presented before the events).
    let mut header = None;
    let mut notes = Vec::new();
    for (n, text) in open()?.lines().enumerate() {
        let text = text.with_context(|| format!("cannot read {}", path.display()))?;
        match serde_json::from_str::<BundleLine>(&text) {
            Ok(BundleLine::Header {
                format, key, start, ..
            }) if n == 0 => header = Some((format, key, start)),
            Ok(BundleLine::Checkpoint { note, .. }) => notes.push(note),
            Ok(_) => {}
            Err(e) => bail!(
                "{} line {} is not a bundle line: {e}",
                path.display(),
                n + 1
            ),
        }
    }
    let Some((format, bundled_key, start)) = header else {
        bail!("{} does not start with a bundle header", path.display());
    };
    if format != BUNDLE_FORMAT {
        bail!(
            "{} is a `{format}` bundle; this warden reads {BUNDLE_FORMAT}",
            path.display()
        );
    }
    let bundled_key = VerifierKey::parse(&bundled_key).context("the bundle's key")?;
    let mut outcome = Outcome::default();
    let key = match verifier_key(args.key.as_deref(), config) {
        Ok(key) => {
            if key != bundled_key {
                outcome.notes.push(format!(
                    "the bundle names key {bundled_key}, not the verifier key {key}: checking \
                     with the verifier key"
                ));
            }
            key
        }
        Err(_) => {
            outcome.notes.push(format!(
                "no verifier key given: using the bundle's own key {bundled_key}; compare it \
                 with the published one"
            ));
            bundled_key
        }
    };
    notes.extend(extra_notes(&args.checkpoints)?);
    let mut verifier = LogVerifier::new().decode_events(!args.quick);
    if let Some(start) = start {
        let nodes = start
            .nodes
            .iter()
            .map(|n| {
                STANDARD
                    .decode(n)
                    .ok()
                    .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
            })
            .collect::<Option<Vec<Hash>>>();
        let Some(nodes) = nodes else {
            bail!("the bundle's start nodes are not base64 of 32-byte hashes");
        };
        match verifier.resume_at(&start.checkpoint, &key, nodes) {
            Ok(v) => verifier = v,
            Err(e) => {
                outcome.fail(Failure::from(e));
                return Ok(outcome);
            }
        }
    }
    present(&mut verifier, &notes, &key);
    for (n, text) in open()?.lines().enumerate().skip(1) {
        let text = text.with_context(|| format!("cannot read {}", path.display()))?;
        let Ok(BundleLine::Event {
            seq,
            canonical,
            leaf_hash: stored,
        }) = serde_json::from_str::<BundleLine>(&text)
        else {
            continue;
        };
        let decode = |what: &str, b64: &str| {
            STANDARD.decode(b64).map_err(|_| {
                Failure::at(
                    seq,
                    format!("line {}: the {what} of event {seq} is not base64", n + 1),
                )
            })
        };
        // A bundle has no columns: only the canonical record and its hash.
        let pushed = decode("canonical bytes", &canonical).and_then(|canonical| {
            let stored = stored
                .as_deref()
                .map(|h| decode("leaf hash", h))
                .transpose()?;
            let seq = i64::try_from(seq).unwrap_or(i64::MAX);
            push_leaf(&mut verifier, seq, Some(&canonical), stored.as_deref())
        });
        if let Err(f) = pushed {
            outcome.fail(f);
            break;
        }
    }
    finish(verifier, outcome, &notes, &key)
}

async fn show_checkpoint(args: CheckpointArgs) -> anyhow::Result<()> {
    let config = load_config(&args.server.config);
    if args.key {
        let key = verifier_key(args.verifier.as_deref(), config.as_ref())?;
        println!("{key}");
        return Ok(());
    }
    let body = Api::from_args(&args.server)?
        .get("/v1/audit/checkpoint")
        .await?;
    let note = body["note"].as_str().unwrap_or_default();
    match verifier_key(args.verifier.as_deref(), config.as_ref()) {
        Ok(key) => {
            let cp = checkpoint::verify(note, &key)
                .context("the server's checkpoint does not verify with the verifier key")?;
            eprintln!(
                "checkpoint verified with {key}: size {}, root {}",
                cp.size,
                STANDARD.encode(cp.root)
            );
        }
        Err(e) => eprintln!("warning: the signature was not checked: {e:#}"),
    }
    if args.json {
        println!("{body}");
    } else {
        print!("{note}");
    }
    Ok(())
}

async fn prove(args: ProveArgs) -> anyhow::Result<()> {
    let config = load_config(&args.server.config);
    let body = Api::from_args(&args.server)?
        .get(&format!("/v1/audit/proof/{}", args.event))
        .await?;
    let checked = check_proof(&body, args.verifier.as_deref(), config.as_ref())?;
    if args.json {
        println!("{body}");
    } else {
        println!(
            "event {} is leaf {} of the log at size {} (root {})",
            args.event,
            checked.index,
            checked.size,
            STANDARD.encode(checked.root)
        );
        println!(
            "proof: {} hashes, verified{}",
            checked.proof_len, checked.by
        );
        print!("{}", body["checkpoint"].as_str().unwrap_or_default());
    }
    Ok(())
}

struct CheckedProof {
    index: u64,
    size: u64,
    root: Hash,
    proof_len: usize,
    by: String,
}

/// Check a `/v1/audit/proof` answer: the leaf hash from the canonical bytes, the checkpoint's
/// signature (when a verifier key is at hand), and the proof against the signed root.
fn check_proof(
    body: &Value,
    verifier: Option<&Path>,
    config: Option<&Config>,
) -> anyhow::Result<CheckedProof> {
    let field = |name: &str| {
        body[name]
            .as_str()
            .with_context(|| format!("the answer has no `{name}`"))
    };
    let b64 = |name: &str, text: &str| {
        STANDARD
            .decode(text)
            .with_context(|| format!("`{name}` is not base64"))
    };
    let canonical = b64("canonical", field("canonical")?)?;
    let leaf = leaf_hash(&canonical);
    if b64("leaf_hash", field("leaf_hash")?)? != leaf {
        bail!("the served leaf hash is not the hash of the served canonical bytes");
    }
    let index = body["index"]
        .as_u64()
        .context("the answer has no `index`")?;
    let size = body["size"].as_u64().context("the answer has no `size`")?;
    let proof = body["proof"]
        .as_array()
        .context("the answer has no `proof`")?
        .iter()
        .map(|p| b64("proof", p.as_str().unwrap_or_default()))
        .collect::<anyhow::Result<Vec<Vec<u8>>>>()?;
    let note = field("checkpoint")?;
    let (cp, by) = match verifier_key(verifier, config) {
        Ok(key) => (
            checkpoint::verify(note, &key)
                .context("the checkpoint does not verify with the verifier key")?,
            format!(" against the checkpoint signed by {key}"),
        ),
        Err(e) => {
            eprintln!("warning: the checkpoint's signature was not checked: {e:#}");
            let text = note.split("\n\n").next().unwrap_or_default();
            (
                warden_audit::Checkpoint::parse_body(&format!("{text}\n"))
                    .context("the checkpoint is malformed")?,
                " against the checkpoint's root (signature NOT checked)".to_owned(),
            )
        }
    };
    if cp.size != size {
        bail!(
            "the proof is for size {size}, the checkpoint for {}",
            cp.size
        );
    }
    verify_inclusion(&leaf, index, size, &proof, &cp.root)
        .context("the inclusion proof does not verify")?;
    Ok(CheckedProof {
        index,
        size,
        root: cp.root,
        proof_len: proof.len(),
        by,
    })
}
