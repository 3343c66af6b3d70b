"""Benchmark comparison: GET /services/<id> in Flask + SQLAlchemy on pincher's SQLite schema.

Run by bench/services.sh under gunicorn (one worker per core).
"""
import json
import os
import uuid

from flask import Flask, abort, jsonify
from sqlalchemy import create_engine, text

engine = create_engine(os.environ["BENCH_SQLITE_URL"], pool_size=10)
app = Flask(__name__)

QUERY = text(
    "SELECT id, name, display_name, description, owner, tags, links, metadata, created_at, "
    "updated_at FROM services WHERE id = :id"
)


@app.get("/services/<service_id>")
def show(service_id):
    try:
        key = uuid.UUID(service_id).bytes
    except ValueError:
        abort(404)
    with engine.connect() as conn:
        row = conn.execute(QUERY, {"id": key}).mappings().first()
    if row is None:
        abort(404)
    return jsonify(
        id=str(uuid.UUID(bytes=row["id"])),
        name=row["name"],
        display_name=row["display_name"],
        description=row["description"],
        owner=row["owner"],
        tags=json.loads(row["tags"]),
        links=json.loads(row["links"]),
        metadata=json.loads(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
