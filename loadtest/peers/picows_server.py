#!/usr/bin/env python3
"""picows peer for loadtest/bench.sh: echo + naive pub/sub, 127.0.0.1 only.
   python3 loadtest/peers/picows_server.py [PORT] [HOST]     (PORT 0 = any free port)
Every frame is echoed back as it came, except: a frame containing "op":"subscribe" adds the
connection to the subscribers and is answered {"ok":true}; a frame containing "op":"publish"
is sent (payload read once) to every subscriber, not echoed. Prints one ready line."""
import asyncio, ipaddress, sys
from picows import WSListener, WSMsgType, WSTransport, WSFrame, ws_create_server

SUB, PUB, ACK = b'"op":"subscribe"', b'"op":"publish"', b'{"ok":true}'
subscribers = set()

class Peer(WSListener):
    def on_ws_frame(self, t: WSTransport, frame: WSFrame):
        mt = frame.msg_type
        if mt == WSMsgType.CLOSE:
            t.send_close(frame.get_close_code(), frame.get_close_message())
            t.disconnect()
            return
        data = frame.get_payload_as_bytes()
        if mt == WSMsgType.TEXT and PUB in data:
            for s in tuple(subscribers):    # one payload object for all: picows only adds a header
                s.send(WSMsgType.TEXT, data)
        elif mt == WSMsgType.TEXT and SUB in data:
            subscribers.add(t)
            t.send(WSMsgType.TEXT, ACK)
        else:
            t.send(mt, data, frame.fin)

    def on_ws_disconnected(self, t: WSTransport):
        subscribers.discard(t)

async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9001
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("picows_server: loopback addresses only")
    server = await ws_create_server(lambda request: Peer(), host, port, backlog=4096,
                                    websocket_handshake_timeout=30, enable_auto_pong=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"picows_server: listening on http://{host}:{bound}", flush=True)
    await server.serve_forever()

if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
