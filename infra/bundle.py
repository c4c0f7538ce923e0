"""Lambda code without Docker: our `functions` package plus, when present, the arm64 wheels that
`make lambda-deps` installs into build/lambda-deps from uv.lock (boto3 and its dependencies come with
the Lambda runtime and are left out). Every function ships this one asset: CDK uploads it once."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
DEPS_DIR = ROOT / "build" / "lambda-deps"
# Byte code, type stubs, C sources, console scripts and make's stamp file are not needed at run time.
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi", "*-stubs", "*.c", "bin", ".*")


@functools.cache
def bundle_path() -> Path:
    """A private staging folder per process (CDK copies it into cdk.out by content hash)."""
    bundle = Path(tempfile.mkdtemp(prefix="lambda-bundle-"))
    atexit.register(shutil.rmtree, bundle, ignore_errors=True)
    if DEPS_DIR.exists():
        shutil.copytree(DEPS_DIR, bundle, dirs_exist_ok=True, ignore=_IGNORE)
    shutil.copytree(ROOT / "functions", bundle / "functions", ignore=_IGNORE)
    return bundle


def lambda_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(bundle_path()))
