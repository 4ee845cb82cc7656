"""The HTTP service: the FastAPI app (`app`), its per-model OpenAPI schema (`schema`), the
request byte limit (`body_limit`), continuous batching (`batcher`) and the model worker
processes (`model_process`)."""
