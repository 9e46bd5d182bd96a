"""The landing files' contract: the CSV header, exactly, in this order.

Pure Python (no pyspark), so the stacks can hand it to the admission Lambda and the admission
Lambda can check each file's header before any Spark job reads it. glue/transform.py declares
the types of the same columns and checks at import that its names are these.
"""

from __future__ import annotations

COLUMNS: tuple[str, ...] = ("order_id", "customer_id", "order_date", "amount", "currency")
