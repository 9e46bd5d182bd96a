"""The pipeline's stages, each its own state machine: admission, crawl, transform."""
