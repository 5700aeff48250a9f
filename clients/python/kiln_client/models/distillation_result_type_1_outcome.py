from enum import StrEnum


class DistillationResultType1Outcome(StrEnum):
    FAILED = "failed"

    def __str__(self) -> str:
        return str(self.value)
