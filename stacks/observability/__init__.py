"""How a state machine is watched: its logs, failure alarm and failure notice."""
