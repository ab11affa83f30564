# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Removing secrets from text: the one implementation every module and venv program uses.

Standard library only, and no ``from __future__`` import: the programs that run inside a
service's virtualenv are built from this file's source too (see ``_venv_prelude``).
"""

import re

MASK = "********"

# user:password@ inside any URL-looking string.
URL_CREDENTIALS = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@")


def scrub_text(text, secrets=()):
    """``text`` with every secret (longest first) and every URL password replaced by MASK.

    Secrets shorter than four characters are ignored: they would mask unrelated text.
    """
    if text is None:
        return None
    text = str(text)
    values = {str(s) for s in secrets if s and len(str(s)) >= 4}
    for secret in sorted(values, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return URL_CREDENTIALS.sub(r"\g<pre>" + MASK + "@", text)
