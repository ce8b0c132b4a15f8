"""meta-protocol-proxy's built-in codecs, and what a spec may do about them.

A target's built-ins (``builtin_codecs`` in the pins) each own four names at once: the
protocol token, the codec factory ``aeraki.meta_protocol.codec.<token>``, the folder
``src/application_protocols/<token>/`` and the proto message ``<Camel>Codec`` in package
``aeraki.meta_protocol.codec``.  A spec taking any of them is either refused, or declares
``replaces_builtin=True``: then ``codecgen image`` removes the built-in from the tree and links
the generated codec under the same factory name, which Aeraki's hard-coded mapping of the
application protocols ``dubbo`` and ``thrift`` reaches.
"""

from __future__ import annotations

from typing import Optional

from codecgen import naming
from codecgen.errors import SpecError
from codecgen.pins import Target, get_target

__all__ = ["collision", "check_builtin"]


def collision(name: str, target: Target) -> Optional[str]:
    """The built-in codec of ``target`` whose names ``name`` would take, or None."""
    mine = (name, naming.codec_name(name), naming.proto_message(name))
    for builtin in target.builtin_codecs:
        theirs = (builtin, naming.codec_name(builtin), naming.proto_message(builtin))
        if any(a == b for a, b in zip(mine, theirs)):
            return builtin
    return None


def check_builtin(name: str, replaces: object, target: Optional[str] = None) -> bool:
    """Whether the spec replaces a built-in; raises SpecError for an undeclared collision
    or a declaration that names nothing to replace."""
    if not isinstance(replaces, bool):
        raise SpecError(name, "replaces_builtin", "must be True or False")
    t = get_target(target)
    builtin = collision(name, t)
    if builtin is None and replaces:
        raise SpecError(name, "replaces_builtin", f"{name!r} is not a built-in codec of "
                        f"meta-protocol-proxy {t.proxy_tag} (target {t.name}; built-ins: "
                        f"{', '.join(t.builtin_codecs)}); remove replaces_builtin=True")
    if builtin is not None and not replaces:
        raise SpecError(name, "name", f"meta-protocol-proxy {t.proxy_tag} (target {t.name}) has a "
                        f"built-in codec {naming.codec_name(builtin)} (folder "
                        f"src/application_protocols/{builtin}, message "
                        f"{naming.proto_message(builtin)}); rename the protocol, or set "
                        f"replaces_builtin=True to replace the built-in in images")
    return replaces
