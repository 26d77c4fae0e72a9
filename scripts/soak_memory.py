"""The soak's memory accounting (issue 15 item 3): reads the broker's memory gauges from
its admin /metrics each interval, and judges the run's memory over its last third.

The broker exports, per shard, the bytes each bounded structure holds
(`corelog_memory_bytes{structure=...}`: batch cache, pending batches, read-ahead,
indexes, producer state, groups), the bounds of those that have one
(`corelog_memory_bound_bytes`), and for the process its RSS and glibc malloc's view
(`corelog_malloc_in_use_bytes`, `_free_bytes`, `_mmapped_bytes`). RSS minus the
accounted bytes is what no gauge explains: allocator overhead, code, thread stacks,
io_uring buffers, connections. If RSS grows while RSS minus accounted stays flat, the
growth is the bounded structures filling; if RSS minus accounted grows, something else
does.

Used by soak.py (`row_fields`, `verdict`); `soak_memory.py <soak.json>` judges a
finished run again and prints the verdict.
"""

import json
import sys
from pathlib import Path

MB = 2**20
# The structures of corelog_memory_bytes, and the short names of their CSV columns.
STRUCTURES = {
    "batch_cache": "cache_mb",
    "pending_batches": "pending_mb",
    "read_ahead": "read_ahead_mb",
    "indexes": "index_mb",
    "producer_state": "producer_mb",
    "groups": "groups_mb",
}
ENTRIES = {
    "partitions": "partitions",
    "cached_batches": "cached_batches",
    "producer_ids": "producer_ids",
    "committed_offsets": "committed_offsets",
    "group_members": "group_members",
}
PROCESS = {
    "corelog_malloc_in_use_bytes": "malloc_in_use_mb",
    "corelog_malloc_free_bytes": "malloc_free_mb",
    "corelog_malloc_mmapped_bytes": "malloc_mmapped_mb",
}
# Every column row_fields adds, in CSV order.
COLUMNS = (list(STRUCTURES.values()) + ["cache_bound_mb"] + list(ENTRIES.values()) + list(PROCESS.values())
           + ["accounted_mb", "unaccounted_mb"])
# The memory verdict looks at this last part of the run.
JUDGED_FRACTION = 1 / 3
# A slope (MB per hour, least squares) below this counts as flat. At this rate a
# broker would take ~4 days to grow by 1 GiB; the soak's noise (cache eviction in
# steps, allocator) is a few MB.
FLAT_MB_PER_HOUR = 8.0


def parse(text):
    """(name, {label: value}, value) of each sample line of a Prometheus exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        pairs = {}
        for part in labels.rstrip("}").split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                pairs[k] = v.strip('"')
        try:
            out.append((name, pairs, float(value)))
        except ValueError:
            continue
    return out


def row_fields(text, rss_mb):
    """The memory columns of one soak row (`COLUMNS`), summed over shards; None each when
    the broker exports no memory gauges."""
    samples = parse(text or "")
    if not any(n == "corelog_memory_bytes" for n, _, _ in samples):
        return {col: None for col in COLUMNS}
    row = {col: 0.0 for col in STRUCTURES.values()}
    row["cache_bound_mb"] = 0.0
    row.update({col: 0 for col in ENTRIES.values()})
    for name, labels, value in samples:
        structure = labels.get("structure")
        if name == "corelog_memory_bytes" and structure in STRUCTURES:
            row[STRUCTURES[structure]] += value / MB
        elif name == "corelog_memory_bound_bytes" and structure == "batch_cache":
            row["cache_bound_mb"] += value / MB
        elif name == "corelog_memory_entries" and structure in ENTRIES:
            row[ENTRIES[structure]] += int(value)
        elif name in PROCESS:
            row[PROCESS[name]] = value / MB
    accounted = sum(row[col] for col in STRUCTURES.values())
    row["accounted_mb"] = accounted
    row["unaccounted_mb"] = rss_mb - accounted
    return {k: round(row[k], 2) if isinstance(row.get(k), float) else row.get(k) for k in COLUMNS}


def slope_per_hour(rows, key):
    pts = [(r["t_s"], r[key]) for r in rows if r.get(key) is not None]
    if len(pts) < 3:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    var = sum((x - mx) ** 2 for x, _ in pts)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / var * 3600


def verdict(rows):
    """RSS and RSS minus accounted bytes over the last third of the run: their slopes
    (MB/hour) and what they say.
    - "flat": RSS does not grow;
    - "bounded structures filling": RSS grows, RSS minus accounted does not (the growth
      is in the gauges, each of which has a bound or is named in HARDWARE.md "Memory");
    - "GROWING outside the accounted structures": RSS minus accounted grows."""
    if not rows:
        return {"verdict": "no rows"}
    t_end = rows[-1]["t_s"]
    judged = [r for r in rows if r["t_s"] >= t_end * (1 - JUDGED_FRACTION)]
    out = {"judged_from_s": round(t_end * (1 - JUDGED_FRACTION)), "samples": len(judged),
           "flat_below_mb_per_hour": FLAT_MB_PER_HOUR}
    rss = slope_per_hour(judged, "rss_mb")
    rest = slope_per_hour(judged, "unaccounted_mb")
    out["rss_mb_per_hour"] = None if rss is None else round(rss, 1)
    out["unaccounted_mb_per_hour"] = None if rest is None else round(rest, 1)
    for key in ("accounted_mb", "cache_mb", "malloc_free_mb", "malloc_in_use_mb"):
        s = slope_per_hour(judged, key)
        out[f"{key[:-3]}_mb_per_hour"] = None if s is None else round(s, 1)
    last = judged[-1]
    for key in ("rss_mb", "accounted_mb", "unaccounted_mb", "cache_mb", "cache_bound_mb"):
        out[f"last_{key}"] = last.get(key)
    if rss is None:
        out["verdict"] = "too short to judge"
    elif rss <= FLAT_MB_PER_HOUR:
        out["verdict"] = "flat"
    elif rest is None:
        out["verdict"] = "GROWING (no memory gauges to explain it)"
    elif rest <= FLAT_MB_PER_HOUR:
        out["verdict"] = "bounded structures filling"
    else:
        out["verdict"] = "GROWING outside the accounted structures"
    return out


if __name__ == "__main__":
    summary = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(verdict(summary["rows"]), indent=1))
