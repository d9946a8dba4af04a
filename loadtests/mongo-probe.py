"""Time the MongoDB-wire server itself with a plain client (pymongo), so the
distributed row of engines.sh can say how much of its cost is the test
server. Does what Jangteo's message store does per batch on its fast path:
an ordered insert of the batch's new messages (room after room) into a
collection with the same unique indexes, with the journal write concern
(`j: true`) as the store uses. Prints one JSON object.

    python mongo-probe.py mongodb://127.0.0.1:27017/db_name
"""
import json
import sys
import threading
import time

from pymongo import ASCENDING, MongoClient
from pymongo.write_concern import WriteConcern


def pct(samples, p):
    s = sorted(samples)
    return round(s[min(len(s) - 1, int(len(s) * p))] * 1000, 3)


def doc(room, seq):
    return {"room_id": room, "seq": seq, "sender_id": 1, "client_msg_id": f"c-{room}-{seq}",
            "kind": "text", "body": "x" * 90, "payload": None,
            "created_at": int(time.time() * 1000), "edited_at": None, "deleted_at": None}


def main():
    url = sys.argv[1]
    client = MongoClient(url)
    db = client.get_default_database()
    coll = db.get_collection("probe_messages", write_concern=WriteConcern(j=True))
    coll.drop()
    coll.create_index([("room_id", ASCENDING), ("seq", ASCENDING)], unique=True)
    coll.create_index([("room_id", ASCENDING), ("sender_id", ASCENDING), ("client_msg_id", ASCENDING)],
                      unique=True)
    out = {"target": "mongodb-wire server, plain client", "scenario": "mongo-probe"}
    # 1. One message per insert, one after another (a quiet room).
    lat = []
    for seq in range(1, 501):
        t = time.perf_counter()
        coll.insert_many([doc(1, seq)], ordered=True)
        lat.append(time.perf_counter() - t)
    out["insert_1_p50_ms"], out["insert_1_p99_ms"] = pct(lat, 0.5), pct(lat, 0.99)
    # 2. Ten messages per insert, one in each of ten rooms (a busy batch).
    lat = []
    for b in range(200):
        t = time.perf_counter()
        coll.insert_many([doc(10 + i, b + 1) for i in range(10)], ordered=True)
        lat.append(time.perf_counter() - t)
    out["insert_10_p50_ms"], out["insert_10_p99_ms"] = pct(lat, 0.5), pct(lat, 0.99)
    # 3. Throughput: 8 clients, one message per insert, each its own room, 5 s.
    counts = [0] * 8
    stop = time.perf_counter() + 5

    def worker(i):
        seq = 0
        while time.perf_counter() < stop:
            seq += 1
            coll.insert_many([doc(100 + i, seq)], ordered=True)
        counts[i] = seq

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["inserts_per_sec_8_clients"] = round(sum(counts) / 5, 1)
    coll.drop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
