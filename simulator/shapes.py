"""Keep the simulator botocore-faithful: check every request against botocore's input model and
every response against its output model, so that code run on the simulator sends only what
botocore would send and reads only keys RDS (or DynamoDB) really returns."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.model import (
    ListShape,
    MapShape,
    OperationModel,
    ServiceModel,
    Shape,
    StructureShape,
)
from botocore.validate import ParamValidator


@cache
def _model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def operation(name: str, service: str = "rds") -> OperationModel:
    return _model(service).operation_model(name)


def check_request(op: str, params: dict[str, Any], service: str = "rds") -> None:
    shape = operation(op, service).input_shape
    assert shape is not None
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise AssertionError(f"{op} request botocore would refuse: {report.generate_report()}")


def check_response(op: str, response: dict[str, Any], service: str = "rds") -> None:
    shape = operation(op, service).output_shape
    if shape is not None:
        _check(response, shape, op)


def _check(value: Any, shape: Shape, where: str) -> None:
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise AssertionError(f"{where}: expected a structure, got {type(value).__name__}")
        for key, item in value.items():
            if key not in shape.members:
                raise AssertionError(f"{where}: {key} is not in botocore's {shape.name}")
            _check(item, shape.members[key], f"{where}.{key}")
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise AssertionError(f"{where}: expected a map, got {type(value).__name__}")
        for k, item in value.items():
            _check(k, shape.key, f"{where}<key>")
            _check(item, shape.value, f"{where}[{k!r}]")
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise AssertionError(f"{where}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, shape.member, f"{where}[{i}]")
    else:
        expected: dict[str, type | tuple[type, ...]] = {
            "string": str,
            "boolean": bool,
            "integer": int,
            "long": int,
            "double": (float, int),
            "float": (float, int),
            "timestamp": datetime,
        }
        kind = expected.get(shape.type_name)
        if kind is not None and not isinstance(value, kind):
            raise AssertionError(
                f"{where}: expected {shape.type_name}, got {type(value).__name__} {value!r}"
            )
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            raise AssertionError(f"{where}: {value!r} is not one of {enum}")
