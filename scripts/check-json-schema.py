#!/usr/bin/env python3
"""Checks a JSON document against a JSON Schema, with Python's json only.

Usage: check-json-schema.py SCHEMA DOCUMENT. Supports the keywords the
project's schemas use: type (one or a list), properties, required,
additionalProperties: false, items, enum, minimum, $ref to #/$defs/NAME.
Prints each violation with its path and exits 1 when there is any.
"""
import json
import sys

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def check(root, schema, value, path, errors):
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root["$defs"][name]
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        if not any(TYPES[t](value) for t in types):
            errors.append(f"{path}: {json.dumps(value)[:80]} is not of type {types}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and TYPES["number"](value) and value < schema["minimum"]:
        errors.append(f"{path}: {value} < {schema['minimum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing {key}")
        for key, v in value.items():
            if key in props:
                check(root, props[key], v, f"{path}.{key}", errors)
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected key {key}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            check(root, schema["items"], v, f"{path}[{i}]", errors)


def main():
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    with open(sys.argv[2]) as f:
        doc = json.load(f)
    errors = []
    check(schema, schema, doc, "$", errors)
    for e in errors[:50]:
        print(e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
