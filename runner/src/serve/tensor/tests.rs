//! The tensor codecs: JSON (flat and nested) and raw bytes in and out, strings, and the JSON answer's
//! floats in their own precision.

use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

#[test]
fn nested_and_flat_json_give_the_same_bytes_and_round_trip() {
    let nested = Tensor::from_json(
        "x".into(),
        Datatype::Fp32,
        vec![2, 2],
        &json!([[1.0, 2.5], [-3, 4]]).to_string(),
    )
    .unwrap();
    let flat = Tensor::from_json(
        "x".into(),
        Datatype::Fp32,
        vec![2, 2],
        &json!([1, 2.5, -3, 4]).to_string(),
    )
    .unwrap();
    assert_eq!(nested, flat);
    assert_eq!(json!(flat.json_data()), json!([1.0, 2.5, -3.0, 4.0]));
    for datatype in Datatype::ALL.iter().map(|(d, _, _)| *d) {
        let Some(size) = datatype.size() else {
            continue;
        };
        let t = Tensor::from_json("x".into(), datatype, vec![3], &json!([0, 1, 1]).to_string())
            .unwrap();
        assert_eq!(t.data.len(), 3 * size, "{datatype:?}");
        let back = Tensor::from_json(
            "x".into(),
            datatype,
            vec![3],
            &json!(t.json_data()).to_string(),
        )
        .unwrap();
        assert_eq!(back, t, "{datatype:?}");
    }
}

#[test]
fn bad_json_data_is_refused_naming_the_input_and_the_element() {
    let err = |datatype, shape: Vec<i64>, data: Value| {
        Tensor::from_json("ids".into(), datatype, shape, &data.to_string())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(Datatype::Int64, vec![2], json!([1, 2.5])),
        "input \"ids\": element 1 (2.5) is not an integer, as INT64"
    );
    assert_eq!(
        err(Datatype::Uint8, vec![1], json!([300])),
        "input \"ids\": element 0 (300) is out of the range of UINT8"
    );
    assert_eq!(
        err(Datatype::Fp32, vec![3], json!([1, 2])),
        "input \"ids\": shape [3] holds 3 elements, data has 2"
    );
    assert_eq!(
        err(Datatype::Fp32, vec![1], json!(["a"])),
        "input \"ids\": element 0 (\"a\") is not a number, as FP32"
    );
    assert_eq!(
        err(Datatype::Fp32, vec![-1], json!([])),
        "input \"ids\": shape [-1] has a negative dimension"
    );
    let raw = Tensor::from_raw(
        "x".into(),
        Datatype::Fp32,
        vec![2],
        Bytes::from(vec![0u8; 7]),
    );
    assert_eq!(
        raw.unwrap_err().to_string(),
        "input \"x\": shape [2] of FP32 needs 8 bytes, got 7"
    );
}

#[test]
fn bytes_tensors_carry_text_in_json_and_in_the_binary_form() {
    let t = Tensor::from_json(
        "text".into(),
        Datatype::Bytes,
        vec![2, 2],
        &json!([["a", ""], ["héllo", "b c"]]).to_string(),
    )
    .unwrap();
    let mut binary = Vec::new();
    for element in ["a", "", "héllo", "b c"] {
        push_bytes_element(&mut binary, element.as_bytes()).unwrap();
    }
    assert_eq!(t.data, Bytes::from(binary.clone()));
    assert_eq!(json!(t.json_data()), json!(["a", "", "héllo", "b c"]));
    let raw = Tensor::from_raw("text".into(), Datatype::Bytes, vec![2, 2], binary.into());
    assert_eq!(raw.unwrap(), t);
    // Row 0 is "a" and "" (4 + 1 and 4 bytes), row 1 "héllo" and "b c" (4 + 6 and 4 + 3 bytes).
    assert_eq!(t.row_offsets(2), Some(vec![0, 9, 26]));
    assert_eq!(t.row_offsets(3), None);

    let err = |shape: Vec<i64>, data: Vec<u8>| {
        Tensor::from_raw("text".into(), Datatype::Bytes, shape, data.into())
            .unwrap_err()
            .to_string()
    };
    assert!(err(vec![1], vec![5, 0, 0, 0, b'a']).contains("4-byte little-endian length"));
    assert!(err(vec![2], vec![1, 0, 0, 0, b'a']).contains("holds 2 elements, data has 1"));
    assert!(err(vec![1], vec![1, 0, 0, 0, 0xff]).contains("element 0 is not UTF-8"));
    assert_eq!(
        err(vec![1], vec![1, 0, 0, 0, 0]),
        "input \"text\": element 0 contains a NUL character; an ONNX string is UTF-8 text without NUL \
         characters"
    );
    let json_err = Tensor::from_json(
        "text".into(),
        Datatype::Bytes,
        vec![1],
        &json!([1]).to_string(),
    );
    assert_eq!(
        json_err.unwrap_err().to_string(),
        "input \"text\": element 0 (1) is not a string, as BYTES"
    );
}

#[test]
fn floats_are_written_in_their_own_precision_shortest_form() {
    let t = |datatype, bytes: Vec<u8>| Tensor {
        name: "y".into(),
        datatype,
        shape: vec![2],
        data: bytes.into(),
    };
    let fp32 = t(
        Datatype::Fp32,
        [0.1f32, f32::NAN]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
    );
    assert_eq!(
        serde_json::to_string(&fp32.json_data()).unwrap(),
        "[0.1,null]"
    );
    let fp16 = t(
        Datatype::Fp16,
        [0.1f32, -2.5]
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect(),
    );
    assert_eq!(
        serde_json::to_string(&fp16.json_data()).unwrap(),
        "[0.099975586,-2.5]"
    );
}

proptest! {
    /// Whatever JSON a client sends as `data`, with whatever shape, parsing answers (a tensor or an
    /// error naming the input) and never panics; a tensor it accepts fills its shape exactly.
    #[test]
    fn any_json_data_parses_or_is_refused(
        shape in proptest::collection::vec(-2i64..5, 0..4),
        values in proptest::collection::vec(prop_oneof![
            any::<f64>().prop_map(|x| json!(x)),
            any::<i64>().prop_map(|x| json!(x)),
            any::<u64>().prop_map(|x| json!(x)),
            any::<bool>().prop_map(|x| json!(x)),
            ".{0,4}".prop_map(|x| json!(x)),
            any::<i8>().prop_map(|x| json!([x, [x]])),
        ], 0..12),
        which in 0usize..14,
    ) {
        let datatype = Datatype::ALL[which].0;
        if let Ok(t) = Tensor::from_json("x".into(), datatype, shape.clone(), &Value::Array(values).to_string()) {
            let count: i64 = shape.iter().product();
            match datatype.size() {
                Some(size) => prop_assert_eq!(t.data.len() as i64, count * size as i64),
                None => prop_assert_eq!(bytes_elements(&t.data).map(|e| e.len() as i64), Some(count)),
            }
        }
    }

    /// Whatever bytes come as a BYTES input's binary data, parsing answers and never panics; the
    /// data it accepts splits back into the shape's rows.
    #[test]
    fn any_binary_bytes_data_parses_or_is_refused(
        rows in 0i64..4,
        cols in 0i64..3,
        data in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(b'a'), any::<u8>()], 0..40),
    ) {
        if let Ok(t) = Tensor::from_raw("x".into(), Datatype::Bytes, vec![rows, cols], data.into())
            && rows > 0
        {
            let offsets = t.row_offsets(rows as usize).unwrap();
            prop_assert_eq!(offsets.last().copied(), Some(t.data.len()));
        }
    }

    /// A finite FP32 or FP64 value written as JSON reads back to the same bits.
    #[test]
    fn json_floats_read_back_to_the_same_value(x in any::<f32>(), y in any::<f64>()) {
        prop_assume!(x.is_finite() && y.is_finite());
        for (datatype, bytes) in [
            (Datatype::Fp32, x.to_le_bytes().to_vec()),
            (Datatype::Fp64, y.to_le_bytes().to_vec()),
        ] {
            let t = Tensor { name: "y".into(), datatype, shape: vec![1], data: bytes.into() };
            let text = serde_json::to_string(&t.json_data()).unwrap();
            let back = Tensor::from_json("y".into(), datatype, vec![1], &text).unwrap();
            prop_assert_eq!(&back.data, &t.data, "{}", text);
        }
    }
}
