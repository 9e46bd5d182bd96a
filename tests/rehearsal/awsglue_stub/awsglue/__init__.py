"""A stand-in for the `awsglue` package, which exists only inside AWS Glue.

Used by the deploy rehearsal alone (tests/rehearsal): it lets a job script's imports and
argument parsing run outside Glue. `getResolvedOptions` follows the documented behaviour of
Glue's own (written from AWS's documentation and aws-glue-libs, not copied); everything past
argument parsing needs a real GlueContext, so the rehearsal ends there (see `utils`).
"""
