"""The official Noren Python SDK (NorenRestApiPy, what ShoonyaApi-py's api_helper builds on) against
the mock broker: NorenApi's websocket connects, sends its `c` message, gets `ck`, subscribes a
touchline and a depth, and must receive `tk` then `tf` (only changed fields) and `dk` with the
mock's values, every value a string; its heartbeat, a WebSocket PING with payload {"t":"h"} every
3 s, must be answered with a PONG.

Run by tests/noren_e2e.rs: python noren_sdk_check.py http://127.0.0.1:PORT UID SUSERTOKEN

NorenApi takes its REST host and websocket URL in its constructor; the session is set with
set_session (the mock has no login). The only thing added is an on_pong hook on the SDK's
WebSocketApp, to see the heartbeat answered."""
import json
import sys
import threading
import urllib.request
from decimal import Decimal

import websocket
from NorenRestApiPy import NorenApi as noren_module
from NorenRestApiPy.NorenApi import NorenApi

base, uid, token = sys.argv[1], sys.argv[2], sys.argv[3]
pongs = []


class PongSeen(websocket.WebSocketApp):
    def __init__(self, *a, **kw):
        kw["on_pong"] = lambda ws, data: pongs.append(data)
        super().__init__(*a, **kw)


noren_module.websocket.WebSocketApp = PongSeen

SBIN, RELIANCE = "NSE|3045", "NSE|2885"
# Kite tokens of the same instruments: the mock's /sent side channel is keyed by them.
KITE = {"3045": 779521, "2885": 738561}
got, errors = [], []
done = threading.Event()


def on_feed(m):
    got.append(m)
    kinds = {(x["t"], x["tk"]) for x in got}
    if {("tk", "3045"), ("tf", "3045"), ("dk", "2885"), ("df", "2885")} <= kinds and pongs:
        done.set()


def on_open():
    api.subscribe([SBIN])
    api.subscribe(RELIANCE, feed_type="d")


api = NorenApi(host=base + "/NorenWClientTP/", websocket=base.replace("http://", "ws://") + "/NorenWSTP/")
api.set_session(userid=uid, password="", usertoken=token)
api.start_websocket(
    subscribe_callback=on_feed,
    socket_open_callback=on_open,
    socket_error_callback=errors.append,
)
ok = done.wait(20)
api.close_websocket()
assert ok, ([(x["t"], x["tk"]) for x in got][:20], pongs, errors)
assert not errors, errors
assert all(p == b'{"t":"h"}' for p in pongs), pongs  # the PING's payload, echoed
for m in got:
    assert all(isinstance(v, str) for v in m.values()), m
tk = next(m for m in got if m["t"] == "tk")
tf = next(m for m in got if m["t"] == "tf")
dk = next(m for m in got if m["t"] == "dk")
assert tk["e"] == "NSE" and tk["ts"] == "SBIN-EQ" and tk["pp"] == "2", tk
assert {"lp", "o", "h", "l", "c", "v", "ap", "bp1", "sp1"} <= set(tk), tk
assert set(tf) < set(tk) | {"t"} and {"t", "e", "tk"} <= set(tf), (tf, tk)
assert {"bp5", "sq5", "so5", "tbq", "ltq"} <= set(dk), dk
sent = json.load(urllib.request.urlopen(f"{base}/sent?token={KITE['3045']}"))
paise = int(Decimal(tk["lp"]) * 100)
assert any(s["ltp"] == paise for s in sent), (tk["lp"], [s["ltp"] for s in sent][-5:])
print("OK", len(got), "messages,", len(pongs), "pongs")
