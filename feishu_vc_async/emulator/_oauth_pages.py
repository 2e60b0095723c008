"""The pages of the emulated accounts host: the consent page and the error page.

Their element ids (``app-name``, ``user``, ``scopes``, ``approve``, ``deny``, ``error``)
are what a browser-driven test looks for; the package docstring lists them.
"""

from __future__ import annotations

import html

from ._oauth import AuthorizeRequest, OAuthUser

__all__ = ["consent_page", "error_page"]

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
<main>
{content}
<p><small>Feishu VC emulator: the accounts host (accounts.feishu.cn) is emulated by
the same server as the API.</small></p>
</main>
</body>
</html>
"""


def consent_page(request: AuthorizeRequest, user: OAuthUser, pending_id: str, action: str) -> str:
    """The consent page: who asks for what, with Approve / Deny posting back to ``action``."""
    esc = html.escape
    scopes = "\n".join(f"<li>{esc(s)}</li>" for s in request.scopes) or "<li>(none)</li>"
    content = f"""<h1>Authorize <span id="app-name">{esc(request.app.display_name)}</span></h1>
<p>Signed in as <strong id="user">{esc(user.name)}</strong>.</p>
<p>The app asks for:</p>
<ul id="scopes">
{scopes}
</ul>
<form method="post" action="{esc(action)}">
<input type="hidden" name="request_id" value="{esc(pending_id)}">
<button type="submit" id="approve" name="decision" value="approve">Approve</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button>
</form>"""
    return _PAGE.format(title=f"Authorize {esc(request.app.display_name)}", content=content)


def error_page(message: str) -> str:
    content = f'<h1>Authorization failed</h1>\n<p id="error">{html.escape(message)}</p>'
    return _PAGE.format(title="Authorization failed", content=content)
