//! Loop: a body run while an optional trip count and an optional condition allow, carrying values from
//! one iteration to the next and stacking its scan outputs along a new first axis.

use candle_core::Tensor;

use super::{Call, boolean, truth};
use crate::ModelError;
use crate::eval::node;

/// The trip count M, when given: an int64 scalar (negative counts run no iteration).
fn trip_count(inputs: &[Option<Tensor>]) -> Result<Option<i64>, ModelError> {
    let Some(m) = node::optional(inputs, 0) else {
        return Ok(None);
    };
    match node::int_values(m)?.as_slice() {
        [m] => Ok(Some(*m)),
        other => Err(ModelError::Evaluation(format!(
            "Loop's trip count must be one value, not {} values",
            other.len()
        ))),
    }
}

/// Loop (opset 1 onwards): body inputs are (iteration number, condition, carried values...), body
/// outputs (condition, carried values..., scan outputs...); node outputs are the final carried values
/// then the scan outputs.
pub(super) fn loop_(call: &Call<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>, ModelError> {
    let (body, _) = call.body("body")?;
    let max_trips = trip_count(inputs)?;
    // Without a condition input the body's condition output is ignored (a for loop); with one, the loop
    // runs while it holds.
    let cond_given = node::optional(inputs, 1).is_some();
    let mut keep_going = match node::optional(inputs, 1) {
        Some(c) => truth(c, "Loop's condition")?,
        None => true,
    };
    let mut carried = (2..inputs.len().max(2))
        .map(|i| node::required(inputs, i).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    let n = carried.len();
    if body.input.len() != n + 2 || body.output.len() < n + 1 {
        return Err(ModelError::Evaluation(format!(
            "Loop's body must take {} inputs and give at least {} outputs; it takes {} and gives {}",
            n + 2,
            n + 1,
            body.input.len(),
            body.output.len()
        )));
    }
    let k = body.output.len() - n - 1;
    let mut scans: Vec<Vec<Tensor>> = vec![Vec::new(); k];
    let mut kept = call.kept();
    let mut iteration: i64 = 0;
    while max_trips.is_none_or(|m| iteration < m) && (!cond_given || keep_going) {
        call.execution.spend_iteration("Loop")?;
        let mut body_inputs = Vec::with_capacity(n + 2);
        body_inputs.push(Tensor::new(iteration, call.device())?);
        body_inputs.push(boolean(keep_going, call.device())?);
        body_inputs.append(&mut carried);
        let mut outputs = call.run_body("body", body_inputs)?;
        let scanned = outputs.split_off(n + 1);
        keep_going = truth(&outputs[0], "Loop's body condition")?;
        carried = outputs.split_off(1);
        for (values, value) in scans.iter_mut().zip(scanned) {
            kept.keep(&value)?;
            values.push(value);
        }
        iteration += 1;
    }
    let mut results = carried;
    for (j, values) in scans.iter().enumerate() {
        // Counted beside the next output's stacking, until the node's outputs are the run's values.
        let stacked = call.stack_iterations(values, body.output.get(n + 1 + j))?;
        kept.keep(&stacked)?;
        results.push(stacked);
    }
    drop(kept);
    Ok(results)
}
