//! Throughput of `Scanner::scan` on (a) mostly-clean English with sparse PII and (b) JSON-ish
//! text dense with PII, plus injection scanning of (a).
//!
//! `cargo bench -p warden-dlp --bench scan -- --measurement-time 3 --warm-up-time 1`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use warden_dlp::{DlpConfig, Scanner, scan_injection};

const SENTENCES: &[&str] = &[
    "The quarterly review covered onboarding, billing and the support backlog.",
    "Customers asked for clearer invoices and a faster refund process.",
    "We shipped 3 fixes last week and plan 2 more before the end of the month.",
    "Please keep the tone friendly and refer to the help center when possible.",
    "The migration finished on schedule; no data was lost and latency improved by 12%.",
    "Escalations should go to the on-call engineer, who will triage within the hour.",
    "In 2024 the team handled roughly 40 tickets a day, most of them about passwords being reset.",
    "Remember that the cafeteria closes early on Fridays and the parking garage is being repainted.",
];

const PII: &[&str] = &[
    "Reach me at jane.doe@example.com if needed.",
    "Her number is +1-415-555-0199.",
    "Card on file: 4111 1111 1111 1111.",
    "SSN 123-45-6789 was on the form.",
    "The server at 10.20.30.40 restarted.",
];

/// About `size` bytes of English with one PII sentence per ~2 kB.
fn clean_text(size: usize) -> String {
    let mut out = String::with_capacity(size + 256);
    let (mut i, mut next_pii) = (0usize, 2048usize);
    while out.len() < size {
        out.push_str(SENTENCES[i % SENTENCES.len()]);
        out.push(' ');
        if out.len() >= next_pii {
            out.push_str(PII[(i / 7) % PII.len()]);
            out.push(' ');
            next_pii += 2048;
        }
        i += 1;
    }
    out
}

/// About `size` bytes of CRM-like JSON records, every record full of PII.
fn dense_json(size: usize) -> String {
    let mut out = String::with_capacity(size + 512);
    let mut i = 0u32;
    out.push('[');
    while out.len() < size {
        out.push_str(&format!(
            r#"{{"id":"C{i:05}","name":"Customer {i}","email":"user{i}@example.com","phone":"+1-415-555-{:04}","address":"{} Market St, San Francisco, CA 94102","ssn":"123-45-6789","card_number":"4111111111111111","ip":"10.0.{}.{}","tier":"gold","notes":"Asked about invoice {} on 2025-02-11."}},"#,
            i % 10000,
            i % 5000,
            i % 256,
            (i * 7) % 256,
            40000 + i
        ));
        i += 1;
    }
    out.push(']');
    out
}

fn bench(c: &mut Criterion) {
    let scanner = Scanner::new(&DlpConfig::default()).expect("default config");
    let clean = clean_text(4 << 20);
    let dense = dense_json(4 << 20);
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_function("clean_english_sparse_pii", |b| {
        b.iter(|| black_box(scanner.scan(black_box(&clean))))
    });
    g.throughput(Throughput::Bytes(dense.len() as u64));
    g.bench_function("json_dense_pii", |b| {
        b.iter(|| black_box(scanner.scan(black_box(&dense))))
    });
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_function("injection_clean_english", |b| {
        b.iter(|| black_box(scan_injection(black_box(&clean), &["example.com"])))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}

/// Nanoseconds this thread has spent on a CPU (Linux), to report throughput on one core
/// even when the machine is shared and wall-clock time includes waiting for a core.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn cpu_time_report() {
    let scanner = Scanner::new(&DlpConfig::default()).expect("default config");
    let cases = [
        ("clean_english_sparse_pii", clean_text(4 << 20)),
        ("json_dense_pii", dense_json(4 << 20)),
    ];
    for (name, text) in &cases {
        let rounds = 20;
        let Some(before) = thread_cpu_ns() else {
            return;
        };
        let mut spans = 0;
        for _ in 0..rounds {
            spans += black_box(scanner.scan(black_box(text))).len();
        }
        let Some(after) = thread_cpu_ns() else {
            return;
        };
        let secs = (after - before) as f64 / 1e9;
        let mbs = (text.len() * rounds) as f64 / secs / (1024.0 * 1024.0);
        println!(
            "cpu-time scan/{name}: {mbs:.0} MiB/s on one core ({} spans per {} bytes)",
            spans / rounds,
            text.len()
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    cpu_time_report();
}
