"""kgreason: knowledge-augmented reasoning with pretrained encoders, knowledge graphs, rules and probes."""

__version__ = "0.1.0"
