#!/usr/bin/env python3
"""A proxy in front of moto that makes one region's instances look COPIES times as many.

moto looks instances and tags up by scanning all of them, so past a few thousand instances
its DescribeInstances does not answer in useful time (docs/performance.md). For the memory of
a 20,000-instance report, this proxy asks moto for its first DescribeInstances page once per
region (moto's own XML, so the shapes are moto's), and answers the client's pages with that
page COPIES times over: each copy's instance ids rewritten to be unique, and a nextToken
leading to the next copy. Every other call goes to moto as it is. GET /__stats returns how
many DescribeInstances pages were served.

    ec2_pages.py PORT MOTO_URL COPIES
"""
import json
import re
import sys
import threading
import urllib.parse

from moto_relay import Relay, Server

port, moto, copies = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
pages = {}  # region -> moto's first page (bytes)
stats = {"pages": 0, "instances": 0}
INSTANCE_ID = re.compile(rb"<instanceId>i-([0-9a-f]+)</instanceId>")
REGION = re.compile(rb"Credential=[^/]+/[0-9]+/([a-z0-9-]+)/")


def copy_of(page, n):
    """Copy n of a page: instance ids made unique per copy, and a nextToken unless last."""
    def rename(match):
        digits = match.group(1)
        return b"<instanceId>i-%05x%s</instanceId>" % (n, digits[5:])
    page = INSTANCE_ID.sub(rename, page)
    page = re.sub(rb"<nextToken>[^<]*</nextToken>", b"", page)
    if n + 1 < copies:
        page = page.replace(b"</DescribeInstancesResponse>",
                            b"<nextToken>copy-%d</nextToken></DescribeInstancesResponse>" % (n + 1))
    return page


class Handler(Relay):
    def do_GET(self):
        if self.path == "/__stats":
            with lock:
                body = json.dumps(stats).encode()
            return self.answer(200, body, "application/json")
        self.relay(b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if form.get("Action") != ["DescribeInstances"] or any(k.startswith("Filter") or k.startswith("InstanceId") for k in form):
            return self.relay(body)
        found = REGION.search(self.headers.get("Authorization", "").encode())
        region = found.group(1) if found else b"us-east-1"
        token = form.get("NextToken", [""])[0]
        n = int(token.split("-", 1)[1]) if token.startswith("copy-") else 0
        with lock:
            page = pages.get(region)
        if page is None:
            first = urllib.parse.urlencode({"Action": "DescribeInstances", "Version": form.get("Version", ["2016-11-15"])[0],
                                            "MaxResults": "1000"}).encode()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "host")}
            forwarded = self.forward(first, headers)
            if forwarded is None or forwarded[0] != 200:
                return self.relay(body)
            page = forwarded[2]
            with lock:
                pages[region] = page
        reply = copy_of(page, n)
        with lock:
            stats["pages"] += 1
            stats["instances"] += len(INSTANCE_ID.findall(reply))
        self.answer(200, reply, "text/xml;charset=UTF-8")


Relay.moto = moto
Server(("127.0.0.1", port), Handler).serve_forever()
