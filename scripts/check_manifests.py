"""Validates every Kubernetes manifest under infrastructure/ against the Kubernetes API
schemas, offline and strict (unknown fields are errors), with kubernetes-validate.

Kustomize overlays (a kustomization.yaml) are rendered first: their strategic-merge patches
are applied to the resources they name, by a plain recursive merge (what the overlays here
need), and the result is validated too. JSON held in annotations must parse.

    python3 scripts/check_manifests.py KUBERNETES_VERSION
"""

import copy
import json
import pathlib
import sys

import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
VERSION = sys.argv[1] if len(sys.argv) > 1 else "1.32.0"


def merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(patch)


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def check(doc, where, failures):
    try:
        kubernetes_validate.validate(doc, VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        failures.append(f"{where}: {e.message} at {'.'.join(str(p) for p in e.path)}")
    except Exception as e:  # unknown kind or version
        failures.append(f"{where}: {e}")
    annotations = (doc.get("spec", {}).get("template", {}).get("metadata", {}) or {}).get("annotations", {}) or {}
    for key, value in annotations.items():
        if key.startswith("ad.datadoghq.com/"):
            try:
                json.loads(value)
            except ValueError as e:
                failures.append(f"{where}: annotation {key} is not JSON: {e}")


def main():
    failures = []
    checked = 0
    for path in sorted((ROOT / "infrastructure").rglob("*.yaml")):
        relative = path.relative_to(ROOT)
        docs = documents(path)
        if not docs or not all(isinstance(d, dict) and "kind" in d and "apiVersion" in d for d in docs):
            continue  # Prometheus, alert rules, compose files: not Kubernetes objects
        if path.name == "kustomization.yaml" or any(
            (p / "kustomization.yaml").exists() and path.parent == p for p in [path.parent]
        ):
            continue  # overlays and their patches are checked rendered, below
        for doc in docs:
            check(doc, relative, failures)
            checked += 1
    for kustomization in sorted((ROOT / "infrastructure").rglob("kustomization.yaml")):
        overlay = kustomization.parent
        spec = documents(kustomization)[0]
        resources = []
        for name in spec.get("resources", []):
            resources.extend(documents(overlay / name))
        for patch_ref in spec.get("patches", []):
            for patch in documents(overlay / patch_ref["path"]):
                matched = False
                for i, resource in enumerate(resources):
                    if (resource["kind"], resource["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"]):
                        resources[i] = merge(resource, patch)
                        matched = True
                if not matched:
                    failures.append(f"{overlay}: patch {patch_ref['path']} matches no resource")
        for resource in resources:
            check(resource, f"{overlay.relative_to(ROOT)} ({resource['kind']}/{resource['metadata']['name']})", failures)
            checked += 1
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"{checked} Kubernetes objects valid for Kubernetes {VERSION}")


if __name__ == "__main__":
    main()
