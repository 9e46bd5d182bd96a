"""The Orchestration stack: the Amazon MWAA environment that runs the DAG, and its network."""
