"""Training data: samples from manifests and released layouts, question/answer targets, feature cache, batches."""
