"""What a request means, whatever surface it came in by (vLLM's serving_*.py); no FastAPI types here.

  defaults.py           every default threshold (mask 0.5, text confidence 0.5, ...), decided once
  image.py              image prompts: ImagePrompts -> ImageResult (the box + points choice, concept merging,
                        the automatic-mode filter); `segment()` is the per-image call of job runners
  video_jobs.py         a new video job: decode under the given limits, check prompts, create and queue
  interactive_video.py  /ws/video prompts: the engine call a frame's prompt becomes, concepts vs the object cap
"""
