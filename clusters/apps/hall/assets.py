"""The pages' static assets: one style sheet, one small script, the icon.

Kept in a Python module so the hall stays one directory of ``*.py`` files (the hall playbook
copies exactly those to a hall host). Served under ``/static/NAME?v=DIGEST``: the digest changes
with the content, so browsers may keep an asset for a year.

The style sheet has two modes: the standard one, and the elderly-friendly one (适老化) when the
root element has the class ``elder``: larger type (22 px base), wider spacing, larger targets,
and high contrast (white and yellow on black, contrast ratio above 15:1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

CSS = """\
*, *::before, *::after { box-sizing: border-box; }
html { font-size: 100%; -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: #1a1a1a; background: #ffffff; line-height: 1.6;
  font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
    "WenQuanYi Zen Hei", sans-serif;
  font-size: 1rem;
}
.wrap { max-width: 68rem; margin: 0 auto; padding: 0 1rem; }
a { color: #0a4a94; text-decoration: underline; text-underline-offset: 0.15em; }
a:hover { color: #06305f; }
:focus-visible { outline: 3px solid #c25400; outline-offset: 2px; }
.skip { position: absolute; left: -999rem; top: 0; background: #ffffff; color: #0a4a94;
  padding: 0.5rem 1rem; z-index: 10; }
.skip:focus { left: 0.5rem; top: 0.5rem; }
header.top { background: #9b1b1b; color: #ffffff; }
header.top .wrap { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.5rem;
  padding-top: 0.6rem; padding-bottom: 0.6rem; }
header.top a { color: #ffffff; }
.brand { margin: 0; font-size: 1.35rem; font-weight: 700; }
.brand a { text-decoration: none; }
nav.main ul { list-style: none; display: flex; flex-wrap: wrap; gap: 0.25rem 1.25rem;
  margin: 0; padding: 0; }
nav.main form { display: inline; }
header.top button.link { background: none; border: 0; color: #ffffff; font: inherit;
  text-decoration: underline; cursor: pointer; padding: 0; margin: 0; }
form.mode { margin-left: auto; }
form.mode button { background: #ffffff; color: #9b1b1b; border: 2px solid #ffffff;
  border-radius: 0.3rem; font: inherit; font-weight: 700; padding: 0.2rem 0.8rem;
  cursor: pointer; }
main { display: block; padding: 1rem 0 2rem; }
main:focus { outline: none; }
h1 { font-size: 1.75rem; line-height: 1.3; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.35rem; margin: 1.5rem 0 0.6rem; border-bottom: 2px solid #d9d9d9;
  padding-bottom: 0.2rem; }
h3 { font-size: 1.1rem; margin: 1rem 0 0.4rem; }
nav.crumbs ol { list-style: none; display: flex; flex-wrap: wrap; gap: 0.3rem;
  margin: 0.3rem 0 0; padding: 0; font-size: 0.95rem; }
nav.crumbs li + li::before { content: "›"; margin-right: 0.3rem; color: #595959; }
.flash { border-left: 6px solid #1b6e2e; background: #eaf5ec; color: #123d1c;
  padding: 0.6rem 1rem; margin: 0.5rem 0 1rem; }
.error-box { border-left: 6px solid #b00020; background: #fdecee; color: #5c0010;
  padding: 0.6rem 1rem; margin: 0.5rem 0 1rem; }
.hint { color: #4d4d4d; font-size: 0.95rem; }
.code { font-family: "DejaVu Sans Mono", monospace; letter-spacing: 0.03em;
  word-break: break-all; }
.big-code { font-size: 1.3rem; font-weight: 700; }
ul.cards { list-style: none; padding: 0; display: grid; gap: 0.8rem;
  grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); }
ul.cards li { border: 1px solid #bfbfbf; border-radius: 0.4rem; padding: 0.8rem 1rem; }
ul.cards .n { display: block; color: #4d4d4d; font-size: 0.95rem; }
ul.links { padding-left: 1.2rem; columns: 14rem; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #bfbfbf; padding: 0.4rem 0.6rem; text-align: left;
  vertical-align: top; }
thead th { background: #f0f0f0; }
dl.guide { display: grid; grid-template-columns: 9rem 1fr; gap: 0.4rem 1rem; }
dl.guide dt { font-weight: 700; }
dl.guide dd { margin: 0; }
form.stack label, form.stack legend { display: block; font-weight: 700; margin: 0.8rem 0 0.3rem; }
form.stack fieldset { border: 1px solid #bfbfbf; border-radius: 0.4rem; margin: 0.8rem 0;
  padding: 0.5rem 1rem 0.8rem; }
form.stack fieldset label { font-weight: 400; display: flex; gap: 0.5rem; align-items: baseline;
  margin: 0.4rem 0; }
input[type=text], input[type=password], input[type=tel], input[type=search], select, textarea {
  font: inherit; color: #1a1a1a; background: #ffffff; border: 2px solid #595959;
  border-radius: 0.3rem; padding: 0.35rem 0.5rem; max-width: 100%;
}
input[type=text], input[type=password], input[type=tel], textarea { width: 26rem; }
input[type=checkbox], input[type=radio] { width: 1.15rem; height: 1.15rem; }
[aria-invalid=true] { border-color: #b00020; }
button, .button {
  display: inline-block; font: inherit; font-weight: 700; color: #ffffff; background: #0a4a94;
  border: 2px solid #0a4a94; border-radius: 0.3rem; padding: 0.4rem 1.1rem; cursor: pointer;
  text-decoration: none; margin: 0.6rem 0.4rem 0.2rem 0;
}
button.secondary { background: #ffffff; color: #0a4a94; }
button.danger { background: #9b1b1b; border-color: #9b1b1b; }
form.search { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: end; }
form.search label { display: block; font-weight: 700; }
form.inline { display: inline; }
.state { font-weight: 700; }
.state-completed { color: #1b6e2e; }
.state-returned, .state-needs_material { color: #9b1b1b; }
ol.timeline { padding-left: 1.4rem; }
ol.timeline li { margin: 0.3rem 0; }
.pager { display: flex; gap: 1.5rem; margin: 1rem 0; }
footer { border-top: 1px solid #d9d9d9; color: #4d4d4d; font-size: 0.9rem; padding: 1rem 0 2rem; }

/* 适老化: the elderly-friendly mode */
html.elder { font-size: 137.5%; }
html.elder body { color: #ffffff; background: #000000; line-height: 1.8; letter-spacing: 0.02em; }
html.elder a, html.elder a:hover { color: #ffeb3b; }
html.elder header.top { background: #000000; border-bottom: 3px solid #ffeb3b; }
html.elder header.top a, html.elder header.top button.link { color: #ffeb3b; }
html.elder form.mode button { background: #ffeb3b; color: #000000; border-color: #ffeb3b; }
html.elder :focus-visible { outline: 4px solid #00e5ff; }
html.elder .hint, html.elder footer, html.elder ul.cards .n,
html.elder nav.crumbs li + li::before { color: #e6e6e6; }
html.elder thead th { background: #262626; }
html.elder th, html.elder td, html.elder ul.cards li { border-color: #bfbfbf; }
html.elder .flash { background: #002b0d; color: #ffffff; border-color: #4caf50; }
html.elder .error-box { background: #3d0008; color: #ffffff; border-color: #ff6b6b; }
html.elder input[type=text], html.elder input[type=password], html.elder input[type=tel],
html.elder input[type=search], html.elder select, html.elder textarea {
  color: #ffffff; background: #000000; border-color: #ffffff;
}
html.elder input[type=checkbox], html.elder input[type=radio] { width: 1.6rem; height: 1.6rem; }
html.elder button, html.elder .button { color: #000000; background: #ffeb3b;
  border-color: #ffeb3b; padding: 0.6rem 1.4rem; }
html.elder button.secondary { background: #000000; color: #ffeb3b; }
html.elder button.danger { background: #ff8a80; border-color: #ff8a80; }
html.elder .state-completed { color: #69f0ae; }
html.elder .state-returned, html.elder .state-needs_material { color: #ff8a80; }
html.elder dl.guide { grid-template-columns: 1fr; }
"""

JS = """\
// Progressive help only: every page works without it.
(function () {
  "use strict";
  // a form with data-confirm asks before it is sent (staff actions that cannot be undone)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
  // a case code typed with spaces or dashes is sent as its 31 digits
  document.addEventListener("submit", function (event) {
    var field = event.target.querySelector && event.target.querySelector("input[name=code]");
    if (field) {
      field.value = field.value.replace(/[\\s-]/g, "");
    }
  });
})();
"""

ICON = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">\
<rect width="32" height="32" rx="6" fill="#9b1b1b"/>\
<path d="M6 14h20v3H6zM8 18h3v8H8zM14.5 18h3v8h-3zM21 18h3v8h-3zM16 5l11 7H5z" fill="#fff"/>\
</svg>
"""


@dataclass(frozen=True)
class Asset:
    name: str
    content_type: str
    body: bytes
    #: computed once (every page refers to the assets by URL)
    digest: str = field(init=False, repr=False)
    url: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.body).hexdigest()[:16]
        object.__setattr__(self, "digest", digest)
        object.__setattr__(self, "url", f"/static/{self.name}?v={digest}")


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset("hall.css", "text/css", CSS.encode()),
        Asset("hall.js", "text/javascript", JS.encode()),
        Asset("icon.svg", "image/svg+xml", ICON.encode()),
    )
}
