"""The scenario catalogue: each a local run of the pipeline with its faults and what must hold after.

scenario.py: what a scenario is; actions.py: what scenarios do to a deployment and check after;
catalogue.py: the scenarios by name. localrun/runner.py runs one and reports it.
"""
