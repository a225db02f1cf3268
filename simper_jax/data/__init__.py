"""Datasets: one TFDS builder per dataset, and the grain pipeline that feeds training."""
