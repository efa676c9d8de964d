"""The official Dhan Python SDK (dhanhq) against the mock broker: MarketFeed (v2) subscribes one
instrument each as Ticker, Quote and Full, and must parse the mock's binary packets into the values
the mock says it sent (GET /sent). Then its close sequence ({"RequestCode":12} and the 83-byte
binary header) must be accepted. With `expired-token`, the SDK must read disconnect packet 50 with
reason 807 and see the connection closed.

Run by tests/dhan_e2e.rs: python dhan_sdk_check.py http://127.0.0.1:PORT [expired-token]

The SDK dials the class attribute MarketFeed.market_feed_wss; the only change made here is pointing
it at the mock."""
import asyncio
import json
import signal
import sys
import urllib.request

from dhanhq import DhanContext, MarketFeed

base = sys.argv[1]
expired = len(sys.argv) > 2 and sys.argv[2] == "expired-token"
MarketFeed.market_feed_wss = base.replace("http://", "ws://", 1)
signal.alarm(60)  # a hung read fails the test instead of hanging it

# Security ids (NSE tokens) and the mock's Kite tokens for its /sent side channel.
SBIN, RELIANCE, INFY = "3045", "2885", "1594"
KITE = {SBIN: 779521, RELIANCE: 738561, INFY: 408065}

ctx = DhanContext("mock_api_key", "expired_token" if expired else "mock_access_token")
closed = []
feed = MarketFeed(
    ctx,
    [
        (MarketFeed.NSE, SBIN, MarketFeed.Ticker),
        (MarketFeed.NSE, RELIANCE, MarketFeed.Quote),
        (MarketFeed.NSE, INFY, MarketFeed.Full),
    ],
    "v2",
    on_close=lambda f: closed.append(1),
)
if expired:
    try:
        # The upgrade is accepted; the subscriptions may already meet the mock's close.
        feed.run_forever()
    except Exception as e:
        assert "ConnectionClosed" in type(e).__name__, repr(e)
else:
    feed.run_forever()

if expired:
    out = feed.get_data()  # packet 50: the SDK prints the reason, calls on_close, returns None
    assert out is None and closed, (out, closed)
    try:
        feed.get_data()
        raise AssertionError("the mock kept the connection open after packet 50")
    except Exception as e:  # websockets' ConnectionClosed
        assert "ConnectionClosed" in type(e).__name__, repr(e)
    print("OK 807 read, connection closed")
    sys.exit(0)


def sent(sid):
    with urllib.request.urlopen(f"{base}/sent?token={KITE[sid]}") as r:
        return json.load(r)


def rupees(paise):
    return "{:.2f}".format(paise / 100)


want = {("Ticker Data", SBIN), ("Quote Data", RELIANCE), ("Full Data", INFY)}
seen, prev_close = {}, {}
while not want.issubset(seen):
    d = feed.get_data()
    if not isinstance(d, dict):
        continue
    key = (d["type"], str(d["security_id"]))
    assert d["exchange_segment"] == MarketFeed.NSE, d
    if d["type"] == "Previous Close":
        prev_close[key[1]] = d
    elif key in want and key not in seen:
        seen[key] = d
        hist = sent(key[1])
        assert any(rupees(s["ltp"]) == d["LTP"] for s in hist), (d, hist[-3:])
        if d["type"] != "Ticker Data":
            assert any(
                s["volume"] == d["volume"]
                and rupees(s["open"]) == d["open"]
                and rupees(s["high"]) == d["high"]
                and rupees(s["avg_price"]) == d["avg_price"]
                and s["buy_qty"] == d["total_buy_quantity"]
                for s in hist
            ), (d, hist[-3:])
        if d["type"] == "Full Data":
            assert len(d["depth"]) == 5, d
            assert any(
                s["bids"][0][1] == d["depth"][0]["bid_quantity"]
                and rupees(s["bids"][0][0]) == d["depth"][0]["bid_price"]
                and rupees(s["asks"][4][0]) == d["depth"][4]["ask_price"]
                for s in hist
            ), (d, hist[-3:])
assert set(prev_close) == {SBIN, RELIANCE, INFY}, prev_close
for sid, d in prev_close.items():
    assert d["prev_close"] == rupees(sent(sid)[-1]["close"]), d

feed.close_connection()  # {"RequestCode":12}, the 83-byte binary header, then a close
assert closed
with urllib.request.urlopen(f"{base}/api-data/api-scrip-master.csv") as r:
    assert r.read().startswith(b"SEM_EXM_EXCH_ID,")
print("OK", sorted(seen))
