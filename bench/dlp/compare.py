#!/usr/bin/env python3
"""Print Warden's and Presidio's scores side by side: compare.py warden.json presidio.json"""

import json
import sys

ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"]


def main():
    w, p = (json.load(open(path, encoding="utf-8")) for path in sys.argv[1:3])
    print(f"corpus: {w['sentences']} sentences, {w['bytes']} bytes; Presidio "
          f"{p.get('presidio_version')} with spaCy model {p.get('spacy_model')}")
    print()
    print(f"{'':<14} {'Warden':^23}   {'Presidio':^23}")
    print(f"{'ENTITY':<14} {'P':>7} {'R':>7} {'F1':>7}   {'P':>7} {'R':>7} {'F1':>7}   F1 ok")
    all_ok = True
    for e in ENTITIES:
        a, b = w["entities"][e], p["entities"][e]
        ok = a["f1"] >= b["f1"]
        all_ok &= ok
        print(f"{e:<14} {a['precision']:>7.3f} {a['recall']:>7.3f} {a['f1']:>7.3f}   "
              f"{b['precision']:>7.3f} {b['recall']:>7.3f} {b['f1']:>7.3f}   {'yes' if ok else 'NO'}")
    ratio = w["mb_per_s_cpu"] / p["mb_per_s_cpu"]
    print()
    print(f"throughput (one core, CPU time): Warden {w['mb_per_s_cpu']:.1f} MB/s, "
          f"Presidio {p['mb_per_s_cpu']:.4f} MB/s: {ratio:,.0f}x")
    print(f"targets: F1 >= Presidio's on every type: {'met' if all_ok else 'NOT met'}; "
          f">= 100x throughput: {'met' if ratio >= 100 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
