"""The official Fyers Python SDK (fyers-apiv3) against the mock broker: FyersDataSocket in full
mode resolves symbols through the mock's symbol-token endpoint, authenticates, subscribes to an
equity's symbol and depth topics and an index, and must decode the mock's binary packets (S
snapshots, U updates) into its usual dicts.

Run by tests/fyers_e2e.rs: python fyers_sdk_check.py http://127.0.0.1:PORT ACCESS_TOKEN

The SDK's URLs are not settings: the data socket's is an instance attribute set in the
constructor, the symbol-token one is set in SymbolConversion.__init__, the index map's is a module
constant. Those three are pointed at the mock here, nothing else is changed."""
import sys
import tempfile
import threading

from fyers_apiv3.FyersWebsocket import data_ws, defines

base, token = sys.argv[1], sys.argv[2]
defines.INDEX_HSM_MAPPING_API = base + "/sym_details/index_hsm_mapping.json"
_init = data_ws.SymbolConversion.__init__


def patched_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.symbols_token_api = base + "/data/symbol-token"


data_ws.SymbolConversion.__init__ = patched_init

SBIN, NIFTY = "NSE:SBIN-EQ", "NSE:NIFTY50-INDEX"
want = {(SBIN, "sf"), (SBIN, "dp"), (NIFTY, "if")}
seen, errors, info = {}, [], []
done = threading.Event()


def on_message(m):
    if isinstance(m, dict) and "symbol" in m and m.get("type") in ("sf", "dp", "if"):
        seen.setdefault((m["symbol"], m["type"]), m)
        if want <= set(seen):
            done.set()
    else:
        info.append(m)


def on_connect():
    fy.subscribe(symbols=[SBIN, NIFTY], data_type="SymbolUpdate")
    fy.subscribe(symbols=[SBIN], data_type="DepthUpdate")


fy = data_ws.FyersDataSocket(
    access_token=token,
    log_path=tempfile.mkdtemp(),
    litemode=False,
    write_to_file=False,
    reconnect=False,
    on_connect=on_connect,
    on_close=lambda m: None,
    on_error=errors.append,
    on_message=on_message,
)
fy._FyersDataSocket__url = base.replace("http://", "ws://", 1) + "/hsm/v1-5/prod"
fy.connect()
ok = done.wait(20)
fy.close_connection()
assert ok, (sorted(seen), errors, info)
assert not errors, errors
assert any(m.get("code") == 200 and m.get("type") == "cn" for m in info), info  # authenticated
sf, dp, idx = seen[(SBIN, "sf")], seen[(SBIN, "dp")], seen[(NIFTY, "if")]
assert sf["ltp"] > 0 and sf["low_price"] <= sf["ltp"] <= sf["high_price"], sf
assert sf["vol_traded_today"] > 0 and sf["prev_close_price"] > 0, sf
assert dp["bid_price1"] < dp["ask_price1"] and dp["bid_size1"] > 0, dp
assert idx["ltp"] > 1000, idx
print("OK", sorted(seen))
