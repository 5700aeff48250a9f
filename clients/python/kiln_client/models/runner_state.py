from enum import StrEnum


class RunnerState(StrEnum):
    BUSY = "busy"
    IDLE = "idle"
    LOST = "lost"

    def __str__(self) -> str:
        return str(self.value)
