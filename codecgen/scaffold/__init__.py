"""``codecgen new NAME``: a commented spec for a small fictional protocol.

The scaffold is a complete spec (it passes ``codecgen check`` and
``codecgen generate`` as written) whose comments teach each role: what the
author declares, and what Aeraki's MetaProtocol proxy does with it.  Authors
copy it, then replace the frame with their own wire format.

Example::

    >>> text = scaffold("acmerpc")
    >>> 'name="acmerpc"' in text
    True
"""

from __future__ import annotations

from codecgen import naming
from codecgen.backends.templating import environment
from codecgen.errors import UserError

__all__ = ["scaffold"]


def scaffold(name: str) -> str:
    """The text of ``<name>.py``: a spec for protocol ``name``.

    :param name: the protocol token, ``[a-z][a-z0-9]*``
    :raises UserError: the name is not a valid protocol token
    """
    problem = naming.check_token(name)
    if problem:
        raise UserError(f"NAME: {problem}")
    template = environment(__name__).get_template("spec.py.j2")
    return template.render(name=name, camel=naming.camel(name), codec_name=naming.codec_name(name),
                           port_name=naming.port_name(name)) + "\n"
