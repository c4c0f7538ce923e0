"""A function's environment (its settings: table names, queue URLs, ...) for the operator commands: from
the running local stack's state file, or from the deployed stack's function with the caller's credentials."""

from __future__ import annotations

from pathlib import Path

import boto3

from local_stack.commands.settle import load_state
from local_stack.lambda_runtime import worker_base_env


def deployed_environment(stack: str, handler: str) -> dict[str, str]:
    """The environment of the deployed stack's function running `handler`."""
    pages = boto3.client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack)
    functions = boto3.client("lambda")
    for page in pages:
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] != "AWS::Lambda::Function":
                continue
            configuration = functions.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
            if configuration.get("Handler") == handler:
                variables: dict[str, str] = configuration["Environment"]["Variables"]
                return variables
    raise SystemExit(f"no function running {handler} in stack {stack}: is it deployed?")


def local_environment(state_file: Path, handler: str) -> dict[str, str]:
    """The environment of the local function running `handler`, with the local cloud's endpoint."""
    state = load_state(state_file)
    environments: dict[str, dict[str, str]] = state.get("environments", {})
    if handler not in environments:
        raise SystemExit(f"{state_file} names no function running {handler}: restart `payments local`")
    return {**worker_base_env(state["aws_endpoint"]), **environments[handler]}
