from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="DistillationRequest")


@_attrs_define
class DistillationRequest:
    """`POST /api/v1/models/{namespace}/{model}/versions/{version}/distillations`: distill that version.

    Attributes:
        into (str): Where the student goes, `namespace/model:version` (a version that does not exist yet; the caller
            must be able to write there).
        batch_size (int | None | Unset): Sequences per step, 1 to 4096 (default 8).
        checkpoint_every_seconds (int | None | Unset): Seconds between checkpoints of the training state, 1 to 3600
            (default 180).
        data (None | str | Unset): A kiln version holding the dataset (token ids as .safetensors or .npy, or .txt/.jsonl
            text for the
            teacher's tokenizer.json); none: sequences sampled from the teacher, marked as such in the report.
        device (None | str | Unset): Which runners may take the job: `cpu` (default) or `cuda`, or a device such as
            `cuda:0`.
        learning_rate (float | None | Unset): AdamW's learning rate, above 0 and at most 1 (default 5e-4).
        seed (int | None | Unset): Seeds the split, the batches and made-up data (default 0).
        sequence_length (int | None | Unset): Tokens per sequence, 2 to 65536 (default 64; at most the teacher's
            positions).
        steps (int | None | Unset): Optimizer steps, 1 to 1,000,000 (default 500).
        student (None | str | Unset): `layers=N` (every k-th teacher layer kept, from the first) or `keep=I,J,...`;
            default `layers=2`.
        temperature (float | None | Unset): Softens both distributions in the KL term, 0.1 to 100 (default 2).
    """

    into: str
    batch_size: int | None | Unset = UNSET
    checkpoint_every_seconds: int | None | Unset = UNSET
    data: None | str | Unset = UNSET
    device: None | str | Unset = UNSET
    learning_rate: float | None | Unset = UNSET
    seed: int | None | Unset = UNSET
    sequence_length: int | None | Unset = UNSET
    steps: int | None | Unset = UNSET
    student: None | str | Unset = UNSET
    temperature: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        into = self.into

        batch_size: int | None | Unset
        if isinstance(self.batch_size, Unset):
            batch_size = UNSET
        else:
            batch_size = self.batch_size

        checkpoint_every_seconds: int | None | Unset
        if isinstance(self.checkpoint_every_seconds, Unset):
            checkpoint_every_seconds = UNSET
        else:
            checkpoint_every_seconds = self.checkpoint_every_seconds

        data: None | str | Unset
        if isinstance(self.data, Unset):
            data = UNSET
        else:
            data = self.data

        device: None | str | Unset
        if isinstance(self.device, Unset):
            device = UNSET
        else:
            device = self.device

        learning_rate: float | None | Unset
        if isinstance(self.learning_rate, Unset):
            learning_rate = UNSET
        else:
            learning_rate = self.learning_rate

        seed: int | None | Unset
        if isinstance(self.seed, Unset):
            seed = UNSET
        else:
            seed = self.seed

        sequence_length: int | None | Unset
        if isinstance(self.sequence_length, Unset):
            sequence_length = UNSET
        else:
            sequence_length = self.sequence_length

        steps: int | None | Unset
        if isinstance(self.steps, Unset):
            steps = UNSET
        else:
            steps = self.steps

        student: None | str | Unset
        if isinstance(self.student, Unset):
            student = UNSET
        else:
            student = self.student

        temperature: float | None | Unset
        if isinstance(self.temperature, Unset):
            temperature = UNSET
        else:
            temperature = self.temperature

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "into": into,
            }
        )
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if checkpoint_every_seconds is not UNSET:
            field_dict["checkpoint_every_seconds"] = checkpoint_every_seconds
        if data is not UNSET:
            field_dict["data"] = data
        if device is not UNSET:
            field_dict["device"] = device
        if learning_rate is not UNSET:
            field_dict["learning_rate"] = learning_rate
        if seed is not UNSET:
            field_dict["seed"] = seed
        if sequence_length is not UNSET:
            field_dict["sequence_length"] = sequence_length
        if steps is not UNSET:
            field_dict["steps"] = steps
        if student is not UNSET:
            field_dict["student"] = student
        if temperature is not UNSET:
            field_dict["temperature"] = temperature

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        into = d.pop("into")

        def _parse_batch_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        batch_size = _parse_batch_size(d.pop("batch_size", UNSET))

        def _parse_checkpoint_every_seconds(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        checkpoint_every_seconds = _parse_checkpoint_every_seconds(
            d.pop("checkpoint_every_seconds", UNSET)
        )

        def _parse_data(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        data = _parse_data(d.pop("data", UNSET))

        def _parse_device(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        device = _parse_device(d.pop("device", UNSET))

        def _parse_learning_rate(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        learning_rate = _parse_learning_rate(d.pop("learning_rate", UNSET))

        def _parse_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        seed = _parse_seed(d.pop("seed", UNSET))

        def _parse_sequence_length(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        sequence_length = _parse_sequence_length(d.pop("sequence_length", UNSET))

        def _parse_steps(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        steps = _parse_steps(d.pop("steps", UNSET))

        def _parse_student(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        student = _parse_student(d.pop("student", UNSET))

        def _parse_temperature(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        temperature = _parse_temperature(d.pop("temperature", UNSET))

        distillation_request = cls(
            into=into,
            batch_size=batch_size,
            checkpoint_every_seconds=checkpoint_every_seconds,
            data=data,
            device=device,
            learning_rate=learning_rate,
            seed=seed,
            sequence_length=sequence_length,
            steps=steps,
            student=student,
            temperature=temperature,
        )

        return distillation_request
