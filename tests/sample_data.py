"""The sample API's data set as the tests know it: 60 customers anchored at ``NOW``, seed 7.

Written out by hand from the generator's output, so a change to the generator shows up as a
failing test rather than as silently moved expectations.
"""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RECORDS = 60
ALL_IDS = [str(n) for n in range(1, RECORDS + 1)]

#: Record 1 exactly as the API serves it (updated_at in format 1: ISO with Z).
RECORD_1 = {
    "id": "1",
    "email": "amira.smith1@example.org",
    "first_name": "Amira",
    "last_name": "Smith",
    "phone": "+31 20 555 0001",
    "status": "Suspended ",
    "loyalty_points": 4249,
    "address": {
        "line1": "153 Damrak",
        "line2": "c/o Reception",
        "city": "Utrecht",
        "postcode": "3511 AA",
        "country": "Nl",
    },
    "created_at": "2024-05-03 19:05:42",
    "updated_at": "2025-03-03T00:07:13Z",
}
