"""Refusals of the storage layer; the API turns each into its status and message."""

from __future__ import annotations


class StoreError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(StoreError):
    status = 400


class Unauthorized(StoreError):
    status = 401


class Forbidden(StoreError):
    status = 403


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


class Invalid(StoreError):
    """A malformed value the schema could not catch (a hash that is not hex, ...)."""

    status = 422
