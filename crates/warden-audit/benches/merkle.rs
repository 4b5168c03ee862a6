//! Audit log throughput: verifying stored canonical events (leaf hashes + streaming root),
//! inclusion and consistency proofs over a 10M-leaf log, checkpoint signing and verifying.
//!
//! `cargo bench -p warden-audit --bench merkle` (add `-- --quick` style filters as usual).

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use warden_audit::canonical::canonical_bytes;
use warden_audit::checkpoint;
use warden_audit::merkle::{
    CompactRange, Hash, SubtreeCache, consistency_proof, inclusion_proof, leaf_hash,
    verify_inclusion,
};
use warden_audit::{Checkpoint, LogVerifier, Record, SigningKey};
use warden_core::event::{AuditEvent, EventKind, Finding, Outcome, Verdict};
use warden_core::model::Mode;

/// Records per verification run.
const EVENTS: u64 = 1_000_000;
/// Distinct events the runs cycle through (same bytes per record as 1M distinct ones, 1/16
/// of the memory).
const DISTINCT: usize = 1 << 16;
/// Leaves of the log the proofs are made over.
const BIG: u64 = 10_000_000;

/// A realistic tool-call event (about 700 canonical bytes).
fn event(i: u64) -> AuditEvent {
    let at = Utc
        .timestamp_micros(1_735_787_045_000_000 + i as i64)
        .unwrap();
    AuditEvent {
        id: format!("0190f5c6-7d7e-7a3b-9c1d-{i:012x}"),
        correlation_id: format!("0190f5c6-7d7e-7a3b-aaaa-{:012x}", i / 4),
        parent_id: None,
        kind: EventKind::ToolCall,
        started_at: at,
        finished_at: at,
        channel: "mcp".into(),
        agent: Some("billing-bot".into()),
        user: Some("alice@example.com".into()),
        task: Some(format!("task-{}", i % 97)),
        session: Some(format!("session-{}", i % 1013)),
        operator: None,
        action: Some("payments.refund".into()),
        mode: Some(Mode::Execute),
        bundle_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        verdict: Verdict::Allow,
        policies: vec!["refunds-small".into(), "default-read".into()],
        reason: None,
        outcome: Outcome::Ok,
        upstream_latency_us: Some(1_000 + i % 5_000),
        args_digest: Some(format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15)),
        result_digest: Some(format!("{:064x}", u128::from(i) * 0xc2b2_ae3d_27d4_eb4f)),
        approvers: vec![],
        findings: vec![Finding {
            kind: "dlp.email".into(),
            location: "result".into(),
            count: 1,
            action: "flagged".into(),
        }],
    }
}

struct Stored {
    canonical: Vec<Vec<u8>>,
    leaves: Vec<Hash>,
}

fn stored() -> Stored {
    let canonical: Vec<Vec<u8>> = (0..DISTINCT as u64)
        .map(|i| canonical_bytes(&event(i)))
        .collect();
    let leaves = canonical.iter().map(|c| leaf_hash(c)).collect();
    let mean = canonical.iter().map(Vec::len).sum::<usize>() / DISTINCT;
    eprintln!("canonical events: {mean} bytes on average");
    Stored { canonical, leaves }
}

fn verification(c: &mut Criterion) {
    let log = stored();
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("leaf_hash+root/1M", |b| {
        b.iter(|| {
            let mut tree = CompactRange::new();
            for i in 0..EVENTS as usize {
                tree.push(leaf_hash(&log.canonical[i % DISTINCT]));
            }
            black_box(tree.root())
        })
    });
    g.bench_function("log_verifier_hashes/1M", |b| {
        b.iter(|| {
            let mut v = LogVerifier::new().decode_events(false);
            for seq in 0..EVENTS {
                let i = seq as usize % DISTINCT;
                v.push(seq, &log.canonical[i], Some(log.leaves[i])).unwrap();
            }
            black_box(v.finish())
        })
    });
    let decoded = EVENTS / 10;
    g.throughput(Throughput::Elements(decoded));
    g.bench_function("log_verifier_decode/100k", |b| {
        b.iter(|| {
            let mut v = LogVerifier::new();
            for seq in 0..decoded {
                let i = seq as usize % DISTINCT;
                v.push(seq, &log.canonical[i], Some(log.leaves[i])).unwrap();
            }
            black_box(v.finish())
        })
    });
    // What `audit verify` does per row once the store has rebuilt the event from its
    // columns: re-encode, compare, hash.
    let events: Vec<AuditEvent> = (0..DISTINCT as u64).map(event).collect();
    g.bench_function("log_verifier_columns/100k", |b| {
        b.iter(|| {
            let mut v = LogVerifier::new();
            for seq in 0..decoded {
                let i = seq as usize % DISTINCT;
                v.push_record(Record {
                    seq,
                    canonical: &log.canonical[i],
                    leaf_hash: Some(log.leaves[i]),
                    columns: Some(&events[i]),
                })
                .unwrap();
            }
            black_box(v.finish())
        })
    });
    g.throughput(Throughput::Elements(1));
    let one = event(7);
    g.bench_function("canonical_bytes", |b| {
        b.iter(|| canonical_bytes(black_box(&one)))
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let started = std::time::Instant::now();
    let leaves: Vec<Hash> = (0..BIG).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let hashed = started.elapsed();
    let mut g = c.benchmark_group("proof_10M");
    for stride in [4u32, 8] {
        let started = std::time::Instant::now();
        let cache = SubtreeCache::from_leaves(stride, leaves.iter().copied());
        eprintln!(
            "10M leaves: hashed in {hashed:.2?}; stride-{stride} cache built in {:.2?}, {} KiB",
            started.elapsed(),
            cache.memory_bytes() / 1024
        );
        let source = cache.over(&leaves[..]);
        let root = cache.root();
        let mut index = 0u64;
        g.bench_with_input(BenchmarkId::new("inclusion", stride), &stride, |b, _| {
            b.iter(|| {
                index = (index + 7_777_777) % BIG;
                black_box(inclusion_proof(&source, index, BIG).unwrap())
            })
        });
        let mut size1 = 0u64;
        g.bench_with_input(BenchmarkId::new("consistency", stride), &stride, |b, _| {
            b.iter(|| {
                size1 = (size1 + 3_333_331) % BIG + 1;
                black_box(consistency_proof(&source, size1, BIG).unwrap())
            })
        });
        let proof = inclusion_proof(&source, 1234, BIG).unwrap();
        g.bench_with_input(
            BenchmarkId::new("verify_inclusion", stride),
            &stride,
            |b, _| b.iter(|| verify_inclusion(&leaves[1234], 1234, BIG, &proof, &root).unwrap()),
        );
    }
    // Without a cache: every sibling rebuilt from leaf hashes, O(N) per proof.
    g.bench_function("inclusion_leaves_only", |b| {
        b.iter(|| black_box(inclusion_proof(&leaves[..], 1234, BIG).unwrap()))
    });
    g.finish();
}

fn checkpoints(c: &mut Criterion) {
    let key = SigningKey::from_seed("warden.example/audit", [1; 32]).unwrap();
    let verifier = key.verifier();
    let cp = Checkpoint::new("warden.example/audit", BIG, leaf_hash(b"root"));
    let note = key.sign(&cp).unwrap();
    let mut g = c.benchmark_group("checkpoint");
    g.bench_function("sign", |b| b.iter(|| key.sign(black_box(&cp)).unwrap()));
    g.bench_function("verify", |b| {
        b.iter(|| checkpoint::verify(black_box(&note), &verifier).unwrap())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = verification, proofs, checkpoints
}
criterion_main!(benches);
