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
