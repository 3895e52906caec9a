"""Approve or deny a device code the way a person would, without a browser.

Drives Keycloak's real pages with requests: the user-code link, the login form, the
consent screen. Only for the local stack (one host, plain http on 127.0.0.1).
"""

import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from devstack import StackError

HTTP_TIMEOUT = 15.0
MAX_REDIRECTS = 10


class ApprovalError(StackError):
    """Keycloak's pages did not lead where approving (or denying) should."""


@dataclass
class Form:
    """One HTML form: its id, where it posts, and its named inputs."""

    id: str | None
    action: str
    hidden: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.alerts: list[str] = []
        self._in_form = False
        self._in_alert = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(attr.get("id"), attr.get("action", "")))
            self._in_form = True
        elif tag == "input" and self._in_form and attr.get("name"):
            form = self.forms[-1]
            form.names.add(attr["name"])
            if attr.get("type") == "hidden":
                form.hidden[attr["name"]] = attr.get("value", "")
        elif self._in_alert or _is_message(attr):
            self._in_alert += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif self._in_alert:
            self._in_alert -= 1

    def handle_data(self, data: str) -> None:
        if self._in_alert and data.strip():
            self.alerts.append(data.strip())


def _is_message(attr: dict[str, str]) -> bool:
    classes = attr.get("class", "")
    ids = attr.get("id", "")
    return "kc-feedback-text" in classes or ids in {"input-error", "kc-error-message"}


class _Browser:
    """Follows redirects by hand and carries cookies itself.

    Keycloak marks its login cookies `Secure` even on http://127.0.0.1 (loopback
    counts as a secure context; seen on 26.7.3 and 26.7.5, 2026-12). requests' cookie
    jar then never sends them back over http, and the login fails with
    `cookie_not_found`. A cookie policy on the session does not help: requests copies
    cookies into a fresh jar per request.
    """

    def __init__(self) -> None:
        self.session = requests.Session()
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, data: dict[str, str] | None = None):
        for _ in range(MAX_REDIRECTS):
            response = self.session.request(
                method,
                url,
                data=data,
                headers=self._cookie_header(),
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
            self._keep_cookies(response)
            if not response.is_redirect:
                return response
            url = urljoin(url, response.headers["Location"])
            method, data = "GET", None
        raise ApprovalError(f"more than {MAX_REDIRECTS} redirects, last to {url}")

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep_cookies(self, response: requests.Response) -> None:
        for header in response.raw.headers.getlist("Set-Cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if _is_deletion(morsel):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value


def _is_deletion(morsel) -> bool:
    if morsel["max-age"] in {"0", "-1"}:
        return True
    expires = morsel["expires"]
    if not expires:
        return False
    try:
        return (
            time.mktime(time.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT"))
            < time.time()
        )
    except ValueError:
        return False


def _parse(response: requests.Response) -> _FormParser:
    parser = _FormParser()
    parser.feed(response.text)
    return parser


def _page_problem(
    response: requests.Response, parser: _FormParser, expected: str
) -> str:
    said = "; ".join(parser.alerts) or "no message on the page"
    return (
        f"expected {expected} but got HTTP {response.status_code} at {response.url} "
        f"({said})"
    )


def approve_device_code(
    verification_uri_complete: str, username: str, password: str, *, accept: bool = True
) -> None:
    """Log in as username on Keycloak's device page and accept (or deny) the grant.

    Raises ApprovalError unless Keycloak ends on its device status page with the
    expected outcome.
    """
    browser = _Browser()
    page = browser.request("GET", verification_uri_complete)
    parsed = _parse(page)
    login = next((form for form in parsed.forms if form.id == "kc-form-login"), None)
    if login is None:
        raise ApprovalError(_page_problem(page, parsed, "the login form"))

    fields = dict(login.hidden, username=username, password=password)
    page = browser.request("POST", urljoin(page.url, login.action), fields)
    parsed = _parse(page)
    consent = next((form for form in parsed.forms if "code" in form.hidden), None)
    if consent is None:
        raise ApprovalError(_page_problem(page, parsed, "the consent form"))

    answer = {"accept": "Yes"} if accept else {"cancel": "No"}
    page = browser.request(
        "POST", urljoin(page.url, consent.action), consent.hidden | answer
    )
    _check_outcome(page, accept)


def _check_outcome(page: requests.Response, accept: bool) -> None:
    url = urlsplit(page.url)
    errors = parse_qs(url.query).get("error", [])
    if not url.path.endswith("/device/status"):
        raise ApprovalError(_page_problem(page, _parse(page), "the device status page"))
    if accept and errors:
        raise ApprovalError(f"approval ended with error={errors[0]} at {page.url}")
    if not accept and errors != ["access_denied"]:
        raise ApprovalError(f"denial did not end with error=access_denied: {page.url}")
