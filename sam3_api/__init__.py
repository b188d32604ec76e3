"""sam3-api: a production server for Meta's Segment Anything Model 3."""

import os

# OpenMP's default ACTIVE wait makes idle torch threads spin for a while after every operator. On a small CPU
# that spinning starves the event loop between model calls (WebSocket clicks took ~500 ms instead of ~5 ms
# on 2 cores). PASSIVE threads sleep; large operators lose nothing. Set before torch is first imported;
# an operator's own OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "1.0.0"
