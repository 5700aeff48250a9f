from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="DistillationProgress")


@_attrs_define
class DistillationProgress:
    """How far a running distillation is, as its runner last reported.

    Attributes:
        eta_seconds (int): Seconds left at that rate.
        loss (float): The mean loss since the previous report.
        step (int): Steps done, of `steps`.
        steps (int):
        steps_per_second (float): Optimizer steps a second, since the job (re)started.
        checkpoint_step (int | None | Unset): The step of the last checkpoint kept by the server, when there is one.
    """

    eta_seconds: int
    loss: float
    step: int
    steps: int
    steps_per_second: float
    checkpoint_step: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        eta_seconds = self.eta_seconds

        loss = self.loss

        step = self.step

        steps = self.steps

        steps_per_second = self.steps_per_second

        checkpoint_step: int | None | Unset
        if isinstance(self.checkpoint_step, Unset):
            checkpoint_step = UNSET
        else:
            checkpoint_step = self.checkpoint_step

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "eta_seconds": eta_seconds,
                "loss": loss,
                "step": step,
                "steps": steps,
                "steps_per_second": steps_per_second,
            }
        )
        if checkpoint_step is not UNSET:
            field_dict["checkpoint_step"] = checkpoint_step

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        eta_seconds = d.pop("eta_seconds")

        loss = d.pop("loss")

        step = d.pop("step")

        steps = d.pop("steps")

        steps_per_second = d.pop("steps_per_second")

        def _parse_checkpoint_step(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        checkpoint_step = _parse_checkpoint_step(d.pop("checkpoint_step", UNSET))

        distillation_progress = cls(
            eta_seconds=eta_seconds,
            loss=loss,
            step=step,
            steps=steps,
            steps_per_second=steps_per_second,
            checkpoint_step=checkpoint_step,
        )

        return distillation_progress
