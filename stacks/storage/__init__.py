"""The Storage stack: the data key, the landing and curated buckets, the catalog and the topic."""
