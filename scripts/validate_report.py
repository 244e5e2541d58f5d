#!/usr/bin/python3
"""Validates efficientllm outputs against docs/report.schema.json (Debian's python3-jsonschema).

  scripts/validate_report.py FILE...   report.json, `report --format json` output, or runs.jsonl
                                       (each line is checked as the schema's $defs/run); a file
                                       named inference.json (bench-infer) against
                                       docs/inference.schema.json; `estimate --json` output
                                       ("estimate": true) against docs/estimate.schema.json
Prints one line per problem and exits 1 if there is any.
"""
import json
import pathlib
import sys

import jsonschema

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
SCHEMA = json.loads((DOCS / "report.schema.json").read_text())
INFERENCE_SCHEMA = json.loads((DOCS / "inference.schema.json").read_text())
ESTIMATE_SCHEMA = json.loads((DOCS / "estimate.schema.json").read_text())


def part(name):
    """The schema narrowed to one of its $defs: errors then point inside it (the top-level oneOf
    would only say that neither alternative matched)."""
    return {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{name}"}


def violations(document, schema, where):
    """Prints each violation of `schema`; returns how many there are."""
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
    for e in errors:
        print(f"{where}: /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
    return len(errors)


def main(paths):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    problems = 0
    for path in paths:
        text = pathlib.Path(path).read_text()
        if pathlib.Path(path).name == "inference.json":
            jsonschema.Draft202012Validator.check_schema(INFERENCE_SCHEMA)
            problems += violations(json.loads(text), INFERENCE_SCHEMA, path)
        elif path.endswith(".jsonl"):
            for n, line in enumerate(text.splitlines(), 1):
                problems += violations(json.loads(line), part("run"), f"{path}:{n}")
        else:
            document = json.loads(text)
            if document.get("estimate") is True:
                jsonschema.Draft202012Validator.check_schema(ESTIMATE_SCHEMA)
                problems += violations(document, ESTIMATE_SCHEMA, path)
                continue
            problems += violations(document, part("comparison" if "comparison" in document else "report"), path)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
