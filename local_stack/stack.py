"""The local stack: moto (server mode) with the synthesized template deployed into it, the local
Lambda service, event source pollers, the local API Gateway and the PSP simulator, on loopback."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

import boto3
from botocore.config import Config
from pydantic import TypeAdapter

from functions.events.settings import EventDeliverySettings, EventsApiSettings
from functions.payout_provider.settings import PayoutProviderSettings
from functions.payout_webhooks.settings import PayoutWebhookSettings
from functions.psp.settings import PspSettings, PspWorkerSettings
from functions.psp_webhooks.settings import PspWebhookSettings
from functions.psp_webhooks.signatures import secrets_from
from functions.recovery.settings import RecoverySettings
from functions.wallet.settings import WalletSettings
from local_stack.api_server import LocalApiGateway, api_server
from local_stack.chaos import Chaos
from local_stack.deploy import Deployer, LocalCloud
from local_stack.faults import FaultPlan
from local_stack.lambda_runtime import LambdaService, die_with_parent, worker_base_env
from local_stack.loopback import LoopbackServer, stop_process
from local_stack.metering import CALL_LOG_ENV, Meter
from local_stack.payout_provider.simulator import PayoutProviderSimulator
from local_stack.payout_provider.simulator import api_key_from_env as payout_provider_key_from_env
from local_stack.pollers import start_pollers
from local_stack.psp.simulator import PspSimulator, api_key_from_env, psp_server
from local_stack.scheduler import LocalScheduler
from local_stack.template import REGION, load_template

log = logging.getLogger("local_stack")
HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "cdk.out" / "Payments.template.json"
STATE_FILE = ROOT / ".local" / "stack.json"
STACK_NAME = "Payments"
# The environment variables through which functions find the PSP's API key and the webhook signing secret,
# and the payout provider's.
PSP_API_KEY_SECRET_ENV = str(PspSettings.model_fields["psp_api_key_secret"].alias)
WEBHOOK_SECRET_ENV = str(PspWebhookSettings.model_fields["secret_arn"].alias)
PAYOUT_PROVIDER_URL_ENV = str(PayoutProviderSettings.model_fields["payout_provider_url"].alias)
PAYOUT_PROVIDER_KEY_SECRET_ENV = str(PayoutProviderSettings.model_fields["payout_provider_api_key_secret"].alias)
PAYOUT_WEBHOOK_SECRET_ENV = str(PayoutWebhookSettings.model_fields["secret_arn"].alias)


def _worker_env(field: str) -> str:
    return str(PspWorkerSettings.model_fields[field].alias)


# Local runs converge in seconds, not minutes: the PSP workers back off for at most 4 s (AWS: 300 s) and
# their circuit cools down for 5 s (AWS: 15 s). Their messages' maximum age is cut to match, so that the
# queues' maxReceiveCount (sized for AWS's figures) still never fires before the age check.
LOCAL_FUNCTION_SETTINGS = {
    _worker_env("retry_base_seconds"): "1",
    _worker_env("retry_cap_seconds"): "4",
    _worker_env("circuit_cool_down_seconds"): "5",
    # Webhook endpoints on loopback (test servers, a developer's receiver): http allowed, locally only.
    str(EventsApiSettings.model_fields["allow_loopback_http"].alias): "true",
    # ... and deliveries reach loopback only (an endpoint registered elsewhere never gets a DNS lookup).
    str(EventDeliverySettings.model_fields["loopback_only"].alias): "true",
}
# How long a queue message may be retried locally (AWS: 24 h for the PSP workers, 3 days for event deliveries).
LOCAL_MESSAGE_AGE_SECONDS = 900
# The hold period of held orders (the wallet's setting; the template's is the stage's fulfilmentHoldDays).
FULFILMENT_HOLD_DAYS_ENV = str(WalletSettings.model_fields["fulfilment_hold_days"].alias)


def local_function_settings(message_age_seconds: int = LOCAL_MESSAGE_AGE_SECONDS) -> dict[str, str]:
    """What the local stack sets in every function's environment: the shorter waits, the message age, and the
    recovery sweeps' retry windows (orders and refunds: one variable) matching it."""
    age = str(message_age_seconds)
    return {
        **LOCAL_FUNCTION_SETTINGS,
        _worker_env("max_message_age_seconds"): age,
        str(RecoverySettings.model_fields["retry_window_seconds"].alias): age,
    }


def fulfilment_hold_days_from_env() -> int | None:
    """PAYMENTS_FULFILMENT_HOLD_DAYS of the local stack's own environment, if set, checked as the wallet
    checks it (a wrong value fails the start, not every credit)."""
    value = os.environ.get(FULFILMENT_HOLD_DAYS_ENV)
    if not value:
        return None
    field_info = WalletSettings.model_fields["fulfilment_hold_days"]
    days: int = TypeAdapter(Annotated[int, *field_info.metadata]).validate_python(value, strict=False)
    return days


def with_overrides(environment: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    """A function's environment with the local values of the names it has (and no name it lacks)."""
    return {name: overrides.get(name, value) for name, value in environment.items()}


@dataclass
class LocalStackConfig:
    port: int = 3000
    psp_port: int = 3001
    aws_port: int = 4566
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # More clients' keys (PAYMENTS_EXTRA_API_KEYS, comma-separated): each is its own caller, as each API
    # key in a usage plan is in AWS, with its own idempotency keys and payment ids.
    extra_api_keys: tuple[str, ...] = ()
    # The PSP simulator's key (PAYMENTS_PSP_API_KEY, default sk_test_local), also put in the local PSP secret.
    psp_api_key: str = field(default_factory=api_key_from_env)
    # The payout provider simulator's key (PAYMENTS_PAYOUT_PROVIDER_API_KEY, default pk_test_payouts), also put
    # in the provider's secret; the provider is served by the PSP simulator's server, under /payouts/.
    payout_provider_api_key: str = field(default_factory=payout_provider_key_from_env)
    # Where the functions reach the payout provider (PAYMENTS_PAYOUT_PROVIDER_URL); by default the simulator's
    # routes on the PSP simulator's server.
    payout_provider_url: str | None = field(default_factory=lambda: os.environ.get("PAYMENTS_PAYOUT_PROVIDER_URL"))
    template: Path = DEFAULT_TEMPLATE
    retry_delay_seconds: int = 1  # failed SQS records reappear this fast locally (AWS: the visibility timeout)
    psp_lost_response_delay: float = 5.0
    state_file: Path | None = None
    call_log: Path | None = None  # set to meter every AWS call the functions make (cost benchmark)
    faults: FaultPlan | None = None  # a seeded fault plan (the soak's), armed from the start
    # How long a queue message may be retried (AWS: 24 h for the PSP workers, 3 days for event deliveries),
    # and so how long the recovery sweeps wait before "the PSP has none" means it never will. Locally 15
    # minutes; a soak whose backlog lasts longer keeps its messages as long as it runs.
    message_age_seconds: int = LOCAL_MESSAGE_AGE_SECONDS
    # The hold period of held orders, in place of the template's (PAYMENTS_FULFILMENT_HOLD_DAYS; 0: a held
    # order's hold ends at once, and the next sweep releases it).
    fulfilment_hold_days: int | None = field(default_factory=fulfilment_hold_days_from_env)

    def function_overrides(self, psp_url: str) -> dict[str, str]:
        """What the local functions get in place of the template's values, by environment name."""
        overrides = {
            **local_function_settings(self.message_age_seconds),
            "PSP_BASE_URL": psp_url,
            PAYOUT_PROVIDER_URL_ENV: self.payout_provider_url or psp_url,
        }
        if self.fulfilment_hold_days is not None:
            overrides[FULFILMENT_HOLD_DAYS_ENV] = str(self.fulfilment_hold_days)
        return overrides

    @classmethod
    def from_env(cls, **overrides: Any) -> LocalStackConfig:
        values: dict[str, Any] = {}
        for name, variable in (
            ("port", "PAYMENTS_PORT"),
            ("psp_port", "PAYMENTS_PSP_PORT"),
            ("aws_port", "PAYMENTS_AWS_PORT"),
        ):
            if os.environ.get(variable):
                values[name] = int(os.environ[variable])
        if os.environ.get("PAYMENTS_API_KEY"):
            values["api_key"] = os.environ["PAYMENTS_API_KEY"]
        extra = [key.strip() for key in os.environ.get("PAYMENTS_EXTRA_API_KEYS", "").split(",")]
        if any(extra):
            values["extra_api_keys"] = tuple(key for key in extra if key)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def aws_clients(endpoint: str) -> Any:
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION)
    config = Config(retries={"mode": "standard", "max_attempts": 3})

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint, config=config)

    return client


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.1)


class LocalStack:
    def __init__(self, config: LocalStackConfig, *, log_stream: IO[str] | None = None) -> None:
        self.config = config
        self.log_stream = log_stream
        self.stop_event = threading.Event()
        self.moto: subprocess.Popen[bytes] | None = None
        self.lambdas: LambdaService | None = None
        self.api: LoopbackServer | None = None
        self.psp: LoopbackServer | None = None
        self.pollers: list[threading.Thread] = []
        self.psp_simulator: PspSimulator | None = None
        self.scheduler: LocalScheduler | None = None
        self.cloud: LocalCloud | None = None
        self.chaos = Chaos()
        self.meter = Meter(config.call_log) if config.call_log is not None else None
        # Each handler's environment as the local functions get it: `payments audit` runs with the auditor's.
        self.environments: dict[str, dict[str, str]] = {}

    @property
    def aws_endpoint(self) -> str:
        return f"http://{HOST}:{self.config.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.config.port}"

    @property
    def psp_url(self) -> str:
        return f"http://{HOST}:{self.config.psp_port}"

    def _check_ports_free(self) -> None:
        for port in (self.config.port, self.config.psp_port, self.config.aws_port):
            with socket.socket() as probe:
                if probe.connect_ex((HOST, port)) == 0:
                    raise OSError(
                        f"port {port} on {HOST} is in use (another local stack?); "
                        "choose others with --port/--psp-port/--aws-port or PAYMENTS_*_PORT"
                    )

    def start(self) -> None:
        self._check_ports_free()
        if not self.config.template.exists():
            raise FileNotFoundError(f"{self.config.template} is missing: run `payments synth` (or `make synth`)")
        try:
            self._start_moto()
            clients = aws_clients(self.aws_endpoint)
            self.cloud = Deployer(load_template(self.config.template), STACK_NAME, clients).deploy()
            self._store_api_keys(clients)
            overrides = self.config.function_overrides(self.psp_url)
            functions = {
                logical_id: spec.__class__(
                    **{**spec.__dict__, "environment": with_overrides(spec.environment, overrides)}
                )
                for logical_id, spec in self.cloud.functions.items()
            }
            self.chaos.plan = self.config.faults
            self.environments = {spec.handler: spec.environment for spec in functions.values()}
            base_env = worker_base_env(self.aws_endpoint)
            if self.config.call_log is not None:
                base_env[CALL_LOG_ENV] = str(self.config.call_log)
            self.lambdas = LambdaService(
                functions, base_env=base_env, log=self.log_stream, chaos=self.chaos, meter=self.meter
            )
            self.lambdas.warm_all()
            self.psp_simulator = PspSimulator(
                api_key=self.config.psp_api_key,
                lost_response_delay=self.config.psp_lost_response_delay,
                payout_provider=PayoutProviderSimulator(api_key=self.config.payout_provider_api_key),
            )
            provider = self.psp_simulator.payout_provider
            if self.config.faults is not None:
                self.psp_simulator.charges.fault = self.config.faults.psp_charge
                self.psp_simulator.webhooks.fault = self.config.faults.webhook
                provider.webhooks.fault = self.config.faults.webhook
            self.psp_simulator.webhooks.configure(
                url=f"{self.api_url}/v1/webhooks/psp", secret=self._signing_secret(clients, WEBHOOK_SECRET_ENV)
            )
            provider.webhooks.configure(
                url=f"{self.api_url}/v1/webhooks/payout-provider",
                secret=self._signing_secret(clients, PAYOUT_WEBHOOK_SECRET_ENV),
            )
            self.psp = psp_server(self.psp_simulator, host=HOST, port=self.config.psp_port)
            self.psp.start()
            self.pollers = start_pollers(
                self.cloud,
                lambdas=self.lambdas,
                clients=clients,
                stop=self.stop_event,
                retry_delay=self.config.retry_delay_seconds,
            )
            self.scheduler = LocalScheduler(self.cloud.schedules, lambdas=self.lambdas, stop=self.stop_event)
            self.scheduler.start()
            from functions.openapi import openapi_document

            gateway = LocalApiGateway(
                self.cloud,
                lambdas=self.lambdas,
                api_key=self.config.api_key,
                extra_api_keys=self.config.extra_api_keys,
                openapi=openapi_document(),
            )
            self.api = api_server(gateway, host=HOST, port=self.config.port)
            self.api.start()
            self._write_state()
        except BaseException:
            self.stop()
            raise

    def _secret_of(self, variable: str) -> str:
        """The one secret the functions name in `variable` (every function that reads it names the same)."""
        assert self.cloud is not None
        arns = {f.environment[variable] for f in self.cloud.functions.values() if variable in f.environment}
        if len(arns) != 1:
            raise RuntimeError(f"expected one secret in the functions' {variable}, found {sorted(arns)}")
        return arns.pop()

    def _store_api_keys(self, clients: Any) -> None:
        """The PSP's and the payout provider's callers send the keys the simulators expect, read from their
        secrets as in AWS."""
        for variable, key in (
            (PSP_API_KEY_SECRET_ENV, self.config.psp_api_key),
            (PAYOUT_PROVIDER_KEY_SECRET_ENV, self.config.payout_provider_api_key),
        ):
            clients("secretsmanager").put_secret_value(SecretId=self._secret_of(variable), SecretString=key)

    def _signing_secret(self, clients: Any, variable: str) -> str:
        """A simulator signs webhooks with the secret its webhook function verifies against (the template's)."""
        value = clients("secretsmanager").get_secret_value(SecretId=self._secret_of(variable))
        return secrets_from(value["SecretString"])[0]

    def _start_moto(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != CALL_LOG_ENV} | {"MOTO_PORT": str(self.config.aws_port)}
        if self.config.call_log is not None:
            env[CALL_LOG_ENV] = str(self.config.call_log)  # the local cloud meters DynamoDB writes
        self.moto = subprocess.Popen(  # noqa: S603 - our interpreter, moto's server (local_stack/moto_server.py)
            [sys.executable, "-m", "local_stack.moto_server", "-H", HOST, "-p", str(self.config.aws_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            preexec_fn=die_with_parent,
        )
        _wait_http(f"{self.aws_endpoint}/moto-api/data.json", timeout=60)
        request = urllib.request.Request(  # noqa: S310 - loopback only
            f"{self.aws_endpoint}/moto-api/config",
            method="POST",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def _write_state(self) -> None:
        if self.config.state_file is None or self.cloud is None:
            return
        state = {
            "api_url": self.api_url,
            "api_key": self.config.api_key,
            "psp_url": self.psp_url,
            "payout_provider_url": self.config.payout_provider_url or self.psp_url,
            "psp_api_key": self.config.psp_api_key,
            "payout_provider_api_key": self.config.payout_provider_api_key,
            "aws_endpoint": self.aws_endpoint,
            "pid": os.getpid(),
            "tables": self.cloud.names_of("AWS::DynamoDB::Table"),
            "queues": {r.logical_id: r.ref for r in self.cloud.physical.values() if r.type == "AWS::SQS::Queue"},
            "buckets": self.cloud.names_of("AWS::S3::Bucket"),
            "state_machines": self.cloud.state_machines,
            "environments": self.environments,
        }
        self.config.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.config.state_file.write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        self.stop_event.set()
        if self.api is not None:
            self.api.stop()
        if self.lambdas is not None:
            self.lambdas.close()  # in-flight invocations end; pollers leave their messages for a retry
        for poller in self.pollers:
            poller.join(timeout=5)
        if self.psp_simulator is not None:
            self.psp_simulator.webhooks.stop()
            self.psp_simulator.payout_provider.webhooks.stop()
        if self.psp is not None:
            self.psp.stop()
        if self.moto is not None:
            stop_process(self.moto, grace_seconds=10)
        if self.config.state_file is not None and self.config.state_file.exists():
            self.config.state_file.unlink()
