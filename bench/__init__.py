"""SCITI benchmarks: each script measures our figure and its anchor in the same run."""
