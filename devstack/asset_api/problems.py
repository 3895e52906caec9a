"""RFC 9457 problem details: the one error shape of every error response.

Views raise `Problem`; the app turns it (and Werkzeug's own HTTP errors) into
`application/problem+json`. Nothing here knows about assets or tokens.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from flask import Response

TYPE_PREFIX = "urn:asset-api:problem:"
MEDIA_TYPE = "application/problem+json"


def default_slug(status: int) -> str:
    """`404` -> `not-found`: the problem type when nothing more specific applies."""
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


class Problem(Exception):
    """An error the API answers with; `slug` names its problem type."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or default_slug(status)
        self.headers = dict(headers or {})

    def to_response(self) -> Response:
        body = {
            "type": TYPE_PREFIX + self.slug,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        response = Response(json.dumps(body), status=self.status, mimetype=MEDIA_TYPE)
        response.headers.update(self.headers)
        return response
