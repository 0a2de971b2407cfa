"""The side-by-side table of `just bench-detect` (scripts/bench-detect.sh): weir's
leave-one-source-out evaluation (weir eval --json) and Suricata + ET Open's eve.json over the
same labelled captures, with the same "detected" rule."""
import collections
import csv
import json
import os
import sys

INFORMATIONAL = ("ET INFO", "ET POLICY", "ET GAMES", "ET CHAT", "ET P2P", "ET INAPPROPRIATE",
                 "GPL ICMP_INFO", "GPL POLICY", "GPL INFO", "GPL CHAT", "GPL P2P", "GPL GAMES",
                 "SURICATA ")


def events(out_dir):
    """(capture, eve event) for every capture's folder `attacks~src~file` under out_dir."""
    for d in sorted(os.listdir(out_dir)):
        p = os.path.join(out_dir, d, "eve.json")
        if os.path.isfile(p):
            for line in open(p):
                yield "labeled/" + d.replace("~", "/"), json.loads(line)


def main(weir_json, out_dir, labels_csv):
    labels = {"labeled/" + r["file"]: r["class"] for r in csv.DictReader(open(labels_csv))}
    weir = {c["file"]: c for c in json.load(open(weir_json))["captures"]
            if c["file"] in labels}
    alerted = collections.defaultdict(set)   # capture -> flow ids with a detection
    detected = collections.defaultdict(set)  # capture -> signatures (strict)
    flows = collections.Counter()
    for cap, e in events(out_dir):
        if e.get("event_type") == "flow":
            flows[cap] += 1
        elif e.get("event_type") == "alert":
            a = e["alert"]
            sig = a.get("signature", "")
            if sig.startswith(INFORMATIONAL) or a.get("severity", 3) > 2:
                continue
            alerted[cap].add(e.get("flow_id"))
            detected[cap].add(sig)
    rows = []
    tot = collections.Counter()
    for f in sorted(labels):
        cls = labels[f]
        w = weir.get(f)
        if w is None:
            continue
        s_det = bool(detected[f])
        if cls != "Normal":
            w_det = bool(w["found"])
            tot["attacks"] += 1
            tot["weir"] += w_det
            tot["suricata"] += s_det
            tot["both"] += w_det and s_det
            tot["suricata_only"] += s_det and not w_det
            rows.append((f.replace("labeled/attacks/", ""), cls, w_det, s_det,
                         ", ".join(sorted(w["flagged"]))[:40], sorted(detected[f])[:1]))
        else:
            tot["benign"] += 1
            tot["weir_bf"] += sum(w["flagged"].values())
            tot["weir_bn"] += w["flows"]
            tot["weir_bc"] += bool(w["flagged"])
            tot["sur_bf"] += len(alerted[f])
            tot["sur_bn"] += flows[f]
            tot["sur_bc"] += s_det
    print(f"\n| capture | class | weir | Suricata + ET Open | weir flagged as | Suricata's first signature |")
    print("|---|---|---|---|---|---|")
    yes = lambda b: "yes" if b else "–"
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {yes(r[2])} | {yes(r[3])} | {r[4]} | {(r[5] or [''])[0][:60]} |")
    a = tot["attacks"]
    print(f"\n| | weir | Suricata + ET Open |\n|---|---:|---:|")
    print(f"| attack captures detected | {tot['weir']}/{a} ({100*tot['weir']/max(a,1):.0f}%) | "
          f"{tot['suricata']}/{a} ({100*tot['suricata']/max(a,1):.0f}%) |")
    print(f"| benign flows alerted | {tot['weir_bf']}/{tot['weir_bn']} "
          f"({100*tot['weir_bf']/max(tot['weir_bn'],1):.2f}%) | {tot['sur_bf']}/{tot['sur_bn']} "
          f"({100*tot['sur_bf']/max(tot['sur_bn'],1):.2f}%) |")
    print(f"| benign captures with an alert | {tot['weir_bc']}/{tot['benign']} | "
          f"{tot['sur_bc']}/{tot['benign']} |")
    print(f"\nboth detect {tot['both']}; Suricata alone {tot['suricata_only']}; "
          f"weir / Suricata detections: {tot['weir']/max(tot['suricata'],1):.2f}x")


if __name__ == "__main__":
    main(*sys.argv[1:4])
