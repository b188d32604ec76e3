"""sam3-api: a production server for Meta's Segment Anything Model 3."""

__version__ = "1.0.0"
