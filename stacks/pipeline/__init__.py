"""The Pipeline stack: the Glue crawler and job, the pipeline state machine, its lease and triggers."""
