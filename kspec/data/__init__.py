"""Data: sources, splits and tf.data pipelines."""
