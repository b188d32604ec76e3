"""The WebSocket kit both sockets are built from (/ws/realtime in routes/ws.py, /ws/video in routes/ws_video.py):

  protocol.py   the base protocol: message and event bases, the messages and events both sockets share, parsing
  loop.py       SocketLoop: accept, announce, receive -> validate -> dispatch -> send, idle close
  registry.py   SessionRegistry: live sessions of one kind, bounded, closed together at shutdown
  history.py    PromptHistory: the order prompts came in, for undo
"""
