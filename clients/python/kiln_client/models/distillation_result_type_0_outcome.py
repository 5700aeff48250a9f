from enum import StrEnum


class DistillationResultType0Outcome(StrEnum):
    SUCCEEDED = "succeeded"

    def __str__(self) -> str:
        return str(self.value)
