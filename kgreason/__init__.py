"""kgreason: knowledge-augmented reasoning with pretrained encoders, knowledge graphs, rules and probes.

The packages follow the flow ``link → retrieve → encode & fuse → constrain → predict → probe`` and are
stacked so that each imports only from those below it (checked by ``lint-imports``; see README "Layers"):
``core`` (shared vocabulary) < ``kb`` | ``encoders`` | ``rules`` < ``retrieval`` | ``kge`` | ``tasks`` |
``data`` < ``models`` < ``training`` | ``probes`` < ``runs`` < ``bench`` < ``finance`` < ``cli``.
"""

__version__ = "0.1.0"
