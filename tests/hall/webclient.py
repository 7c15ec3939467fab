"""A small page client for the hall's web pages in tests: keeps cookies (Secure ones too: the
hall on loopback is plain HTTP), follows nothing by itself, reads the CSRF field from forms."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    set_cookies: list[str]
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    def csrf(self) -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', self.text)
        assert m, "no CSRF field on the page"
        return m.group(1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class WebClient:
    base: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: Mapping[str, str | Sequence[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Page:
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form, doseq=True).encode()
        url = self.base + urllib.parse.quote(path, safe="/?=&%:+")
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if self.cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=15) as resp:
                status, raw, hdrs = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, raw, hdrs = exc.code, exc.read(), exc.headers
        set_cookies = hdrs.get_all("Set-Cookie") or []
        for line in set_cookies:
            jar = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return Page(
            status,
            {k.lower(): v for k, v in hdrs.items()},
            set_cookies,
            raw.decode("utf-8", errors="replace"),
        )

    def get(self, path: str, **kw: object) -> Page:
        return self.request("GET", path, **kw)  # type: ignore[arg-type]

    def post(self, path: str, form: Mapping[str, str | Sequence[str]], **kw: object) -> Page:
        return self.request("POST", path, form, **kw)  # type: ignore[arg-type]

    def submit(self, page_path: str, action: str, form: Mapping[str, str | Sequence[str]]) -> Page:
        """Open the page with the form, then post it with the page's CSRF token."""
        page = self.get(page_path)
        assert page.status == 200, (page_path, page.status, page.text[:300])
        return self.post(action, {**form, "csrf": page.csrf()})
