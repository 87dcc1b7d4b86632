"""What a WIT error case is called: componentize-py names a case's class
like `CallError_NotFound`; Hive's docs and the WIT say `not-found`."""

import re


def case_of(failure) -> tuple:
    """`(kind, detail)` of a variant case: its WIT name and its payload."""
    case = type(failure).__name__.rpartition("_")[2]
    kind = re.sub(r"(?<!^)(?=[A-Z])", "-", case).lower()
    return kind, str(getattr(failure, "value", ""))
