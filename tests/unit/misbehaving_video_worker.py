"""A stand-in for sam3_api.media.video.worker that misbehaves the way a decoder hit by a hostile file can.

Tests point decode.WORKER_MODULE here and pick the behaviour with SAM3_TEST_WORKER_BEHAVIOUR.
"""

import json
import os
import signal
import sys
import time

behaviour = os.environ.get("SAM3_TEST_WORKER_BEHAVIOUR", "segfault")
if behaviour == "segfault":
    os.kill(os.getpid(), signal.SIGSEGV)
elif behaviour == "garbage":
    sys.stdout.write("\x00\xff not json at all\n" * 1000)
elif behaviour == "exit":
    sys.exit(3)
elif behaviour == "hang":
    time.sleep(120)
elif behaviour == "lie":
    # A "successful" report that breaks the limits it was given: the parent must not believe it.
    info = {
        "width": 160, "height": 120, "fps": 24.0, "frame_count": 10**6, "start_frame": 0, "frame_stride": 1,
        "duration_s": 1.0, "container": "avi", "codec": "mjpeg",
    }
    print(json.dumps({"ok": True, "result": info}))
elif behaviour == "unknown_error":
    print(json.dumps({"ok": False, "error": "SystemExit", "message": "not one of ours"}))
