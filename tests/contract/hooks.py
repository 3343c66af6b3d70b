"""Schemathesis hooks for pincher's contract test.

The OpenAPI document states every rule JSON Schema can carry. What it cannot is said in the
descriptions, listed in docs/api.md, and handled here, each rule once. A refusal is accepted
only when the request breaks one of these rules (the generation filters below keep most such
requests from being sent; schemathesis's coverage and stateful phases do not run them, so
the same rules also judge the failures).

Rules the document cannot state:
  * query parameters that exclude each other: all_regions with regions, all_accounts with
    accounts, all_groups with groups (in JSON bodies the schema says so with if/then);
  * a report period ends after it starts; an omitted start or end is the default, which
    depends on today's date;
  * a cron schedule's grammar (field ranges, a date that exists within ten years): the
    document gives only its characters;
  * a token's expiry is in the future (the clock).

Refusals that depend on the server's state:
  * 412: an If-Match naming a revision the resource no longer has;
  * 400 on `cursor`: a cursor this listing never issued;
  * 400/422 on a `service` param: a service that is not in the registry.
"""

import ast
import datetime
import threading

import schemathesis

# CPython 3.11's AST constructor keeps its recursion count per interpreter, not per thread:
# two workers parsing at once (hypothesis reads lambda sources to name filters) can fail with
# "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905). One parse at a
# time avoids it.
_parse = ast.parse
_parse_lock = threading.Lock()


def _parse_one_at_a_time(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _parse_one_at_a_time

VALID_SCHEDULES = ["0 7 * * 1-5", "*/15 * * * *", "@daily", "0 0 1 * *", "30 6 * * 0", "@hourly"]

EXCLUSIVE = (("all_regions", "regions"), ("all_accounts", "accounts"), ("all_groups", "groups"))


def _on(value):
    return value is True or value == "true"


def _today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def _period_backwards(params):
    """Whether a report's period would end before it starts."""
    start, end = params.get("start"), params.get("end")
    if not isinstance(start, str) and not isinstance(end, str):
        return False
    today = _today()
    last_month = (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    start = start if isinstance(start, str) else last_month.isoformat()
    end = end if isinstance(end, str) else today.isoformat()
    return start >= end


def _exclusive_broken(params):
    return any(_on(params.get(flag)) and params.get(listed) for flag, listed in EXCLUSIVE)


def _breaks_a_listed_rule(case):
    query = case.query or {}
    body = case.body if isinstance(case.body, dict) else {}
    if _exclusive_broken(query) or _period_backwards(query) or _period_backwards(body):
        return True
    for step in body.get("steps") or []:
        params = step.get("params") if isinstance(step, dict) else None
        if isinstance(params, dict) and _period_backwards(params):
            return True
    schedule = body.get("schedule")
    if isinstance(schedule, str) and schedule not in VALID_SCHEDULES:
        return True
    expires = body.get("expires_at")
    if isinstance(expires, str):
        try:
            at = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00"))
            if at.tzinfo is None or at <= datetime.datetime.now(datetime.timezone.utc):
                return True
        except ValueError:
            return False
    return False


@schemathesis.hook
def filter_query(context, query):
    return not (query and (_exclusive_broken(query) or _period_backwards(query)))


@schemathesis.hook
def map_body(context, body):
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if isinstance(body.get("schedule"), str):
        body["schedule"] = VALID_SCHEDULES[len(body["schedule"]) % len(VALID_SCHEDULES)]
    if "expires_at" in body and "scope" in body:
        body.pop("expires_at")
    return body


def _problem_fields(response):
    try:
        problem = response.json()
    except Exception:  # not JSON: not one of the listed refusals
        return []
    return [e.get("field") for e in problem.get("errors", []) if isinstance(e, dict)]


def _unregistered_service(response):
    try:
        errors = response.json().get("errors", [])
    except Exception:  # not JSON: not this refusal
        return False
    return bool(errors) and all(
        isinstance(e, dict)
        and str(e.get("field", "")).split(".")[-1] == "service"
        and "not found in the registry" in str(e.get("message", ""))
        for e in errors
    )


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if response is None:
        return True
    status = response.status_code
    if status == 412 and case.headers and "If-Match" in case.headers:
        return False
    if status == 400 and "cursor" in _problem_fields(response):
        return False
    if status in (400, 422) and _unregistered_service(response):
        return False
    if status in (400, 422) and _breaks_a_listed_rule(case):
        return False
    return True
