"""Angel One's official Python SDK (smartapi-python's SmartWebSocketV2) against the mock broker:
it connects with its four headers, sends WebSocket PINGs (every second here instead of 10 s, so the
test sees the PONGs), subscribes SBIN in LTP, RELIANCE in Quote and INFY in SnapQuote, and must
parse the mock's packets (one per binary message): every mode's fields, five buy and five sell
entries split by their flags. It prints `SBIN {...}` / `INFY {...}` lines for tests/angel_e2e.rs to
check against what the mock says it sent. With `bad-token`, the upgrade must be refused with 401
and no data may arrive.

Run by tests/angel_e2e.rs: python angel_sdk_check.py http://127.0.0.1:PORT [bad-token]

The SDK dials a hard-coded wss:// URL (the class attribute ROOT_URI): the only changes made here
are that attribute, the heartbeat interval, and wrappers that record pongs and errors."""
import json
import os
import sys
import tempfile
import threading
import time

base = sys.argv[1]
bad = len(sys.argv) > 2 and sys.argv[2] == "bad-token"
os.chdir(tempfile.mkdtemp())  # the SDK writes logs/<date>/app.log under the working directory

from SmartApi.smartWebSocketV2 import SmartWebSocketV2  # noqa: E402

SmartWebSocketV2.ROOT_URI = base.replace("http://", "ws://", 1) + "/smart-stream"
SmartWebSocketV2.HEART_BEAT_INTERVAL = 1

token = "expired_jwt" if bad else "mock_access_token"
# What generateSession hands over: the JWT with "Bearer " in front.
sws = SmartWebSocketV2("Bearer " + token, "mock_api_key", "A123", token, max_retry_attempt=0)

SBIN, RELIANCE, INFY = "3045", "2885", "1594"
seen, pongs, errors = {}, [], []
lines = []
done = threading.Event()
lock = threading.Lock()

orig_pong, orig_error = sws._on_pong, sws._on_error


def on_pong(wsapp, data):
    pongs.append(data)
    orig_pong(wsapp, data)


def on_error_hook(wsapp, error):
    errors.append(str(error))
    orig_error(wsapp, error)
    done.set()


sws._on_pong = on_pong
sws._on_error = on_error_hook


def on_open(wsapp):
    sws.subscribe("tw00000001", 1, [{"exchangeType": 1, "tokens": [SBIN]}])
    sws.subscribe("tw00000002", 2, [{"exchangeType": 1, "tokens": [RELIANCE]}])
    sws.subscribe("tw00000003", 3, [{"exchangeType": 1, "tokens": [INFY]}])


def on_data(wsapp, msg):
    with lock:
        seen.setdefault(msg["token"], []).append(msg)
        if msg["token"] == SBIN:
            lines.append("SBIN " + json.dumps(msg))
        if msg["token"] == INFY:
            lines.append("INFY " + json.dumps(msg))
        if all(len(seen.get(t, [])) >= 3 for t in (SBIN, RELIANCE, INFY)) and pongs:
            done.set()


sws.on_open = on_open
sws.on_data = on_data
sws.on_error = lambda *a: None
sws.on_close = lambda *a: None
threading.Thread(target=sws.connect, daemon=True).start()
ok = done.wait(20)

if bad:
    time.sleep(2)
    assert ok and any("401" in e for e in errors), errors
    assert not seen, seen
    print("OK 401 refuses the SDK")
    sys.exit(0)

sws.close_connection()
assert ok, (list(seen), pongs, errors)
with lock:
    s, r, i = seen[SBIN][-1], seen[RELIANCE][-1], seen[INFY][-1]
    out = list(lines)
assert s["subscription_mode"] == 1 and s["exchange_type"] == 1 and s["last_traded_price"] > 0, s
assert "open_price_of_the_day" not in s, s
assert r["subscription_mode"] == 2 and r["subscription_mode_val"] == "QUOTE", r
assert r["high_price_of_the_day"] >= r["low_price_of_the_day"] > 0, r
assert r["volume_trade_for_the_day"] >= 0 and r["total_buy_quantity"] >= 0, r
assert i["subscription_mode"] == 3 and i["subscription_mode_val"] == "SNAP_QUOTE", i
buy, sell = i["best_5_buy_data"], i["best_5_sell_data"]
assert len(buy) == 5 and len(sell) == 5, i
assert max(b["price"] for b in buy) < min(a["price"] for a in sell), i
assert all(b["flag"] == 1 for b in buy) and all(a["flag"] == 0 for a in sell), i
assert i["upper_circuit_limit"] > i["lower_circuit_limit"], i
# The SDK's PINGs (empty in the released 1.5.5; "ping" on GitHub master) came back as PONGs.
assert pongs, pongs
for line in out:
    print(line)
print("OK", len(seen[SBIN]), len(seen[RELIANCE]), len(seen[INFY]), "packets,", len(pongs), "pongs")
