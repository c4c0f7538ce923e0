"""The Lambda bundle built without Docker (`make lambda-deps`, infra/bundle.py): every function's
asset holds its handler, our code and every third-party module it imports as arm64 wheels for the
Python 3.14 runtime, leaves out what the runtime provides (boto3), and stays small.

Prints the size per function. Needs build/lambda-deps (`make lambda-deps`, which `make test` runs
first); the test itself reads only local files."""

from __future__ import annotations

import ast
import io
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Synthesized
from tests.infra.template_facts import base_name

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "build" / "lambda-requirements.txt"
# Provided by the Lambda Python runtime (and left out of the bundle by `make lambda-deps`).
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six"}
# Import names of distributions whose module is named differently.
IMPORT_NAMES = {"aws-lambda-powertools": "aws_lambda_powertools", "aws-xray-sdk": "aws_xray_sdk"}
MAX_ZIPPED_BYTES = 15 * 1024 * 1024  # Lambda allows 50 MB zipped / 250 MB unzipped; we stay far below
MAX_UNZIPPED_BYTES = 60 * 1024 * 1024
ELF_MACHINE_AARCH64 = 183


def _assets(synthesized: Synthesized) -> dict[str, tuple[str, Path]]:
    """{function base name: (handler, asset folder)} for our functions."""
    assets = {}
    for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items():
        props = resource["Properties"]
        if "ZipFile" in props["Code"]:
            continue
        asset_hash = str(props["Code"]["S3Key"]).removesuffix(".zip")
        assets[base_name(logical_id)] = (props["Handler"], synthesized.outdir / f"asset.{asset_hash}")
    return assets


@pytest.fixture(scope="module")
def bundles(synthesized: Synthesized) -> dict[str, tuple[str, Path]]:
    if not REQUIREMENTS.exists():
        pytest.fail("build/lambda-deps is missing: run `make lambda-deps` (make test does) before the tests")
    return _assets(synthesized)


def _zipped_size(folder: Path) -> tuple[int, int]:
    buffer = io.BytesIO()
    unzipped = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                unzipped += path.stat().st_size
                archive.write(path, path.relative_to(folder))
    return buffer.tell(), unzipped


def _locked_packages() -> list[str]:
    names = re.findall(r"^([A-Za-z0-9_.-]+)==", REQUIREMENTS.read_text(), flags=re.MULTILINE)
    return [n.lower() for n in names]


def _third_party_imports(source_root: Path) -> set[str]:
    """Top-level modules imported anywhere in the functions package, other than the standard library."""
    modules: set[str] = set()
    for path in source_root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m not in {"functions", "__future__"}}


def test_every_function_ships_its_handler_and_our_code(bundles: dict[str, tuple[str, Path]]) -> None:
    assert len(bundles) >= 12
    for function, (handler, asset) in bundles.items():
        module, _, attribute = handler.rpartition(".")
        source = asset / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{function}: {source} missing"
        defined = {
            n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assigned = {
            t.id
            for n in ast.parse(source.read_text()).body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        assert attribute in defined | assigned, f"{function}: {handler} not defined"
        assert (asset / "functions" / "common" / "__init__.py").is_file()
        assert (
            not (asset / "local_stack").exists() and not (asset / "tests").exists() and not (asset / "infra").exists()
        )


def test_the_bundle_holds_every_locked_runtime_dependency_and_every_imported_module(
    bundles: dict[str, tuple[str, Path]],
) -> None:
    assets = {asset for _, asset in bundles.values()}
    locked = _locked_packages()
    assert {"pydantic", "pydantic-core", "aws-lambda-powertools", "aws-xray-sdk"} <= set(locked)
    assert not set(locked) & {"boto3", "botocore", "moto", "aws-cdk-lib", "pytest"}
    for asset in assets:
        installed = {
            re.sub(r"-[^-]+\.dist-info$", "", p.name).lower().replace("_", "-") for p in asset.glob("*.dist-info")
        }
        assert installed == set(locked), asset
        for module in _third_party_imports(asset / "functions"):
            present = (asset / module).is_dir() or (asset / f"{module}.py").is_file()
            assert present or module in RUNTIME_PROVIDED, f"{module} is imported but not in the bundle"
        assert not (asset / "boto3").exists() and not (asset / "botocore").exists()


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


def test_native_code_is_arm64_for_python_3_14(bundles: dict[str, tuple[str, Path]]) -> None:
    for asset in {asset for _, asset in bundles.values()}:
        native = list(asset.rglob("*.so"))
        assert any(p.name.startswith("_pydantic_core.cpython-314-aarch64") for p in native)
        for library in native:
            assert _elf_machine(library) == ELF_MACHINE_AARCH64, library
            assert "x86_64" not in library.name, library
        assert not list(asset.rglob("__pycache__"))


def test_the_bundle_stays_small_and_its_size_is_reported(
    bundles: dict[str, tuple[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    sizes: dict[Path, tuple[int, int]] = {}
    report: list[tuple[str, Any, Any]] = []
    for function, (_, asset) in sorted(bundles.items()):
        if asset not in sizes:
            sizes[asset] = _zipped_size(asset)
        zipped, unzipped = sizes[asset]
        assert zipped <= MAX_ZIPPED_BYTES, (function, zipped)
        assert unzipped <= MAX_UNZIPPED_BYTES, (function, unzipped)
        report.append((function, zipped, unzipped))
    with capsys.disabled():
        print(f"\nLambda bundle per function ({len(sizes)} distinct asset(s), uploaded once each):")
        for function, zipped, unzipped in report:
            print(f"  {function:<40} {zipped / 1e6:6.2f} MB zipped  {unzipped / 1e6:6.2f} MB unzipped")
