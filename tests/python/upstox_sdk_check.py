"""The official Upstox Python SDK (upstox-python-sdk) against the mock broker: its REST authorize
call, then MarketDataStreamerV3 in full mode, which must decode the mock's protobuf frames into an
equity's market full feed (5 depth levels) and the index's full feed. With `bad-token`, the
streamer must get the 401 and stop without reconnecting, as against Upstox.

Run by tests/upstox_e2e.rs: python upstox_sdk_check.py http://127.0.0.1:PORT [bad-token]

The streamer dials a hard-coded wss://api.upstox.com URL; the only change made here is pointing
websocket-client's WebSocketApp at the mock (the SDK looks the class up at call time)."""
import sys
import threading

import websocket
import upstox_client

base = sys.argv[1]
bad = len(sys.argv) > 2 and sys.argv[2] == "bad-token"
feed_url = base.replace("http://", "ws://", 1) + "/v3/feed/market-data-feed"

_App = websocket.WebSocketApp


class MockApp(_App):
    def __init__(self, url, *args, **kwargs):
        super().__init__(feed_url, *args, **kwargs)


websocket.WebSocketApp = MockApp

cfg = upstox_client.Configuration()
cfg.host = base
cfg.access_token = "expired_token" if bad else "mock_access_token"
api = upstox_client.ApiClient(cfg)

SBIN, NIFTY = "NSE_EQ|INE062A01020", "NSE_INDEX|Nifty 50"
done = threading.Event()
seen, errors, reconnects = {}, [], []

if not bad:
    r = upstox_client.WebsocketApi(api).get_market_data_feed_authorize_v3()
    assert r.status == "success", r
    uri = r.data.authorized_redirect_uri
    assert uri.startswith(feed_url + "?") and "code=" in uri, uri


def on_message(msg):
    for key, feed in msg.get("feeds", {}).items():
        seen.setdefault(key, feed)
    if SBIN in seen and NIFTY in seen:
        done.set()


def on_error(err):
    errors.append(str(err))
    if bad:
        done.set()


streamer = upstox_client.MarketDataStreamerV3(api, [SBIN, NIFTY], "full")
streamer.on("message", on_message)
streamer.on("error", on_error)
streamer.on("reconnecting", lambda *a: reconnects.append(a))
streamer.connect()
ok = done.wait(20)
if bad:
    threading.Event().wait(3)  # a retry would come within the SDK's 1 s interval
    assert ok and any("401" in e for e in errors), errors
    assert not reconnects, reconnects
    print("OK 401 stops the streamer")
    sys.exit(0)
streamer.disconnect()
assert ok, (seen, errors)
ff = seen[SBIN]["fullFeed"]["marketFF"]
assert ff["ltpc"]["ltp"] > 0, ff
assert len(ff["marketLevel"]["bidAskQuote"]) == 5, ff
assert ff["marketOHLC"]["ohlc"][0]["interval"] == "1d", ff
assert seen[SBIN]["requestMode"] == "full_d5", seen[SBIN]
idx = seen[NIFTY]["fullFeed"]["indexFF"]
assert idx["ltpc"]["ltp"] > 1000, idx
print("OK", sorted(seen))
