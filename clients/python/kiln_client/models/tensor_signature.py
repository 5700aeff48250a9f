from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="TensorSignature")


@_attrs_define
class TensorSignature:
    """A graph input or output: name, ONNX element type (`float32`, `int64`, ...) and shape.

    Attributes:
        dtype (str):
        name (str):
        shape (list[int | None | str] | None | Unset): `None` when the model does not say (a tensor of unknown rank).
    """

    dtype: str
    name: str
    shape: list[int | None | str] | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        dtype = self.dtype

        name = self.name

        shape: list[int | None | str] | None | Unset
        if isinstance(self.shape, Unset):
            shape = UNSET
        elif isinstance(self.shape, list):
            shape = []
            for shape_type_0_item_data in self.shape:
                shape_type_0_item: int | None | str
                shape_type_0_item = shape_type_0_item_data
                shape.append(shape_type_0_item)

        else:
            shape = self.shape

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "dtype": dtype,
                "name": name,
            }
        )
        if shape is not UNSET:
            field_dict["shape"] = shape

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        dtype = d.pop("dtype")

        name = d.pop("name")

        def _parse_shape(data: object) -> list[int | None | str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                shape_type_0 = []
                _shape_type_0 = data
                for shape_type_0_item_data in _shape_type_0:

                    def _parse_shape_type_0_item(data: object) -> int | None | str:
                        if data is None:
                            return data
                        return cast(int | None | str, data)

                    shape_type_0_item = _parse_shape_type_0_item(shape_type_0_item_data)

                    shape_type_0.append(shape_type_0_item)

                return shape_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int | None | str] | None | Unset, data)

        shape = _parse_shape(d.pop("shape", UNSET))

        tensor_signature = cls(
            dtype=dtype,
            name=name,
            shape=shape,
        )

        tensor_signature.additional_properties = d
        return tensor_signature

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
