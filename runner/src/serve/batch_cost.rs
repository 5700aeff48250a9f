//! What batches have cost the engine, so that an instance waits for company only while a bigger batch
//! would be cheaper per row. Waiting for more requests buys throughput by spreading a batch's fixed cost
//! (the call, the kernels' start-up, weights read once for all rows) over more rows; a model whose batches
//! cost the same per row at any size (a compute-bound transformer on one thread) gains nothing from the
//! wait but latency, and an instance idling through its window is a core not running requests.
//!
//! The engine's time for a batch of `n` rows is fitted as `fixed + per_row * n` by least squares over the
//! instance's recent batches, older ones weighing less (the machine's load changes). Waiting pays while the
//! cost per row at the largest batch is at most [`WORTH_WAITING`] of the cost per row at the rows gathered.
//! Until batches of different sizes have been seen the fit knows nothing and the instance waits as
//! configured (which is also how it comes to see other sizes).

use std::time::Duration;

/// The share of the current cost per row that the largest batch must beat for a wait to be worth it.
pub const WORTH_WAITING: f64 = 0.9;

/// Each batch's weight decays by this much per later batch: about the last hundred batches count.
const DECAY: f64 = 0.99;

/// Batch sizes must spread at least this much (their weighted standard deviation, in rows) before the
/// line through them says anything.
const MIN_SPREAD_ROWS: f64 = 0.5;

/// Decayed sums of the least-squares fit of batch time (seconds) against rows.
#[derive(Debug, Default, Clone)]
pub struct BatchCosts {
    weight: f64,
    rows: f64,
    rows_squared: f64,
    seconds: f64,
    rows_seconds: f64,
}

/// The fitted line: seconds for a batch of `n` rows = `fixed + per_row * n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostLine {
    pub fixed: f64,
    pub per_row: f64,
}

impl CostLine {
    fn per_row_at(self, rows: usize) -> f64 {
        self.fixed / rows.max(1) as f64 + self.per_row
    }
}

impl BatchCosts {
    /// Counts a batch of `rows` rows that the engine ran in `took`.
    pub fn record(&mut self, rows: usize, took: Duration) {
        let (n, t) = (rows as f64, took.as_secs_f64());
        self.weight = self.weight * DECAY + 1.0;
        self.rows = self.rows * DECAY + n;
        self.rows_squared = self.rows_squared * DECAY + n * n;
        self.seconds = self.seconds * DECAY + t;
        self.rows_seconds = self.rows_seconds * DECAY + n * t;
    }

    /// The line through the recent batches, or `None` while their sizes have not spread enough.
    pub fn line(&self) -> Option<CostLine> {
        if self.weight <= 0.0 {
            return None;
        }
        let mean_rows = self.rows / self.weight;
        let variance = self.rows_squared / self.weight - mean_rows * mean_rows;
        if variance < MIN_SPREAD_ROWS * MIN_SPREAD_ROWS {
            return None;
        }
        let mean_seconds = self.seconds / self.weight;
        let covariance = self.rows_seconds / self.weight - mean_rows * mean_seconds;
        // A batch never costs less for having more rows; noise that says so means no cost per row.
        let per_row = (covariance / variance).max(0.0);
        let fixed = (mean_seconds - per_row * mean_rows).max(0.0);
        Some(CostLine { fixed, per_row })
    }

    /// Whether an instance holding `rows` rows should wait for more, up to `max_batch`: yes while nothing
    /// is known, or while a full batch would cost at most [`WORTH_WAITING`] of the current cost per row.
    pub fn waiting_pays(&self, rows: usize, max_batch: usize) -> bool {
        let Some(line) = self.line() else {
            return true;
        };
        let now = line.per_row_at(rows);
        now > 0.0 && line.per_row_at(max_batch) <= WORTH_WAITING * now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records `count` batches of 1, 2, ..., `largest` rows in turn, each costing `fixed + per_row * rows`
    /// milliseconds.
    fn batches(costs: &mut BatchCosts, count: usize, largest: usize, (fixed, per_row): (f64, f64)) {
        for i in 0..count {
            let rows = 1 + i % largest;
            let millis = fixed + per_row * rows as f64;
            costs.record(rows, Duration::from_secs_f64(millis / 1000.0));
        }
    }

    fn costs_of(count: usize, largest: usize, line_ms: (f64, f64)) -> BatchCosts {
        let mut costs = BatchCosts::default();
        batches(&mut costs, count, largest, line_ms);
        costs
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 + 1e-6 * b.abs()
    }

    #[test]
    fn the_line_through_batches_is_their_fixed_cost_and_cost_per_row() {
        let line = costs_of(8, 8, (2.0, 0.5)).line().unwrap();
        assert!(close(line.fixed, 0.002), "{line:?}");
        assert!(close(line.per_row, 0.0005), "{line:?}");
    }

    #[test]
    fn batches_of_one_size_say_nothing_and_the_instance_waits_as_configured() {
        let costs = costs_of(50, 1, (0.0, 0.7));
        assert_eq!(costs.line(), None);
        assert!(costs.waiting_pays(1, 16));
        assert!(BatchCosts::default().waiting_pays(1, 16));
    }

    /// A model whose rows cost the same however they are batched: waiting buys nothing.
    #[test]
    fn no_wait_when_rows_cost_the_same_in_any_batch() {
        let costs = costs_of(40, 5, (0.0, 0.7));
        for gathered in 1..=16 {
            assert!(
                !costs.waiting_pays(gathered, 16),
                "waits at {gathered} rows"
            );
        }
    }

    /// A model whose batch is mostly fixed cost (a small CNN): waiting pays until the batch is nearly full.
    #[test]
    fn waits_while_a_full_batch_is_cheaper_per_row() {
        let costs = costs_of(40, 8, (0.2, 0.02));
        assert!(costs.waiting_pays(1, 16));
        assert!(costs.waiting_pays(8, 16));
        assert!(!costs.waiting_pays(16, 16));
    }

    /// Some fixed cost, mostly per row (BERT-small on one thread: about 1.2 ms for one row, 0.95 a row in
    /// fours): worth gathering a second row, not worth holding four for more.
    #[test]
    fn waits_only_while_the_fixed_cost_still_matters() {
        let costs = costs_of(40, 5, (0.3, 0.9));
        assert!(costs.waiting_pays(1, 16));
        assert!(!costs.waiting_pays(4, 16));
    }

    /// Old batches fade: a model that became cheap per row (the machine got busy elsewhere, or quiet)
    /// is judged by what its batches cost now.
    #[test]
    fn recent_batches_outweigh_old_ones() {
        let mut costs = costs_of(200, 5, (0.0, 0.7));
        assert!(!costs.waiting_pays(2, 16));
        batches(&mut costs, 500, 5, (1.0, 0.05));
        assert!(costs.waiting_pays(2, 16));
    }
}
