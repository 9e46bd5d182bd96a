"""Operator and documentation tools, run against AWS or a synthesized assembly (not only locally).

`python -m ops.why` (why a run failed), `python -m ops.graphs` (state-machine pictures),
`python -m ops.cost` (what a burst costs), `python -m ops.preflight` (what only the account can
say before a deploy), `python -m ops.least_privilege` (granted actions no run exercised).
"""
