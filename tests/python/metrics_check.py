"""Parses the gateway's /metrics with the official Prometheus client's text parser and checks the
families, their types, labels and values (tests/observe_e2e.rs runs it).

Usage: metrics_check.py METRICS_FILE BROKER
Prints OK when every check passes; an assertion failure exits non-zero."""

import sys

from prometheus_client.parser import text_string_to_metric_families


def main(path, broker):
    text = open(path, encoding="utf-8").read()
    fams = {}
    for f in text_string_to_metric_families(text):
        fams[f.name] = f
    # The parser names a counter family without its `_total` suffix (OpenMetrics style), older
    # versions with it: accept both.
    def fam(name, typ):
        f = fams.get(name) or fams.get(name[: -len("_total")] if name.endswith("_total") else name)
        assert f is not None, f"missing family {name}: {sorted(fams)}"
        assert f.type == typ, f"{name}: type {f.type}, want {typ}"
        assert f.documentation, f"{name}: no HELP text"
        return f

    def value(f, name, **labels):
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        raise AssertionError(f"no sample {name}{labels} in {f.samples}")

    for name, typ in [
        ("tickwire_feed_ticks_total", "counter"),
        ("tickwire_feed_parse_errors_total", "counter"),
        ("tickwire_feed_frames_total", "counter"),
        ("tickwire_feed_reconnects_total", "counter"),
        ("tickwire_feed_up", "gauge"),
    ]:
        f = fam(name, typ)
        assert all(s.labels.get("broker") for s in f.samples), f"{name}: broker label"
    ticks = value(fam("tickwire_feed_ticks_total", "counter"), "tickwire_feed_ticks_total",
                  broker=broker)
    assert ticks > 0, f"ticks {ticks}"
    assert value(fam("tickwire_feed_parse_errors_total", "counter"),
                 "tickwire_feed_parse_errors_total", broker=broker) == 0
    assert value(fam("tickwire_feed_up", "gauge"), "tickwire_feed_up", broker=broker) == 1

    up = fam("tickwire_upstream_symbols", "gauge")
    states = {s.labels["state"]: s.value for s in up.samples if s.labels["broker"] == broker}
    assert set(states) == {"pending", "live", "rejected"}, states
    assert states["live"] >= 2, states

    health = fam("tickwire_symbols_health", "gauge")
    states = {s.labels["state"]: s.value for s in health.samples if s.labels["broker"] == broker}
    assert set(states) == {"pending", "live", "stale", "rejected", "closed", "down"}, states
    assert states["live"] >= 2 and states["stale"] == 0, states
    assert value(fam("tickwire_feed_stalls_total", "counter"), "tickwire_feed_stalls_total",
                 broker=broker) == 0

    assert fam("tickwire_clients", "gauge").samples[0].value >= 2
    assert fam("tickwire_clients_authenticated", "gauge").samples[0].value >= 2
    assert value(fam("tickwire_messages_out_total", "counter"), "tickwire_messages_out_total") > 0
    assert value(fam("tickwire_bytes_out_total", "counter"), "tickwire_bytes_out_total") > 0
    modes = {s.labels["mode"]: s.value for s in fam("tickwire_client_subscriptions", "gauge").samples}
    assert modes == {"ltp": 1.0, "quote": 1.0, "depth": 1.0}, modes
    for name in ("tickwire_client_conflations_total", "tickwire_client_queue_drops_total"):
        f = fam(name, "counter")
        assert all(s.labels.get("class") for s in f.samples), f"{name}: class label"
    assert value(fam("tickwire_router_ticks_total", "counter"), "tickwire_router_ticks_total") > 0

    for name in ("tickwire_router_pass_seconds", "tickwire_wire_to_shm_seconds",
                 "tickwire_wire_to_client_seconds"):
        f = fam(name, "histogram")
        buckets = [(s.labels["le"], s.value) for s in f.samples if s.name == name + "_bucket"]
        les = [float(le) for le, _ in buckets]
        assert les == sorted(les) and les[-1] == float("inf"), f"{name}: le order {les}"
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{name}: buckets not cumulative {counts}"
        count = value(f, name + "_count")
        assert count > 0 and counts[-1] == count, f"{name}: count {count}, +Inf {counts[-1]}"
        total = value(f, name + "_sum")
        assert 0 < total < count * 60, f"{name}: sum {total} s for {count}"
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
