"""`textheads inspect`: a run's data described before training, on the same reading and checks."""

from textheads.inspection.figures import DataInspection
from textheads.inspection.run import data_file_config, inspect_data

__all__ = ["DataInspection", "data_file_config", "inspect_data"]
