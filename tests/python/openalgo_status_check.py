"""The official `openalgo` SDK's WebSocket client must keep working while the gateway pushes
`status_update` messages: it connects and authenticates, its LTP callback keeps getting SBIN's
ticks, nothing it logs is an error, and the status updates really reached it (seen by wrapping the
SDK's own message handler, which passes them over). Run by tests/health_e2e.rs:

    python3 openalgo_status_check.py GATEWAY_PORT MOCK_BROKER_PORT

The script mutes SBIN at the mock broker (`/mute?token=779521`), waits for the gateway's `stale`
update, unmutes it and waits for `live` and for ticks again."""
import io
import json
import sys
import time
import urllib.request

from openalgo import api

port, bport = sys.argv[1], sys.argv[2]
SBIN = 779521

seen = []  # every message the SDK received, decoded
ticks = []  # what the SDK handed the LTP callback

# Everything the SDK prints (from any thread) is kept, to look for errors at the end.
log = io.StringIO()
real_stdout, sys.stdout = sys.stdout, log
client = api(api_key="k1", host="http://127.0.0.1:5000", ws_url=f"ws://127.0.0.1:{port}", verbose=1)
handle = client._process_message


def spy(message):
    try:
        seen.append(json.loads(message))
    except ValueError:
        pass
    handle(message)


client._process_message = spy
assert client.connect(), "the SDK did not connect and authenticate"
assert client.subscribe_ltp([{"exchange": "NSE", "symbol": "SBIN"}], on_data_received=ticks.append)


def wait(what, cond, secs=30):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    sys.stdout = real_stdout
    sys.exit(f"timed out waiting for {what}; last messages: {seen[-5:]}; SDK said: {log.getvalue()[-2000:]}")


def updates(state):
    return [m for m in seen if m.get("type") == "status_update" and m.get("scope") == "symbol"
            and m.get("symbol") == "SBIN" and m.get("state") == state]


def mock(path):
    urllib.request.urlopen(f"http://127.0.0.1:{bport}{path}?token={SBIN}", timeout=5).read()


wait("SBIN ticks", lambda: len(ticks) >= 5)
# Its usual interval is learned from its first updates; wait until /status has one.
def learned():
    req = urllib.request.Request(f"http://127.0.0.1:{port}/status", headers={"X-API-Key": "k1"})
    status = json.loads(urllib.request.urlopen(req, timeout=5).read())
    rows = [s for s in status["symbols"]["subscribed"] if s["symbol"] == "SBIN"]
    return rows and rows[0].get("usual_interval_ms") is not None
wait("SBIN's usual interval", learned)

mock("/mute")
wait("a stale update", lambda: updates("stale"))
before = len(ticks)
mock("/unmute")
wait("a live update", lambda: updates("live"))
wait("ticks after the update", lambda: len(ticks) > before + 3)
client.disconnect()
sys.stdout = real_stdout

out = log.getvalue()
errors = [line for line in out.splitlines() if "ERROR" in line]
assert not errors, f"the SDK logged errors: {errors}"
stale = updates("stale")[0]
for k in ("exchange", "broker", "quiet_ms", "usual_interval_ms", "ts"):
    assert k in stale, f"{k} missing from {stale}"
assert "status" not in stale, "a status_update has no top-level status (OpenAlgo clients read it as a reply)"
print(json.dumps({"ticks": len(ticks), "stale": stale, "live": updates("live")[0]}))
print("OK")
