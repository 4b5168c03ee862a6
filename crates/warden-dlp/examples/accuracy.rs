//! Score Warden's detectors on a labelled corpus (precision, recall, F1 per entity type, and
//! throughput), or generate that corpus.
//!
//! ```text
//! cargo run --release -p warden-dlp --example accuracy -- --generate 5000 --seed 42 --out corpus.jsonl
//! cargo run --release -p warden-dlp --example accuracy -- corpus.jsonl [--json warden.json]
//! ```
//!
//! Matching and metrics are described in `warden_dlp::eval`; the comparison with Presidio is
//! `bench/dlp/run.sh`.

use std::hint::black_box;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

use warden_dlp::eval::{self, ENTITIES, LabelledSpan, Sample, Scores};
use warden_dlp::{DlpConfig, Scanner};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run(args: Vec<String>) -> Result<(), String> {
    if let Some(n) = flag(&args, "--generate") {
        let n: usize = n
            .parse()
            .map_err(|_| format!("--generate takes a count, got `{n}`"))?;
        let seed: u64 = flag(&args, "--seed")
            .unwrap_or_else(|| "42".into())
            .parse()
            .map_err(|_| "--seed takes a number".to_owned())?;
        let out = flag(&args, "--out").ok_or("--generate needs --out FILE")?;
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&out).map_err(|e| format!("cannot create {out}: {e}"))?,
        );
        for sample in eval::corpus(seed, n) {
            let line = serde_json::to_string(&sample).map_err(|e| e.to_string())?;
            writeln!(file, "{line}").map_err(|e| format!("writing {out}: {e}"))?;
        }
        file.flush().map_err(|e| format!("writing {out}: {e}"))?;
        eprintln!("wrote {n} sentences to {out} (seed {seed})");
        return Ok(());
    }
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .ok_or("usage: accuracy CORPUS.jsonl [--json OUT] | --generate N [--seed S] --out FILE")?;
    let corpus = read(path)?;
    let scanner = Scanner::new(&DlpConfig::default()).map_err(|e| e.to_string())?;

    let mut scores = Scores::default();
    for s in &corpus {
        let predicted: Vec<LabelledSpan> = scanner
            .scan(&s.text)
            .into_iter()
            .filter_map(|p| {
                eval::entity_of(&p.kind).map(|e| LabelledSpan {
                    start: p.start,
                    end: p.end,
                    entity: e.to_owned(),
                })
            })
            .collect();
        scores.add(&s.spans, &predicted);
    }

    // Throughput: scan the whole corpus, sentence by sentence, until a second of CPU time.
    let bytes: usize = corpus.iter().map(|s| s.text.len()).sum();
    let (mut rounds, wall, cpu_before) = (0usize, Instant::now(), thread_cpu_secs());
    loop {
        for s in &corpus {
            black_box(scanner.scan(black_box(&s.text)));
        }
        rounds += 1;
        if wall.elapsed().as_secs_f64() >= 2.0 {
            break;
        }
    }
    let wall_secs = wall.elapsed().as_secs_f64();
    let cpu_secs = match (cpu_before, thread_cpu_secs()) {
        (Some(a), Some(b)) => b - a,
        _ => wall_secs,
    };
    let total = (bytes * rounds) as f64;
    let report = serde_json::json!({
        "tool": "warden",
        "sentences": corpus.len(),
        "bytes": bytes,
        "rounds": rounds,
        "cpu_seconds": cpu_secs,
        "wall_seconds": wall_secs,
        "mb_per_s_cpu": total / cpu_secs / 1e6,
        "mb_per_s_wall": total / wall_secs / 1e6,
        "entities": ENTITIES.iter().map(|e| {
            let c = scores.by_entity.get(*e).copied().unwrap_or_default();
            (e.to_string(), serde_json::json!({
                "gold": c.gold, "found": c.found, "predicted": c.predicted, "correct": c.correct,
                "precision": c.precision(), "recall": c.recall(), "f1": c.f1(),
            }))
        }).collect::<serde_json::Map<_, _>>(),
    });
    println!(
        "{:<14} {:>6} {:>9} {:>7} {:>7} {:>7}",
        "ENTITY", "GOLD", "PREDICTED", "P", "R", "F1"
    );
    for e in ENTITIES {
        let c = scores.by_entity.get(e).copied().unwrap_or_default();
        println!(
            "{e:<14} {:>6} {:>9} {:>7.3} {:>7.3} {:>7.3}",
            c.gold,
            c.predicted,
            c.precision(),
            c.recall(),
            c.f1()
        );
    }
    println!(
        "throughput: {:.1} MB/s on one core (CPU time; {:.1} MB/s wall), {} sentences, {bytes} bytes x {rounds}",
        total / cpu_secs / 1e6,
        total / wall_secs / 1e6,
        corpus.len()
    );
    if let Some(out) = flag(&args, "--json") {
        std::fs::write(
            &out,
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("writing {out}: {e}"))?;
    }
    Ok(())
}

fn read(path: &str) -> Result<Vec<Sample>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("reading {path}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| format!("{path}:{}: not a corpus line: {e}", i + 1))?,
        );
    }
    Ok(out)
}

/// CPU seconds this thread has used (Linux), so a shared machine does not skew throughput.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}
