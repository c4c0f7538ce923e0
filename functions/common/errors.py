"""Domain errors, each mapped to one API error shape in one place (`functions.common.api`)."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(DomainError):
    pass


class NotFound(DomainError):
    status_code = 404
    error_type = "not_found"
    code = "resource_missing"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class BusinessRuleViolation(DomainError):
    status_code = 422


class IdempotencyKeyReused(DomainError):
    """The request maps to an earlier one (same caller and Idempotency-Key) whose body was different."""

    status_code = 422
    error_type = "idempotency_error"
    code = "idempotency_key_reused"

    def __init__(self, param: str) -> None:
        super().__init__("This Idempotency-Key was used with a different request body.", param=param)


class CallerUnknown(DomainError):
    """The request carries no API key id: API Gateway always sets one on a keyed route, so this is refused."""

    status_code = 403
    error_type = "authentication_error"
    code = "api_key_missing"

    def __init__(self) -> None:
        super().__init__("The request was not made with an API key.")
