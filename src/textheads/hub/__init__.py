"""The Hugging Face Hub: models loaded by Hub id (`download.py`) and pushed there (`upload.py`);
`failures.py` turns huggingface_hub's errors into one line."""
