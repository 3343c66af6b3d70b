#!/usr/bin/env python3
"""A latency-and-throttling proxy in front of moto, for bench/org_scale.sh.

Every AWS call waits DELAY_MS before it is passed on, as calls to AWS take tens of
milliseconds where moto answers in one; a share of calls (SHARE, seeded, so runs compare) is
answered the way AWS answers when it throttles: EC2's 503 RequestLimitExceeded, the JSON
protocols' 400 ThrottlingException, the other query protocols' 400 Throttling. GET /__stats
returns the counts as JSON; POST /__reset zeroes them.

With BUCKET (RATE:BURST, e.g. 10:20), calls are also throttled the way AWS itself does it: a
token bucket per credential, region and service (an assumed role's credentials stand for its
account) holds BURST calls and refills at RATE per second; a call that finds it empty is
throttled. SHARE=0 with a BUCKET leaves only that.

    throttle_proxy.py PORT MOTO_URL [DELAY_MS] [SHARE] [SEED] [BUCKET]
"""
import json
import random
import sys
import threading
import time
import urllib.parse

from moto_relay import Relay, Server

port, moto = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2])
delay = float(sys.argv[3] if len(sys.argv) > 3 else 50) / 1000
share = float(sys.argv[4] if len(sys.argv) > 4 else 0.05)
chance = random.Random(int(sys.argv[5] if len(sys.argv) > 5 else 20261202))
bucket_spec = sys.argv[6] if len(sys.argv) > 6 else ""
rate, burst = (float(x) for x in bucket_spec.split(":")) if bucket_spec else (0.0, 0.0)
buckets = {}  # (key id, region, service) -> [tokens, last refill]
lock = threading.Lock()
stats = {"calls": 0, "throttled": 0}

EC2 = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded'
       b'</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>bench</RequestID></Response>')
QUERY = (b'<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded'
         b'</Message></Error><RequestId>bench</RequestId></ErrorResponse>')
JSON = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'


class Handler(Relay):
    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__stats"):
            with lock:
                return self.answer(200, json.dumps(stats).encode(), "application/json")
        if self.path.startswith("/__reset"):
            with lock:
                stats.update(calls=0, throttled=0)
            return self.answer(200, b"{}", "application/json")
        time.sleep(delay)
        scope = self.headers.get("Authorization", "").partition("Credential=")[2].split("/")
        scope = (scope[0], scope[2], scope[3]) if len(scope) > 3 else None
        with lock:
            stats["calls"] += 1
            throttle = chance.random() < share
            if rate and scope:
                now = time.monotonic()
                tokens, last = buckets.get(scope, (burst, now))
                tokens = min(burst, tokens + (now - last) * rate)
                if tokens >= 1:
                    tokens -= 1
                else:
                    throttle = True
                buckets[scope] = (tokens, now)
            if throttle:
                stats["throttled"] += 1
        if throttle:
            auth = self.headers.get("Authorization", "")
            if self.headers.get("X-Amz-Target"):
                return self.answer(400, JSON, "application/x-amz-json-1.1")
            if "/ec2/aws4_request" in auth:
                return self.answer(503, EC2, "text/xml;charset=UTF-8")
            return self.answer(400, QUERY, "text/xml")
        self.relay(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


Relay.moto, Relay.timeout = moto, 60
Server(("127.0.0.1", port), Handler).serve_forever()
