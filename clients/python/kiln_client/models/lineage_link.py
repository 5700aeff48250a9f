from enum import StrEnum


class LineageLink(StrEnum):
    DATASET = "dataset"
    PARENT = "parent"

    def __str__(self) -> str:
        return str(self.value)
