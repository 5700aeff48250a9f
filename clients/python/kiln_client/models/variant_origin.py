from enum import StrEnum


class VariantOrigin(StrEnum):
    CONVERTED = "converted"
    OPTIMIZED = "optimized"
    PUSHED = "pushed"

    def __str__(self) -> str:
        return str(self.value)
