from enum import StrEnum


class VariantStatus(StrEnum):
    DEPLOYABLE = "deployable"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return str(self.value)
