"""Reading data files, checking every row, and turning labels into tensors."""

from textheads.data.dataset import LabelledData, load_labelled, load_texts
from textheads.data.reading import SUPPORTED_SUFFIXES, read_records

__all__ = ["SUPPORTED_SUFFIXES", "LabelledData", "load_labelled", "load_texts", "read_records"]
