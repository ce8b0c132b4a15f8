"""The codecgen intermediate representation: nodes, expressions, walking, facts.

``from codecgen import ir`` gives the node classes (``ir.Int``, ``ir.ProtocolIR``, ...)
and the helpers every part uses; the submodules are:

- ``nodes``: the frozen, target-neutral node classes (no construct, no target text);
- ``expr``: one expression translator base and one evaluator;
- ``walk``: one visitor base whose ``visit_<Kind>`` methods are abstract, and traversal;
- ``facts``: analysis and sizes, computed once into a frozen side table.

Importing it never loads construct.
"""

from codecgen.ir.nodes import *  # noqa: F401,F403
from codecgen.ir.nodes import DIRECTION_PATH, RESERVED_KEYS, RESERVED_PREFIX, Path, dotted  # noqa: F401
from codecgen.ir.expr import expr_refs, expr_text, uses_direction  # noqa: F401
from codecgen.ir.walk import extensions, find_field, find_output, iter_fields  # noqa: F401
