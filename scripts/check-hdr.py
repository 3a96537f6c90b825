#!/usr/bin/env python3
"""Decodes a histogram in HdrHistogram's compressed V2 form, base64 (what
reckon_metrics:encode/1 returns), with an independent implementation (the
`hdrhistogram` package of PyPI, HdrHistogram_py), and prints its count,
min, max and percentiles as one JSON object:

    {"count": N, "min": V, "max": V, "p50": V, "p90": V, "p99": V, "p999": V}

Usage: check-hdr.py FILE (the base64 text; `-` for standard input).
Exits 2 when the package is missing, 1 when the text does not decode."""
import json
import sys

try:
    from hdrh.histogram import HdrHistogram
except ImportError:
    sys.stderr.write("check-hdr.py: the hdrhistogram package is missing "
                     "(pip install hdrhistogram; scripts/ensure-deps.sh installs it)\n")
    sys.exit(2)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 1
    if argv[1] == "-":
        text = sys.stdin.read()
    else:
        with open(argv[1], encoding="ascii") as f:
            text = f.read()
    try:
        h = HdrHistogram.decode(text.strip().encode("ascii"))
    except Exception as e:  # the package raises several kinds on bad input
        sys.stderr.write("check-hdr.py: cannot decode: %r\n" % (e,))
        return 1
    out = {"count": h.get_total_count(),
           "min": h.get_min_value(),
           "max": h.get_max_value(),
           "p50": h.get_value_at_percentile(50.0),
           "p90": h.get_value_at_percentile(90.0),
           "p99": h.get_value_at_percentile(99.0),
           "p999": h.get_value_at_percentile(99.9)}
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
