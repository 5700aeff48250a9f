//! Benchmark results, one row per variant, device and batch size.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::BenchmarkResultRow;
use crate::db::schema::benchmark_results;

pub fn insert(conn: &mut DbConnection, row: &BenchmarkResultRow) -> QueryResult<()> {
    diesel::insert_into(benchmark_results::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// A version's results, by variant, device and batch size.
pub fn for_version(
    conn: &mut DbConnection,
    version_id: &str,
) -> QueryResult<Vec<BenchmarkResultRow>> {
    benchmark_results::table
        .filter(benchmark_results::version_id.eq(version_id))
        .order((
            benchmark_results::variant.asc(),
            benchmark_results::device.asc(),
            benchmark_results::batch_size.asc(),
            benchmark_results::measured_at.asc(),
        ))
        .select(BenchmarkResultRow::as_select())
        .load(conn)
}
