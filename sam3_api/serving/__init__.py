"""What a request means, whatever surface it came in by (vLLM's serving_*.py): no FastAPI types here.

image.py: image prompts (text, exemplars, boxes, points, automatic); defaults.py: every default threshold.
"""
