//! `warden bench`: gateway overhead against the direct upstream, measured in one run.

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Concurrent callers.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Calls per measurement.
    #[arg(long, default_value_t = 5000)]
    pub calls: usize,
}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the benchmark is being written")
}
