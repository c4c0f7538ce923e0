"""The synthesized CloudFormation template, read as the local stack's single source of truth.

Resolves the intrinsic functions CDK emits (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select,
Fn::Split) against the physical names the local deployment gives each resource."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def load_template(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def physical_name(stack: str, logical_id: str, *, max_length: int = 80, lower: bool = False) -> str:
    name = f"{stack}-{logical_id}"[:max_length]
    return name.lower() if lower else name


@dataclass
class PhysicalResource:
    logical_id: str
    type: str
    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


class Resolver:
    """Turns template values into concrete ones, given each resource's physical identity."""

    def __init__(self, template: dict[str, Any], stack_name: str, physical: dict[str, PhysicalResource]) -> None:
        self.template = template
        self.stack_name = stack_name
        self.physical = physical
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/local",
            "AWS::NoValue": None,
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical:
            return self.physical[name].ref
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return parameters[name].get("Default")
        raise KeyError(f"Ref to unknown {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.physical.get(logical_id)
        if resource is None or attribute not in resource.attributes:
            raise KeyError(f"Fn::GetAtt {logical_id}.{attribute} is not known locally")
        return resource.attributes[attribute]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._intrinsics().get(key)
            if handler is not None:
                return handler(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _intrinsics(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": lambda arg: self.ref(arg),
            "Fn::GetAtt": lambda arg: self.get_att(*(arg.split(".", 1) if isinstance(arg, str) else arg)),
            "Fn::Join": lambda arg: str(arg[0]).join(str(self.resolve(v)) for v in self.resolve(arg[1])),
            "Fn::Select": lambda arg: self.resolve(arg[1])[int(self.resolve(arg[0]))],
            "Fn::Split": lambda arg: str(self.resolve(arg[1])).split(arg[0]),
            "Fn::Sub": self._sub,
        }

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def resources_of(template: dict[str, Any], resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template.get("Resources", {}).items():
        if resource["Type"] == resource_type:
            yield logical_id, resource.get("Properties", {})
