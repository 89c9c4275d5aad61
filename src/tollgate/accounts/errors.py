"""Errors of the account model, worded for the person who made the request."""

from __future__ import annotations


class AccountError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class NotFound(AccountError):
    status = 404
    code = "not_found"


class Invalid(AccountError):
    status = 400
    code = "invalid_request"


class Conflict(AccountError):
    status = 409
    code = "conflict"
