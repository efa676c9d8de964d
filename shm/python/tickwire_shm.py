"""Pure-Python reader for tickwire's shared-memory file (layout 1.x).

    python3 shm/python/tickwire_shm.py --path /dev/shm/tickwire [--symbol NSE:SBIN] [--count N]

prints ticks as JSON lines in the same shape as `tickwire shm tail`. As a module:

    from tickwire_shm import Reader
    r = Reader("/dev/shm/tickwire")        # checks magic, version, sizes, a live writer; or ShmError
    sbin = r.lookup("NSE", "SBIN")
    ev = r.next()                           # None, ("tick", pos, Tick) or ("lagged", lost)
    last = r.last_value(sbin)               # merged latest value, or None

Offsets are docs/tick-layout.md and docs/shm-layout.md; the Rust side pins every one of them with
compile-time assertions. Prices are integers in units of 10^-7 rupee; `price_str` prints them
exactly. The seqlock protocol relies on x86-64's ordering of plain loads (TSO) and on aligned 8-byte
loads being single instructions, which CPython's struct module does on that platform.

Every problem with the file (missing, a FIFO or directory, foreign, another version, a header that
does not fit the file, no live writer) raises ShmError with one sentence saying what was found.
Liveness is the writer's lock on the file (fcntl.flock, the same lock the Rust reader tests), so it
holds from any PID namespace: see docs/shm-layout.md, "Liveness".
"""
import errno
import fcntl
import json
import mmap
import os
import stat
import struct
import sys
import time
from collections import namedtuple

MAGIC = int.from_bytes(b"TICKWIRE", "little")
VERSION_MAJOR = 1
HEADER_SIZE = 4096
DIR_OFFSET = 4096
DIR_ENTRY_SIZE = 128
RECORD_SIZE = 448          # sequence line (64) + tick (384)
TICK_SIZE = 384
PRICE_SCALE = 10_000_000

# header fields: (offset, struct format)
H_MAGIC, H_VERSION, H_TICK_SIZE, H_RECORD_SIZE, H_DIR_ENTRY_SIZE = 0, 8, 12, 16, 20
H_RING_CAP, H_SYM_CAP, H_LVT_OFF, H_RING_OFF, H_FILE_SIZE = 24, 32, 40, 48, 56
H_WRITE_POS, H_HEARTBEAT, H_STATE, H_PID, H_SYMBOL_COUNT = 64, 128, 136, 140, 192
STATE_LIVE, STATE_CLOSED = 1, 2

VALID_LTP, VALID_QUOTE, VALID_DEPTH, VALID_OI, VALID_GREEKS = 1, 2, 4, 8, 16

# The tick, offset by offset (docs/tick-layout.md): 0 symbol_id u32, 4 valid u32, 8 seq u64,
# 16 exchange_ts_ns i64, 24 recv_ts_ns i64, 32 ltp i64, 40 last_qty u64, 48 avg_price i64,
# 56 volume u64, 64 total_buy_qty u64, 72 total_sell_qty u64, 80 open, 88 high, 96 low, 104 close
# (i64), 112 oi, 120 oi_day_high, 128 oi_day_low (u64), 136..184 iv delta gamma theta vega rho (f64),
# 184 reserved u64, 192 bids[5] and 272 asks[5] of {price i64, qty u32, orders u32}, 352 reserved.
_HEAD = struct.Struct("<IIQqqqQqQQQqqqqQQQdddddd")
_LEVEL = struct.Struct("<qII")
assert _HEAD.size == 184
Tick = namedtuple(
    "Tick",
    "symbol_id valid seq exchange_ts_ns recv_ts_ns ltp last_qty avg_price volume total_buy_qty "
    "total_sell_qty open high low close oi oi_day_high oi_day_low iv delta gamma theta vega rho bids asks",
)


class ShmError(Exception):
    """A file that cannot be read: the message says what was found and what was expected."""


def _not_a_file(mode):
    """What a non-regular file is, with its article; None for a regular file."""
    for test, kind in ((stat.S_ISREG, None), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "not a regular file"


def _open_regular(path):
    """A read-only descriptor on path, refusing anything but a regular file and never blocking (a
    FIFO's open would wait for a writer); returns (fd, size)."""
    try:
        kind = _not_a_file(os.stat(path).st_mode)
        if kind:
            raise ShmError(f"{path} is {kind}, not a tickwire shm file")
        # O_NONBLOCK: a path swapped for a FIFO after the check still cannot block the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ShmError(f"{path}: no such shm file (is the writer running?)") from None
    except OSError as e:
        raise ShmError(f"{path}: {e.strerror}") from None
    st = os.fstat(fd)
    kind = _not_a_file(st.st_mode)
    if kind:
        os.close(fd)
        raise ShmError(f"{path} is {kind}, not a tickwire shm file")
    return fd, st.st_size


def _size_needed(ring_cap, sym_cap):
    """File size the capacities need (Python integers: no overflow, whatever a header says)."""
    page = lambda x: -(-x // 4096) * 4096
    lvt = page(DIR_OFFSET + sym_cap * DIR_ENTRY_SIZE)
    ring = page(lvt + sym_cap * RECORD_SIZE)
    return lvt, ring, ring + ring_cap * RECORD_SIZE


def price_str(p):
    """Exact decimal text of a fixed-point price, at least one decimal: 14240500000 -> '1424.05'."""
    sign = "-" if p < 0 else ""
    ip, fp = divmod(abs(p), PRICE_SCALE)
    frac = f"{fp:07d}".rstrip("0") or "0"
    return f"{sign}{ip}.{frac}"


def decode_tick(b):
    head = _HEAD.unpack_from(b, 0)
    bids = [_LEVEL.unpack_from(b, 192 + 16 * i) for i in range(5)]
    asks = [_LEVEL.unpack_from(b, 272 + 16 * i) for i in range(5)]
    return Tick(*head, bids, asks)


class Reader:
    """One reader with its own cursor; any number may read one file from any number of processes."""

    def __init__(self, path, require_live=True, stale_after=5.0):
        self.path = path
        # Kept open: the liveness test locks it (see writer_status).
        self._fd, size = _open_regular(path)
        try:
            self._validate(path, size)
        except BaseException:
            self.close()
            raise
        self.stale_after = stale_after
        if require_live:
            st = self.writer_status()
            if st != "live":
                self.close()
                raise ShmError(f"{path}: no live writer: {st}")
        self.pos = self.write_position() + 1
        self._names = None

    def close(self):
        """Unmaps the file and closes its descriptor (also done when the reader is collected)."""
        if getattr(self, "mm", None) is not None:
            self.mm.close()
            self.mm = None
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()

    def _validate(self, path, size):
        self.mm = None
        if size < HEADER_SIZE:
            raise ShmError(f"{path}: truncated: {size} bytes, the layout needs {HEADER_SIZE}")
        try:
            self.mm = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise ShmError(f"{path}: cannot map: {e}") from None
        magic = self._u64(H_MAGIC)
        if magic != MAGIC:
            raise ShmError(f"{path}: not a tickwire shm file (magic {magic:#018x})")
        version = self._u32(H_VERSION)
        major, minor = version >> 16, version & 0xFFFF
        if major != VERSION_MAJOR:
            raise ShmError(f"{path}: layout version {major}.{minor}, this reader understands {VERSION_MAJOR}.x")
        for name, off, want in (("tick_size", H_TICK_SIZE, TICK_SIZE), ("record_size", H_RECORD_SIZE, RECORD_SIZE),
                                ("dir_entry_size", H_DIR_ENTRY_SIZE, DIR_ENTRY_SIZE)):
            got = self._u32(off)
            if got != want:
                raise ShmError(f"{path}: header field {name} is {got}, expected {want}")
        self.ring_cap = self._u64(H_RING_CAP)
        self.sym_cap = self._u64(H_SYM_CAP)
        self.lvt_off = self._u64(H_LVT_OFF)
        self.ring_off = self._u64(H_RING_OFF)
        file_size = self._u64(H_FILE_SIZE)
        # The capacities first, against the real length: every offset derives from them.
        if self.ring_cap < 2 or self.ring_cap & (self.ring_cap - 1):
            raise ShmError(f"{path}: header's ring_capacity is {self.ring_cap}, not a power of two of at least 2")
        if self.sym_cap == 0:
            raise ShmError(f"{path}: header's symbol_capacity is 0, expected at least 1")
        want_lvt, want_ring, need = _size_needed(self.ring_cap, self.sym_cap)
        if need > len(self.mm):
            raise ShmError(f"{path}: header's ring_capacity {self.ring_cap} and symbol_capacity {self.sym_cap} "
                           f"need a file of {need} bytes but the file has {len(self.mm)}")
        for name, got, want in (("lvt_offset", self.lvt_off, want_lvt), ("ring_offset", self.ring_off, want_ring),
                                ("file_size", file_size, need)):
            if got != want:
                raise ShmError(f"{path}: header field {name} is {got}, expected {want}")

    def _u64(self, off):
        return struct.unpack_from("<Q", self.mm, off)[0]

    def _u32(self, off):
        return struct.unpack_from("<I", self.mm, off)[0]

    def _writer_holds(self):
        """True if a writer holds its lock on the file, False if nobody does, None if the test
        failed. A shared, non-blocking try, released at once: it never waits and never stands in a
        writer's way (the writer locks its file once, before any reader can open it)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            return True if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def writer_status(self):
        """'live', or why not. From the file alone (the pid is only shown): closed if the header
        says so; gone if nobody holds the writer's lock, however recent the heartbeat; stale if the
        lock is held but the heartbeat is older than stale_after."""
        state, pid = self._u32(H_STATE), self._u32(H_PID)
        if state == STATE_CLOSED:
            return "the writer closed the file"
        holds = self._writer_holds()
        if holds is False:
            # The writer stores `closed` before it lets go of its lock.
            if self._u32(H_STATE) == STATE_CLOSED:
                return "the writer closed the file"
            return f"writer process {pid} is gone (it did not close the file)"
        if state != STATE_LIVE:
            return f"writer process {pid} is gone (it did not close the file)"
        age = time.time_ns() - struct.unpack_from("<q", self.mm, H_HEARTBEAT)[0]
        if age > self.stale_after * 1e9:
            return f"writer process {pid} has not heartbeat for {age // 1_000_000} ms"
        return "live"

    def write_position(self):
        return self._u64(H_WRITE_POS)

    def seek_oldest(self):
        # The newest ring_cap - 1 positions: the slot after the newest is marked for the next.
        self.pos = max(1, self.write_position() - self.ring_cap + 2)

    def next(self):
        """None (nothing new), ("tick", position, Tick), or ("lagged", lost) after which reading resumes."""
        r = self.pos
        off = self.ring_off + (r & (self.ring_cap - 1)) * RECORD_SIZE
        s1 = self._u64(off)
        if s1 == r << 1:
            data = self.mm[off + 64: off + RECORD_SIZE]
            s2 = self._u64(off)
            if s2 == s1:
                self.pos = r + 1
                return ("tick", r, decode_tick(data))
            s1 = s2
        if s1 >> 1 <= r:
            return None
        # Lapped: resume half a ring behind the writer; every skipped position is counted.
        resume = max(r + 1, self.write_position() + 1 - self.ring_cap // 2)
        self.pos = resume
        return ("lagged", resume - r)

    def last_value(self, symbol_id):
        if symbol_id >= self.sym_cap:
            return None
        off = self.lvt_off + symbol_id * RECORD_SIZE
        for _ in range(10_000):
            s1 = self._u64(off)
            if s1 == 0:
                return None
            if s1 & 1:
                continue
            data = self.mm[off + 64: off + RECORD_SIZE]
            if self._u64(off) == s1:
                return decode_tick(data)
        raise ShmError(f"symbol {symbol_id}: last value kept changing")

    def health(self, symbol_id):
        """The symbol's health byte at offset 8 of its last-value entry (layout 1.2): one of
        HEALTH_NAMES' keys; `stale` means the gateway expected an update by now and has none."""
        if symbol_id >= self.sym_cap:
            return 0
        return self.mm[self.lvt_off + symbol_id * RECORD_SIZE + 8]

    def symbol(self, symbol_id):
        if symbol_id >= self._u64(H_SYMBOL_COUNT):
            return None
        off = DIR_OFFSET + symbol_id * DIR_ENTRY_SIZE
        name = lambda a, b: self.mm[off + a: off + b].split(b"\0", 1)[0].decode("utf-8", "replace")
        return name(0, 16), name(16, 80), name(80, 128)

    def lookup(self, exchange, symbol):
        count = self._u64(H_SYMBOL_COUNT)
        if self._names is None or len(self._names) != count:
            self._names = {self.symbol(i)[:2]: i for i in range(count)}
        return self._names.get((exchange, symbol))


HEALTH_NAMES = {0: "none", 1: "pending", 2: "live", 3: "stale", 4: "rejected", 5: "closed", 6: "down"}


def tick_json(t, pos, exchange, symbol):
    """The same JSON shape as `tickwire shm tail`."""
    out = {"pos": pos, "exchange": exchange, "symbol": symbol, "id": t.symbol_id, "seq": t.seq, "valid": t.valid,
           "exchange_ts_ns": t.exchange_ts_ns, "recv_ts_ns": t.recv_ts_ns}
    raw = {}
    if t.valid & VALID_LTP:
        raw.update(ltp=price_str(t.ltp), last_qty=t.last_qty)
    if t.valid & VALID_QUOTE:
        raw.update(avg_price=price_str(t.avg_price), volume=t.volume, total_buy_qty=t.total_buy_qty,
                   total_sell_qty=t.total_sell_qty, open=price_str(t.open), high=price_str(t.high),
                   low=price_str(t.low), close=price_str(t.close))
    if t.valid & VALID_OI:
        raw.update(oi=t.oi, oi_day_high=t.oi_day_high, oi_day_low=t.oi_day_low)
    if t.valid & VALID_GREEKS:
        raw.update(iv=t.iv, delta=t.delta, gamma=t.gamma, theta=t.theta, vega=t.vega, rho=t.rho)
    if t.valid & VALID_DEPTH:
        lv = lambda levels: [{"price": price_str(p), "quantity": q, "orders": o} for p, q, o in levels]
        raw.update(bids=lv(t.bids), asks=lv(t.asks))
    text = json.dumps(out)[:-1]
    for k, v in raw.items():
        # prices are exact decimal text: write them as JSON numbers, unquoted
        if isinstance(v, str):
            text += f', "{k}": {v}'
        elif isinstance(v, list):
            levels = ", ".join(f'{{"price": {l["price"]}, "quantity": {l["quantity"]}, "orders": {l["orders"]}}}' for l in v)
            text += f', "{k}": [{levels}]'
        else:
            text += f', "{k}": {json.dumps(v)}'
    return text + "}"


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default="/dev/shm/tickwire")
    ap.add_argument("--symbol", help="EXCHANGE:SYMBOL")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the file and a live writer")
    a = ap.parse_args(argv)
    deadline = time.time() + a.wait
    while True:
        try:
            r = Reader(a.path)
            break
        except ShmError as e:
            if time.time() >= deadline:
                print(f"tickwire_shm: error: {e}", file=sys.stderr)
                return 1
            time.sleep(0.02)
    want = None
    if a.symbol:
        exch, _, sym = a.symbol.partition(":")
        want = r.lookup(exch, sym)
        if want is None:
            print(f"tickwire_shm: error: symbol {a.symbol} is not in {a.path}", file=sys.stderr)
            return 1
    printed, idle = 0, 0
    while a.count == 0 or printed < a.count:
        ev = r.next()
        if ev is None:
            idle += 1
            if idle % 2000 == 0:
                st = r.writer_status()
                if st != "live" and r.next() is None:
                    print(f"tickwire_shm: error: {a.path}: {st}; printed {printed} ticks", file=sys.stderr)
                    return 1
            time.sleep(0.0001)
            continue
        idle = 0
        if ev[0] == "lagged":
            print(json.dumps({"lagged": ev[1], "resume": r.pos}))
            continue
        _, pos, t = ev
        if want is not None and t.symbol_id != want:
            continue
        exch, sym, _ = r.symbol(t.symbol_id) or ("?", "?", "")
        print(tick_json(t, pos, exch, sym))
        printed += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
