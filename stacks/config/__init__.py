"""A deployment stage's configuration: plain Python (no CDK), validated when it is built."""
