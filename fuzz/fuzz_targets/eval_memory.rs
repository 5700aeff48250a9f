//! kiln's evaluator under a run's memory limit, one operator at a time, as `kiln-runner serve --engine
//! kiln` runs a client's request: every operator of the default domain, inputs of shapes (and, for small
//! ones, values) the fuzzer picks, a few attributes. Whatever the operator makes of them, the run may not
//! allocate much more than its limit beyond its inputs: a result that cannot fit must be refused before
//! it is allocated (`output_bound`), since on a real host a refused allocation aborts the process and
//! every request in it. A counting allocator measures what the run allocates at its peak, and stops the
//! fuzzer at once on one allocation far past the limit (before the host is asked for it).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, type_proto,
};
use libfuzzer_sys::fuzz_target;

/// The run's memory limit, as `--max-engine-memory-mib` gives an instance.
const LIMIT: usize = 2 << 20;
/// The most elements a case's inputs hold together: few, so that what the fuzzer finds is a result far
/// larger than what was sent, and so that no case computes for minutes (a convolution's work is its
/// output times its kernel, both within reach of a few thousand elements and the limit).
const MAX_INPUT_ELEMENTS: usize = 2048;
/// What a run may allocate at its peak beyond its inputs' copies: its limit twice over (what the run
/// holds and the result refused or made beside it) and some slack for the small scratch of operators.
const ALLOWED: usize = 2 * LIMIT + (8 << 20);
/// Copies of its inputs an operator may make on the way (widened to f64, broadcast, gathered): what
/// the fuzzer looks for is a run allocating far more than what it was sent, past its limit.
const INPUT_COPIES: usize = 8;
/// One allocation past this stops the fuzzer (an abort with the input saved) before the host is asked.
const ONE_ALLOCATION: usize = 256 << 20;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

impl Counting {
    fn grew(size: usize) {
        if size > ONE_ALLOCATION {
            // Capturing the trace allocates a little more, well under the threshold.
            let trace = std::backtrace::Backtrace::force_capture();
            eprintln!("one allocation of {size} bytes under a run limit of {LIMIT}, at\n{trace}");
            std::process::abort();
        }
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to the system allocator unchanged; the counters are atomics, and the
// abort above does not unwind (the trace it prints allocates through this allocator, small amounts).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The fuzzer's bytes, read front to back; past the end every read is zero.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn i32(&mut self) -> i32 {
        i32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

/// Attributes the fuzzer may give a node: the ones most operators read for their shapes.
const ATTRIBUTES: &[&str] = &[
    "axis",
    "axes",
    "transA",
    "transB",
    "pads",
    "strides",
    "dilations",
    "kernel_shape",
    "group",
    "keepdims",
    "output_shape",
    "output_padding",
    "num_heads",
    "k",
    "blocksize",
    "repeats",
    "depth",
];

fn attribute(bytes: &mut Bytes<'_>) -> AttributeProto {
    let name = ATTRIBUTES[usize::from(bytes.byte()) % ATTRIBUTES.len()].to_owned();
    let count = usize::from(bytes.byte() % 5);
    let values: Vec<i64> = (0..count.max(1)).map(|_| i64::from(bytes.i32())).collect();
    let mut attribute = AttributeProto {
        name: Some(name),
        ..Default::default()
    };
    if count == 0 {
        attribute.r#type = Some(AttributeType::Int as i32);
        attribute.i = Some(values[0]);
    } else {
        attribute.r#type = Some(AttributeType::Ints as i32);
        attribute.ints = values;
    }
    attribute
}

/// An input of the fuzzer's type and shape: zeros, or its values when it holds at most 16; `None` when
/// it would pass the request's size.
fn input(bytes: &mut Bytes<'_>) -> Option<(DataType, Tensor)> {
    let (data_type, dtype) = match bytes.byte() % 4 {
        0 => (DataType::Float, DType::F32),
        1 => (DataType::Int64, DType::I64),
        2 => (DataType::Uint8, DType::U8),
        _ => (DataType::Float16, DType::F16),
    };
    let rank = usize::from(bytes.byte() % 5);
    let dims: Vec<usize> = (0..rank).map(|_| usize::from(bytes.u16())).collect();
    let count = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_INPUT_ELEMENTS)?;
    let tensor = if count <= 16 {
        let values: Vec<f64> = (0..count).map(|_| f64::from(bytes.i32())).collect();
        Tensor::from_vec(values, dims, &Device::Cpu)
            .ok()?
            .to_dtype(dtype)
            .ok()?
    } else {
        Tensor::zeros(dims, dtype, &Device::Cpu).ok()?
    };
    Some((data_type, tensor))
}

fn value(name: &str, data_type: DataType) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(data_type as i32),
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    let operators: Vec<&str> = kiln_onnx::eval::ops::registered()
        .filter(|(domain, _)| domain.is_empty())
        .map(|(_, op)| op)
        .collect();
    let op = operators[usize::from(bytes.u16()) % operators.len()];
    let opset = 11 + i64::from(bytes.byte() % 11);
    let mut feeds = HashMap::new();
    let mut inputs = Vec::new();
    for index in 0..bytes.byte() % 4 {
        let Some((data_type, tensor)) = input(&mut bytes) else {
            return;
        };
        let sent: usize = feeds.values().map(Tensor::elem_count).sum();
        if sent + tensor.elem_count() > MAX_INPUT_ELEMENTS {
            return;
        }
        let name = format!("x{index}");
        inputs.push(value(&name, data_type));
        feeds.insert(name, tensor);
    }
    let attribute = (0..bytes.byte() % 4)
        .map(|_| attribute(&mut bytes))
        .collect();
    let node = NodeProto {
        op_type: Some(op.to_owned()),
        input: inputs
            .iter()
            .map(|v| v.name.clone().unwrap_or_default())
            .collect(),
        output: vec!["y".to_owned()],
        attribute,
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            node: vec![node],
            input: inputs,
            output: vec![value("y", DataType::Float)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let Ok(session) = kiln_onnx::eval::Session::new(&model, None, &Device::Cpu) else {
        return;
    };
    let session = session.with_memory_limit(Some(LIMIT as u64));
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let outcome = match session.run(&feeds) {
        Ok(_) => "answered".to_owned(),
        Err(e) => e.to_string().chars().take(300).collect(),
    };
    // What stays allocated after the run (candle's and gemm's buffers, made once and kept) is not the
    // run's: its peak is measured above what is live after it, its outputs dropped.
    let after = LIVE.load(Ordering::Relaxed);
    let grew = PEAK
        .load(Ordering::Relaxed)
        .saturating_sub(before.max(after));
    let inputs: usize = feeds
        .values()
        .map(|t| t.elem_count() * t.dtype().size_in_bytes())
        .sum();
    assert!(
        grew <= ALLOWED + INPUT_COPIES * inputs,
        "{op} (opset {opset}) allocated {grew} bytes at its peak under a run limit of {LIMIT} \
         (inputs {:?}, {inputs} bytes; {outcome})",
        feeds.values().map(Tensor::dims).collect::<Vec<_>>(),
    );
});
