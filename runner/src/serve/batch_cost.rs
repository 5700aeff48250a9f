//! What batches have cost the engine, so that an instance waits for company only while a bigger batch
//! would be cheaper per row. Waiting for more requests buys throughput by spreading a batch's fixed cost
//! (the call, the kernels' start-up, weights read once for all rows) over more rows; a model whose batches
//! cost the same per row at any size (a compute-bound transformer on one thread) gains nothing from the
//! wait but latency, and an instance idling through its window is a core not running requests.
//!
//! The engine's time for a batch is fitted as `fixed + per_byte * input_bytes` by least squares over the
//! instance's recent batches, older ones weighing less (the machine's load changes). The batch's input
//! bytes, not its rows, because requests of other shapes (longer sequences, larger images) stack only with
//! their own kind, and their rows cost more: a line through rows alone would mix a few long rows with many
//! short ones and read the difference as fixed cost. Waiting pays while the cost per row at the largest
//! batch, for rows of the size being gathered, is at most [`WORTH_WAITING`] of the cost per row of the rows
//! gathered. Until batches of different sizes have been seen the fit knows nothing and the instance waits
//! as configured (which is also how it comes to see other sizes).

use std::time::Duration;

/// The share of the current cost per row that the largest batch must beat for a wait to be worth it.
pub const WORTH_WAITING: f64 = 0.9;

/// Each batch's weight decays by this much per later batch: about the last hundred batches count.
const DECAY: f64 = 0.99;

/// Batch sizes must spread at least this much (their weighted standard deviation, in rows of the batches'
/// mean row size) before the line through them says anything.
const MIN_SPREAD_ROWS: f64 = 0.5;

/// Decayed sums of the least-squares fit of batch time (seconds) against input bytes.
#[derive(Debug, Default, Clone)]
pub struct BatchCosts {
    weight: f64,
    rows: f64,
    bytes: f64,
    bytes_squared: f64,
    seconds: f64,
    bytes_seconds: f64,
}

/// The fitted line: seconds for a batch of `b` input bytes = `fixed + per_byte * b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostLine {
    pub fixed: f64,
    pub per_byte: f64,
}

impl CostLine {
    fn per_row_at(self, rows: usize, row_bytes: f64) -> f64 {
        self.fixed / rows.max(1) as f64 + self.per_byte * row_bytes
    }
}

impl BatchCosts {
    /// Counts a batch of `rows` rows and `bytes` bytes of inputs that the engine ran in `took`.
    pub fn record(&mut self, rows: usize, bytes: usize, took: Duration) {
        let (b, t) = (bytes as f64, took.as_secs_f64());
        self.weight = self.weight * DECAY + 1.0;
        self.rows = self.rows * DECAY + rows as f64;
        self.bytes = self.bytes * DECAY + b;
        self.bytes_squared = self.bytes_squared * DECAY + b * b;
        self.seconds = self.seconds * DECAY + t;
        self.bytes_seconds = self.bytes_seconds * DECAY + b * t;
    }

    /// The line through the recent batches, or `None` while their sizes have not spread enough.
    pub fn line(&self) -> Option<CostLine> {
        if self.weight <= 0.0 || self.rows <= 0.0 {
            return None;
        }
        let mean_bytes = self.bytes / self.weight;
        let mean_row_bytes = self.bytes / self.rows;
        let variance = self.bytes_squared / self.weight - mean_bytes * mean_bytes;
        let min_spread = MIN_SPREAD_ROWS * mean_row_bytes;
        if mean_row_bytes <= 0.0 || variance < min_spread * min_spread {
            return None;
        }
        let mean_seconds = self.seconds / self.weight;
        let covariance = self.bytes_seconds / self.weight - mean_bytes * mean_seconds;
        // A batch never costs less for having more input; noise that says so means no cost per byte.
        let per_byte = (covariance / variance).max(0.0);
        let fixed = (mean_seconds - per_byte * mean_bytes).max(0.0);
        Some(CostLine { fixed, per_byte })
    }

    /// Whether an instance holding `rows` rows of `row_bytes` input bytes each should wait for more such
    /// rows, up to `max_batch`: yes while nothing is known, or while a full batch would cost at most
    /// [`WORTH_WAITING`] of the current cost per row.
    pub fn waiting_pays(&self, rows: usize, row_bytes: f64, max_batch: usize) -> bool {
        let Some(line) = self.line() else {
            return true;
        };
        let now = line.per_row_at(rows, row_bytes);
        now > 0.0 && line.per_row_at(max_batch, row_bytes) <= WORTH_WAITING * now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input bytes of one row in the tests of one shape (a BERT row of 32 tokens, three INT64 inputs).
    const ROW: usize = 768;

    /// Records `count` batches of 1, 2, ..., `largest` rows of [`ROW`] bytes in turn, each costing
    /// `fixed + per_row * rows` milliseconds.
    fn batches(costs: &mut BatchCosts, count: usize, largest: usize, (fixed, per_row): (f64, f64)) {
        for i in 0..count {
            let rows = 1 + i % largest;
            let millis = fixed + per_row * rows as f64;
            costs.record(rows, rows * ROW, Duration::from_secs_f64(millis / 1000.0));
        }
    }

    fn costs_of(count: usize, largest: usize, line_ms: (f64, f64)) -> BatchCosts {
        let mut costs = BatchCosts::default();
        batches(&mut costs, count, largest, line_ms);
        costs
    }

    fn waits(costs: &BatchCosts, rows: usize) -> bool {
        costs.waiting_pays(rows, ROW as f64, 16)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 + 1e-6 * b.abs()
    }

    #[test]
    fn the_line_through_batches_is_their_fixed_cost_and_cost_per_byte() {
        let line = costs_of(8, 8, (2.0, 0.5)).line().unwrap();
        assert!(close(line.fixed, 0.002), "{line:?}");
        assert!(close(line.per_byte, 0.0005 / ROW as f64), "{line:?}");
    }

    #[test]
    fn batches_of_one_size_say_nothing_and_the_instance_waits_as_configured() {
        let costs = costs_of(50, 1, (0.0, 0.7));
        assert_eq!(costs.line(), None);
        assert!(waits(&costs, 1));
        assert!(waits(&BatchCosts::default(), 1));
    }

    /// A model whose rows cost the same however they are batched: waiting buys nothing.
    #[test]
    fn no_wait_when_rows_cost_the_same_in_any_batch() {
        let costs = costs_of(40, 5, (0.0, 0.7));
        for gathered in 1..=16 {
            assert!(!waits(&costs, gathered), "waits at {gathered} rows");
        }
    }

    /// A model whose batch is mostly fixed cost (a small CNN): waiting pays until the batch is nearly full.
    #[test]
    fn waits_while_a_full_batch_is_cheaper_per_row() {
        let costs = costs_of(40, 8, (0.2, 0.02));
        assert!(waits(&costs, 1));
        assert!(waits(&costs, 8));
        assert!(!waits(&costs, 16));
    }

    /// Some fixed cost, mostly per row (BERT-small on one thread: about 1.2 ms for one row, 0.95 a row in
    /// fours): worth gathering a second row, not worth holding four for more.
    #[test]
    fn waits_only_while_the_fixed_cost_still_matters() {
        let costs = costs_of(40, 5, (0.3, 0.9));
        assert!(waits(&costs, 1));
        assert!(!waits(&costs, 4));
    }

    /// Old batches fade: a model that became cheap per row (the machine got busy elsewhere, or quiet)
    /// is judged by what its batches cost now.
    #[test]
    fn recent_batches_outweigh_old_ones() {
        let mut costs = costs_of(200, 5, (0.0, 0.7));
        assert!(!waits(&costs, 2));
        batches(&mut costs, 500, 5, (1.0, 0.05));
        assert!(waits(&costs, 2));
    }

    /// Short rows gathered by the dozen and long rows (8 times the input) that come alone, on a model that
    /// costs the same per input byte in any batch: counted by rows, a lone long row costing what ten short
    /// ones do would read as a large fixed cost, and every instance would wait for company it gains
    /// nothing from. Counted by bytes there is no fixed cost, and no wait for either kind.
    #[test]
    fn rows_of_other_sizes_are_judged_by_their_input() {
        let mut costs = BatchCosts::default();
        let per_byte_ms = 0.001;
        for i in 0..60 {
            let (rows, row_bytes) = if i % 3 == 0 {
                (1, 8 * ROW)
            } else {
                (8 + i % 5, ROW)
            };
            let bytes = rows * row_bytes;
            costs.record(
                rows,
                bytes,
                Duration::from_secs_f64(per_byte_ms * bytes as f64 / 1000.0),
            );
        }
        let line = costs.line().unwrap();
        assert!(line.fixed < 1e-9, "{line:?}");
        assert!(!costs.waiting_pays(1, (8 * ROW) as f64, 16));
        assert!(!costs.waiting_pays(8, ROW as f64, 16));
    }

    /// The same batches fitted against rows alone, as this module once did, found a fixed cost of most of
    /// a long row's time: the reason for counting bytes.
    #[test]
    fn a_line_through_rows_alone_misreads_mixed_rows_as_fixed_cost() {
        let mut by_rows = BatchCosts::default();
        for i in 0..60 {
            let (rows, row_bytes) = if i % 3 == 0 {
                (1, 8 * ROW)
            } else {
                (8 + i % 5, ROW)
            };
            let millis = 0.001 * (rows * row_bytes) as f64;
            // Every row counted as one byte: the line is then one through rows.
            by_rows.record(rows, rows, Duration::from_secs_f64(millis / 1000.0));
        }
        let line = by_rows.line().unwrap();
        assert!(line.fixed > 0.002, "{line:?}");
        assert!(by_rows.waiting_pays(1, 1.0, 16));
    }
}
