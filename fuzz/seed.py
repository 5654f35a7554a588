#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus from the project's fixtures and sample events.

Run from the repository root (`python3 fuzz/seed.py`); the seeds it writes are committed under
`fuzz/corpus/<target>/`, named by their content's digest, so running it again adds nothing new.
"""
import gzip
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "seed-sample"
EVENTS = ROOT / "events"
CORPUS = ROOT / "fuzz" / "corpus"
PREFIX = "0a5e6ec37a2f"
TYPES = {"pin": b"p", "geo": b"g", "user": b"u"}


def seed(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def lines(kind):
    return (FIXTURES / f"{kind}.jsonl").read_text().splitlines()


def api_body(event_file):
    return json.loads((EVENTS / event_file).read_text())["body"]


for kind, selector in TYPES.items():
    text = (FIXTURES / f"{kind}.jsonl").read_bytes()
    topic, stream = f"{PREFIX}.{kind}", f"streaming-{PREFIX}-{kind}"
    for line in lines(kind):
        seed("clean_record", selector + line.encode())
    key = f"topics/{topic}/dt=2026-11-26/20261126T100000.000000Z-0001.ndjson"
    seed("batch_object", f"{key}\n".encode() + text)
    seed("batch_object", f"{key}.gz\n".encode() + gzip.compress(text, mtime=0))
    seed("batch_object", f"{key}\n".encode() + text[: len(text) // 2])
    sink = f"topics/{topic}/partition=0/{topic}+0+0000000042.json"
    seed("batch_object", f"{sink}\n".encode() + text)
    seed("kinesis_event", f"{stream}\n".encode() + text)
    seed("kafka_event", f"{topic}\n".encode() + text)
    seed("names", topic)
    seed("names", stream)
    seed("names", key)
    seed("names", sink)
    seed("names", f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream}")
    records = [{"value": json.loads(line)} for line in lines(kind)]
    seed(
        "ingest_http",
        f"POST /topics/{topic}\nContent-Type: application/vnd.kafka.json.v2+json\n\n"
        + json.dumps({"records": records}),
    )
    first = json.loads(lines(kind)[0])
    seed(
        "ingest_http",
        f"PUT /streams/{stream}/record\nContent-Type: application/json\n\n"
        + json.dumps({"StreamName": stream, "Data": first, "PartitionKey": "k"}),
    )
    seed(
        "ingest_http",
        f"PUT /streams/{stream}/records\nContent-Type: application/json\n\n"
        + json.dumps({"records": [{"data": json.loads(l), "partition-key": "k"} for l in lines(kind)]}),
    )
seed("batch_object", f"topics/{PREFIX}.pin/dt=2026-11-26/empty.ndjson\n")
seed("ingest_http", "GET /streams\n\n")
seed("ingest_http", f"GET /streams/streaming-{PREFIX}-pin\n\n")
seed("ingest_http", f"POST /topics/{PREFIX}.geo\nContent-Type: application/vnd.kafka.json.v2+json\n\n" + api_body("api-post-topic.json"))
seed("ingest_http", f"PUT /streams/streaming-{PREFIX}-user/records\nContent-Type: application/json\n\n" + api_body("api-put-stream-records.json"))
for event in ["kinesis-batch.json"]:
    seed("kinesis_event", (EVENTS / event).read_bytes().strip())
for event in ["msk.json", "self-managed-kafka.json"]:
    seed("kafka_event", (EVENTS / event).read_bytes().strip())
for event in ["s3-put.json", "sqs-s3-put.json"]:
    seed("s3_sqs_event", (EVENTS / event).read_bytes().strip())
