//! Scan: a body run once per slice of its scan inputs, carrying state values from one slice to the
//! next and stacking its scan outputs. Opset 9 onwards chooses each input's and output's axis and
//! direction; opset 8 scans axis 1 of batched inputs (axis 0 the batch).

use candle_core::Tensor;

use super::Call;
use crate::ModelError;
use crate::eval::node;
use crate::eval::run_memory::Kept;

/// How the body is driven over the scan inputs.
struct Slicing<'a> {
    axes: &'a [usize],
    reversed: &'a [bool],
}

/// What the iterations left: the final state values and each scan output's per-iteration values,
/// counted in the run's memory while `kept` lives.
struct Iterations<'m> {
    states: Vec<Tensor>,
    scanned: Vec<Vec<Tensor>>,
    kept: Kept<'m>,
}

/// Runs the body once per slice along each scan input's axis.
fn iterate<'c>(
    call: &'c Call<'_>,
    mut states: Vec<Tensor>,
    scan_inputs: &[Tensor],
    slicing: &Slicing<'_>,
) -> Result<Iterations<'c>, ModelError> {
    let (body, _) = call.body("body")?;
    let n = states.len();
    if body.input.len() != n + scan_inputs.len() || body.output.len() < n {
        return Err(ModelError::Evaluation(format!(
            "Scan's body must take {} inputs and give at least {n} outputs; it takes {} and gives {}",
            n + scan_inputs.len(),
            body.input.len(),
            body.output.len()
        )));
    }
    let lengths = scan_inputs
        .iter()
        .zip(slicing.axes)
        .map(|(x, &axis)| x.dim(axis))
        .collect::<Result<Vec<_>, _>>()?;
    let length = lengths.first().copied().unwrap_or(0);
    if lengths.iter().any(|&l| l != length) {
        return Err(ModelError::Evaluation(format!(
            "Scan's inputs have different sequence lengths {lengths:?}"
        )));
    }
    let mut scanned: Vec<Vec<Tensor>> = vec![Vec::new(); body.output.len() - n];
    let mut kept = call.kept();
    for step in 0..length {
        call.execution.spend_iteration("Scan")?;
        let mut body_inputs = std::mem::take(&mut states);
        for ((x, &axis), &reversed) in scan_inputs.iter().zip(slicing.axes).zip(slicing.reversed) {
            let at = if reversed { length - 1 - step } else { step };
            body_inputs.push(x.narrow(axis, at, 1)?.squeeze(axis)?);
        }
        let mut outputs = call.run_body("body", body_inputs)?;
        for (values, value) in scanned.iter_mut().zip(outputs.split_off(n)) {
            kept.keep(&value)?;
            values.push(value);
        }
        states = outputs;
    }
    Ok(Iterations {
        states,
        scanned,
        kept,
    })
}

/// One int per scan input or output from `name`, or zeros by default.
fn per_value(call: &Call<'_>, name: &str, count: usize) -> Result<Vec<i64>, ModelError> {
    let values = call.node.ints(name).unwrap_or_else(|| vec![0; count]);
    if values.len() != count {
        return Err(ModelError::Evaluation(format!(
            "Scan's {name} has {} values for {count} scanned values",
            values.len()
        )));
    }
    Ok(values)
}

/// Moves axis 0 of `x` to `axis` (a scan output's axis).
fn move_first_axis(x: Tensor, axis: i64) -> Result<Tensor, ModelError> {
    let axis = node::axis(axis, x.rank())?;
    if axis == 0 {
        return Ok(x);
    }
    let order: Vec<usize> = (1..=axis).chain([0]).chain(axis + 1..x.rank()).collect();
    Ok(x.permute(order)?.contiguous()?)
}

pub(super) fn scan(call: &Call<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>, ModelError> {
    if call.node.opset < 9 {
        return scan_batched(call, inputs);
    }
    let m = usize::try_from(call.node.int("num_scan_inputs", 0)).unwrap_or(0);
    if m == 0 || m > inputs.len() {
        return Err(ModelError::Evaluation(format!(
            "Scan's num_scan_inputs must be between 1 and its {} inputs",
            inputs.len()
        )));
    }
    let n = inputs.len() - m;
    let values = (0..inputs.len())
        .map(|i| node::required(inputs, i).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    let (states, scan_inputs) = values.split_at(n);
    let axes = per_value(call, "scan_input_axes", m)?
        .iter()
        .zip(scan_inputs)
        .map(|(&a, x)| node::axis(a, x.rank()))
        .collect::<Result<Vec<_>, _>>()?;
    let reversed: Vec<bool> = per_value(call, "scan_input_directions", m)?
        .iter()
        .map(|&d| d == 1)
        .collect();
    let slicing = Slicing {
        axes: &axes,
        reversed: &reversed,
    };
    let Iterations {
        mut states,
        scanned,
        mut kept,
    } = iterate(call, states.to_vec(), scan_inputs, &slicing)?;
    let (body, _) = call.body("body")?;
    let k = scanned.len();
    let output_axes = per_value(call, "scan_output_axes", k)?;
    let output_directions = per_value(call, "scan_output_directions", k)?;
    for (j, mut values) in scanned.into_iter().enumerate() {
        // A reverse scan output prepends each iteration's value: the last iteration comes first.
        if output_directions[j] == 1 {
            values.reverse();
        }
        let stacked = call.stack_iterations(&values, body.output.get(n + j))?;
        kept.keep(&stacked)?;
        // An output axis other than the first is a copy of the stacked values.
        let moved = move_first_axis(stacked, output_axes[j])?;
        if output_axes[j] != 0 {
            kept.keep(&moved)?;
        }
        states.push(moved);
    }
    Ok(states)
}

/// Scan-8: input 0 is optional sequence lengths, the others are batched (axis 0) and scanned along
/// axis 1; `directions` reverses scan inputs. Each batch element runs on its own.
fn scan_batched(call: &Call<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>, ModelError> {
    let m = usize::try_from(call.node.int("num_scan_inputs", 0)).unwrap_or(0);
    let values = (1..inputs.len())
        .map(|i| node::required(inputs, i).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    if m == 0 || m > values.len() {
        return Err(ModelError::Evaluation(format!(
            "Scan's num_scan_inputs must be between 1 and its {} batched inputs",
            values.len()
        )));
    }
    let n = values.len() - m;
    let batch = values[0].dim(0)?;
    let full = values[n].dim(1)?;
    if let Some(lengths) = node::optional(inputs, 0)
        && node::int_values(lengths)?.iter().any(|&l| l != full as i64)
    {
        return Err(ModelError::Unsupported(
            "Scan-8 with sequence lengths shorter than the inputs".to_owned(),
        ));
    }
    let reversed: Vec<bool> = per_value(call, "directions", m)?
        .iter()
        .map(|&d| d == 1)
        .collect();
    let axes = vec![0; m];
    let slicing = Slicing {
        axes: &axes,
        reversed: &reversed,
    };
    let (body, _) = call.body("body")?;
    let mut per_batch: Vec<Vec<Tensor>> = Vec::with_capacity(batch);
    let mut rows_kept = call.kept();
    for b in 0..batch {
        let row = values
            .iter()
            .map(|v| v.get(b))
            .collect::<Result<Vec<_>, _>>()?;
        let Iterations {
            mut states,
            scanned,
            kept: _kept,
        } = iterate(call, row[..n].to_vec(), &row[n..], &slicing)?;
        for (j, values) in scanned.iter().enumerate() {
            states.push(call.stack_iterations(values, body.output.get(n + j))?);
        }
        for value in &states {
            rows_kept.keep(value)?;
        }
        per_batch.push(states);
    }
    let count = per_batch.first().map_or(0, Vec::len);
    (0..count)
        .map(|j| {
            let column: Vec<Tensor> = per_batch.iter().map(|r| r[j].clone()).collect();
            let stacked = call.stack_iterations(&column, None)?;
            rows_kept.keep(&stacked)?;
            Ok(stacked)
        })
        .collect()
}
