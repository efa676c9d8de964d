"""The official kiteconnect KiteTicker, pointed at the mock broker with its `root` argument, must
parse the mock's frames unchanged: full equity packets with 5-level depth, index packets, quote and
LTP packets. Run by tests/gateway_e2e.rs: python3 kite_ticker_check.py ws://127.0.0.1:PORT"""
import sys
from kiteconnect import KiteTicker
from twisted.internet import reactor

root = sys.argv[1]
SBIN, NIFTY, USDINR = 779521, 256265, 268543491
seen = {}
result = {"ok": False}

kws = KiteTicker("mock_api_key", "mock_access_token", root=root)

def on_connect(ws, response):
    ws.subscribe([SBIN, NIFTY, USDINR])
    ws.set_mode(ws.MODE_FULL, [SBIN, NIFTY])
    ws.set_mode(ws.MODE_LTP, [USDINR])

def on_ticks(ws, ticks):
    for t in ticks:
        seen.setdefault((t["instrument_token"], t["mode"]), t)
    full = seen.get((SBIN, "full"))
    idx = seen.get((NIFTY, "full"))
    ltp = seen.get((USDINR, "ltp"))
    if full and idx and ltp:
        assert len(full["depth"]["buy"]) == 5 and len(full["depth"]["sell"]) == 5, full
        assert full["depth"]["buy"][0]["price"] < full["last_price"] < full["depth"]["sell"][0]["price"], full
        assert full["ohlc"]["low"] <= full["last_price"] <= full["ohlc"]["high"], full
        assert idx["tradable"] is False and idx["last_price"] > 1000, idx
        assert 50 < ltp["last_price"] < 150, ltp  # USDINR with the 10^7 divisor
        result["ok"] = True
        print("OK", sorted(seen))
        ws.stop()

def on_error(ws, code, reason):
    print("error", code, reason, file=sys.stderr)

kws.on_connect = on_connect
kws.on_ticks = on_ticks
kws.on_error = on_error
reactor.callLater(15, reactor.stop)
kws.connect()
sys.exit(0 if result["ok"] else 1)
